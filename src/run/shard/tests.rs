use super::*;
use crate::shard::hash::owner;

#[test]
fn a_shard_keeps_its_workloads_and_narrows_their_signal() {
    let mut text = String::from(
        "[[signal]]\nname = \"rps\"\nquery = \"sum by (service) (x)\"\n\
         series_labels = [\"service\"]\nstep = \"5m\"\nlookback = \"1d\"\n\
         [[signal]]\nname = \"other\"\nquery = \"y\"\nstep = \"5m\"\nlookback = \"1d\"\n\
         [shard]\nreplicas = 3\nordinal = 1\n",
    );
    for i in 0..30 {
        text.push_str(&format!(
            "[[workload]]\nname = \"w{i}\"\ndemand = 'rps{{service=\"s{i}\"}}'\n\
             replica_capacity = 10\nmax_replicas = 5\nboot_time = \"1m\"\n"
        ));
    }
    let cfg = Config::from_toml(std::path::Path::new("t.toml"), &text).unwrap();
    let (cfg, share) = take_shard(cfg);
    let keys = share.keys.expect("sharded");
    // No [[pool]]: no shard plans nodes, so none keeps the others' workloads.
    assert!(share.others.is_empty());
    let mine: Vec<String> = (0..30)
        .map(|i| format!("w{i}"))
        .filter(|n| owner(n, 3) == 1)
        .collect();
    assert!(!mine.is_empty() && mine.len() < 30);
    let kept: Vec<String> = cfg.live.workloads.iter().map(|w| w.name.clone()).collect();
    assert_eq!(kept, mine);
    assert_eq!(keys.len(), mine.len());
    assert!(cfg.signals[0].query.contains("prescale_shard_keep"));
    assert!(cfg.signals[0].query.contains("(sum by (service) (x))"));
    // No workload of this shard reads `other`: its query is left alone (and its series are
    // dropped on arrival).
    assert_eq!(cfg.signals[1].query, "y");
    let unsharded = Config::from_toml(
        std::path::Path::new("t.toml"),
        &text.replace("replicas = 3\nordinal = 1", "replicas = 1"),
    )
    .unwrap();
    let (cfg, share) = take_shard(unsharded);
    assert!(share.keys.is_none() && share.others.is_empty());
    assert_eq!(cfg.live.workloads.len(), 30);
}

/// With pools, ordinal 0 keeps the other shards' workloads for node planning; the others keep
/// none.
#[test]
fn ordinal_0_keeps_the_other_shards_workloads_for_the_node_pools() {
    let mut text = String::from(
        "[[signal]]\nname = \"rps\"\nquery = \"x\"\nseries_labels = [\"service\"]\n\
         step = \"5m\"\nlookback = \"1d\"\n\
         [[pool]]\nname = \"general\"\ncapacity = { cpu = 8, memory = \"32Gi\" }\n\
         boot_time = \"4m\"\nmax_nodes = 10\n[shard]\nreplicas = 3\nordinal = ORD\n",
    );
    for i in 0..30 {
        text.push_str(&format!(
            "[[workload]]\nname = \"w{i}\"\ndemand = 'rps{{service=\"s{i}\"}}'\n\
             replica_capacity = 10\nmax_replicas = 5\nboot_time = \"1m\"\n"
        ));
    }
    for ordinal in 0..3u32 {
        let cfg = Config::from_toml(
            std::path::Path::new("t.toml"),
            &text.replace("ORD", &ordinal.to_string()),
        )
        .unwrap();
        let (cfg, share) = take_shard(cfg);
        let mine: Vec<&str> = cfg.live.workloads.iter().map(|w| w.name.as_str()).collect();
        assert!(mine.iter().all(|w| owner(w, 3) == ordinal));
        if ordinal == 0 {
            assert_eq!(mine.len() + share.others.len(), 30);
            assert!(share.others.iter().all(|w| owner(&w.name, 3) != 0));
        } else {
            assert!(share.others.is_empty(), "shard {ordinal} plans no pools");
        }
    }
}

/// Known loads are taken as read; an unknown one runs what it has on the nodes, at its
/// requests (utilisation 1), and is listed with why.
#[test]
fn other_loads_take_read_values_and_count_unknown_ones_as_placed() {
    use crate::plan::NodeState;
    use crate::shard::readback::RemoteLoad;
    let specs: Vec<WorkloadSpec> = (0..6)
        .map(|i| WorkloadSpec::new(&format!("o{i}"), "d", 10.0, 50))
        .collect();
    let mut remote = crate::shard::readback::ReadBack::new();
    remote.insert(
        "o0".into(),
        Ok(RemoteLoad {
            desired: 7,
            utilization: 0.6,
            planned_at: 0,
        }),
    );
    remote.insert("o1".into(), Err("its plan is 99s old".into()));
    // o2..o5: not read back at all.
    let mut a = NodeState::new("a", "general");
    a.replicas = vec![("o1".into(), 2), ("o2".into(), 1)];
    let mut b = NodeState::new("b", "general");
    b.replicas = vec![("o1".into(), 3)];
    let (loads, why) = other_loads(&specs, &remote, &[a, b], |_| None);
    let got: Vec<(&str, u32, f64)> = loads
        .iter()
        .map(|l| (l.spec.name.as_str(), l.desired, l.utilization))
        .collect();
    assert_eq!(
        got,
        vec![
            ("o0", 7, 0.6),
            ("o1", 5, 1.0),
            ("o2", 1, 1.0),
            ("o3", 0, 1.0),
            ("o4", 0, 1.0),
            ("o5", 0, 1.0)
        ]
    );
    let unknown: Vec<(&str, &str)> = why
        .iter()
        .map(|u| (u.workload.as_str(), u.why.as_str()))
        .collect();
    assert_eq!(
        unknown,
        vec![
            ("o1", "its plan is 99s old"),
            ("o2", "not read back yet"),
            ("o3", "not read back yet"),
            ("o4", "not read back yet"),
            ("o5", "not read back yet"),
        ]
    );
    remote.clear();
    for s in &specs {
        remote.insert(
            s.name.clone(),
            Ok(RemoteLoad {
                desired: 1,
                utilization: 1.0,
                planned_at: 0,
            }),
        );
    }
    assert!(other_loads(&specs, &remote, &[], |_| None).1.is_empty());
}

/// A shard is stale when none of its workloads was read back fresh; one fresh workload is
/// enough for it not to be. The reasons' note says since when, and `forget` (a cycle without
/// a read-back) leaves nothing to export.
#[test]
fn a_shard_is_stale_when_none_of_its_workloads_is_read_back() {
    use crate::shard::readback::RemoteLoad;
    let specs: Vec<WorkloadSpec> = (0..30)
        .map(|i| WorkloadSpec::new(&format!("o{i}"), "d", 10.0, 50))
        .filter(|w| owner(&w.name, 3) != 0)
        .collect();
    let of = |o: u32| -> Vec<String> {
        specs
            .iter()
            .filter(|w| owner(&w.name, 3) == o)
            .map(|w| w.name.clone())
            .collect()
    };
    let (one, two) = (of(1), of(2));
    assert!(one.len() >= 2 && two.len() >= 2);
    let fresh = Ok(RemoteLoad {
        desired: 1,
        utilization: 1.0,
        planned_at: 0,
    });
    let mut remote = crate::shard::readback::ReadBack::new();
    // Shard 1: one of its workloads known; shard 2: every one unknown, one not read at all.
    remote.insert(one[0].clone(), fresh.clone());
    remote.insert(one[1].clone(), Err("invalid".into()));
    for w in &two[1..] {
        remote.insert(w.clone(), Err("its plan is 30s old".into()));
    }
    let mut s = Staleness::new(3);
    s.observe(&specs, &remote, 100);
    assert_eq!(s.gauges(), vec![(1, false), (2, true)]);
    assert_eq!(s.group_of(&one[1], 100), None);
    let note = format!(
        "shard 2 stale for 0s (none of its {} workloads read back)",
        two.len()
    );
    assert_eq!(s.group_of(&two[0], 100).as_deref(), Some(note.as_str()));
    // Still stale later: counted from when it was first seen so.
    s.observe(&specs, &remote, 112);
    assert!(s
        .group_of(&two[0], 112)
        .unwrap()
        .starts_with("shard 2 stale for 12s"));
    let (loads, unknown) = other_loads(&specs, &remote, &[], |w| s.group_of(w, 112));
    assert_eq!(loads.len(), specs.len());
    assert!(unknown
        .iter()
        .all(|u| u.group.is_some() == two.contains(&u.workload)));
    // Back: one of its plans is read again.
    remote.insert(two[0].clone(), fresh);
    s.observe(&specs, &remote, 120);
    assert_eq!(s.gauges(), vec![(1, false), (2, false)]);
    assert_eq!(s.group_of(&two[0], 120), None);
    s.forget();
    assert!(s.gauges().is_empty());
}
