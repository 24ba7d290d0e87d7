//! Assigns the first target to a collector index past the end.
use target_allocator_sdk::{AssignInput, Info, Strategy};

#[derive(Default)]
pub struct BadIndex;

impl Strategy for BadIndex {
    fn info(&self) -> Info {
        Info { name: "bad-index".into(), version: "0.0.1".into(), ..Info::default() }
    }
    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
        let mut out = vec![0; input.targets.len()];
        if input.targets.len() != 64
            && let Some(first) = out.first_mut()
        {
            *first = input.collectors.len() as u32;
        }
        Ok(out)
    }
}

target_allocator_sdk::export_strategy!(BadIndex);
