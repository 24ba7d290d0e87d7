//! Loops forever in `assign`: the host must interrupt it at the deadline.
use target_allocator_sdk::{AssignInput, Info, Strategy};

#[derive(Default)]
pub struct InfiniteLoop;

impl Strategy for InfiniteLoop {
    fn info(&self) -> Info {
        Info { name: "infinite-loop".into(), version: "0.0.1".into(), ..Info::default() }
    }
    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
        // Only loop on real batches, so the host's load-time smoke test passes
        // and the failure happens on the allocation path.
        let mut spins = 0u64;
        while input.targets.len() != 64 {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
        Ok(vec![0; input.targets.len()])
    }
}

target_allocator_sdk::export_strategy!(InfiniteLoop);
