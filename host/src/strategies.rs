//! The catalogue of strategies users can select by name.
//!
//! Holds the built-ins and the plugins of `strategy_dir` as prepared
//! components, keeps per-file load results (the last error of each file, the
//! previous good version staying in place), and turns a configured name plus
//! options into a checked [`StrategyChoice`]. It must not run allocations or
//! watch anything itself: the reloader calls [`StrategyCatalog::scan_dir`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::allocation::{Assigner, StrategyChoice};
use crate::runtime::{LoadError, Runtime, StrategyPre, StrategySource, load_builtins};

/// The default strategy, as in the reference allocator.
pub const DEFAULT_STRATEGY: &str = "consistent-hashing";

/// Why a configured strategy cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ChoiceError {
    #[error("unknown strategy {name:?}; available: {available}")]
    Unknown { name: String, available: String },
    #[error("strategy {name:?} rejected its options: {message}")]
    InvalidOptions { name: String, message: String },
    // The cause is part of each message (logs print messages only), so it is
    // not also a `source`: error chains would print it twice.
    #[error("strategy {name:?} failed while checking its options: {error}")]
    Failed { name: String, error: crate::runtime::CallError },
    #[error("loading {path}: {error}")]
    Load { path: String, error: LoadError },
    #[error("reading {path}: {error}")]
    Read { path: String, error: std::io::Error },
}

/// Strategies by the name they report.
pub struct StrategyCatalog {
    runtime: Arc<Runtime>,
    by_name: BTreeMap<String, Arc<StrategyPre>>,
    builtins: BTreeSet<String>,
    /// `strategy_dir` files seen by the last scan, by path.
    files: BTreeMap<PathBuf, FileStatus>,
}

/// The state of one `strategy_dir` file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FileStatus {
    pub path: PathBuf,
    /// sha256 of the bytes last read (loaded or not).
    pub digest: Option<String>,
    /// The strategy this file provides: its last good version.
    pub strategy: Option<String>,
    /// Digest of that good version.
    pub loaded_digest: Option<String>,
    /// Why the file's current bytes were refused; the previous good version
    /// (if any) stays in use.
    pub error: Option<String>,
}

/// One strategy of the catalogue, for the status endpoint.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct StrategyStatus {
    pub name: String,
    pub version: String,
    pub description: String,
    pub digest: String,
    /// `built-in` or the file it was loaded from.
    pub source: String,
    pub contract: String,
}

/// What a directory scan did.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Strategies were added, replaced or removed.
    pub changed: bool,
    /// Files refused in this scan, with the reason.
    pub errors: Vec<(PathBuf, String)>,
}

/// A refused `strategy_dir` file.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("reading the file: {0}")]
    Read(std::io::Error),
    #[error(transparent)]
    Load(LoadError),
    #[error("it reports the name {0:?}, which is a built-in strategy's; choose another name")]
    BuiltinName(String),
    #[error("it reports the name {name:?}, which {other} already provides")]
    Duplicate { name: String, other: String },
}

impl StrategyCatalog {
    /// A catalogue holding the built-ins.
    pub fn with_builtins(runtime: Arc<Runtime>) -> Result<StrategyCatalog, LoadError> {
        let by_name: BTreeMap<String, Arc<StrategyPre>> =
            load_builtins(&runtime)?.into_iter().map(|s| (s.name().to_string(), Arc::new(s))).collect();
        let builtins = by_name.keys().cloned().collect();
        Ok(StrategyCatalog { runtime, by_name, builtins, files: BTreeMap::new() })
    }

    /// Brings the catalogue in line with the `*.wasm` files of `dir`.
    ///
    /// Per file: size cap, sha256 (an unchanged file is skipped), then
    /// compile, link and smoke test; a good file replaces the strategy it
    /// provided before, a bad one is recorded and its previous good version
    /// stays. Dot-files are skipped, so a Kubernetes ConfigMap's `..data`
    /// directories are never read as such: the visible names (symlinks into
    /// `..data`) are followed. A deleted file's strategy is removed unless
    /// `in_use` says it is in use, in which case it stays loaded.
    pub fn scan_dir(&mut self, dir: &Path, in_use: &dyn Fn(&str) -> bool) -> ScanReport {
        let mut report = ScanReport::default();
        let mut seen = BTreeSet::new();
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries.filter_map(Result::ok).map(|e| e.file_name()).collect::<Vec<_>>(),
            Err(error) => {
                // A missing directory (a volume not mounted yet) looks like an
                // empty one; nothing is unloaded that is in use.
                tracing::warn!(dir = %dir.display(), %error, "cannot list strategy_dir");
                Vec::new()
            }
        };
        let mut names: Vec<String> = entries.into_iter().filter_map(|n| n.into_string().ok()).collect();
        names.sort();
        for name in names {
            if name.starts_with('.') || !name.ends_with(".wasm") {
                continue;
            }
            let path = dir.join(&name);
            // `metadata` follows symlinks: a dangling one counts as gone.
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => {}
                _ => continue,
            }
            seen.insert(path.clone());
            if let Err(error) = self.scan_file(&path, &mut report) {
                let message = error.to_string();
                let status = self.files.entry(path.clone()).or_insert_with(|| FileStatus::new(&path));
                if status.error.as_deref() != Some(&message) {
                    tracing::warn!(file = %path.display(), error = %message, "strategy file refused; the previous version, if any, stays in use");
                    report.errors.push((path.clone(), message.clone()));
                }
                status.error = Some(message);
            }
        }
        let gone: Vec<PathBuf> = self.files.keys().filter(|p| !seen.contains(*p)).cloned().collect();
        for path in gone {
            let status = self.files.remove(&path).expect("listed");
            let Some(name) = status.strategy else { continue };
            if in_use(&name) {
                tracing::warn!(file = %path.display(), strategy = %name, "the file of a strategy in use was deleted; it stays loaded until the config selects another");
            } else {
                tracing::info!(file = %path.display(), strategy = %name, "strategy file deleted; strategy unloaded");
                self.by_name.remove(&name);
                report.changed = true;
            }
        }
        if report.changed {
            let keep = self.by_name.values().map(|s| s.digest()).collect();
            self.runtime.retain_compiled(&keep);
        }
        report
    }

    /// Loads one file unless its bytes are those seen last time.
    fn scan_file(&mut self, path: &Path, report: &mut ScanReport) -> Result<(), FileError> {
        let limit = self.runtime.config().max_component_bytes;
        let size = std::fs::metadata(path).map_err(FileError::Read)?.len();
        if size > limit as u64 {
            return Err(FileError::Load(LoadError::TooLarge { size: size as usize, limit }));
        }
        let bytes = std::fs::read(path).map_err(FileError::Read)?;
        let digest = hex(&Sha256::digest(&bytes));
        let status = self.files.entry(path.to_path_buf()).or_insert_with(|| FileStatus::new(path));
        if status.digest.as_deref() == Some(&digest) {
            // Unchanged: loaded before, or refused and already reported.
            return Ok(());
        }
        status.digest = Some(digest);
        let strategy = StrategyPre::prepare(&self.runtime, &bytes, StrategySource::File(path.to_path_buf()))
            .map_err(FileError::Load)?;
        let name = strategy.name().to_string();
        if self.builtins.contains(&name) {
            return Err(FileError::BuiltinName(name));
        }
        if let Some(other) =
            self.files.values().find(|f| f.path != path && f.strategy.as_deref() == Some(name.as_str()))
        {
            return Err(FileError::Duplicate { name, other: other.path.display().to_string() });
        }
        let status = self.files.get_mut(path).expect("inserted above");
        if let Some(old) = status.strategy.take().filter(|old| *old != name) {
            // The file now provides another strategy: the old name goes.
            self.by_name.remove(&old);
        }
        status.strategy = Some(name.clone());
        status.loaded_digest = Some(strategy.digest().to_string());
        status.error = None;
        tracing::info!(file = %path.display(), strategy = %name, version = %strategy.info().version, digest = %strategy.digest(), "strategy loaded");
        self.by_name.insert(name, Arc::new(strategy));
        report.changed = true;
        Ok(())
    }

    /// Every `strategy_dir` file of the last scan.
    pub fn files(&self) -> Vec<FileStatus> {
        self.files.values().cloned().collect()
    }

    /// Every strategy that can be selected.
    pub fn strategies(&self) -> Vec<StrategyStatus> {
        self.by_name
            .values()
            .map(|s| StrategyStatus {
                name: s.name().to_string(),
                version: s.info().version.clone(),
                description: s.info().description.clone(),
                digest: s.digest().to_string(),
                source: s.source().to_string(),
                contract: s.contract().to_string(),
            })
            .collect()
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    pub fn get(&self, name: &str) -> Option<Arc<StrategyPre>> {
        self.by_name.get(name).cloned()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// Loads a component file and adds it under the name it reports,
    /// replacing a strategy of the same name.
    pub fn load_file(&mut self, path: &Path) -> Result<Arc<StrategyPre>, ChoiceError> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|error| ChoiceError::Read { path: shown.clone(), error })?;
        let strategy = StrategyPre::prepare(&self.runtime, &bytes, StrategySource::File(path.to_path_buf()))
            .map_err(|error| ChoiceError::Load { path: shown, error })?;
        let strategy = Arc::new(strategy);
        self.by_name.insert(strategy.name().to_string(), strategy.clone());
        Ok(strategy)
    }

    /// Resolves a name or a `.wasm` path: files are loaded first.
    pub fn resolve(&mut self, name_or_path: &str) -> Result<Arc<StrategyPre>, ChoiceError> {
        let path = Path::new(name_or_path);
        if name_or_path.ends_with(".wasm") || path.is_file() {
            return self.load_file(path);
        }
        self.get(name_or_path).ok_or_else(|| ChoiceError::Unknown {
            name: name_or_path.to_string(),
            available: self.names().collect::<Vec<_>>().join(", "),
        })
    }

    /// A checked choice: both strategies exist and accept their options.
    pub fn choose(
        &mut self,
        primary: &str,
        primary_options: &str,
        fallback: Option<(&str, &str)>,
    ) -> Result<StrategyChoice, ChoiceError> {
        let primary = self.resolve(primary)?;
        check_options(&*primary, primary_options)?;
        let fallback = match fallback {
            Some((name, options)) => {
                let fallback = self.resolve(name)?;
                check_options(&*fallback, options)?;
                Some((fallback as Arc<dyn Assigner>, options.to_string()))
            }
            None => None,
        };
        Ok(StrategyChoice { primary, primary_options: primary_options.to_string(), fallback })
    }
}

impl FileStatus {
    fn new(path: &Path) -> FileStatus {
        FileStatus {
            path: path.to_path_buf(),
            digest: None,
            strategy: None,
            loaded_digest: None,
            error: None,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_options(strategy: &dyn Assigner, options: &str) -> Result<(), ChoiceError> {
    let name = strategy.name().to_string();
    match strategy.validate_options(options) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(ChoiceError::InvalidOptions { name, message }),
        Err(error) => Err(ChoiceError::Failed { name, error }),
    }
}
