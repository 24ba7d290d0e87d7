//! Allocates without bound in `assign`: the host's memory cap must stop it.
use target_allocator_sdk::{AssignInput, Info, Strategy};

#[derive(Default)]
pub struct UnboundedAlloc;

impl Strategy for UnboundedAlloc {
    fn info(&self) -> Info {
        Info { name: "unbounded-alloc".into(), version: "0.0.1".into(), ..Info::default() }
    }
    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        while input.targets.len() != 64 {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
        Ok(vec![0; input.targets.len()])
    }
}

target_allocator_sdk::export_strategy!(UnboundedAlloc);
