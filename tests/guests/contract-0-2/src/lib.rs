//! Exports `ta:allocator/strategy@0.2.0`, a contract version the host does not
//! support. The host must refuse to load it, naming the supported range. The
//! interface here is deliberately not a real contract: only its version matters.
#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    inline: r#"
        package ta:allocator@0.2.0;

        interface strategy {
            name: func() -> string;
        }

        world other-version {
            export strategy;
        }
    "#,
    world: "other-version",
});

struct OtherVersion;

impl exports::ta::allocator::strategy::Guest for OtherVersion {
    fn name() -> String {
        "contract-0-2".into()
    }
}

export!(OtherVersion);
