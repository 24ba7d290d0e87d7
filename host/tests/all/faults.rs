//! Fault-injection guests (`tests/guests/`): each misbehaves in one way and
//! gets its documented outcome, while the host keeps serving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use target_allocator::allocation::{Allocator, StrategyChoice};
use target_allocator::runtime::{CallError, CallLimits, LoadError, Runtime, RuntimeConfig, StrategyPre};
use target_allocator_sdk::testing::fixture;

use crate::support::{addresses, builtin, collectors, load_test_guest, target};

/// A runtime with tight limits, so faults surface quickly.
fn tight_runtime() -> Arc<Runtime> {
    Runtime::new(RuntimeConfig {
        limits: CallLimits {
            base_deadline: Duration::from_millis(300),
            deadline_per_target: Duration::ZERO,
            base_memory: 32 << 20,
            memory_per_target: 0,
            ..CallLimits::default()
        },
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn load(name: &str) -> StrategyPre {
    load_test_guest(&tight_runtime(), name).unwrap_or_else(|e| panic!("{name} should load: {e}"))
}

#[test]
fn an_infinite_loop_is_interrupted_at_the_deadline() {
    let guest = load("infinite-loop");
    let started = Instant::now();
    let error = guest.assign(&fixture(100, 3, 1)).unwrap_err();
    assert!(matches!(error, CallError::Timeout(d) if d == Duration::from_millis(300)), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(error.kind(), "timeout");
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    let guest = load("unbounded-alloc");
    let error = guest.assign(&fixture(100, 3, 1)).unwrap_err();
    // 32 MiB plus room for the batch's string tables.
    assert!(
        matches!(error, CallError::MemoryLimit { limit } if (32 << 20..33 << 20).contains(&limit)),
        "{error}"
    );
}

#[test]
fn a_panic_is_a_trap_that_carries_the_panic_message() {
    let guest = load("panic");
    let error = guest.assign(&fixture(100, 3, 1)).unwrap_err();
    let CallError::Trap(message) = &error else { panic!("expected a trap, got {error}") };
    assert!(message.contains("deliberate failure on 100 targets"), "{message}");
    // The next call gets a fresh instance and the same, not a poisoned, outcome.
    assert!(matches!(guest.assign(&fixture(100, 3, 1)), Err(CallError::Trap(_))));
}

#[test]
fn wrong_output_length_is_rejected_whole() {
    let error = load("wrong-length").assign(&fixture(100, 3, 1)).unwrap_err();
    assert!(
        matches!(&error, CallError::InvalidOutput(m) if m.contains("101 entries for 100 targets")),
        "{error}"
    );
}

#[test]
fn an_out_of_range_index_is_rejected_whole() {
    let error = load("bad-index").assign(&fixture(100, 3, 1)).unwrap_err();
    assert!(matches!(&error, CallError::InvalidOutput(m) if m.contains("target 0 got 3")), "{error}");
}

#[test]
fn an_oversized_answer_is_not_lifted() {
    let error = load("huge-output").assign(&fixture(100, 3, 1)).unwrap_err();
    assert!(matches!(error, CallError::OutputTooLarge { .. }), "{error}");
}

#[test]
fn a_guest_importing_wasi_is_refused_at_load() {
    let error = load_test_guest(&tight_runtime(), "imports-wasi").unwrap_err();
    assert!(
        matches!(&error, LoadError::ForbiddenImport { import } if import == "wasi:cli/environment@0.2.0"),
        "{error}"
    );
    assert!(error.to_string().contains("wasm32-unknown-unknown"));
}

#[test]
fn a_guest_importing_an_unknown_function_is_refused_at_load() {
    let error = load_test_guest(&tight_runtime(), "imports-unknown").unwrap_err();
    assert!(
        matches!(&error, LoadError::ForbiddenImport { import } if import == "acme:net/socket"),
        "{error}"
    );
}

#[test]
fn bytes_that_are_not_a_component_are_refused() {
    let runtime = tight_runtime();
    let core_module = b"\0asm\x01\x00\x00\x00";
    let error =
        StrategyPre::prepare(&runtime, core_module, target_allocator::runtime::StrategySource::Builtin)
            .unwrap_err();
    assert!(matches!(error, LoadError::NotAComponent), "{error}");
    let error = StrategyPre::prepare(
        &runtime,
        b"\0asm\x0d\x00\x01\x00garbage",
        target_allocator::runtime::StrategySource::Builtin,
    )
    .unwrap_err();
    assert!(matches!(error, LoadError::Compile(_)), "{error}");
}

/// With each runtime-faulty guest as the strategy, the allocator keeps every
/// existing assignment, places new targets with native consistent hashing,
/// reports the failure, and recovers once a good strategy is back.
#[test]
fn the_allocator_survives_every_faulty_guest() {
    let good = builtin("consistent-hashing");
    for name in ["infinite-loop", "unbounded-alloc", "panic", "wrong-length", "bad-index", "huge-output"] {
        let mut allocator = Allocator::new(StrategyChoice::new(good.clone()));
        allocator.set_collectors(collectors(4));
        let first: Vec<_> = addresses(200).iter().map(|a| target("job", a, &[])).collect();
        allocator.set_job_targets("job", first.clone());
        let before: Vec<_> = first.iter().map(|t| allocator.collector_of(t.identity).cloned()).collect();

        let report = allocator.set_strategy(StrategyChoice::new(Arc::new(load(name))));
        let error = report.strategy_error.unwrap_or_else(|| panic!("{name}: the failure is reported"));
        assert!(error.starts_with(name), "{error}");
        assert_eq!(report.moved, 0, "{name}: existing targets keep their collector");

        let mut more = first.clone();
        more.extend(addresses(300)[200..].iter().map(|a| target("job", a, &[])));
        let report = allocator.set_job_targets("job", more.clone());
        assert!(report.strategy_error.is_some());
        assert_eq!(report.unassigned, 0, "{name}: new targets still get a collector");
        for (t, was) in first.iter().zip(&before) {
            assert_eq!(allocator.collector_of(t.identity), was.as_ref(), "{name}");
        }
        // New targets went where consistent hashing puts them.
        let mut reference = Allocator::new(StrategyChoice::new(good.clone()));
        reference.set_collectors(collectors(4));
        reference.set_job_targets("job", more.clone());
        for t in &more[200..] {
            assert_eq!(allocator.collector_of(t.identity), reference.collector_of(t.identity), "{name}");
        }
        let report = allocator.set_strategy(StrategyChoice::new(good.clone()));
        assert_eq!(report.strategy_error, None, "{name}: a good strategy takes over again");
    }
}
