//! Host bindings, one module per frozen contract version under `wit/`.
//!
//! A new contract version gets its own module here and a variant in
//! [`StrategyPre`](super::StrategyPre)'s dispatch; older modules are never
//! edited, so guests built against them keep loading.

pub mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "strategy-plugin",
        ownership: Borrowing { duplicate_if_necessary: false },
    });
}
