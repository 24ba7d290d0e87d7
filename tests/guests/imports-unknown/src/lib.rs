//! Imports a function the host does not provide (`acme:net/socket.connect`).
//! The host must refuse to load it, naming the import.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    path: "../../../wit/v0.1",
    inline: r#"
        package test:guest;

        package acme:net {
            interface socket {
                connect: func(address: string) -> u32;
            }
        }

        world guest {
            import acme:net/socket;
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
            name: "imports-unknown".into(),
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
        let used = acme::net::socket::connect("10.0.0.1:80") * 0;
        Ok(vec![used; input.targets.count as usize])
    }
}

export!(Forbidden);
