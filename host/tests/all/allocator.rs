//! The allocation core: targets, collectors, diffs and the serving index.

use target_allocator::allocation::{Allocator, Collector, JobDelta, StrategyChoice, Target};

use crate::support::{addresses, builtin, collectors, target};

fn allocator() -> Allocator {
    Allocator::new(StrategyChoice::new(builtin("consistent-hashing")))
}

fn delta(job: &str, removed: Vec<u64>, upserted: Vec<Target>) -> JobDelta {
    JobDelta { job: job.into(), removed, upserted }
}

#[test]
fn targets_wait_unassigned_until_collectors_appear() {
    let mut a = allocator();
    let targets: Vec<_> = addresses(50).iter().map(|x| target("job", x, &[])).collect();
    let report = a.set_job_targets("job", targets.clone());
    assert_eq!(report.unassigned, 50);
    let report = a.set_collectors(collectors(3));
    assert_eq!(report.unassigned, 0);
    assert_eq!(report.batch, 50);
    assert_eq!(a.targets_per_collector().iter().map(|c| c.1).sum::<usize>(), 50);
    // Losing every collector unassigns everything; nothing is lost.
    let report = a.set_collectors(Vec::new());
    assert_eq!(report.unassigned, 50);
    assert_eq!(a.target_count(), 50);
    assert_eq!(a.served_jobs().count(), 0);
}

#[test]
fn equal_identities_collapse_and_labels_refresh_without_moving() {
    let mut a = allocator();
    a.set_collectors(collectors(3));
    let t1 = target("job", "10.0.0.1:80", &[("__meta_pod", "old")]);
    let t1_dup = target("job", "10.0.0.1:80", &[("__meta_pod", "dup")]);
    let report = a.set_job_targets("job", vec![t1.clone(), t1_dup.clone()]);
    assert_eq!(a.target_count(), 1, "meta labels are not part of the identity");
    assert_eq!(report.batch, 1);
    let where_first = a.collector_of(t1.identity).unwrap().clone();
    let served = a.targets_for(&where_first.id, "job").next().unwrap();
    assert_eq!(served.label("__meta_pod"), Some("dup"), "the last duplicate wins");
    // A relabeled pod on the same address: same identity, new labels served, no move.
    let renamed = target("job", "10.0.0.1:80", &[("__meta_pod", "new")]);
    let report = a.set_job_targets("job", vec![renamed]);
    assert_eq!(report.batch, 0);
    assert_eq!(a.collector_of(t1.identity), Some(&where_first));
    let served = a.targets_for(&where_first.id, "job").next().unwrap();
    assert_eq!(served.label("__meta_pod"), Some("new"));
}

#[test]
fn one_window_of_deltas_applies_in_order() {
    let mut a = allocator();
    a.set_collectors(collectors(3));
    let held = target("a", "10.0.0.1:80", &[("__meta_pod", "old")]);
    let gone = target("a", "10.0.0.2:80", &[]);
    a.set_job_targets("a", vec![held.clone(), gone.clone()]);
    let held_on = a.collector_of(held.identity).unwrap().clone();
    let added_then_removed = target("a", "10.0.0.3:80", &[]);
    let removed_then_added = target("a", "10.0.0.2:80", &[("__meta_pod", "back")]);
    let fresh = target("a", "10.0.0.1:80", &[("__meta_pod", "new")]);
    let (dup_first, dup_last) = (
        target("b", "10.0.0.4:80", &[("__meta_pod", "first")]),
        target("b", "10.0.0.4:80", &[("__meta_pod", "last")]),
    );
    let report = a.apply_deltas(vec![
        delta("a", vec![], vec![added_then_removed.clone(), fresh.clone()]),
        delta("a", vec![added_then_removed.identity, gone.identity], vec![]),
        delta("b", vec![], vec![dup_first.clone(), dup_last.clone()]),
        delta("a", vec![], vec![removed_then_added.clone()]),
    ]);
    assert_eq!(a.target_count(), 3, "held, removed-then-added and the collapsed duplicate");
    assert!(a.collector_of(added_then_removed.identity).is_none());
    assert_eq!(a.collector_of(held.identity), Some(&held_on), "a refreshed target stays");
    let label = |job: &str, identity: u64| {
        let collector = a.collector_of(identity).unwrap().id.clone();
        let target = a.targets_for(&collector, job).find(|t| t.identity == identity).unwrap();
        target.label("__meta_pod").map(str::to_string)
    };
    assert_eq!(label("a", held.identity).as_deref(), Some("new"));
    assert_eq!(label("a", gone.identity).as_deref(), Some("back"));
    assert_eq!(label("b", dup_last.identity).as_deref(), Some("last"), "the later duplicate wins");
    assert_eq!(a.targets_per_collector().iter().map(|c| c.1).sum::<usize>(), 3);
    assert_eq!(report.unassigned, 0);
}

#[test]
fn the_same_address_in_two_jobs_is_two_targets_on_one_collector() {
    let mut a = allocator();
    a.set_collectors(collectors(5));
    let x = target("job-x", "10.0.0.9:80", &[]);
    let y = target("job-y", "10.0.0.9:80", &[]);
    a.set_targets(vec![("job-x".into(), x.clone()), ("job-y".into(), y.clone())]);
    assert_eq!(a.target_count(), 2);
    // consistent-hashing keys on the address alone.
    assert_eq!(a.collector_of(x.identity), a.collector_of(y.identity));
    let c = a.collector_of(x.identity).unwrap().id.clone();
    assert_eq!(a.targets_for(&c, "job-x").count(), 1);
    assert_eq!(a.targets_for(&c, "job-y").count(), 1);
    assert_eq!(a.targets_for(&c, "job-z").count(), 0);
    assert_eq!(a.targets_for("nobody", "job-x").count(), 0);
}

#[test]
fn removed_targets_leave_the_index_and_collector_changes_report_moves() {
    let mut a = allocator();
    a.set_collectors(collectors(10));
    let targets: Vec<_> = addresses(5000).iter().map(|x| target("job", x, &[])).collect();
    a.set_job_targets("job", targets.clone());
    a.set_job_targets("job", targets[..4000].to_vec());
    assert_eq!(a.target_count(), 4000);
    let indexed: usize = a.targets_per_collector().iter().map(|c| c.1).sum();
    assert_eq!(indexed, 4000);
    // Scale 10 → 11: some targets move, bounded like the reference ring.
    let before: Vec<_> = targets[..4000].iter().map(|t| a.collector_of(t.identity).cloned()).collect();
    let report = a.set_collectors(collectors(11));
    let moved = targets[..4000]
        .iter()
        .zip(&before)
        .filter(|(t, was)| a.collector_of(t.identity) != was.as_ref())
        .count();
    assert_eq!(report.moved, moved);
    assert!(moved > 4000 / 11 / 2 && moved < 4000 * 3 / 11, "moved {moved}");
    // Unchanged collector set: nothing happens.
    let report = a.set_collectors(collectors(11));
    assert_eq!((report.batch, report.moved), (0, 0));
}

#[test]
fn collector_nodes_reach_the_strategy() {
    let mut a = Allocator::new(StrategyChoice::new(builtin("per-node")));
    a.set_collectors(vec![Collector::new("c1", Some("n1")), Collector::new("c2", Some("n2"))]);
    let t = target("job", "1.2.3.4:80", &[("__meta_kubernetes_pod_node_name", "n2")]);
    a.set_job_targets("job", vec![t.clone()]);
    assert_eq!(a.collector_of(t.identity).unwrap().id.as_ref(), "c2");
    // The collector moves to another node (a new pod with the same name).
    a.set_collectors(vec![Collector::new("c1", Some("n2")), Collector::new("c2", Some("n3"))]);
    assert_eq!(a.collector_of(t.identity).unwrap().id.as_ref(), "c1");
}

#[test]
fn job_updates_touch_only_their_job_and_counts_stay_exact() {
    let mut a = Allocator::new(StrategyChoice::new(builtin("least-weighted")));
    a.set_collectors(collectors(3));
    let job_a: Vec<_> = addresses(30).iter().map(|x| target("a", x, &[])).collect();
    let job_b: Vec<_> = addresses(60)[30..].iter().map(|x| target("b", x, &[])).collect();
    a.set_job_targets("a", job_a.clone());
    a.set_job_targets("b", job_b.clone());
    assert_eq!(a.target_count(), 60);
    // least-weighted spreads each batch over the collectors, given the load outside it.
    let counts: Vec<usize> = a.targets_per_collector().iter().map(|c| c.1).collect();
    assert_eq!(counts, vec![20, 20, 20]);
    // Replacing job a's targets leaves job b alone.
    let report = a.set_job_targets("a", job_a[..10].to_vec());
    assert_eq!(report.batch, 0);
    assert_eq!(a.target_count(), 40);
    assert!(job_b.iter().all(|t| a.collector_of(t.identity).is_some()));
    // Counters follow removals and collector changes.
    a.set_collectors(collectors(2));
    assert_eq!(a.unassigned(), 0);
    assert_eq!(a.targets_per_collector().iter().map(|c| c.1).sum::<usize>(), 40);
    a.remove_job("b");
    assert_eq!(a.target_count(), 10);
    assert_eq!(a.targets_per_collector().iter().map(|c| c.1).sum::<usize>(), 10);
    a.set_collectors(Vec::new());
    assert_eq!(a.unassigned(), 10);
}

#[test]
fn an_emptied_allocator_takes_targets_in_again() {
    let mut a = allocator();
    a.set_collectors(collectors(4));
    let first: Vec<_> = addresses(300).iter().map(|x| target("job", x, &[])).collect();
    a.set_job_targets("job", first.clone());
    a.set_targets(Vec::new());
    assert_eq!((a.target_count(), a.served_jobs().count()), (0, 0));
    // Nothing held: the first delta of the window fills the emptied slab;
    // the second's removal makes the window take it in before the third.
    let second: Vec<_> = addresses(500).iter().map(|x| target("other", x, &[])).collect();
    let report = a.apply_deltas(vec![
        delta("other", vec![], second[..400].to_vec()),
        delta("other", vec![second[0].identity], vec![]),
        delta("other", vec![], second[400..].to_vec()),
    ]);
    assert_eq!((a.target_count(), report.unassigned), (499, 0));
    assert!(a.collector_of(second[0].identity).is_none());
    for target in &second[1..] {
        let on = a.collector_of(target.identity).expect("assigned").id.clone();
        assert_eq!(a.targets_for(&on, "other").filter(|t| t.identity == target.identity).count(), 1);
    }
    assert!(first.iter().all(|t| a.collector_of(t.identity).is_none()));
    assert_eq!(a.targets_per_collector().iter().map(|c| c.1).sum::<usize>(), 499);
}

/// Every collector's targets of `job` are served in identity order, and
/// they are exactly the job's targets the allocator says are on it.
fn assert_served_in_order(a: &Allocator, job: &str, targets: &[Target]) {
    for collector in a.collectors() {
        let served: Vec<u64> = a.targets_for(&collector.id, job).map(|t| t.identity).collect();
        assert!(served.windows(2).all(|w| w[0] < w[1]), "{job} on {} in identity order", collector.id);
        let mut expected: Vec<u64> = targets
            .iter()
            .filter(|t| a.collector_of(t.identity).is_some_and(|c| c.id == collector.id))
            .map(|t| t.identity)
            .collect();
        expected.sort_unstable();
        assert_eq!(served, expected, "{job} on {}", collector.id);
    }
}

#[test]
fn the_serving_index_stays_in_order_through_large_and_small_batches() {
    let mut a = allocator();
    a.set_collectors(collectors(4));
    let all = addresses(3000);
    let big: Vec<_> = all[..2000].iter().map(|x| target("big", x, &[])).collect();
    let small: Vec<_> = all[2000..2010].iter().map(|x| target("small", x, &[])).collect();
    // A start-up batch: many entries, long runs per job and a short one.
    a.apply_deltas(vec![delta("big", vec![], big[..1300].to_vec()), delta("small", vec![], small.clone())]);
    assert_served_in_order(&a, "big", &big[..1300]);
    assert_served_in_order(&a, "small", &small);
    // Large and small batches merged with what each job holds.
    a.apply_deltas(vec![delta("big", vec![], big[1300..].to_vec())]);
    assert_served_in_order(&a, "big", &big);
    let more: Vec<_> = all[2010..2013].iter().map(|x| target("small", x, &[])).collect();
    a.apply_deltas(vec![delta("small", vec![small[0].identity], more.clone())]);
    let now: Vec<_> = small[1..].iter().chain(&more).cloned().collect();
    assert_served_in_order(&a, "small", &now);
    assert_eq!(a.target_count(), 2000 + now.len());
}
