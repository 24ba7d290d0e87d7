//! String → dense id table for job names.

use std::sync::Arc;

/// Job names are looked up once per job and window: a fast string hash
/// (SipHash, the std default, costs several times as much per name).
#[derive(Debug, Default)]
pub struct Interner {
    ids: foldhash::HashMap<Arc<str>, u32>,
    names: Vec<Arc<str>>,
}

impl Interner {
    /// The id of `name`, which a new name shares rather than copies.
    pub fn intern(&mut self, name: &Arc<str>) -> u32 {
        if let Some(&id) = self.ids.get(&**name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name.clone(), id);
        self.names.push(name.clone());
        id
    }

    pub fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// All names, by id.
    pub fn names(&self) -> &[Arc<str>] {
        &self.names
    }
}
