//! A network partition of the Lease holder among sharded replicas (issue #11 sections 2 and
//! 3): three `prescale run` shards with leader election, one real Prometheus scraping their
//! `/metrics`, and the fake API server's Lease endpoints (`common/fake_lease.rs`), which holds
//! the partitioned shard's requests unanswered (a stall, not a refusal) until the partition
//! heals.
//!
//! What is checked, from three independent records:
//! - the Lease's history on the fake API server: the partitioned holder writes nothing more,
//!   another shard takes the Lease no sooner than the lease duration after the last renewal
//!   it saw, and after the partition heals the old holder only reads the Lease (GETs
//!   answered 200) and never writes it while the other holds it;
//! - each shard's log, timestamped to the microsecond: the holder stops planning the node
//!   pools within the renew deadline of its last renewal (before the Lease could be taken
//!   over) and says "stopped acting"; the new holder plans them only after its takeover; the
//!   old one plans none after healing and acquires nothing;
//! - each shard's `prescale_leader`, polled every 100 ms throughout: never 1 on two shards at
//!   once, and 0 on the old holder before the takeover.

use crate::common;
use crate::fake_lease;
use crate::lease_setup;
use crate::shard_setup;

use common::*;
use lease_setup::*;
use shard_setup::prescale;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What each shard logs: warnings, the election's changes, and the node planner's line.
const RUST_LOG: &str = "warn,prescale::leader=info,prescale::run::planning=debug";

/// The line the node planner logs, right after it checked that it holds the Lease.
const PLANNING: &str = "planning the node pools for";

/// The instants at which the lines of `stderr` containing `needle` were logged.
fn logged_at(stderr: &Path, needle: &str) -> Vec<SystemTime> {
    std::fs::read_to_string(stderr)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .filter_map(|l| {
            let t = chrono::DateTime::parse_from_rfc3339(l.split_whitespace().next()?).ok()?;
            let micros = u64::try_from(t.timestamp_micros()).ok()?;
            Some(SystemTime::UNIX_EPOCH + Duration::from_micros(micros))
        })
        .collect()
}

/// One poll of every shard's `prescale_leader`: when it ended, and each value read.
type Sample = (SystemTime, Vec<Option<i64>>);

/// Polls every shard's `prescale_leader` every 100 ms until dropped.
struct GaugeWatch {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl GaugeWatch {
    fn start(ports: Vec<u16>) -> Self {
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (samples.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let values: Vec<Option<i64>> = ports.iter().map(|p| leader_gauge(*p)).collect();
                s.lock().unwrap().push((SystemTime::now(), values));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        GaugeWatch {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    fn samples(&self) -> Vec<Sample> {
        self.samples.lock().unwrap().clone()
    }
}

impl Drop for GaugeWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn since(from: SystemTime, to: SystemTime) -> Duration {
    to.duration_since(from).unwrap_or_default()
}

#[test]
fn a_partitioned_holder_stops_planning_nodes_before_a_takeover_and_not_after_healing() {
    let Setup {
        ports,
        prom,
        api,
        root: _root,
        dirs,
    } = setup();
    let errs: Vec<PathBuf> = dirs.iter().map(|d| d.join("stderr.log")).collect();
    let _shards: Vec<ChildGuard> = (0..SHARDS as usize)
        .map(|o| {
            let cfg = config(&dirs[o], &prom.url(), ports[o], o as u32, &api);
            let err = std::fs::File::create(&errs[o]).unwrap();
            let child = prescale(&cfg, false)
                .env("RUST_LOG", RUST_LOG)
                .stderr(err)
                .spawn()
                .unwrap();
            ChildGuard(Some(child))
        })
        .collect();
    let planned = |o: usize| logged_at(&errs[o], PLANNING);

    // One shard holds the Lease and plans the pools for a while.
    let first = wait_for(
        Duration::from_secs(60),
        || {
            format!(
                "no shard planned the pools; Lease writes {:#?}",
                api.writes()
            )
        },
        || (0..dirs.len()).find(|&o| !planned(o).is_empty()),
    );
    std::thread::sleep(Duration::from_secs(3));
    let me = |o: usize| format!("shard-{o}");
    assert_eq!(
        shard_of(&api.holder_at(SystemTime::now())),
        Some(me(first).as_str())
    );
    let gauges = GaugeWatch::start(ports.clone());
    std::thread::sleep(Duration::from_millis(500));

    // Partition the holder: its requests to the API server stall.
    let cut_at = SystemTime::now();
    api.stall(&token(first as u32));
    let (new, took) = wait_for(
        Duration::from_secs(20),
        || format!("no other shard took the Lease; writes {:#?}", api.writes()),
        || {
            api.writes()
                .into_iter()
                .find(|w| w.at > cut_at && shard_of(&w.holder) != Some(&me(first)))
                .and_then(|w| {
                    let h = shard_of(&w.holder)?;
                    let o = (0..dirs.len()).find(|&o| h == me(o))?;
                    Some((o, w.at))
                })
        },
    );
    wait_for(
        Duration::from_secs(20),
        || format!("shard {new} took the Lease but plans no pools"),
        || planned(new).into_iter().find(|t| *t > took),
    );
    std::thread::sleep(Duration::from_secs(2));

    // The Lease: the old holder's last renewal came before the cut, the takeover no sooner
    // than the lease duration after it, and not much later.
    let renewed = api
        .writes()
        .into_iter()
        .filter(|w| w.token.as_deref() == Some(token(first as u32).as_str()))
        .map(|w| w.at)
        .max()
        .unwrap();
    let gap = since(renewed, took);
    eprintln!(
        "partition: Lease taken over {gap:?} after the last renewal ({:?} after the cut)",
        since(cut_at, took)
    );
    assert!(gap >= LEASE, "taken over {gap:?} after the last renewal");
    assert!(gap <= LEASE + RETRY + SLACK, "{gap:?}");
    // Its requests since the cut: none answered (so none applied) while partitioned.
    let from_old = |after: SystemTime| -> Vec<fake_lease::Recorded> {
        api.requests()
            .into_iter()
            .filter(|r| r.at > after && r.token.as_deref() == Some(token(first as u32).as_str()))
            .collect()
    };
    let cut_off = from_old(cut_at);
    assert!(!cut_off.is_empty(), "the partitioned shard stopped asking");
    assert!(cut_off.iter().all(|r| r.status.is_none()), "{cut_off:#?}");

    // The logs: the old holder planned last within the renew deadline of its last renewal
    // (which began before the write the server recorded), so well before the Lease could be
    // taken; the new one first after its takeover; the third never.
    let old_last = planned(first).into_iter().max().unwrap();
    eprintln!(
        "partition: old holder planned last {:?} after its last renewal, new first {:?} after it",
        since(renewed, old_last),
        since(
            renewed,
            planned(new).into_iter().find(|t| *t > took).unwrap()
        )
    );
    // The check itself comes before `renewed + RENEW`; its log line may follow it by a
    // descheduling on a loaded machine, hence the small allowance (far below the 2 s between
    // the renew deadline and the earliest takeover).
    assert!(
        old_last < renewed + RENEW + Duration::from_millis(250),
        "planned {:?} after its last renewal",
        since(renewed, old_last)
    );
    assert!(old_last < took);
    assert!(planned(new).iter().all(|t| *t > took), "{:?}", planned(new));
    let third = (0..dirs.len()).find(|&o| o != first && o != new).unwrap();
    assert!(planned(third).is_empty(), "{:?}", planned(third));
    let stopped = logged_at(&errs[first], "stopped acting");
    assert!(
        stopped.first().is_some_and(|t| *t < took),
        "{stopped:?}\n{}",
        std::fs::read_to_string(&errs[first]).unwrap_or_default()
    );

    // /metrics: never two shards at 1 in one poll, and the old holder at 0 before the
    // takeover.
    let samples = gauges.samples();
    for (at, v) in &samples {
        let leaders = v.iter().filter(|g| **g == Some(1)).count();
        assert!(leaders <= 1, "two leaders at {at:?}: {v:?}");
    }
    let old_zero = samples
        .iter()
        .find(|(at, v)| *at > cut_at && v[first] == Some(0))
        .map(|s| s.0)
        .expect("the old holder's gauge went to 0");
    assert!(
        old_zero < took,
        "{:?} after the takeover",
        since(took, old_zero)
    );

    // Heal: the old holder reads the Lease again, sees it held, and neither writes it nor
    // plans the pools, for longer than a lease duration.
    let healed = SystemTime::now();
    api.heal();
    std::thread::sleep(LEASE + Duration::from_secs(2));
    let after = from_old(healed);
    assert!(
        after
            .iter()
            .any(|r| r.method == "GET" && r.status == Some(200)),
        "the healed shard was not answered: {after:#?}"
    );
    assert!(after.iter().all(|r| r.method == "GET"), "{after:#?}");
    let writes: Vec<_> = api.writes().into_iter().filter(|w| w.at >= took).collect();
    assert!(
        writes.iter().all(|w| shard_of(&w.holder) == Some(&me(new))),
        "{writes:#?}"
    );
    assert_eq!(
        shard_of(&api.holder_at(SystemTime::now())),
        Some(me(new).as_str())
    );
    assert!(planned(first).iter().all(|t| *t < took));
    assert!(planned(new).iter().any(|t| *t > healed + RETRY));
    let samples = gauges.samples();
    for (at, v) in samples.iter().filter(|s| s.0 > healed) {
        assert_ne!(v[first], Some(1), "old holder leads again at {at:?}");
        let leaders = v.iter().filter(|g| **g == Some(1)).count();
        assert!(leaders <= 1, "two leaders at {at:?}: {v:?}");
    }
    assert_eq!(samples.last().map(|s| s.1[new]), Some(Some(1)));
    let acquired = logged_at(&errs[first], "acquired Lease");
    assert_eq!(
        acquired.len(),
        1,
        "the old holder acquired again: {acquired:?}"
    );
    drop(gauges);
}
