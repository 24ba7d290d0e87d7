//! The process-wide engine, linker and compiled-component cache.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

use super::bindings::v0_1;
use super::code_cache::CodeCache;
use super::limits::{CallLimits, LOG_LINE_MAX_BYTES};

/// How often the epoch advances; deadlines are rounded up to it.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Output bytes lifted per target (one `u32`, counted generously).
const OUTPUT_BYTES_PER_TARGET: usize = 8;
/// Lifting allowance beyond the per-target share (info records, error strings).
const OUTPUT_SLACK_BYTES: usize = 1 << 20;
/// Largest component file accepted (ConfigMaps hold 1 MiB; volumes more).
pub const DEFAULT_MAX_COMPONENT_BYTES: usize = 64 << 20;

/// Strategy instances that may exist at once; further calls wait for a slot.
pub const DEFAULT_MAX_CONCURRENT_CALLS: u32 = 16;
/// Guest memory kept mapped between calls and zeroed in place, which is much
/// cheaper than faulting fresh pages in for every batch.
pub const DEFAULT_MEMORY_KEEP_RESIDENT: usize = 256 << 20;

/// Runtime knobs. `Default` gives the named defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeConfig {
    pub limits: CallLimits,
    pub max_component_bytes: usize,
    pub max_concurrent_calls: u32,
    pub memory_keep_resident: usize,
    /// Directory for compiled components (`strategy_cache_dir`); `None`
    /// compiles every component at every start.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            limits: CallLimits::default(),
            max_component_bytes: DEFAULT_MAX_COMPONENT_BYTES,
            max_concurrent_calls: DEFAULT_MAX_CONCURRENT_CALLS,
            memory_keep_resident: DEFAULT_MEMORY_KEEP_RESIDENT,
            cache_dir: None,
        }
    }
}

/// One per process: compiles components and creates the store of each call.
pub struct Runtime {
    pub(super) engine: Engine,
    pub(super) linker_v0_1: Linker<HostState>,
    pub(super) config: RuntimeConfig,
    /// sha256 → compiled component, so a component loaded twice (say, as a
    /// strategy and as a fallback) compiles once.
    compiled_by_digest: Mutex<HashMap<[u8; 32], Component>>,
    /// Compiled components on disk, across restarts.
    code_cache: Option<CodeCache>,
    /// Bounds the instances alive at once (below the pool's capacity).
    slots: Arc<Slots>,
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> wasmtime::Result<Arc<Runtime>> {
        let mut wasm_config = wasmtime::Config::new();
        wasm_config.wasm_component_model(true).epoch_interruption(true).allocation_strategy(pooling(&config));
        let engine = Engine::new(&wasm_config)?;
        spawn_epoch_ticker(&engine);
        let mut linker_v0_1 = Linker::new(&engine);
        v0_1::StrategyPlugin::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker_v0_1, |state| {
            state
        })?;
        let slots =
            Arc::new(Slots { free: Mutex::new(config.max_concurrent_calls), available: Condvar::new() });
        let code_cache = config.cache_dir.as_deref().and_then(|dir| match CodeCache::open(dir, &engine) {
            Ok(cache) => Some(cache),
            Err(error) => {
                tracing::warn!(%error, "not caching compiled strategies on disk");
                None
            }
        });
        Ok(Arc::new(Runtime {
            engine,
            linker_v0_1,
            config,
            compiled_by_digest: Mutex::default(),
            code_cache,
            slots,
        }))
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// The compiled-code cache directory in use, if any.
    pub fn cache_dir(&self) -> Option<&std::path::Path> {
        self.code_cache.as_ref().map(CodeCache::dir)
    }

    /// The compiled form of `bytes` (whose sha256 is `digest`): from memory,
    /// else from the disk cache, else compiled (and then cached).
    pub(super) fn compile(&self, digest: [u8; 32], bytes: &[u8]) -> wasmtime::Result<Component> {
        if let Some(component) = self.compiled_by_digest.lock().expect("cache lock").get(&digest) {
            return Ok(component.clone());
        }
        let cached = self.code_cache.as_ref().and_then(|cache| cache.load(&self.engine, &digest));
        let component = match cached {
            Some(component) => component,
            None => {
                let component = Component::new(&self.engine, bytes)?;
                if let Some(cache) = &self.code_cache {
                    cache.store(&digest, &component);
                }
                component
            }
        };
        self.compiled_by_digest.lock().expect("cache lock").insert(digest, component.clone());
        Ok(component)
    }

    /// Forgets compiled components whose sha256 (hex) is not in `keep`, so
    /// replaced plugin builds do not pile up in memory. Strategies still
    /// running an old build hold their own reference to it.
    pub fn retain_compiled(&self, keep: &std::collections::HashSet<&str>) {
        self.compiled_by_digest.lock().expect("cache lock").retain(|digest, _| {
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            keep.contains(hex.as_str())
        });
    }

    /// A fresh store for one call over `targets` targets: memory capped at
    /// `memory_limit` bytes, interrupted after `deadline`.
    pub(super) fn new_store(
        &self,
        strategy: &str,
        targets: usize,
        memory_limit: usize,
        deadline: Duration,
    ) -> Store<HostState> {
        let slot = self.acquire_slot();
        let state = HostState {
            _slot: slot,
            strategy: strategy.to_string(),
            memory: MemoryCap { limit: memory_limit, exceeded: false },
            log_lines_left: self.config.limits.log_lines_per_call,
            log_lines_dropped: 0,
            last_error_logged: None,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        let ticks = deadline.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64 + 1;
        store.set_epoch_deadline(ticks);
        store.epoch_deadline_trap();
        // Caps what the host lifts out of the guest in one go: the answer
        // (4 bytes per target, with room for the Vec header) or a log line.
        store.set_hostcall_fuel(
            targets.saturating_mul(OUTPUT_BYTES_PER_TARGET).max(LOG_LINE_MAX_BYTES) + OUTPUT_SLACK_BYTES,
        );
        store
    }
}

impl Runtime {
    /// Waits for a free instance slot; the pool refuses instantiation beyond
    /// its capacity, so calls queue here instead of failing.
    fn acquire_slot(&self) -> SlotGuard {
        let mut free = self.slots.free.lock().expect("slot lock");
        while *free == 0 {
            free = self.slots.available.wait(free).expect("slot lock");
        }
        *free -= 1;
        SlotGuard(self.slots.clone())
    }
}

pub(super) struct Slots {
    free: Mutex<u32>,
    available: Condvar,
}

/// Held by a call's store; frees the slot when the store is dropped.
pub(super) struct SlotGuard(Arc<Slots>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        *self.0.free.lock().expect("slot lock") += 1;
        self.0.available.notify_one();
    }
}

fn pooling(config: &RuntimeConfig) -> wasmtime::InstanceAllocationStrategy {
    // Twice the call slots: a slot is released while its store is still
    // being torn down.
    let slots = config.max_concurrent_calls * 2;
    let mut pool = wasmtime::PoolingAllocationConfig::default();
    // A componentized guest is a few core instances (the module plus adapter
    // shims), each with at most one memory and a couple of tables.
    pool.total_component_instances(slots)
        .total_core_instances(slots * 8)
        .total_memories(slots * 2)
        .total_tables(slots * 8)
        .max_core_instances_per_component(8)
        .max_memories_per_component(2)
        .max_tables_per_component(8)
        .max_memory_size(super::limits::MAX_MEMORY)
        .linear_memory_keep_resident(config.memory_keep_resident)
        .table_keep_resident(1 << 20);
    wasmtime::InstanceAllocationStrategy::Pooling(pool)
}

fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}

/// What a call's store holds.
pub struct HostState {
    _slot: SlotGuard,
    pub(super) strategy: String,
    pub(super) memory: MemoryCap,
    log_lines_left: u32,
    pub(super) log_lines_dropped: u32,
    /// The last error-level line, usually a panic message: quoted when the call traps.
    pub(super) last_error_logged: Option<String>,
}

/// Caps linear memory and remembers whether the cap was hit, so a failed
/// growth is reported as a memory limit rather than a bare trap.
pub struct MemoryCap {
    pub(super) limit: usize,
    pub(super) exceeded: bool,
}

impl wasmtime::ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            wasmtime::bail!("memory limit of {} bytes exceeded (wanted {desired})", self.limit);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

impl v0_1::ta::allocator::host::Host for HostState {
    fn log(&mut self, level: v0_1::ta::allocator::host::LogLevel, message: String) {
        use v0_1::ta::allocator::host::LogLevel;
        if self.log_lines_left == 0 {
            self.log_lines_dropped += 1;
            return;
        }
        self.log_lines_left -= 1;
        let mut message = message;
        if message.len() > LOG_LINE_MAX_BYTES {
            let mut cut = LOG_LINE_MAX_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
        }
        let strategy = self.strategy.as_str();
        match level {
            LogLevel::Debug => tracing::debug!(strategy, "{message}"),
            LogLevel::Info => tracing::info!(strategy, "{message}"),
            LogLevel::Warn => tracing::warn!(strategy, "{message}"),
            LogLevel::Error => {
                tracing::error!(strategy, "{message}");
                self.last_error_logged = Some(message);
            }
        }
    }
}

impl v0_1::ta::allocator::types::Host for HostState {}
