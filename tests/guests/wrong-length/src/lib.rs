//! Returns one entry more than there are targets.
use target_allocator_sdk::{AssignInput, Info, Strategy};

#[derive(Default)]
pub struct WrongLength;

impl Strategy for WrongLength {
    fn info(&self) -> Info {
        Info { name: "wrong-length".into(), version: "0.0.1".into(), ..Info::default() }
    }
    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
        let extra = usize::from(input.targets.len() != 64);
        Ok(vec![0; input.targets.len() + extra])
    }
}

target_allocator_sdk::export_strategy!(WrongLength);
