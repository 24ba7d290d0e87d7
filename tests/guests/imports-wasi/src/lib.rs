//! Imports WASI (`wasi:cli/environment`), like a guest built for wasm32-wasip2.
//! The host must refuse to load it, naming the import.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "../../../wit/v0.1",
    inline: r#"
        package test:guest;

        package wasi:cli@0.2.0 {
            interface environment {
                get-environment: func() -> list<tuple<string, string>>;
            }
        }

        world guest {
            import wasi:cli/environment@0.2.0;
            export ta:allocator/strategy@0.1.0;
        }
    "#,
    world: "test:guest/guest",
    generate_all,
});

use exports::ta::allocator::strategy::Guest;
use ta::allocator::types::{AssignInput, StrategyInfo};

struct Forbidden;

impl Guest for Forbidden {
    fn info() -> StrategyInfo {
        StrategyInfo {
            name: "imports-wasi".into(),
            version: "0.0.1".into(),
            description: String::new(),
            needs_labels: Vec::new(),
            needs_columns: ta::allocator::types::Columns::empty(),
        }
    }
    fn validate_options(_: String) -> Result<(), String> {
        Ok(())
    }
    fn assign(input: AssignInput) -> Result<Vec<u32>, String> {
        let used = wasi::cli::environment::get_environment().len() as u32 * 0;
        Ok(vec![used; input.targets.count as usize])
    }
}

export!(Forbidden);
