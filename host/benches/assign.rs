//! Assigning whole batches with each built-in, through Wasm and natively.
//!
//! `cargo bench -p target-allocator --bench assign` (see BENCHMARKS.md). The
//! Wasm figures include everything a call costs: a fresh instance, copying
//! the columns in, the strategy (ring construction included) and lifting and
//! validating the result.

use std::time::Duration;

// The binary's allocator, so figures match what runs in production.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use strategy_consistent_hashing::ConsistentHashing;
use strategy_least_weighted::LeastWeighted;
use strategy_per_node::PerNode;
use target_allocator::allocation::{Assigner, NativeAssigner};
use target_allocator::runtime::{Runtime, RuntimeConfig};
use target_allocator::strategies::StrategyCatalog;
use target_allocator_sdk::testing::fixture;

fn assign(c: &mut Criterion) {
    let runtime = Runtime::new(RuntimeConfig::default()).expect("runtime");
    let catalog = StrategyCatalog::with_builtins(runtime).expect("built-ins");
    let strategies: Vec<(&str, Box<dyn Assigner>)> = vec![
        ("consistent-hashing", Box::new(NativeAssigner::new(ConsistentHashing))),
        ("least-weighted", Box::new(NativeAssigner::new(LeastWeighted))),
        ("per-node", Box::new(NativeAssigner::new(PerNode))),
    ];
    for (name, native) in &strategies {
        let wasm = catalog.get(name).expect("built-in");
        let mut group = c.benchmark_group(*name);
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for targets in [10_000, 100_000, 1_000_000] {
            for collectors in [100, 1000] {
                let input = fixture(targets, collectors, 1);
                let size = format!("{targets}x{collectors}");
                group.throughput(Throughput::Elements(targets as u64));
                group.bench_with_input(BenchmarkId::new("wasm", &size), &input, |b, input| {
                    b.iter(|| wasm.assign(input).expect("assign"))
                });
                group.bench_with_input(BenchmarkId::new("native", &size), &input, |b, input| {
                    b.iter(|| native.assign(input).expect("assign"))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, assign);
criterion_main!(benches);
