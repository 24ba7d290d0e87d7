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

const NAME: &str = "imports-unknown";

fn call_forbidden_import() -> u32 {
    acme::net::socket::connect("10.0.0.1:80") * 0
}

include!("../../forbidden_import.rs");
