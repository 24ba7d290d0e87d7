//! String → dense id tables for the strings that cross the Wasm boundary once
//! per call (jobs, nodes).

use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Interner {
    ids: HashMap<Arc<str>, u32>,
    names: Vec<String>,
}

impl Interner {
    pub fn intern(&mut self, name: &Arc<str>) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name.clone(), id);
        self.names.push(name.to_string());
        id
    }

    /// All names, by id.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}
