//! A prepared strategy: compiled, linked, smoke-tested, ready to call.
//!
//! Preparing is the slow, fallible part of loading (milliseconds of
//! compilation); a prepared strategy is immutable and cheap to share, and each
//! call instantiates it afresh (see `strategy_call`).

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use target_allocator_sdk::{Info, testing};
use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::SUPPORTED_CONTRACTS;
use super::bindings::v0_1;
use super::engine::{HostState, Runtime};
use super::errors::LoadError;

/// Targets in the load-time smoke test's synthetic batch.
pub const SMOKE_TEST_TARGETS: usize = 64;

/// Where a strategy came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StrategySource {
    /// Embedded in the binary.
    Builtin,
    /// Loaded from a file.
    File(PathBuf),
}

impl std::fmt::Display for StrategySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StrategySource::Builtin => f.write_str("built-in"),
            StrategySource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A compiled and linked strategy component.
pub struct StrategyPre {
    pub(super) runtime: Arc<Runtime>,
    pub(super) pre: v0_1::StrategyPluginPre<HostState>,
    info: Info,
    digest: String,
    source: StrategySource,
    contract: &'static str,
}

impl std::fmt::Debug for StrategyPre {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrategyPre")
            .field("name", &self.info.name)
            .field("version", &self.info.version)
            .field("digest", &self.digest)
            .field("source", &self.source)
            .finish()
    }
}

impl StrategyPre {
    /// Compiles, links and smoke-tests `bytes` (a component).
    pub fn prepare(
        runtime: &Arc<Runtime>,
        bytes: &[u8],
        source: StrategySource,
    ) -> Result<StrategyPre, LoadError> {
        let limit = runtime.config().max_component_bytes;
        if bytes.len() > limit {
            return Err(LoadError::TooLarge { size: bytes.len(), limit });
        }
        // Compiled artifacts are only ever read from our own cache
        // (`code_cache`); one handed in as a strategy file is refused.
        if wasmtime::Engine::detect_precompiled(bytes).is_some() {
            return Err(LoadError::Precompiled);
        }
        if !is_component(bytes) {
            return Err(LoadError::NotAComponent);
        }
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let component = runtime.compile(digest, bytes).map_err(LoadError::Compile)?;
        let contract = check_contract(runtime, &component)?;
        let instance_pre = runtime.linker_v0_1.instantiate_pre(&component).map_err(LoadError::Link)?;
        let pre = v0_1::StrategyPluginPre::new(instance_pre).map_err(LoadError::Link)?;
        let mut strategy = StrategyPre {
            runtime: runtime.clone(),
            pre,
            info: Info::default(),
            digest: digest.iter().map(|b| format!("{b:02x}")).collect(),
            source,
            contract,
        };
        strategy.info = strategy.call_info().map_err(|e| LoadError::SmokeTest(format!("info(): {e}")))?;
        strategy.smoke_test()?;
        Ok(strategy)
    }

    pub fn info(&self) -> &Info {
        &self.info
    }

    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// sha256 of the component bytes, hex.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn source(&self) -> &StrategySource {
        &self.source
    }

    /// The contract version the component implements.
    pub fn contract(&self) -> &'static str {
        self.contract
    }

    fn smoke_test(&self) -> Result<(), LoadError> {
        let name = &self.info.name;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(LoadError::SmokeTest(format!(
                "info() reported the name {name:?}; names must be non-empty and use only letters, digits, '-', '_' and '.'"
            )));
        }
        // The call must work; its verdict does not matter, since a strategy
        // may require options.
        let _verdict_on_no_options = self
            .validate_options("")
            .map_err(|e| LoadError::SmokeTest(format!("validate-options(\"\"): {e}")))?;
        let fixture = testing::fixture(SMOKE_TEST_TARGETS, 3, 7);
        match self.assign(&fixture) {
            // A strategy may require options, so refusing empty ones is fine.
            Ok(_) | Err(super::CallError::Guest(_)) => Ok(()),
            Err(e) => {
                Err(LoadError::SmokeTest(format!("assign on {SMOKE_TEST_TARGETS} synthetic targets: {e}")))
            }
        }
    }
}

/// Components start with the wasm magic followed by the component layer.
fn is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[6..8] == [1, 0] && bytes[4..6] != [1, 0]
}

/// Finds which contract the component exports and rejects imports other than
/// the host interface, with messages that name the problem.
fn check_contract(runtime: &Runtime, component: &Component) -> Result<&'static str, LoadError> {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(&runtime.engine).map(|(name, _)| name.to_string()).collect();
    let contract = SUPPORTED_CONTRACTS.iter().find(|contract| {
        let track = track_of(contract);
        exports.iter().any(|e| e.strip_prefix("ta:allocator/strategy@").is_some_and(|v| in_track(v, &track)))
    });
    let Some(&contract) = contract else {
        let reason = match exports.iter().find(|e| e.starts_with("ta:allocator/strategy@")) {
            Some(other) => format!("it exports {other}"),
            None if exports.is_empty() => "it exports nothing".to_string(),
            None => format!("it exports only {}", exports.join(", ")),
        };
        return Err(LoadError::UnsupportedContract { supported: supported_range(), reason });
    };
    let track = track_of(contract);
    for (name, item) in ty.imports(&runtime.engine) {
        let allowed = matches!(item.ty, ComponentItem::ComponentInstance(_))
            && ["ta:allocator/host@", "ta:allocator/types@"]
                .iter()
                .any(|prefix| name.strip_prefix(prefix).is_some_and(|v| in_track(v, &track)));
        if !allowed {
            return Err(LoadError::ForbiddenImport { import: name.to_string() });
        }
    }
    Ok(contract)
}

/// The supported contracts as ranges, e.g. `ta:allocator@0.1.x`.
pub fn supported_range() -> String {
    SUPPORTED_CONTRACTS
        .iter()
        .map(|c| match track_of(c) {
            Track::Exact(v) => format!("ta:allocator@{v}"),
            Track::Prefix(p) => format!("ta:allocator@{p}x"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which versions are compatible with a contract, as wasmtime's semver-aware
/// linking matches them: same major for 1.x and later, same minor for 0.y,
/// the exact version for 0.0.z and pre-releases.
#[derive(Debug, PartialEq)]
enum Track {
    Prefix(String),
    Exact(String),
}

fn track_of(contract: &str) -> Track {
    let version = contract.rsplit_once('@').map_or(contract, |(_, v)| v);
    let parts: Vec<&str> = version.split('.').collect();
    match parts.as_slice() {
        _ if version.contains('-') => Track::Exact(version.to_string()),
        ["0", "0", _] => Track::Exact(version.to_string()),
        ["0", minor, _] => Track::Prefix(format!("0.{minor}.")),
        [major, _, _] => Track::Prefix(format!("{major}.")),
        _ => Track::Exact(version.to_string()),
    }
}

fn in_track(version: &str, track: &Track) -> bool {
    match track {
        Track::Exact(v) => version == v,
        Track::Prefix(p) => version.starts_with(p.as_str()) && !version.contains('-'),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn contract_tracks_follow_semver_linking() {
        use super::{Track, in_track, track_of};
        let minor = track_of("ta:allocator@0.1.0");
        assert_eq!(minor, Track::Prefix("0.1.".into()));
        assert!(in_track("0.1.0", &minor) && in_track("0.1.7", &minor));
        assert!(!in_track("0.2.0", &minor) && !in_track("0.0.9", &minor) && !in_track("0.1.1-rc1", &minor));
        assert!(in_track("1.4.0", &track_of("x@1.0.0")));
        assert_eq!(track_of("x@0.0.3"), Track::Exact("0.0.3".into()));
        assert_eq!(super::supported_range(), "ta:allocator@0.1.x");
    }

    #[test]
    fn recognises_components() {
        assert!(super::is_component(b"\0asm\x0d\x00\x01\x00"));
        assert!(!super::is_component(b"\0asm\x01\x00\x00\x00"));
        assert!(!super::is_component(b"\0as"));
    }
}
