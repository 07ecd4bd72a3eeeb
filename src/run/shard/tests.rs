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
