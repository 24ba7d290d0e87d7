//! Write target-allocator assignment strategies in plain Rust.
//!
//! A strategy implements [`Strategy`]: a pure function from collectors, targets
//! (as parallel integer columns), the previous assignment and its options to
//! one collector index per target. [`export_strategy!`] turns it into the
//! exports of a WebAssembly component for the `ta:allocator@0.1.0` contract
//! (`wit/v0.1/allocator.wit`); on native targets the macro expands to nothing,
//! so the same code runs in unit tests, benchmarks and the host's native
//! fallback.
//!
//! Helpers: [`ring`] (the reference allocator's bounded-load partition ring),
//! [`hash`] (xxhash64, jump and rendezvous hashing), [`bounded`] (rendezvous
//! hashing with a cap on every collector's load) and [`testing`] (fixtures
//! and invariant checks every strategy should pass).
//!
//! This crate owns the guest-side view of the contract. It must not depend on
//! the host: strategies are built for `wasm32-unknown-unknown` with nothing but
//! this crate.

pub mod bounded;
pub mod hash;
pub mod options;
pub mod ring;
pub mod testing;
mod types;

pub use types::*;

/// A target-assignment strategy.
///
/// Implementations are stateless: a fresh value (from `Default`) serves each
/// call when running as a component, so nothing may be carried between calls.
pub trait Strategy {
    /// Name, version and the labels the strategy needs.
    fn info(&self) -> Info;

    /// Rejects options the strategy cannot use. `options` is JSON text, or empty
    /// when none are configured. The message is shown to users as is.
    fn validate_options(&self, options: &str) -> Result<(), String> {
        let _ = options;
        Ok(())
    }

    /// Returns one value per target of `input`: a collector index,
    /// [`UNASSIGNED`] or [`FALLBACK`].
    fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String>;
}

/// Checks that `output` has exactly one entry per target of `input`, each a
/// collector index, [`UNASSIGNED`] or [`FALLBACK`]. The host applies this to
/// every strategy result before using it.
pub fn validate_output(input: &AssignInput, output: &[u32]) -> Result<(), testing::Violation> {
    use testing::Violation;
    let n = input.targets.len();
    if output.len() != n {
        return Err(Violation::WrongLength { expected: n, got: output.len() });
    }
    let collectors = input.collectors.len();
    match output.iter().position(|&v| v as usize >= collectors && v != UNASSIGNED && v != FALLBACK) {
        Some(target) => Err(Violation::InvalidIndex { target, value: output[target], collectors }),
        None => Ok(()),
    }
}

/// Log severities, as the host's `log` import takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// Writes a line to the allocator's log. The host caps lines per call; on
/// native targets this writes to standard error only when
/// `TA_STRATEGY_LOG` is set, so tests and benchmarks stay quiet.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        use __private::bindings::ta::allocator::host::{self, LogLevel as L};
        let level = match level {
            LogLevel::Debug => L::Debug,
            LogLevel::Info => L::Info,
            LogLevel::Warn => L::Warn,
            LogLevel::Error => L::Error,
        };
        host::log(level, message);
    }
    #[cfg(not(target_arch = "wasm32"))]
    if std::env::var_os("TA_STRATEGY_LOG").is_some() {
        eprintln!("strategy {level:?}: {message}");
    }
}

/// Exports a [`Strategy`] type (which must implement `Default`) as the
/// component's `ta:allocator/strategy` interface. Use it once per crate:
///
/// ```
/// use target_allocator_sdk::{AssignInput, Info, Strategy, UNASSIGNED};
///
/// /// Sends every target to the first collector.
/// #[derive(Default)]
/// struct First;
///
/// impl Strategy for First {
///     fn info(&self) -> Info {
///         Info { name: "first".into(), version: "0.1.0".into(), ..Info::default() }
///     }
///     fn assign(&self, input: &AssignInput) -> Result<Vec<u32>, String> {
///         let to = if input.collectors.is_empty() { UNASSIGNED } else { 0 };
///         Ok(vec![to; input.targets.len()])
///     }
/// }
///
/// target_allocator_sdk::export_strategy!(First);
/// ```
///
/// Expands to nothing unless compiling for `wasm32`.
#[macro_export]
macro_rules! export_strategy {
    ($strategy:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Exported;
            impl $crate::__private::Guest for Exported {
                fn info() -> $crate::__private::WitInfo {
                    $crate::__private::info_to_wit(<$strategy as ::core::default::Default>::default().info())
                }
                fn validate_options(
                    options: ::std::string::String,
                ) -> ::core::result::Result<(), ::std::string::String> {
                    <$strategy as ::core::default::Default>::default().validate_options(&options)
                }
                fn assign(
                    input: $crate::__private::WitAssignInput,
                ) -> ::core::result::Result<::std::vec::Vec<u32>, ::std::string::String> {
                    $crate::__private::install_panic_hook();
                    let input = $crate::__private::input_from_wit(input);
                    <$strategy as ::core::default::Default>::default().assign(&input)
                }
            }
            $crate::__private::export_component!(Exported);
        };
    };
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __private {
    //! Glue between the generated bindings and the SDK's plain types. Not API.

    pub mod bindings {
        wit_bindgen::generate!({
            path: "../wit/v0.1",
            world: "strategy-plugin",
            pub_export_macro: true,
            export_macro_name: "export_component",
            default_bindings_module: "$crate::__private::bindings",
        });
    }

    pub use bindings::export_component;
    pub use bindings::exports::ta::allocator::strategy::Guest;
    use bindings::ta::allocator::types::Columns as WitColumns;
    pub use bindings::ta::allocator::types::{AssignInput as WitAssignInput, StrategyInfo as WitInfo};

    use crate::{AssignInput, Collectors, Info, LabelColumn, Load, Targets};

    pub fn info_to_wit(info: Info) -> WitInfo {
        let c = info.needs_columns;
        let mut columns = WitColumns::empty();
        for (wanted, flag) in [
            (c.address_hash, WitColumns::ADDRESS_HASH),
            (c.identity, WitColumns::IDENTITY),
            (c.job, WitColumns::JOB),
            (c.node, WitColumns::NODE),
            (c.previous, WitColumns::PREVIOUS),
        ] {
            if wanted {
                columns = columns | flag;
            }
        }
        WitInfo {
            name: info.name,
            version: info.version,
            description: info.description,
            needs_labels: info.needs_labels,
            needs_columns: columns,
        }
    }

    /// Moves the generated record into the SDK's types: the per-target lists
    /// are taken over as they are, never copied.
    pub fn input_from_wit(input: WitAssignInput) -> AssignInput {
        AssignInput {
            collectors: Collectors { names: input.collectors.names, node: input.collectors.node },
            nodes: input.nodes,
            jobs: input.jobs,
            targets: Targets {
                count: input.targets.count,
                address_hash: input.targets.address_hash,
                identity: input.targets.identity,
                job: input.targets.job,
                node: input.targets.node,
                previous: input.targets.previous,
            },
            labels: input
                .labels
                .into_iter()
                .map(|c| LabelColumn { name: c.name, values: c.values, value: c.value })
                .collect(),
            load: Load {
                collector_targets: input.load.collector_targets,
                jobs: input.load.jobs,
                job_collector_targets: input.load.job_collector_targets,
            },
            options: input.options,
        }
    }

    /// Sends a panic's message to the host log before the trap, so a
    /// crashing strategy explains itself.
    pub fn install_panic_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                crate::log(crate::LogLevel::Error, &format!("strategy panicked: {info}"));
            }))
        });
    }
}
