//! The SDK's plain-Rust view of the contract's records (see `wit/v0.1`).

/// Output value: leave the target unassigned.
pub const UNASSIGNED: u32 = u32::MAX;
/// Output value: let the configured fallback strategy decide (per-node uses it
/// for targets without a node). Without a fallback the target stays unassigned.
pub const FALLBACK: u32 = u32::MAX - 1;
/// `node` value of a collector or target without a node.
pub const NO_NODE: u32 = u32::MAX;
/// `LabelColumn::value` entry of a target that lacks the label.
pub const NO_VALUE: u32 = u32::MAX;

/// What a strategy says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    pub name: String,
    pub version: String,
    pub description: String,
    /// Label names whose values the strategy wants, in [`AssignInput::labels`].
    pub needs_labels: Vec<String>,
    /// Per-target columns the strategy reads; the host sends the others empty.
    pub needs_columns: Columns,
}

/// Which per-target columns of [`Targets`] a strategy reads. The default is all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Columns {
    pub address_hash: bool,
    pub identity: bool,
    pub job: bool,
    pub node: bool,
    pub previous: bool,
}

impl Columns {
    pub const ALL: Columns =
        Columns { address_hash: true, identity: true, job: true, node: true, previous: true };
    pub const NONE: Columns =
        Columns { address_hash: false, identity: false, job: false, node: false, previous: false };
}

impl Default for Columns {
    fn default() -> Self {
        Columns::ALL
    }
}

/// The collectors; a collector's index is its position. The host sorts them by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Collectors {
    pub names: Vec<String>,
    /// Index into [`AssignInput::nodes`], or [`NO_NODE`].
    pub node: Vec<u32>,
}

impl Collectors {
    pub fn len(&self) -> usize {
        self.names.len()
    }
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// Targets as parallel columns; element `i` of each describes target `i`.
/// Columns the strategy did not ask for ([`Info::needs_columns`]) are empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    /// Number of targets.
    pub count: u32,
    /// xxhash64 of the discovered `__address__`.
    pub address_hash: Vec<u64>,
    /// The target's identity hash (unique per target).
    pub identity: Vec<u64>,
    /// Index into [`AssignInput::jobs`].
    pub job: Vec<u32>,
    /// Index into [`AssignInput::nodes`], or [`NO_NODE`].
    pub node: Vec<u32>,
    /// Collector index before this call, or [`UNASSIGNED`].
    pub previous: Vec<u32>,
}

impl Targets {
    pub fn len(&self) -> usize {
        self.count as usize
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Values of one requested label.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelColumn {
    pub name: String,
    /// Distinct values.
    pub values: Vec<String>,
    /// Per target: index into `values`, or [`NO_VALUE`].
    pub value: Vec<u32>,
}

impl LabelColumn {
    /// The value of this label for target `i`, if it has one.
    pub fn get(&self, i: usize) -> Option<&str> {
        let v = *self.value.get(i)?;
        self.values.get(v as usize).map(String::as_str)
    }
}

/// Targets held outside this batch (empty lists for a full reallocation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Load {
    /// Per collector, or empty for zero everywhere.
    pub collector_targets: Vec<u32>,
    /// Jobs whose per-collector counts are in `job_collector_targets`.
    pub jobs: Vec<u32>,
    /// Row-major `jobs.len() × collectors`.
    pub job_collector_targets: Vec<u32>,
}

impl Load {
    /// Targets collector `c` holds outside the batch.
    pub fn collector(&self, c: usize) -> u32 {
        self.collector_targets.get(c).copied().unwrap_or(0)
    }
}

/// Everything one assignment call receives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssignInput {
    pub collectors: Collectors,
    pub nodes: Vec<String>,
    pub jobs: Vec<String>,
    pub targets: Targets,
    /// One column per [`Info::needs_labels`] entry, same order.
    pub labels: Vec<LabelColumn>,
    pub load: Load,
    /// JSON text from `allocation_strategy_config.<name>`, or empty.
    pub options: String,
}

impl AssignInput {
    /// The column of label `name`, if the host sent it.
    pub fn label(&self, name: &str) -> Option<&LabelColumn> {
        self.labels.iter().find(|c| c.name == name)
    }

    /// Per target, the value of the first of `names` it has. For a property
    /// that discovery mechanisms spell differently (a zone comes from an
    /// EndpointSlice, a node label or a cloud's SD): list every spelling in
    /// [`Info::needs_labels`] and read them through this. Names the host did
    /// not send are skipped.
    pub fn first_label<'a>(&'a self, names: &[&str]) -> FirstLabel<'a> {
        FirstLabel { columns: names.iter().filter_map(|name| self.label(name)).collect() }
    }
}

/// See [`AssignInput::first_label`].
#[derive(Clone, Debug)]
pub struct FirstLabel<'a> {
    columns: Vec<&'a LabelColumn>,
}

impl<'a> FirstLabel<'a> {
    /// The value of target `i` for the first of the labels it has.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        self.columns.iter().find_map(|&column| column.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_label_takes_the_first_label_a_target_has() {
        let column = |name: &str, value: Vec<u32>| LabelColumn {
            name: name.into(),
            values: vec![format!("{name}-0"), format!("{name}-1")],
            value,
        };
        let input = AssignInput {
            labels: vec![column("a", vec![NO_VALUE, 1, NO_VALUE]), column("b", vec![0, 0, NO_VALUE])],
            ..AssignInput::default()
        };
        let first = input.first_label(&["a", "missing", "b"]);
        assert_eq!([first.get(0), first.get(1), first.get(2)], [Some("b-0"), Some("a-1"), None]);
        let reversed = input.first_label(&["b", "a"]);
        assert_eq!(reversed.get(1), Some("b-0"));
        assert_eq!(input.first_label(&[]).get(0), None);
    }
}
