//! The catalogue of strategies users can select by name.
//!
//! Holds the built-ins (and, from `strategy_dir`, user plugins) as prepared
//! components, and turns a configured name plus options into a checked
//! [`StrategyChoice`]. It must not run allocations itself.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

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
    #[error("strategy {name:?} failed while checking its options: {source}")]
    Failed { name: String, source: crate::runtime::CallError },
    #[error("loading {path}: {source}")]
    Load { path: String, source: LoadError },
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
}

/// Strategies by the name they report.
pub struct StrategyCatalog {
    runtime: Arc<Runtime>,
    by_name: BTreeMap<String, Arc<StrategyPre>>,
}

impl StrategyCatalog {
    /// A catalogue holding the built-ins.
    pub fn with_builtins(runtime: Arc<Runtime>) -> Result<StrategyCatalog, LoadError> {
        let by_name =
            load_builtins(&runtime)?.into_iter().map(|s| (s.name().to_string(), Arc::new(s))).collect();
        Ok(StrategyCatalog { runtime, by_name })
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
        let bytes =
            std::fs::read(path).map_err(|source| ChoiceError::Read { path: shown.clone(), source })?;
        let strategy = StrategyPre::prepare(&self.runtime, &bytes, StrategySource::File(path.to_path_buf()))
            .map_err(|source| ChoiceError::Load { path: shown, source })?;
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

fn check_options(strategy: &dyn Assigner, options: &str) -> Result<(), ChoiceError> {
    let name = strategy.name().to_string();
    match strategy.validate_options(options) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(message)) => Err(ChoiceError::InvalidOptions { name, message }),
        Err(source) => Err(ChoiceError::Failed { name, source }),
    }
}
