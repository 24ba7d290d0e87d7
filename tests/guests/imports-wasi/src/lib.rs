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

const NAME: &str = "imports-wasi";

fn call_forbidden_import() -> u32 {
    wasi::cli::environment::get_environment().len() as u32 * 0
}

include!("../../forbidden_import.rs");
