//! Prometheus target groups: the `file_sd` / `http_sd` wire format, and
//! turning one job's groups into targets (seeds, relabel filtering, identity).
//! Per-target work follows a plan made once per label layout, so that
//! processing a target compares no label names.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, Mutex, Weak};

use serde::Deserialize;

use crate::allocation::{IdentityInput, Labels, Layout, Target, TargetGroup, identity_hash, next_version};
use crate::config::ScrapeConfig;
use crate::label_order::{LabelName, compare_names, intern};
use crate::relabel::{
    Action, Decisions, LabelSet, PreparedRules, RelabelRule, Schedule, SlotValues, StepShape, relabel_set,
};

/// `{"targets": ["host:port", ...], "labels": {"name": "value", ...}}`
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireGroup {
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum TargetGroupError {
    #[error("not a list of target groups ({{\"targets\": [...], \"labels\": {{...}}}}): {0}")]
    Json(#[from] serde_json::Error),
    #[error("target group {group}: target {target} is an empty address")]
    EmptyAddress { group: usize, target: usize },
}

/// Parses a JSON list of target groups.
pub fn parse_target_groups(text: &str) -> Result<Vec<TargetGroup>, TargetGroupError> {
    let groups: Vec<WireGroup> = serde_json::from_str(text)?;
    for (g, group) in groups.iter().enumerate() {
        if let Some(t) = group.targets.iter().position(|t| t.trim().is_empty()) {
            return Err(TargetGroupError::EmptyAddress { group: g, target: t });
        }
    }
    Ok(groups.into_iter().map(|g| group_of_addresses(g.targets, g.labels)).collect())
}

/// A group whose targets are bare addresses (`static_configs`, `file_sd`, `http_sd`).
pub fn group_of_addresses(addresses: Vec<String>, labels: BTreeMap<String, String>) -> TargetGroup {
    TargetGroup {
        labels: Labels::from_sorted(labels.into_iter().collect()),
        targets: addresses
            .into_iter()
            .map(|address| Labels::from_sorted(vec![("__address__".to_string(), address)]))
            .collect(),
    }
}

/// Name of the label the reference sets before a job's rules so that
/// prometheus-operator's `$(SHARD)` keep rule (`regex: $(SHARD);|.+;.+` over
/// `[__tmp_hash, __tmp_disable_sharding]`) keeps every target here; collectors
/// substitute `$(SHARD)` themselves. It is removed after the rules.
const DISABLE_SHARDING: &str = "__tmp_disable_sharding";

/// Turns one job's target groups into targets, as the reference allocator
/// does: merged labels served as discovered, relabel filtering, identity.
pub struct JobProcessor {
    job: Arc<str>,
    /// Seeded labels, sorted by name.
    seeds: Vec<(String, String)>,
    /// `filter_strategy: relabel-config`.
    filter: bool,
    rules: Vec<RelabelRule>,
    /// The rules prepared against the names they use, when they name every
    /// label they touch (most lists): then no label set is built per target.
    prepared: Option<PreparedJob>,
    /// For the other rule lists: the `__meta_*` labels the rules can read,
    /// sorted; `None` when a rule reads every name (`labelmap`). Identity
    /// never includes meta labels, so the others cannot change any outcome
    /// and are left out of the set the rules run on: typically a dozen
    /// labels instead of fifty.
    meta_read: Option<Vec<LabelName>>,
    /// Per-layout plans, shared by the job's groups and by every job of
    /// the same [`PlanShape`].
    plans: Arc<Mutex<PlanCache>>,
}

/// A job's [`PreparedRules`] with what filling their slots needs.
struct PreparedJob {
    rules: PreparedRules,
    /// Per slot, the job's seed for that name (used when discovery has none).
    seeds: Vec<Option<String>>,
    /// The slot of `__tmp_disable_sharding`, when a rule reads it.
    disable_sharding: Option<usize>,
    /// The slots identity reads, in name order: all but `__meta_*` and
    /// `__tmp_disable_sharding`.
    identity_slots: Vec<usize>,
    /// Kept from group to group (one thread processes a job at a time).
    decisions: Mutex<Decisions>,
}

impl PreparedJob {
    fn new(rules: &[RelabelRule], seeds: &[(String, String)]) -> Option<PreparedJob> {
        let rules = PreparedRules::new(rules)?;
        let names = rules.names();
        let seed = |name: &str| seeds.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        Some(PreparedJob {
            seeds: names.iter().map(|name| seed(name)).collect(),
            disable_sharding: rules.slot(DISABLE_SHARDING),
            identity_slots: (0..names.len())
                .filter(|&i| !names[i].starts_with("__meta_") && &*names[i] != DISABLE_SHARDING)
                .collect(),
            rules,
            decisions: Mutex::default(),
        })
    }
}

impl JobProcessor {
    /// With `filter` (`filter_strategy: relabel-config`), targets the job's
    /// `relabel_configs` drop are left out and identity is computed on the
    /// relabeled labels; otherwise on the discovered labels.
    pub fn new(scrape: &ScrapeConfig, filter: bool) -> JobProcessor {
        let mut seeds = scrape.seed_labels();
        seeds.sort();
        let rules = if filter { scrape.relabel_rules.clone() } else { Vec::new() };
        let prepared = if rules.is_empty() { None } else { PreparedJob::new(&rules, &seeds) };
        let meta_read = meta_read(&rules);
        let shape = PlanShape {
            seeds: seeds.iter().map(|(name, _)| name.clone()).collect(),
            prepared: prepared.as_ref().map(|p| (p.rules.names().to_vec(), p.rules.shape())),
            meta_read: meta_read.clone(),
        };
        JobProcessor {
            job: Arc::from(scrape.job_name.as_str()),
            filter,
            meta_read,
            prepared,
            seeds,
            rules,
            plans: shared_plans(shape),
        }
    }

    /// No rules and no seeds: identity over the discovered labels.
    pub fn unfiltered(job: &str) -> JobProcessor {
        JobProcessor {
            job: Arc::from(job),
            seeds: Vec::new(),
            filter: false,
            rules: Vec::new(),
            prepared: None,
            meta_read: None,
            plans: Arc::default(),
        }
    }

    pub fn job(&self) -> &Arc<str> {
        &self.job
    }

    /// Every group's targets, in order.
    pub fn targets(&self, groups: &[Arc<TargetGroup>]) -> Vec<Target> {
        let mut targets = Vec::new();
        let mut processing = self.groups();
        for group in groups {
            processing.process(group, &mut targets);
        }
        targets
    }

    /// Processes groups one after another (see [`GroupProcessing::process`]),
    /// reusing working memory and plans from group to group.
    pub fn groups(&self) -> GroupProcessing<'_> {
        let mut scratch = Scratch::default();
        if let Some(prepared) = &self.prepared {
            // Borrowed while processing; a cache, so a concurrent user only misses it.
            scratch.slots.decisions = std::mem::take(&mut *lock(&prepared.decisions));
        }
        GroupProcessing {
            processor: self,
            scratch,
            planned: None,
            plans: Vec::new(),
            previous: Vec::new(),
            spare: Vec::new(),
            known: Vec::new(),
        }
    }

    /// The identity of a target from its labels after the rules (`slots`,
    /// empty without rules): the bytes its group's targets share, with the
    /// values of the labels that vary read from the target in between.
    fn identity(
        &self,
        plan: &LayoutPlan,
        parts: &IdentityParts,
        group: &TargetGroup,
        own: &Labels,
        slots: &[Cow<'_, str>],
        input: &mut IdentityInput,
    ) -> u64 {
        input.clear();
        let shared = parts.shared.bytes();
        let mut start = 0;
        for (&(label, key_len), &end) in parts.varying.iter().zip(&parts.ends) {
            let value = plan.identity[label].value(group, own, slots, &self.seeds);
            if value.is_empty() {
                // An empty label is not hashed: neither its key (the end of
                // this run) nor its closing 0xFF (the start of the next).
                input.append(&shared[start..end - key_len]);
                start = end + 1;
            } else {
                input.append(&shared[start..end]);
                input.append(value.as_bytes());
                start = end;
            }
        }
        input.append(&shared[start..]);
        input.hash()
    }

    /// The identity of a target under prepared rules, or `None` when they
    /// drop it: its slots start from those its group shares (after the
    /// steps that read only them), take the target's own values, and the
    /// remaining steps run on them; identity then reads the slots over the
    /// labels no rule names. The scratch slots hold `shared` already, but
    /// for the slots an earlier target's steps may have changed.
    #[allow(clippy::too_many_arguments)]
    fn prepared_identity<'a>(
        &'a self,
        prepared: &'a PreparedJob,
        plan: &LayoutPlan,
        parts: &IdentityParts,
        shared: &[Cow<'a, str>],
        group: &'a TargetGroup,
        own: &'a Labels,
        scratch: &mut Scratch<'a>,
    ) -> Option<u64> {
        let slots = &mut scratch.slots;
        for &slot in &plan.rewritten_slots {
            // Borrowed nearly always: a copy of the reference.
            slots.values[slot] = shared[slot].clone();
        }
        for &(slot, at) in &plan.own_slots {
            // A seed applies where discovery has an empty value.
            let value = own.value_at(at);
            let value = if value.is_empty() { prepared.seeds[slot].as_deref().unwrap_or("") } else { value };
            slots.values[slot] = Cow::Borrowed(value);
        }
        if !prepared.rules.run_steps(&plan.schedule.per_target, slots) {
            return None;
        }
        Some(self.identity(plan, parts, group, own, &slots.values, &mut scratch.input))
    }

    /// The identity of target `index` under rules that may touch any label
    /// (the general engine on a label set), or `None` when they drop it.
    fn general_identity<'a>(
        &'a self,
        plan: &LayoutPlan,
        group: &'a TargetGroup,
        index: usize,
        set: &mut LabelSet<'a>,
    ) -> Option<u64> {
        set.clear();
        let seeds = || self.seeds.iter().peekable();
        match &self.meta_read {
            Some(meta_read) => {
                let discovered = group.target_labels_without_meta(index).peekable();
                set.extend_sorted(SeededLabels { discovered, seeds: seeds() });
                let own = &group.targets[index];
                for (name, at) in meta_read.iter().zip(&plan.lookups) {
                    if let Some(value) = at.value(group, own) {
                        set.set(Cow::Borrowed(&**name), Cow::Borrowed(value));
                    }
                }
            }
            None => set.extend_sorted(SeededLabels {
                discovered: group.target_labels(index).peekable(),
                seeds: seeds(),
            }),
        }
        set.set(DISABLE_SHARDING.into(), "true".into());
        if !relabel_set(set, &self.rules) {
            return None;
        }
        set.remove(DISABLE_SHARDING);
        Some(identity_hash(set.iter(), &self.job))
    }
}

/// One job's processing of a run of groups (one update's): per-target
/// working memory, group plans and the rules' decisions, kept from group to
/// group instead of allocated for each.
pub struct GroupProcessing<'a> {
    processor: &'a JobProcessor,
    scratch: Scratch<'a>,
    /// The group last planned, and its plans.
    planned: Option<&'a TargetGroup>,
    plans: Vec<GroupPlan<'a>>,
    /// The plans of the group before, while the next group is planned.
    previous: Vec<GroupPlan<'a>>,
    /// Buffers of earlier groups' plans, for the next ones.
    spare: Vec<(Vec<Cow<'a, str>>, IdentityParts)>,
    /// The plans this run has looked up, most recent last: a job's groups
    /// nearly all share one, which is then found without locking the
    /// cache. Group plans refer to these by position rather than holding
    /// the `Arc`: jobs of one shape share their plans, and a reference
    /// count updated per group from two threads would bounce its cache line
    /// (which also holds the plan's first fields) between the cores.
    known: Vec<(PlanKey, Arc<LayoutPlan>)>,
}

impl<'a> GroupProcessing<'a> {
    /// Appends to `out` the targets of `group` that the rules keep, in
    /// order. Equal identities are left for the allocator to collapse.
    pub fn process(&mut self, group: &'a Arc<TargetGroup>, out: &mut Vec<Target>) {
        let processor = self.processor;
        let version = next_version();
        out.reserve(group.targets.len());
        // Discovered labels are far apart in a large heap: load every
        // target's at once rather than miss the cache target after target.
        group.targets.iter().for_each(Labels::prefetch);
        let mut keep = |index: usize, identity: u64| {
            out.push(Target::in_group(group.clone(), index, identity, version));
        };
        if !processor.filter {
            for index in 0..group.targets.len() {
                keep(index, identity_hash(group.target_labels_without_meta(index), &processor.job));
            }
            return;
        }
        self.plan_group(group);
        let scratch = &mut self.scratch;
        scratch.shared_of = None;
        let plans = &self.plans;
        let mut at = 0;
        for (index, own) in group.targets.iter().enumerate() {
            let layout = Arc::as_ptr(own.layout());
            if plans[at].layout != layout {
                at = plans.iter().position(|p| p.layout == layout).expect("every layout is planned");
            }
            let GroupPlan { plan, shared, dropped, identity, .. } = &plans[at];
            let plan = &*self.known[*plan].1;
            let identity = match &processor.prepared {
                // A shared step dropped every target of this layout.
                Some(_) if *dropped => None,
                Some(prepared) => {
                    if scratch.shared_of != Some(at) {
                        scratch.slots.values.clear();
                        scratch.slots.values.extend(shared.iter().cloned());
                        scratch.shared_of = Some(at);
                    }
                    processor.prepared_identity(prepared, plan, identity, shared, group, own, scratch)
                }
                None if processor.rules.is_empty() => {
                    Some(processor.identity(plan, identity, group, own, &[], &mut scratch.input))
                }
                None => processor.general_identity(plan, group, index, &mut scratch.set),
            };
            if let Some(identity) = identity {
                keep(index, identity);
            }
        }
    }

    /// Makes `plans` those of `group`'s targets: one per layout among them
    /// (nearly always one), with what prepared rules make of the labels
    /// they share.
    fn plan_group(&mut self, group: &'a TargetGroup) {
        let processor = self.processor;
        let mut previous_group = self.planned.replace(group);
        std::mem::swap(&mut self.plans, &mut self.previous);
        if self.known.len() >= MAX_KNOWN_PLANS {
            // No group plan refers to them any more; a job of many layouts
            // keeps its lookups short.
            self.known.clear();
            previous_group = None;
            self.spare.extend(self.previous.drain(..).map(|old| (old.shared, old.identity)));
        }
        let planner = Planner { processor, group };
        for own in &group.targets {
            let layout = Arc::as_ptr(own.layout());
            if self.plans.iter().any(|p| p.layout == layout) {
                continue;
            }
            let key = (Arc::as_ptr(group.labels.layout()) as usize, layout as usize);
            let known = match self.known.iter().rposition(|(known, _)| *known == key) {
                Some(known) => known,
                None => {
                    self.known.push((key, planner.cached_plan(own.layout())));
                    self.known.len() - 1
                }
            };
            let plan = &*self.known[known].1;
            // A job's groups mostly agree on what the plan reads of them (a
            // service's endpoint slices share its name, namespace and port):
            // the group before's plan is then this one's as well.
            let same = |before: &TargetGroup| {
                plan.group_reads.iter().all(|&at| before.labels.value_at(at) == group.labels.value_at(at))
            };
            let before = self.previous.iter().position(|p| p.plan == known && p.layout == layout);
            if let Some(at) = before.filter(|_| previous_group.is_some_and(same)) {
                self.plans.push(self.previous.swap_remove(at));
                continue;
            }
            let (mut shared, mut identity) = self.spare.pop().unwrap_or_default();
            let mut dropped = false;
            // Needed unless the targets are dropped or go to the general engine.
            match &processor.prepared {
                Some(prepared) => {
                    dropped = !planner.shared(prepared, plan, &mut self.scratch.slots, &mut shared);
                    if !dropped {
                        planner.identity_parts(plan, own, &shared, &mut identity);
                    }
                }
                None if processor.rules.is_empty() => planner.identity_parts(plan, own, &[], &mut identity),
                None => {}
            }
            self.plans.push(GroupPlan { layout, plan: known, shared, dropped, identity });
        }
        self.spare.extend(self.previous.drain(..).map(|old| (old.shared, old.identity)));
    }
}

impl Drop for GroupProcessing<'_> {
    fn drop(&mut self) {
        if let Some(prepared) = &self.processor.prepared {
            *lock(&prepared.decisions) = std::mem::take(&mut self.scratch.slots.decisions);
        }
    }
}

/// Per-target working memory, reused across a group's targets.
#[derive(Default)]
struct Scratch<'a> {
    /// Which group plan's shared slots `slots` holds (see `prepared_identity`).
    shared_of: Option<usize>,
    set: LabelSet<'a>,
    slots: SlotValues<'a>,
    input: IdentityInput,
}

/// Where one target finds a label: in its own labels, its group's, or nowhere.
#[derive(Clone, Copy, Debug)]
enum ValueAt {
    Own(u32),
    Group(u32),
    Absent,
}

impl ValueAt {
    fn value<'a>(self, group: &'a TargetGroup, own: &'a Labels) -> Option<&'a str> {
        match self {
            ValueAt::Own(at) => Some(own.value_at(at)),
            ValueAt::Group(at) => Some(group.labels.value_at(at)),
            ValueAt::Absent => None,
        }
    }
}

/// One label identity hashes, and where its value comes from.
struct IdentityLabel {
    /// The name as [`IdentityInput::keyed`] takes it.
    key: Box<[u8]>,
    /// A slot of the prepared rules (which already applied the seed), else discovery.
    slot: Option<usize>,
    discovered: ValueAt,
    /// The job's seed for this name, used when discovery's value is absent or empty.
    seed: Option<usize>,
}

impl IdentityLabel {
    fn value<'a>(
        &self,
        group: &'a TargetGroup,
        own: &'a Labels,
        slots: &'a [Cow<'a, str>],
        seeds: &'a [(String, String)],
    ) -> &'a str {
        if let Some(slot) = self.slot {
            return &slots[slot];
        }
        match (self.discovered.value(group, own), self.seed) {
            (Some(value), _) if !value.is_empty() => value,
            (_, Some(seed)) => &seeds[seed].1,
            (_, None) => "",
        }
    }
}

/// What processing does for every target of one label layout within a
/// group, worked out once: where the names the rules read are, and which
/// labels identity hashes in which order (no name comparisons per target).
struct LayoutPlan {
    /// Per looked-up name (prepared slots, else the meta labels the rules read).
    lookups: Vec<ValueAt>,
    /// Prepared rules: the slots each target fills from its own labels
    /// (slot, position), and which steps run per target.
    own_slots: Vec<(usize, u32)>,
    schedule: Schedule,
    /// Prepared rules: the other slots per-target steps may write, which
    /// each target starts again from the group's shared values.
    rewritten_slots: Vec<usize>,
    /// The group labels (positions) whose values the group plan depends
    /// on: the shared slots, and the labels identity hashes alike for
    /// every target.
    group_reads: Vec<u32>,
    /// The labels identity reads, in name order (`__meta_*` never among
    /// them); empty values are skipped when hashing.
    identity: Vec<IdentityLabel>,
}

/// Plans by (group layout, target layout). The layouts are held, so their
/// addresses, the keys, stay theirs.
type PlanKey = (usize, usize);

/// What a job's plans depend on besides the layouts they are made for: the
/// names it seeds, the names its rules read and write with the slots of
/// each step (see [`PreparedRules::shape`]), and the meta labels read by
/// rules the general engine runs. Jobs of one shape make the same plans
/// whatever their names, regexes and seeded values, so they share one cache:
/// a thousand ServiceMonitor jobs over one kind of endpoint make one plan,
/// not a thousand.
#[derive(PartialEq, Eq, Hash)]
struct PlanShape {
    seeds: Vec<String>,
    prepared: Option<(Vec<LabelName>, Vec<StepShape>)>,
    meta_read: Option<Vec<LabelName>>,
}

/// The plan cache of `shape`, shared with the live job processors of that shape.
fn shared_plans(shape: PlanShape) -> Arc<Mutex<PlanCache>> {
    static SHARED: LazyLock<Mutex<HashMap<PlanShape, Weak<Mutex<PlanCache>>>>> =
        LazyLock::new(Mutex::default);
    let mut shared = lock(&SHARED);
    if let Some(plans) = shared.get(&shape).and_then(Weak::upgrade) {
        return plans;
    }
    shared.retain(|_, plans| plans.strong_count() > 0);
    let plans = Arc::default();
    shared.insert(shape, Arc::downgrade(&plans));
    plans
}

#[derive(Default)]
struct PlanCache {
    plans: HashMap<PlanKey, CachedPlan>,
}

struct CachedPlan {
    /// The group's and the target's layouts, held so that the key's
    /// addresses cannot be reused by other layouts.
    _layouts: [Arc<Layout>; 2],
    plan: Arc<LayoutPlan>,
}

/// Plans a cache keeps before starting over. Each costs a few KB; the jobs
/// of one shape share a cache, which holds a plan or two per distinct
/// layout of their groups (for Kubernetes, about one per service).
const MAX_PLANS: usize = 16384;

/// Plans a [`GroupProcessing`] keeps at hand (it searches them in turn).
const MAX_KNOWN_PLANS: usize = 16;

/// The plans of one group's targets: one per layout among them (nearly
/// always one), with what prepared rules make of the labels they share.
struct GroupPlan<'a> {
    layout: *const Layout,
    /// Its position in [`GroupProcessing::known`].
    plan: usize,
    /// Prepared rules: the slots after the shared steps.
    shared: Vec<Cow<'a, str>>,
    /// Prepared rules: a shared step drops every target of this layout.
    dropped: bool,
    /// What identity hashes, in order (without the general engine).
    identity: IdentityParts,
}

/// Identity's input for the targets of one group plan: the bytes every
/// target has alike, gathered once, split where the values of the labels
/// that vary go. Run `i` ends with the key of varying label `i` and run
/// `i + 1` starts with the 0xFF closing its value; the last run ends with
/// the job name. A target's input is then one copy per run and per value.
#[derive(Default)]
struct IdentityParts {
    shared: IdentityInput,
    /// Where each run but the last ends in `shared`, one per varying label.
    ends: Vec<usize>,
    /// The labels that vary (index into [`LayoutPlan::identity`]), each with
    /// the length of its key.
    varying: Vec<(usize, usize)>,
}

/// Finds a group's plans in its job's cache, making those it lacks.
struct Planner<'a> {
    processor: &'a JobProcessor,
    group: &'a TargetGroup,
}

impl<'a> Planner<'a> {
    /// Identity's parts for the targets of `plan` (`own` being one of them).
    fn identity_parts(
        &self,
        plan: &LayoutPlan,
        own: &Labels,
        slots: &[Cow<'_, str>],
        parts: &mut IdentityParts,
    ) {
        let varying = |label: &IdentityLabel| match label.slot {
            Some(slot) => plan.schedule.varying.get(slot).copied().unwrap_or(true),
            None => matches!(label.discovered, ValueAt::Own(_)),
        };
        parts.shared.clear();
        parts.ends.clear();
        parts.varying.clear();
        for (index, label) in plan.identity.iter().enumerate() {
            if varying(label) {
                parts.shared.append(&label.key);
                parts.ends.push(parts.shared.len());
                parts.varying.push((index, label.key.len()));
                parts.shared.append(&[0xff]);
            } else {
                let value = label.value(self.group, own, slots, &self.processor.seeds);
                if !value.is_empty() {
                    parts.shared.keyed(&label.key, value);
                }
            }
        }
        parts.shared.append(self.processor.job.as_bytes());
    }

    /// Fills `shared` with the slots every target of `plan` shares, after
    /// the steps that read only those; `false` when one of them drops the
    /// targets. The steps run on `slots` (the per-target working memory,
    /// with the job's decisions), `shared` lent to it as its values.
    fn shared(
        &self,
        prepared: &'a PreparedJob,
        plan: &LayoutPlan,
        slots: &mut SlotValues<'a>,
        shared: &mut Vec<Cow<'a, str>>,
    ) -> bool {
        let group = &self.group.labels;
        shared.clear();
        shared.extend(plan.lookups.iter().zip(&prepared.seeds).map(|(at, seed)| {
            let seed = || seed.as_deref().unwrap_or("");
            Cow::Borrowed(match *at {
                ValueAt::Group(at) if !group.value_at(at).is_empty() => group.value_at(at),
                // Each target fills its own (`LayoutPlan::own_slots`).
                ValueAt::Own(_) => "",
                _ => seed(),
            })
        }));
        if let Some(slot) = prepared.disable_sharding {
            shared[slot] = Cow::Borrowed("true");
        }
        std::mem::swap(&mut slots.values, shared);
        let kept = prepared.rules.run_steps(&plan.schedule.shared, slots);
        std::mem::swap(&mut slots.values, shared);
        kept
    }

    fn cached_plan(&self, own: &Arc<Layout>) -> Arc<LayoutPlan> {
        let group = self.group.labels.layout();
        let key = (Arc::as_ptr(group) as usize, Arc::as_ptr(own) as usize);
        let mut cache = lock(&self.processor.plans);
        if let Some(cached) = cache.plans.get(&key) {
            return cached.plan.clone();
        }
        if cache.plans.len() >= MAX_PLANS {
            cache.plans.clear();
        }
        let plan = Arc::new(self.new_plan(own));
        cache.plans.insert(key, CachedPlan { _layouts: [group.clone(), own.clone()], plan: plan.clone() });
        plan
    }

    fn new_plan(&self, own: &Layout) -> LayoutPlan {
        let looked_up = match &self.processor.prepared {
            Some(prepared) => prepared.rules.names(),
            None => self.processor.meta_read.as_deref().unwrap_or_default(),
        };
        let in_group = self.group.labels.layout().positions(looked_up);
        let lookups: Vec<ValueAt> = own
            .positions(looked_up)
            .into_iter()
            .zip(&in_group)
            .map(|(own_at, group_at)| match (own_at, group_at) {
                (Some(at), _) => ValueAt::Own(at),
                (None, Some(at)) => ValueAt::Group(*at),
                (None, None) => ValueAt::Absent,
            })
            .collect();
        // Keyed by name, so in bytewise order, as identity hashes them.
        let mut labels: BTreeMap<LabelName, IdentityLabel> = BTreeMap::new();
        let mut discovered = |layout: &Layout, at: fn(u32) -> ValueAt| {
            for (i, name) in layout.names().iter().enumerate() {
                if !layout.meta_range().contains(&i) {
                    let label = IdentityLabel {
                        key: IdentityInput::key(name),
                        slot: None,
                        discovered: at(i as u32),
                        seed: None,
                    };
                    labels.insert(name.clone(), label);
                }
            }
        };
        discovered(self.group.labels.layout(), ValueAt::Group);
        // A target's own label wins over its group's.
        discovered(own, ValueAt::Own);
        for (seed, (name, _)) in self.processor.seeds.iter().enumerate() {
            let name = intern(name);
            let label = labels.entry(name.clone()).or_insert_with(|| IdentityLabel {
                key: IdentityInput::key(&name),
                slot: None,
                discovered: ValueAt::Absent,
                seed: None,
            });
            label.seed = Some(seed);
        }
        if let Some(prepared) = &self.processor.prepared {
            for &slot in &prepared.identity_slots {
                let name = prepared.rules.names()[slot].clone();
                let label = IdentityLabel {
                    key: IdentityInput::key(&name),
                    slot: Some(slot),
                    discovered: ValueAt::Absent,
                    seed: None,
                };
                labels.insert(name, label);
            }
        }
        labels.remove(DISABLE_SHARDING);
        let (own_slots, schedule) = match &self.processor.prepared {
            Some(prepared) => {
                let own_slot = |slot: usize| match lookups[slot] {
                    // `__tmp_disable_sharding` is always "true" during the rules.
                    ValueAt::Own(at) if Some(slot) != prepared.disable_sharding => Some(at),
                    _ => None,
                };
                let own_slots: Vec<(usize, u32)> =
                    (0..lookups.len()).filter_map(|slot| Some((slot, own_slot(slot)?))).collect();
                let varies: Vec<bool> = (0..lookups.len()).map(|slot| own_slot(slot).is_some()).collect();
                (own_slots, prepared.rules.schedule(&varies))
            }
            None => (Vec::new(), Schedule::default()),
        };
        let own = |slot: usize| own_slots.iter().any(|&(s, _)| s == slot);
        let rewritten_slots =
            (0..schedule.varying.len()).filter(|&slot| schedule.varying[slot] && !own(slot)).collect();
        let identity: Vec<IdentityLabel> = labels.into_values().collect();
        let slots_read = lookups.iter().filter(|_| self.processor.prepared.is_some());
        let identity_read =
            identity.iter().filter(|label| label.slot.is_none()).map(|label| &label.discovered);
        let mut group_reads: Vec<u32> = slots_read
            .chain(identity_read)
            .filter_map(|at| match *at {
                ValueAt::Group(at) => Some(at),
                _ => None,
            })
            .collect();
        group_reads.sort_unstable();
        group_reads.dedup();
        LayoutPlan { lookups, own_slots, schedule, rewritten_slots, group_reads, identity }
    }
}

/// The `__meta_*` names `rules` read, or `None` when a rule reads every name.
fn meta_read(rules: &[RelabelRule]) -> Option<Vec<LabelName>> {
    let mut names = Vec::new();
    for rule in rules {
        match rule.action {
            Action::LabelMap => return None,
            Action::KeepEqual | Action::DropEqual => names.push(rule.target_label.clone()),
            _ => {}
        }
        names.extend(rule.source_labels.iter().cloned());
    }
    names.retain(|n| n.starts_with("__meta_"));
    names.sort();
    names.dedup();
    Some(names.iter().map(|n| intern(n)).collect())
}

/// Locks `mutex`; what it guards (caches) stays usable after a panic elsewhere.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Discovered labels plus the seeds they lack, in name order (both inputs sorted).
struct SeededLabels<'a, D: Iterator<Item = (&'a str, &'a str)>> {
    discovered: std::iter::Peekable<D>,
    seeds: std::iter::Peekable<std::slice::Iter<'a, (String, String)>>,
}

impl<'a, D: Iterator<Item = (&'a str, &'a str)>> Iterator for SeededLabels<'a, D> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let seed = |s: &'a (String, String)| (s.0.as_str(), s.1.as_str());
        match (self.seeds.peek(), self.discovered.peek()) {
            (None, _) => self.discovered.next(),
            (Some(_), None) => self.seeds.next().map(seed),
            (Some(s), Some(&(name, value))) => match compare_names(&s.0, name) {
                std::cmp::Ordering::Less => self.seeds.next().map(seed),
                std::cmp::Ordering::Greater => self.discovered.next(),
                // A seed applies only where the discovered value is absent or empty.
                std::cmp::Ordering::Equal if value.is_empty() => {
                    self.discovered.next();
                    self.seeds.next().map(seed)
                }
                std::cmp::Ordering::Equal => {
                    self.seeds.next();
                    self.discovered.next()
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_become_targets_in_order() {
        let groups: Vec<Arc<TargetGroup>> = parse_target_groups(
            r#"[{"targets": ["a:1", "b:2"], "labels": {"env": "prod", "__address__": "ignored"}},
                {"targets": ["c:3"]}]"#,
        )
        .unwrap()
        .into_iter()
        .map(Arc::new)
        .collect();
        let targets = JobProcessor::unfiltered("job").targets(&groups);
        let addresses: Vec<&str> = targets.iter().map(|t| t.address()).collect();
        assert_eq!(addresses, ["a:1", "b:2", "c:3"]);
        assert_eq!(targets[0].label("env"), Some("prod"));
        assert_ne!(targets[0].identity, targets[1].identity);
    }

    fn job(config: serde_json::Value) -> ScrapeConfig {
        crate::config::parse_prometheus_config(&serde_json::json!({ "scrape_configs": [config] }))
            .unwrap()
            .scrape_configs
            .remove(0)
    }

    fn group(targets: &[&str], labels: &[(&str, &str)]) -> Arc<TargetGroup> {
        Arc::new(group_of_addresses(
            targets.iter().map(|t| t.to_string()).collect(),
            labels.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
        ))
    }

    #[test]
    fn relabel_filtering_drops_what_the_rules_drop_and_serves_discovered_labels() {
        let scrape = job(serde_json::json!({"job_name": "j", "relabel_configs": [
            {"action": "keep", "source_labels": ["__meta_role"], "regex": "web"},
            {"source_labels": ["__meta_pod"], "target_label": "pod"}
        ]}));
        let groups = [
            group(&["a:1", "b:1"], &[("__meta_role", "web"), ("__meta_pod", "p")]),
            group(&["c:1"], &[("__meta_role", "db")]),
        ];
        let targets = JobProcessor::new(&scrape, true).targets(&groups);
        assert_eq!(targets.iter().map(|t| t.address()).collect::<Vec<_>>(), ["a:1", "b:1"]);
        // Served labels are the discovered ones: meta labels in, seeds and relabeled labels out.
        let served: Vec<(&str, &str)> = targets[0].labels().collect();
        assert_eq!(served, [("__address__", "a:1"), ("__meta_pod", "p"), ("__meta_role", "web")]);
        // Without filtering every target is kept.
        assert_eq!(JobProcessor::new(&scrape, false).targets(&groups).len(), 3);
    }

    #[test]
    fn jobs_of_one_shape_share_plans_and_keep_their_own_outcomes() {
        let rules = |job_name: &str, role: &str, read: &str| {
            job(serde_json::json!({"job_name": job_name, "relabel_configs": [
                {"action": "keep", "source_labels": [read], "regex": role},
                {"source_labels": ["__meta_shared_plan_pod"], "target_label": "pod"}
            ]}))
        };
        let role = "__meta_shared_plan_role";
        let groups = [
            group(&["x:1", "y:1"], &[(role, "web"), ("__meta_shared_plan_pod", "p1")]),
            group(&["z:1"], &[(role, "db"), ("__meta_shared_plan_pod", "p2")]),
        ];
        let web = JobProcessor::new(&rules("web", "web", role), true);
        let db = JobProcessor::new(&rules("db", "db", role), true);
        let other = JobProcessor::new(&rules("other", "db", "__meta_shared_plan_zone"), true);
        assert!(Arc::ptr_eq(&web.plans, &db.plans), "same names and steps: one cache");
        assert!(!Arc::ptr_eq(&web.plans, &other.plans), "another name read: another cache");
        let addresses =
            |targets: &[Target]| targets.iter().map(|t| t.address().to_string()).collect::<Vec<_>>();
        // `db` runs on the plans `web` made, with its own regex and job name.
        let kept_web = web.targets(&groups);
        let kept_db = db.targets(&groups);
        assert_eq!(addresses(&kept_web), ["x:1", "y:1"]);
        assert_eq!(addresses(&kept_db), ["z:1"]);
        // The same job with plans of its own gives the same targets.
        drop((web, db));
        let alone = JobProcessor::new(&rules("db", "db", role), true);
        let kept_alone = alone.targets(&groups);
        assert_eq!(addresses(&kept_alone), ["z:1"]);
        assert_eq!(kept_alone[0].identity, kept_db[0].identity);
    }

    #[test]
    fn groups_processed_in_turn_equal_groups_processed_alone() {
        let scrape = job(serde_json::json!({"job_name": "j", "relabel_configs": [
            {"action": "keep", "source_labels": ["__meta_role"], "regex": "web"},
            {"source_labels": ["__meta_ns"], "target_label": "namespace"}
        ]}));
        let plain = job(serde_json::json!({"job_name": "j"}));
        let labeled = |address: &str, role: &str, ns: &str, slice: &str, zone: &str| {
            group(
                &[address],
                &[("__meta_role", role), ("__meta_ns", ns), ("__meta_slice", slice), ("zone", zone)],
            )
        };
        let groups = [
            labeled("a:1", "web", "n1", "s1", "z1"),
            // Differs only in a label nothing reads.
            labeled("b:1", "web", "n1", "s2", "z1"),
            // A label the rules read: dropped.
            labeled("c:1", "db", "n1", "s3", "z1"),
            labeled("d:1", "web", "n1", "s4", "z1"),
            // A label a rule copies into identity, then one identity reads as discovered.
            labeled("d:1", "web", "n2", "s5", "z1"),
            labeled("d:1", "web", "n2", "s6", "z2"),
        ];
        // With the rules, namespace (copied from `__meta_ns`) and zone each
        // change d:1's identity; without, only zone (meta labels never count).
        let cases = [
            (scrape, vec!["a:1", "b:1", "d:1", "d:1", "d:1"], 3),
            (plain, vec!["a:1", "b:1", "c:1", "d:1", "d:1", "d:1"], 2),
        ];
        for (scrape, kept, distinct_last) in cases {
            let processor = JobProcessor::new(&scrape, true);
            let together = processor.targets(&groups);
            assert_eq!(together.iter().map(|t| t.address()).collect::<Vec<_>>(), kept);
            // Each group in a processing session of its own (only the job's
            // caches carried over) gives the same targets.
            let alone: Vec<Target> =
                groups.iter().flat_map(|g| processor.targets(std::slice::from_ref(g))).collect();
            let identities = |targets: &[Target]| targets.iter().map(|t| t.identity).collect::<Vec<_>>();
            assert_eq!(identities(&together), identities(&alone));
            let last: std::collections::HashSet<u64> =
                together[together.len() - 3..].iter().map(|t| t.identity).collect();
            assert_eq!(last.len(), distinct_last);
        }
    }

    #[test]
    fn groups_in_turn_that_differ_in_a_copied_label_get_their_own_identities() {
        // Consecutive groups of one layout, which differ only in a label a
        // rule copies into identity (no label read straight from the group).
        let scrape = job(serde_json::json!({"job_name": "j", "relabel_configs": [
            {"action": "keep", "source_labels": ["__meta_role"], "regex": "web"},
            {"source_labels": ["__meta_ns"], "target_label": "namespace"}
        ]}));
        let labeled = |role: &str, ns: &str, slice: &str| {
            group(&["d:1", "e:1"], &[("__meta_role", role), ("__meta_ns", ns), ("__meta_slice", slice)])
        };
        let groups = [
            labeled("web", "n1", "s1"),
            labeled("web", "n1", "s2"),
            // The copied namespace changes: so does identity.
            labeled("web", "n2", "s3"),
            labeled("db", "n2", "s4"),
            labeled("web", "n1", "s5"),
        ];
        let processor = JobProcessor::new(&scrape, true);
        let together = processor.targets(&groups);
        let alone: Vec<Target> =
            groups.iter().flat_map(|g| processor.targets(std::slice::from_ref(g))).collect();
        let identities = |targets: &[Target]| targets.iter().map(|t| t.identity).collect::<Vec<_>>();
        assert_eq!(identities(&together), identities(&alone));
        let ids = identities(&together);
        assert_eq!(ids.len(), 8);
        assert_eq!(ids[..2], ids[2..4], "equal labels, equal identities");
        assert_ne!(ids[2..4], ids[4..6], "another namespace");
        assert_eq!(ids[..2], ids[6..], "back to the first namespace");
    }

    #[test]
    fn identity_follows_the_relabeled_labels_and_the_job() {
        let rewrite = job(serde_json::json!({"job_name": "j", "relabel_configs": [
            {"source_labels": ["__address__"], "regex": "10\\.0\\.0\\.[0-9]+:9100", "target_label": "__address__", "replacement": "exporter:9100"},
            {"action": "labeldrop", "regex": "__meta_.*"}
        ]}));
        let groups = [group(&["10.0.0.1:9100", "10.0.0.2:9100", "10.0.0.3:80"], &[("__meta_pod", "x")])];
        let t = JobProcessor::new(&rewrite, true).targets(&groups);
        assert_eq!(t[0].identity, t[1].identity, "an address rewrite to the same labels collapses");
        assert_ne!(t[0].identity, t[2].identity);
        assert_eq!(t[0].address(), "10.0.0.1:9100", "the served address is the discovered one");
        // The same address in two jobs is two targets.
        let other =
            job(serde_json::json!({"job_name": "k", "relabel_configs": rewrite.printed["relabel_configs"]}));
        let u = JobProcessor::new(&other, true).targets(&groups);
        assert_ne!(t[0].identity, u[0].identity);
        // The same address with distinct paths is two targets.
        let paths =
            [group(&["h:1"], &[("__metrics_path__", "/a")]), group(&["h:1"], &[("__metrics_path__", "/b")])];
        let p = JobProcessor::new(&job(serde_json::json!({"job_name": "j"})), true).targets(&paths);
        assert_ne!(p[0].identity, p[1].identity);
        // Meta labels never count: a renamed pod keeps its identity.
        let renamed = [group(&["10.0.0.1:9100"], &[("__meta_pod", "y")])];
        assert_eq!(JobProcessor::new(&rewrite, true).targets(&renamed)[0].identity, t[0].identity);
    }

    #[test]
    fn identity_without_rules_equals_identity_through_rules_that_change_nothing() {
        // The rule-less path streams seeds past the discovered labels; it must
        // agree with building the set and relabeling it.
        let plain = job(serde_json::json!({"job_name": "j", "params": {"module": ["m"]}}));
        let noop = job(serde_json::json!({"job_name": "j", "params": {"module": ["m"]},
            "relabel_configs": [{"action": "keep", "source_labels": ["__address__"], "regex": ".+"}]}));
        let groups = [
            group(&["a:1"], &[]),
            group(&["b:1"], &[("__scheme__", ""), ("job", "other"), ("__meta_x", "y"), ("zone", "z1")]),
            group(&["c:1"], &[("__param_module", "own"), ("__tmp_disable_sharding", "x"), ("a", "")]),
            group(&["d:1"], &[("__metrics_path__", "/m"), ("__scrape_timeout__", "1s"), ("~utf8", "é")]),
        ];
        let fast = JobProcessor::new(&plain, true).targets(&groups);
        let slow = JobProcessor::new(&noop, true).targets(&groups);
        assert_eq!(fast.len(), 4);
        for (f, s) in fast.iter().zip(&slow) {
            assert_eq!(f.identity, s.identity, "{}", f.address());
        }
        let distinct: std::collections::HashSet<u64> = fast.iter().map(|t| t.identity).collect();
        assert_eq!(distinct.len(), 4);
    }

    #[test]
    fn prepared_plain_and_general_paths_agree_on_mixed_layouts() {
        // The same outcome whichever path a job takes: no rules (plain), rules
        // that name their labels (prepared slots), and rules that may touch any
        // label (general engine; `labelkeep` of everything changes nothing).
        let params = serde_json::json!({"module": ["m"]});
        let copy = serde_json::json!({"source_labels": ["__meta_pod"], "target_label": "pod"});
        let everything = serde_json::json!({"action": "labelkeep", "regex": ".*"});
        let plain = job(serde_json::json!({"job_name": "j", "params": params}));
        let prepared = job(serde_json::json!({"job_name": "j", "params": params, "relabel_configs": [copy]}));
        let general = job(
            serde_json::json!({"job_name": "j", "params": params, "relabel_configs": [copy, everything]}),
        );
        let labels = |pairs: &[(&str, &str)]| {
            Labels::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect())
        };
        // Targets of one group in several layouts, overriding group labels and
        // seeds, with empty values among them.
        let mixed = Arc::new(TargetGroup {
            labels: labels(&[("__meta_pod", "g"), ("zone", "z"), ("job", ""), ("__scheme__", "https")]),
            targets: vec![
                labels(&[("__address__", "a:1")]),
                labels(&[("__address__", "a:2"), ("__meta_pod", "p2"), ("zone", "")]),
                labels(&[("__address__", "a:3")]),
                labels(&[("__address__", "a:4"), ("job", "own"), ("__param_module", ""), ("pod", "x")]),
                labels(&[("__address__", "a:5"), ("__meta_pod", ""), ("zone", "")]),
                labels(&[("__address__", "a:6"), ("__scheme__", ""), ("__tmp_disable_sharding", "1")]),
            ],
        });
        let groups = [mixed, group(&["b:1", "b:2"], &[("__meta_pod", "q")])];
        let through = |config| JobProcessor::new(config, true).targets(&groups);
        let (slots, engine) = (through(&prepared), through(&general));
        assert_eq!(slots.len(), 8);
        let ids = |targets: &[Target]| targets.iter().map(|t| t.identity).collect::<Vec<_>>();
        assert_eq!(ids(&slots), ids(&engine), "prepared and general rules");
        // Without rules, only targets whose `pod` the copy did not change agree.
        let unchanged =
            |t: &Target| t.label("__meta_pod").is_none_or(str::is_empty) && t.label("pod").is_none();
        for (p, s) in through(&plain).iter().zip(&slots) {
            assert_eq!(p.identity == s.identity, unchanged(p), "{}", p.address());
        }
    }

    #[test]
    fn identity_paths_agree_on_random_groups() {
        // Few names, shared by groups, targets and seeds, values often empty:
        // every way a label can be shared, vary, or be left out of identity.
        const NAMES: [&str; 8] =
            ["__address__", "__scheme__", "job", "zone", "pod", "__meta_pod", "__param_module", "a"];
        const VALUES: [&str; 4] = ["", "x", "y", "ü"];
        let mut state = 20261128u64;
        let mut next = move |n: usize| {
            state = target_allocator_sdk::hash::mix64(state.wrapping_add(0x9e37_79b9_7f4a_7c15));
            (state % n as u64) as usize
        };
        // The first `min` names always, the others one time in three.
        let labels = |min: usize, next: &mut dyn FnMut(usize) -> usize| {
            let mut pairs = Vec::new();
            for (i, name) in NAMES.iter().enumerate() {
                if i < min || next(3) == 0 {
                    pairs.push((name.to_string(), VALUES[next(VALUES.len())].to_string()));
                }
            }
            Labels::new(pairs)
        };
        let groups: Vec<Arc<TargetGroup>> = (0..300)
            .map(|_| {
                let group = labels(0, &mut next);
                let targets = (0..1 + next(4)).map(|_| labels(1, &mut next)).collect();
                Arc::new(TargetGroup { labels: group, targets })
            })
            .collect();
        let params = serde_json::json!({"module": ["m"]});
        let keep_all = serde_json::json!({"action": "keep", "source_labels": ["__address__"], "regex": ".*"});
        let everything = serde_json::json!({"action": "labelkeep", "regex": ".*"});
        let through = |config: serde_json::Value| JobProcessor::new(&job(config), true).targets(&groups);
        let plain = through(serde_json::json!({"job_name": "j", "params": params}));
        let prepared =
            through(serde_json::json!({"job_name": "j", "params": params, "relabel_configs": [keep_all]}));
        let general = through(
            serde_json::json!({"job_name": "j", "params": params, "relabel_configs": [keep_all, everything]}),
        );
        assert_eq!(plain.len(), groups.iter().map(|g| g.targets.len()).sum::<usize>());
        for ((p, s), g) in plain.iter().zip(&prepared).zip(&general) {
            let labels: Vec<_> = p.labels().collect();
            assert_eq!(p.identity, g.identity, "plain and general: {labels:?}");
            assert_eq!(s.identity, g.identity, "prepared and general: {labels:?}");
        }
    }

    #[test]
    fn steps_on_group_labels_decide_for_the_group_and_the_rest_per_target() {
        let rules = serde_json::json!([
            {"action": "drop", "source_labels": ["__meta_service"], "regex": "db"},
            {"action": "keep", "source_labels": ["__meta_ready"], "regex": "true"},
            {"source_labels": ["__meta_pod"], "target_label": "pod"},
            // Written for some targets only: the next target must not see it.
            {"source_labels": ["__meta_pod"], "regex": "p1", "target_label": "tag", "replacement": "first"}
        ]);
        let mut everything = rules.as_array().unwrap().clone();
        everything.push(serde_json::json!({"action": "labelkeep", "regex": ".*"}));
        let prepared = job(serde_json::json!({"job_name": "j", "relabel_configs": rules}));
        let general = job(serde_json::json!({"job_name": "j", "relabel_configs": everything}));
        let labels = |pairs: &[(&str, &str)]| {
            Labels::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect())
        };
        let group = |service: &str, targets: Vec<Labels>| {
            Arc::new(TargetGroup {
                labels: labels(&[("__meta_service", service), ("__meta_ready", "true")]),
                targets,
            })
        };
        let groups = [
            group(
                "web",
                vec![
                    labels(&[("__address__", "a:1"), ("__meta_pod", "p1")]),
                    labels(&[("__address__", "a:3"), ("__meta_pod", "p6")]),
                    labels(&[("__address__", "a:2"), ("__meta_pod", "p2"), ("__meta_ready", "false")]),
                ],
            ),
            // Dropped whole by the first rule, except the target that says
            // otherwise in its own labels (another layout, another plan).
            group(
                "db",
                vec![
                    labels(&[("__address__", "b:1"), ("__meta_pod", "p3")]),
                    labels(&[("__address__", "b:2"), ("__meta_pod", "p4"), ("__meta_service", "web")]),
                    labels(&[("__address__", "b:3"), ("__meta_pod", "p5")]),
                ],
            ),
        ];
        let through = |config| JobProcessor::new(config, true).targets(&groups);
        let (slots, engine) = (through(&prepared), through(&general));
        let kept = |targets: &[Target]| {
            targets.iter().map(|t| (t.address().to_string(), t.identity)).collect::<Vec<_>>()
        };
        assert_eq!(kept(&slots), kept(&engine));
        let addresses: Vec<&str> = slots.iter().map(|t| t.address()).collect();
        assert_eq!(addresses, ["a:1", "a:3", "b:2"]);
    }

    #[test]
    fn skipping_unread_meta_labels_changes_no_outcome() {
        // Every rule list here is run by the processor (which leaves unread
        // meta labels out) and by the plain engine on all labels.
        let rule_lists = [
            serde_json::json!([{"action": "keep", "source_labels": ["__meta_role"], "regex": "web|db"}]),
            serde_json::json!([{"source_labels": ["__meta_role"], "target_label": "role"}]),
            serde_json::json!([{"action": "labelmap", "regex": "__meta_(.+)"}]),
            serde_json::json!([{"action": "labeldrop", "regex": "__meta_r.*"},
                               {"source_labels": ["__meta_role"], "target_label": "role"}]),
            serde_json::json!([{"action": "keepequal", "source_labels": ["zone"], "target_label": "__meta_zone"}]),
            serde_json::json!([{"source_labels": ["__address__"], "regex": "(.*):.*", "target_label": "__meta_host"},
                               {"source_labels": ["__meta_host"], "target_label": "host"}]),
            serde_json::json!([{"action": "labelkeep", "regex": "__address__|job|__meta_role"},
                               {"source_labels": ["__meta_role", "__meta_zone"], "target_label": "both"}]),
        ];
        let groups = [
            group(&["a:1", "b:2"], &[("__meta_role", "web"), ("__meta_zone", "z1"), ("zone", "z1")]),
            group(
                &["c:3"],
                &[("__meta_role", "db"), ("__meta_zone", "z2"), ("zone", "z1"), ("__meta_x", "x")],
            ),
            group(&["d:4"], &[("__meta_role", ""), ("__meta_host", "h")]),
        ];
        for rules in rule_lists {
            let scrape = job(serde_json::json!({"job_name": "j", "relabel_configs": rules}));
            let processor = JobProcessor::new(&scrape, true);
            let ours: Vec<(String, u64)> =
                processor.targets(&groups).iter().map(|t| (t.address().to_string(), t.identity)).collect();
            let mut expected = Vec::new();
            for group in &groups {
                for index in 0..group.targets.len() {
                    let mut labels: crate::relabel::LabelMap =
                        group.target_labels(index).map(|(n, v)| (n.to_string(), v.to_string())).collect();
                    for (name, value) in scrape.seed_labels() {
                        labels.entry(name).or_insert(value);
                    }
                    let address = labels["__address__"].clone();
                    if crate::relabel::relabel(&mut labels, &scrape.relabel_rules) {
                        let pairs = labels.iter().map(|(n, v)| (n.as_str(), v.as_str()));
                        expected.push((address, identity_hash(pairs, "j")));
                    }
                }
            }
            assert_eq!(ours, expected, "rules {rules}");
        }
    }

    #[test]
    fn prometheus_operator_sharding_keeps_every_target() {
        let scrape = job(serde_json::json!({"job_name": "serviceMonitor/ns/app/0", "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__tmp_hash"},
            {"action": "hashmod", "source_labels": ["__tmp_hash"], "target_label": "__tmp_hash", "modulus": 1},
            {"action": "keep", "source_labels": ["__tmp_hash", "__tmp_disable_sharding"], "regex": "$(SHARD);|.+;.+"}
        ]}));
        let targets = JobProcessor::new(&scrape, true).targets(&[group(&["a:1", "b:2"], &[])]);
        assert_eq!(targets.len(), 2, "the `$(SHARD)` keep rule is neutralised");
    }

    #[test]
    fn errors_name_the_problem() {
        let err = parse_target_groups(r#"[{"target": ["a:1"]}]"#).unwrap_err().to_string();
        assert!(err.contains("unknown field `target`"), "{err}");
        let err = parse_target_groups(r#"[{"targets": ["a:1", " "]}]"#).unwrap_err().to_string();
        assert!(err.contains("group 0: target 1"), "{err}");
    }
}
