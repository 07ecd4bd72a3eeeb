use super::hash::{fnv1a, owner, splitmix64};
use super::*;
use proptest::prelude::*;
use std::collections::HashMap;

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("workload-{i}")).collect()
}

#[test]
fn fnv1a_matches_the_published_vectors() {
    // From the FNV reference test suite: the empty string and "a".
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn splitmix64_matches_the_reference_sequence() {
    // SplitMix64 seeded with 0 yields 0xe220a8397b1dcdaf first: the finaliser of 0 + γ.
    assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
}

#[test]
fn ownership_is_pinned_so_every_build_agrees() {
    // Written down once: a change of hash would silently move workloads between replicas of
    // different versions during a rolling update.
    let got: Vec<u32> = ["web", "api", "db-readers", "checkout", "search"]
        .iter()
        .map(|n| owner(n, 4))
        .collect();
    assert_eq!(got, PINNED);
}

/// `owner(name, 4)` of the five names above, as this hash gave them when written.
const PINNED: [u32; 5] = [1, 1, 0, 3, 0];

#[test]
fn one_replica_owns_everything() {
    let s = ShardConfig::default();
    assert!(names(50).iter().all(|n| s.owns(n)));
    assert!(names(50).iter().all(|n| owner(n, 1) == 0));
}

#[test]
fn the_split_is_even_enough() {
    let mut count: HashMap<u32, usize> = HashMap::new();
    for n in names(10_000) {
        *count.entry(owner(&n, 4)).or_default() += 1;
    }
    assert_eq!(count.len(), 4);
    for (o, c) in count {
        assert!(
            (2_200..=2_800).contains(&c),
            "ordinal {o} owns {c} of 10,000"
        );
    }
}

#[test]
fn growing_by_one_moves_about_one_in_n_plus_one_only_to_the_new_replica() {
    let all = names(10_000);
    for n in 1..8u32 {
        let moved: Vec<_> = all
            .iter()
            .filter(|w| owner(w, n) != owner(w, n + 1))
            .collect();
        assert!(moved.iter().all(|w| owner(w, n + 1) == n));
        let share = moved.len() as f64 / all.len() as f64;
        let expected = 1.0 / f64::from(n + 1);
        assert!(
            (share - expected).abs() < 0.03,
            "{n}→{}: moved {share:.3}, expected {expected:.3}",
            n + 1
        );
    }
}

proptest! {
    #[test]
    fn every_key_has_exactly_one_owner(key in ".{0,40}", replicas in 1u32..64) {
        let o = owner(&key, replicas);
        prop_assert!(o < replicas);
        let owning = (0..replicas).filter(|&i| ShardConfig::new(replicas, i).owns(&key)).count();
        prop_assert_eq!(owning, 1);
    }

    #[test]
    fn adding_a_replica_moves_a_key_only_onto_it(key in ".{0,40}", replicas in 1u32..64) {
        let before = owner(&key, replicas);
        let after = owner(&key, replicas + 1);
        prop_assert!(after == before || after == replicas);
    }

    #[test]
    fn removing_the_last_replica_moves_only_its_keys(key in ".{0,40}", replicas in 2u32..64) {
        let before = owner(&key, replicas);
        let after = owner(&key, replicas - 1);
        prop_assert!(before == replicas - 1 || after == before);
    }
}

fn validate(toml: &str, env: &[(&str, &str)]) -> (ShardConfig, Vec<(String, String)>) {
    let raw: RawShard = toml::from_str(toml).unwrap();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut problems = Vec::new();
    let cfg = ShardConfig::validate(Some(&raw), |k| env.get(k).cloned(), &mut problems);
    (cfg, problems)
}

#[test]
fn the_ordinal_comes_from_the_pod_name_then_the_host_name() {
    let (c, p) = validate(
        "replicas = 3",
        &[("POD_NAME", "prescale-2"), ("HOSTNAME", "x-1")],
    );
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(c, ShardConfig::new(3, 2));
    let (c, p) = validate("replicas = 3", &[("HOSTNAME", "prescale-1")]);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(c, ShardConfig::new(3, 1));
    // Written, it wins over the host name (outside a StatefulSet)...
    let (c, p) = validate("replicas = 3\nordinal = 0", &[("HOSTNAME", "prescale-2")]);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(c, ShardConfig::new(3, 0));
    // ...and over a pod name whose number is no ordinal of these shards (a ReplicaSet pod).
    let (c, p) = validate(
        "replicas = 3\nordinal = 0",
        &[("POD_NAME", "p-7d9f8-12345")],
    );
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(c, ShardConfig::new(3, 0));
}

/// An ordinal written in the file that a StatefulSet pod's own name contradicts is refused:
/// every pod reading that file would plan the same share.
#[test]
fn a_written_ordinal_contradicting_the_pod_name_is_refused() {
    let (_, p) = validate("replicas = 3\nordinal = 0", &[("POD_NAME", "prescale-2")]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "shard.ordinal");
    assert!(
        p[0].1.contains("POD_NAME says this pod is ordinal 2"),
        "{}",
        p[0].1
    );
    let (c, p) = validate("replicas = 3\nordinal = 2", &[("POD_NAME", "prescale-2")]);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(c, ShardConfig::new(3, 2));
}

#[test]
fn no_ordinal_anywhere_names_the_key_and_the_variables() {
    let (_, p) = validate("replicas = 3", &[("HOSTNAME", "laptop")]);
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].0, "shard.ordinal");
    assert!(p[0].1.contains("POD_NAME is not set"), "{}", p[0].1);
    assert!(p[0].1.contains("HOSTNAME is 'laptop'"), "{}", p[0].1);
}

#[test]
fn one_replica_needs_no_ordinal() {
    let (c, p) = validate("replicas = 1", &[]);
    assert!(p.is_empty());
    assert_eq!(c, ShardConfig::default());
    let (c, p) = validate("", &[]);
    assert!(p.is_empty());
    assert!(!c.is_sharded());
}

#[test]
fn bad_values_name_their_key() {
    let (_, p) = validate("replicas = 0", &[]);
    assert_eq!(p[0].0, "shard.replicas");
    let (_, p) = validate("replicas = 3\nordinal = 3", &[]);
    assert_eq!(p[0].0, "shard.ordinal");
    assert!(
        p[0].1.contains("not below shard.replicas = 3"),
        "{}",
        p[0].1
    );
    let (_, p) = validate("replicas = 3\nordinal = -1", &[]);
    assert_eq!(p[0].0, "shard.ordinal");
    let (_, p) = validate("replicas = 2", &[("POD_NAME", "prescale-7")]);
    assert_eq!(p[0].0, "shard.ordinal");
    let (_, p) = validate("replicas = 2\nordinal = 0\nmax_age = \"soon\"", &[]);
    assert_eq!(p[0].0, "shard.max_age");
    let (_, p) = validate("replicas = 2\nordinal = 0\nmax_age = \"0s\"", &[]);
    assert_eq!(p[0].0, "shard.max_age");
}

/// The freshness bound: as written, else two cycles plus a default scrape interval.
#[test]
fn max_age_is_written_or_two_cycles_and_a_scrape() {
    let (c, p) = validate("replicas = 2\nordinal = 0\nmax_age = \"3m\"", &[]);
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(c.max_age(60), 180);
    let (c, _) = validate("replicas = 2\nordinal = 0", &[]);
    assert_eq!(c.max_age(60), 180);
    assert_eq!(c.max_age(300), 660);
}

/// Ordinal 0 plans the node pools, unless a Lease elects the planner among all shards.
#[test]
fn node_planner_is_ordinal_0_or_the_lease_holder() {
    let (zero, _) = validate("replicas = 2\nordinal = 0", &[]);
    let (one, _) = validate("replicas = 2\nordinal = 1", &[]);
    assert_eq!(zero.node_planning(false), NodePlanning::Here);
    assert_eq!(one.node_planning(false), NodePlanning::Elsewhere);
    assert!(!one.node_planning(false).ever());
    for c in [zero, one] {
        assert_eq!(c.node_planning(true), NodePlanning::WhileLeading);
        assert!(c.node_planning(true).ever());
    }
    // Unsharded, the act stage's Lease gates everything: the planner itself always plans.
    let single = ShardConfig::default();
    assert_eq!(single.node_planning(true), NodePlanning::Here);
    assert_eq!(single.node_planning(false), NodePlanning::Here);
}

#[test]
fn pod_name_ordinals() {
    assert_eq!(ordinal_of("prescale-0"), Some(0));
    assert_eq!(ordinal_of("my-prescale-12"), Some(12));
    assert_eq!(ordinal_of("prescale"), None);
    assert_eq!(ordinal_of("prescale-"), None);
    assert_eq!(ordinal_of("prescale-x1"), None);
    assert_eq!(ordinal_of("prescale-99999999999"), None);
}

/// `shard.selector` is checked at load, normalised, and its problem names the key.
#[test]
fn the_selector_is_checked_and_normalised() {
    let (c, p) = validate(
        "replicas = 2\nordinal = 0\nselector = '{ job=\"prescale\",namespace=~\"prod\" }'",
        &[],
    );
    assert!(p.is_empty(), "{p:?}");
    assert_eq!(
        c.selector.as_deref(),
        Some("job=\"prescale\", namespace=~\"prod\"")
    );
    let (c, p) = validate("replicas = 2\nordinal = 0\nselector = 'job=prescale'", &[]);
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].0, "shard.selector");
    assert!(p[0].1.contains("after 'job=' at 'prescale'"), "{p:?}");
    assert_eq!(c.selector, None);
    let (_, p) = validate("replicas = 2\nordinal = 0\nselector = ''", &[]);
    assert_eq!(p[0].0, "shard.selector");
}
