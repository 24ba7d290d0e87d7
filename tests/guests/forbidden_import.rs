// Shared by the `imports-*` guests: a strategy that calls one forbidden
// import. The including crate defines `NAME` and `call_forbidden_import()`
// after generating its bindings.

use exports::ta::allocator::strategy::Guest;
use ta::allocator::types::{AssignInput, Columns, StrategyInfo};

struct Forbidden;

impl Guest for Forbidden {
    fn info() -> StrategyInfo {
        StrategyInfo {
            name: NAME.into(),
            version: "0.0.1".into(),
            description: String::new(),
            needs_labels: Vec::new(),
            needs_columns: Columns::empty(),
        }
    }
    fn validate_options(_: String) -> Result<(), String> {
        Ok(())
    }
    fn assign(input: AssignInput) -> Result<Vec<u32>, String> {
        Ok(vec![call_forbidden_import(); input.targets.count as usize])
    }
}

export!(Forbidden);
