//! Sharding together with leader election (issue #11 sections 2 and 3): three `prescale run`
//! shards on loopback, one real Prometheus scraping their `/metrics`, and the fake API
//! server's Lease endpoints (`common/fake_lease.rs`). Each shard acts on its own workloads
//! whether or not it holds the Lease; the node pools are planned by the Lease holder alone,
//! from every shard's load read back from Prometheus.
//!
//! The marker of node planning is pool `web`'s hold (see `common/shard_lease.rs`). The test checks
//! that exactly one shard logs node decisions while all run, that each of them was logged
//! while the fake API server had that shard as the Lease's holder, and that after a SIGKILL of
//! the holder another shard takes the Lease and plans the pools within lease duration + retry
//! period (plus a cycle and scheduling slack) of the dead one's last renewal.

use crate::common;
use crate::fake_lease;
use crate::lease_setup;
use crate::shard_setup;

use common::*;
use fake_lease::FakeLease;
use lease_setup::*;
use prescale::shard::hash::owner;
use shard_setup::{log, prescale, Logged};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

/// Every node decision of every shard was planned while the Lease was that shard's: its cycle
/// began at `at` (whole seconds) and planned within 2.5 s of it (a loaded machine's poll and
/// read-back), so the holder at one of those instants must be the shard. And no two shards
/// planned nodes in the same second.
fn assert_only_the_holder_planned_nodes(api: &FakeLease, dirs: &[PathBuf]) -> usize {
    let mut seen: std::collections::HashMap<i64, usize> = Default::default();
    let mut n = 0;
    for (o, dir) in dirs.iter().enumerate() {
        let me = format!("shard-{o}");
        for at in node_times(dir) {
            let instants = [0, 500, 1000, 1500, 2000, 2500].map(|ms| {
                SystemTime::UNIX_EPOCH + Duration::from_secs(at as u64) + Duration::from_millis(ms)
            });
            let holders: Vec<Option<String>> = instants.iter().map(|t| api.holder_at(*t)).collect();
            assert!(
                holders.iter().any(|h| shard_of(h) == Some(me.as_str())),
                "{me} planned nodes in the cycle at {at} while the Lease was held by {holders:?}"
            );
            if let Some(other) = seen.insert(at, o) {
                assert_eq!(
                    other, o,
                    "shards {other} and {o} both planned nodes at {at}"
                );
            }
            n += 1;
        }
    }
    n
}

#[test]
fn the_lease_holder_alone_plans_node_pools_and_a_killed_one_is_replaced() {
    let Setup {
        ports,
        prom,
        api,
        root: _root,
        dirs,
    } = setup();
    let mut shards: Vec<ChildGuard> = (0..SHARDS)
        .map(|o| {
            let cfg = config(&dirs[o as usize], &prom.url(), ports[o as usize], o, &api);
            ChildGuard(Some(prescale(&cfg, false).spawn().unwrap()))
        })
        .collect();

    // One shard holds the Lease and plans the pools.
    let first = wait_for(
        Duration::from_secs(60),
        || {
            format!(
                "no shard planned the node pools; Lease writes {:#?}",
                api.writes()
            )
        },
        || (0..dirs.len()).find(|&o| !node_times(&dirs[o]).is_empty()),
    );
    // All side by side for a while: every shard decides for its workloads each cycle.
    std::thread::sleep(Duration::from_secs(5));
    let holder = api.holder_at(SystemTime::now());
    assert_eq!(shard_of(&holder), Some(format!("shard-{first}").as_str()));
    for (o, dir) in dirs.iter().enumerate() {
        let decisions = log(dir);
        let own: Vec<&Logged> = decisions.iter().filter(|d| !d.is_node_decision()).collect();
        assert!(!own.is_empty(), "shard {o} decided nothing");
        for d in &own {
            // Its own workloads only, and never `skipped (not leader)`, by holder and others
            // alike: the Lease does not gate a shard's own workloads.
            assert_eq!(owner(&d.target, SHARDS), o as u32, "{d:?}");
            assert!(!d.outcome.contains("not leader"), "shard {o}: {d:?}");
        }
        let nodes = node_times(dir);
        if o == first {
            assert!(
                nodes.len() >= 3,
                "shard {o} planned nodes in {nodes:?} only"
            );
            assert_eq!(leader_gauge(ports[o]), Some(1));
        } else {
            assert!(nodes.is_empty(), "shard {o} planned nodes at {nodes:?}");
            assert_eq!(leader_gauge(ports[o]), Some(0));
        }
    }
    assert_only_the_holder_planned_nodes(&api, &dirs);

    // SIGKILL the holder: another shard takes the Lease and plans the pools.
    let killed_at = SystemTime::now();
    shards[first].kill();
    let last_renewal = api
        .writes()
        .iter()
        .rev()
        .find(|w| shard_of(&w.holder) == Some(format!("shard-{first}").as_str()))
        .map(|w| w.at)
        .unwrap();
    let (next, planned_at) = wait_for(
        Duration::from_secs(30),
        || {
            format!(
                "no other shard planned the pools; Lease writes {:#?}",
                api.writes()
            )
        },
        || {
            // Seen within 100 ms of its writing: the time seen bounds the time planned.
            (0..dirs.len())
                .filter(|&o| o != first)
                .find(|&o| !node_times(&dirs[o]).is_empty())
                .map(|o| (o, SystemTime::now()))
        },
    );
    let took = api
        .writes()
        .into_iter()
        .find(|w| w.at > killed_at && shard_of(&w.holder) == Some(format!("shard-{next}").as_str()))
        .expect("the new planner's Lease write")
        .at;
    let gap = took.duration_since(last_renewal).unwrap_or_default();
    let planned = planned_at.duration_since(last_renewal).unwrap_or_default();
    eprintln!(
        "SIGKILL: Lease taken {gap:?} and pools planned by {planned:?} after the last renewal"
    );
    assert!(
        gap >= LEASE,
        "taken over {gap:?} after the last renewal: before expiry"
    );
    assert!(
        gap <= LEASE + RETRY + SLACK,
        "taken over {gap:?} after the last renewal"
    );
    assert!(
        planned <= LEASE + RETRY + SLACK,
        "pools planned {planned:?} after it"
    );
    // It keeps planning them, the third shard never did, and no plan overlapped.
    std::thread::sleep(Duration::from_secs(3));
    assert!(node_times(&dirs[next]).len() >= 2);
    let third = (0..dirs.len()).find(|&o| o != first && o != next).unwrap();
    assert!(node_times(&dirs[third]).is_empty());
    let n = assert_only_the_holder_planned_nodes(&api, &dirs);
    eprintln!("{n} node-planning cycles, each by the Lease holder");
    drop(shards);
}
