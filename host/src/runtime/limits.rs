//! Per-call resource limits, sized to the batch.

use std::time::Duration;

/// Base time every call gets, whatever its size.
pub const DEFAULT_BASE_DEADLINE: Duration = Duration::from_millis(500);
/// Extra time per target in the batch.
pub const DEFAULT_DEADLINE_PER_TARGET: Duration = Duration::from_nanos(1_000);
/// No call runs longer than this.
pub const DEFAULT_MAX_DEADLINE: Duration = Duration::from_secs(30);
/// Base linear memory a guest may grow to.
pub const DEFAULT_BASE_MEMORY: usize = 64 << 20;
/// Extra memory per target: the input columns take 28 bytes, the output 4,
/// and a strategy needs room for its own working set.
pub const DEFAULT_MEMORY_PER_TARGET: usize = 128;
/// wasm32's address space.
pub const MAX_MEMORY: usize = 4 << 30;
/// Lines a guest may log per call; later lines are dropped and counted.
pub const DEFAULT_LOG_LINES_PER_CALL: u32 = 100;
/// Bytes kept of one logged line.
pub const LOG_LINE_MAX_BYTES: usize = 4096;

/// Limits applied to strategy calls. `Default` gives the values above.
#[derive(Clone, Debug, PartialEq)]
pub struct CallLimits {
    pub base_deadline: Duration,
    pub deadline_per_target: Duration,
    pub max_deadline: Duration,
    pub base_memory: usize,
    pub memory_per_target: usize,
    pub log_lines_per_call: u32,
}

impl Default for CallLimits {
    fn default() -> Self {
        CallLimits {
            base_deadline: DEFAULT_BASE_DEADLINE,
            deadline_per_target: DEFAULT_DEADLINE_PER_TARGET,
            max_deadline: DEFAULT_MAX_DEADLINE,
            base_memory: DEFAULT_BASE_MEMORY,
            memory_per_target: DEFAULT_MEMORY_PER_TARGET,
            log_lines_per_call: DEFAULT_LOG_LINES_PER_CALL,
        }
    }
}

impl CallLimits {
    /// Wall-clock budget of a call over `targets` targets.
    pub fn deadline(&self, targets: usize) -> Duration {
        let scaled = self.deadline_per_target.saturating_mul(targets.min(u32::MAX as usize) as u32);
        (self.base_deadline + scaled).min(self.max_deadline)
    }

    /// Linear-memory cap of a call over `targets` targets, plus the bytes of
    /// strings in its tables.
    pub fn memory(&self, targets: usize, table_bytes: usize) -> usize {
        self.base_memory
            .saturating_add(targets.saturating_mul(self.memory_per_target))
            .saturating_add(table_bytes.saturating_mul(2))
            .min(MAX_MEMORY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_grow_with_the_batch_and_stop_at_their_caps() {
        let limits = CallLimits::default();
        assert_eq!(limits.deadline(0), DEFAULT_BASE_DEADLINE);
        assert_eq!(limits.deadline(1_000_000), Duration::from_millis(1500));
        assert_eq!(limits.deadline(usize::MAX), DEFAULT_MAX_DEADLINE);
        assert_eq!(limits.memory(0, 0), 64 << 20);
        assert_eq!(limits.memory(usize::MAX, 0), MAX_MEMORY);
    }
}
