//! Panics in `assign`: the host must survive the trap and report the message.
use target_allocator_sdk::{AssignInput, Info, Strategy};

#[derive(Default)]
pub struct Panics;

impl Strategy for Panics {
    fn info(&self) -> Info {
        Info { name: "panic".into(), version: "0.0.1".into(), ..Info::default() }
    }
    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
        if input.targets.len() != 64 {
            panic!("deliberate failure on {} targets", input.targets.len());
        }
        Ok(vec![0; input.targets.len()])
    }
}

target_allocator_sdk::export_strategy!(Panics);
