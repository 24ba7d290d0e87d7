//! Returns a million entries for any real batch: the host must refuse to lift
//! that much data back, whatever the guest's memory allows.
use target_allocator_sdk::{AssignInput, Info, Strategy};

#[derive(Default)]
pub struct HugeOutput;

impl Strategy for HugeOutput {
    fn info(&self) -> Info {
        Info { name: "huge-output".into(), version: "0.0.1".into(), ..Info::default() }
    }
    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
        // The host's load-time smoke test uses 64 targets; answer it properly.
        let len = if input.targets.len() == 64 { 64 } else { 1_000_000 };
        Ok(vec![0; len])
    }
}

target_allocator_sdk::export_strategy!(HugeOutput);
