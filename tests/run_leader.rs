//! Issue #11 section 2: of several `prescale run --apply` replicas, exactly one acts — the
//! holder of a `coordination.k8s.io/v1` Lease on a fake API server (`common/fake_lease.rs`).
//!
//! Every replica replays the bundled demo history and applies through a shell
//! `apply_command` that appends the wall-clock time to a file of its own, so a test sees who
//! acted when. The fake API server records every accepted write of the Lease, so for every
//! action the test asks who held the Lease at that instant: it must be the replica that
//! acted. Durations are short (lease 3 s, renew deadline 2 s, retry 0.5 s); every process is
//! killed when its guard drops, also on a panic.

use crate::cli;
use crate::fake_lease;

use cli::{free_port, repo};
use fake_lease::FakeLease;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const LEASE: Duration = Duration::from_secs(3);
const RENEW: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(500);
/// Scheduling on a loaded 2-core machine: the margin a bound may be missed by.
const SLACK: Duration = Duration::from_millis(700);

/// One `prescale run --apply` replica.
struct Replica {
    name: &'static str,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Replica {
    /// Starts replica `name` (also its `POD_NAME`, so its identity is `name_<random>`),
    /// authenticating to `api` with the token `token-<name>`.
    fn start(api: &FakeLease, root: &Path, name: &'static str) -> Replica {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        api.kubeconfig(&dir.join("kubeconfig"), &token(name));
        let port = free_port();
        let demo = std::fs::read_to_string(repo("config/demo.toml")).unwrap();
        let acts = dir.join("acts.txt");
        let apply = format!(
            "sh -c 'echo \"$(date +%s.%N) $1 $2\" >> {}' _ {{target}} {{to}}",
            acts.display()
        );
        let mut text = String::new();
        for line in demo.lines() {
            let line = match line.split_whitespace().next() {
                Some("model") => format!("model = {:?}", repo("models/web.model")),
                Some("decision_log") => format!(
                    "decision_log = {:?}\napply_command = {apply:?}",
                    dir.join("d.jsonl").display().to_string()
                ),
                Some("cycles") => String::new(),
                Some("listen") => format!("listen = \"127.0.0.1:{port}\""),
                Some("dir") => format!("dir = {:?}", repo("data")),
                Some("speed") => "speed = 3000\nallow_apply = true".into(),
                // Acting needs `auto` once preview mode is enforced (issue #9).
                Some("quantile") => format!("{line}\nmode = \"auto\""),
                _ => line.to_string(),
            };
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str(
            "\n[kubernetes]\nkubeconfig = \"kubeconfig\"\n\n[leader_election]\nenabled = true\n\
             namespace = \"prescale\"\nname = \"prescale\"\nlease_duration = \"3s\"\n\
             renew_deadline = \"2s\"\nretry_period = \"500ms\"\n",
        );
        let cfg = dir.join("prescale.toml");
        std::fs::write(&cfg, text).unwrap();
        let log = |n: &str| std::fs::File::create(dir.join(n)).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_prescale"))
            .args(["run", "--apply", "--config", cfg.to_str().unwrap()])
            .env("POD_NAME", name)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log("stdout.txt"))
            .stderr(log("stderr.txt"))
            .spawn()
            .unwrap();
        Replica {
            name,
            dir,
            port,
            child: Some(child),
        }
    }

    /// Wall-clock times of this replica's actions.
    fn acts(&self) -> Vec<SystemTime> {
        std::fs::read_to_string(self.dir.join("acts.txt"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse::<f64>().ok())
            .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(s))
            .collect()
    }

    /// The outcomes in its decision log.
    fn outcomes(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("d.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["outcome"].as_str().map(str::to_string))
            .collect()
    }

    fn output(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.dir.join(n)).unwrap_or_default();
        format!("{}{}", read("stdout.txt"), read("stderr.txt"))
    }

    /// `prescale_leader` as its `/metrics` says.
    fn leader_gauge(&self) -> Option<i64> {
        let body = http_get(self.port, "/metrics")?;
        body.lines()
            .find_map(|l| l.strip_prefix("prescale_leader "))
            .and_then(|v| v.trim().parse().ok())
    }

    fn sigkill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits (bounded) for the exit; returns whether it exited 0.
    fn sigterm(&mut self, bound: Duration) -> bool {
        let Some(c) = self.child.as_mut() else {
            return false;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let t0 = Instant::now();
        while t0.elapsed() < bound {
            if let Ok(Some(s)) = c.try_wait() {
                self.child = None;
                return s.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.sigkill();
        if std::thread::panicking() {
            let out = self.output();
            let tail: Vec<&str> = out.lines().rev().take(15).collect();
            eprintln!("--- replica {} (last lines) ---", self.name);
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
    }
}

fn token(name: &str) -> String {
    format!("token-{name}-5ecret")
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text.split_once("\r\n\r\n")?.1.to_string())
}

/// Polls `f` every 50 ms until it is `Some`, or panics after `limit` naming `what`.
fn wait_for<T>(limit: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The replica whose identity (`name_<random>`) is `holder`.
fn replica_of<'a>(replicas: &'a [Replica], holder: &str) -> &'a Replica {
    replicas
        .iter()
        .find(|r| holder.starts_with(&format!("{}_", r.name)))
        .unwrap_or_else(|| panic!("holder {holder} is none of the replicas"))
}

/// The index of the replica holding the Lease once one acts.
fn leader(api: &FakeLease, replicas: &[Replica]) -> usize {
    wait_for(Duration::from_secs(60), "a replica acts", || {
        let h = api.holder_at(SystemTime::now())?;
        let r = replica_of(replicas, &h);
        (!r.acts().is_empty()).then(|| replicas.iter().position(|x| x.name == r.name).unwrap())
    })
}

/// Exactly one acts at any time: every action of every replica happened while the fake API
/// server had that replica as the Lease's holder.
fn assert_only_the_holder_acted(api: &FakeLease, replicas: &[Replica]) -> usize {
    let mut n = 0;
    for r in replicas {
        for t in r.acts() {
            let holder = api.holder_at(t);
            assert!(
                holder
                    .as_deref()
                    .is_some_and(|h| h.starts_with(&format!("{}_", r.name))),
                "{} acted at {t:?} while the Lease was held by {holder:?}; writes: {:#?}",
                r.name,
                api.writes()
            );
            n += 1;
        }
    }
    n
}

/// When the Lease was first written with a holder among `names`, after `after`.
fn acquired_by(api: &FakeLease, names: &[&str], after: SystemTime) -> Option<(SystemTime, String)> {
    api.writes()
        .into_iter()
        .filter(|w| w.at > after)
        .find_map(|w| {
            let h = w
                .holder
                .filter(|h| names.iter().any(|n| h.starts_with(&format!("{n}_"))))?;
            Some((w.at, h))
        })
}

fn since(a: SystemTime, b: SystemTime) -> Duration {
    b.duration_since(a).unwrap_or_default()
}

fn no_token_printed(replicas: &[Replica]) {
    for r in replicas {
        let out = r.output();
        assert!(
            !out.contains("5ecret"),
            "{} printed a token:\n{out}",
            r.name
        );
    }
}

/// Three replicas: one leads and acts, the others record `skipped (not leader)`; SIGKILL the
/// leader and another takes over within lease duration + retry period of its last renewal.
#[test]
fn three_replicas_one_acts_and_a_killed_leader_is_replaced() {
    let api = FakeLease::start();
    let root = tempfile::tempdir().unwrap();
    let mut replicas: Vec<Replica> = ["a", "b", "c"]
        .into_iter()
        .map(|n| Replica::start(&api, root.path(), n))
        .collect();
    let first = leader(&api, &replicas);
    // Let them all run a while side by side.
    std::thread::sleep(Duration::from_secs(4));
    assert_only_the_holder_acted(&api, &replicas);
    for (i, r) in replicas.iter().enumerate() {
        let outcomes = r.outcomes();
        if i == first {
            assert!(
                outcomes.iter().any(|o| o == "applied"),
                "{}: {outcomes:?}",
                r.name
            );
            assert!(!outcomes.iter().any(|o| o.contains("not leader")));
            assert_eq!(r.leader_gauge(), Some(1), "{}", r.name);
        } else {
            assert!(r.acts().is_empty(), "{} acted", r.name);
            assert!(!outcomes.is_empty(), "{} recorded no decisions", r.name);
            assert!(
                outcomes.iter().all(|o| o == "skipped (not leader)"),
                "{}: {outcomes:?}",
                r.name
            );
            assert_eq!(r.leader_gauge(), Some(0), "{}", r.name);
            assert!(r.output().contains("(apply, not leader)"), "{}", r.name);
        }
    }

    let killed_at = SystemTime::now();
    let last_renewal = api.writes().last().unwrap().at;
    replicas[first].sigkill();
    let others: Vec<&str> = replicas
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != first)
        .map(|(_, r)| r.name)
        .collect();
    let (took_at, holder) = wait_for(
        Duration::from_secs(20),
        "another replica takes over",
        || acquired_by(&api, &others, killed_at),
    );
    let gap = since(last_renewal, took_at);
    eprintln!("SIGKILL: taken over {gap:?} after the last renewal");
    assert!(
        gap <= LEASE + RETRY + SLACK,
        "takeover {gap:?} after the last renewal (lease {LEASE:?} + retry {RETRY:?})"
    );
    assert!(
        gap >= LEASE,
        "taken over {gap:?} after the last renewal: before expiry"
    );
    let next = replica_of(&replicas, &holder).name;
    wait_for(Duration::from_secs(20), "the new leader acts", || {
        replicas
            .iter()
            .find(|r| r.name == next)
            .filter(|r| r.acts().iter().any(|t| *t > took_at))
    });
    assert!(assert_only_the_holder_acted(&api, &replicas) > 0);
    let lease = api.lease("prescale", "prescale").unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1, "{lease}");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 3, "{lease}");
    no_token_printed(&replicas);
    // Only Lease calls, each with its replica's token, and exactly the verbs deploy/role.yaml
    // grants (tests/deploy_manifests.rs holds the Role to get/create/update on leases).
    let verbs: std::collections::BTreeSet<&str> = api
        .requests()
        .iter()
        .map(|r| match r.method.as_str() {
            "GET" => "get",
            "POST" => "create",
            "PUT" => "update",
            m => panic!("unexpected {m} {}", r.uri),
        })
        .collect();
    assert_eq!(verbs, ["create", "get", "update"].into());
    for r in api.requests() {
        assert!(
            r.uri
                .starts_with("/apis/coordination.k8s.io/v1/namespaces/prescale/leases"),
            "{r:?}"
        );
        assert!(
            r.token.is_some_and(|t| t.starts_with("token-")),
            "{}",
            r.uri
        );
    }
}

/// Two replicas; the leader is partitioned from the API server (its requests stall). It stops
/// acting within the renew deadline, before its Lease expires, and the other takes over.
#[test]
fn a_partitioned_leader_steps_down_before_another_takes_over() {
    let api = FakeLease::start();
    let root = tempfile::tempdir().unwrap();
    let replicas: Vec<Replica> = ["a", "b"]
        .into_iter()
        .map(|n| Replica::start(&api, root.path(), n))
        .collect();
    let first = leader(&api, &replicas);
    std::thread::sleep(Duration::from_secs(2));
    let (old, new) = (&replicas[first], &replicas[1 - first]);
    let cut_at = SystemTime::now();
    api.stall(&token(old.name));
    let last_renewal = api
        .writes()
        .iter()
        .rev()
        .find(|w| w.holder.as_deref().is_some_and(|h| h.starts_with(old.name)))
        .unwrap()
        .at;
    let (took_at, _) = wait_for(
        Duration::from_secs(20),
        "the other replica takes over",
        || acquired_by(&api, &[new.name], cut_at),
    );
    // The old leader's last action came before its renew deadline ran out, and so before the
    // Lease could be (and was) taken over.
    let last_act = old.acts().into_iter().max().unwrap();
    assert!(
        since(last_renewal, last_act) < RENEW + SLACK,
        "acted {:?} after its last renewal",
        since(last_renewal, last_act)
    );
    assert!(last_act < took_at, "acted after the takeover");
    // The takeover replaces the Lease read (a PUT, so a racing candidate's fails) and counts
    // the new holder in `leaseTransitions`, as Kubernetes' own leader election does.
    let writes = api.writes();
    let i = writes.iter().position(|w| w.at == took_at).unwrap();
    assert_eq!(writes[i].method, "PUT", "{:#?}", writes[i]);
    assert_eq!(
        writes[i].transitions,
        writes[i - 1].transitions + 1,
        "{:#?}",
        &writes[i - 1..=i]
    );
    eprintln!(
        "partition: last action {:?}, takeover {:?} after the last renewal",
        since(last_renewal, last_act),
        since(last_renewal, took_at)
    );
    assert!(since(last_renewal, took_at) >= LEASE);
    assert!(since(last_renewal, took_at) <= LEASE + RETRY + SLACK);
    wait_for(Duration::from_secs(20), "the new leader acts", || {
        new.acts().into_iter().find(|t| *t > took_at)
    });
    // Still partitioned, the old leader keeps planning and records its decisions as skipped.
    let before = old.outcomes().len();
    wait_for(
        Duration::from_secs(20),
        "the partitioned replica records",
        || {
            let o = old.outcomes();
            (o.len() > before + 3).then_some(())
        },
    );
    let o = old.outcomes();
    assert!(
        o[before..].iter().all(|o| o == "skipped (not leader)"),
        "{:?}",
        &o[before..]
    );
    assert_eq!(old.leader_gauge(), Some(0));
    assert_eq!(new.leader_gauge(), Some(1));
    assert!(old.output().contains("stopped acting"), "{}", old.output());
    assert_only_the_holder_acted(&api, &replicas);
    no_token_printed(&replicas);
}

/// SIGTERM: the leader finishes its cycle, exits 0 and hands the Lease back, so the other
/// replica takes over at its next try rather than after the lease duration.
#[test]
fn sigterm_releases_the_lease_for_a_fast_takeover() {
    let api = FakeLease::start();
    let root = tempfile::tempdir().unwrap();
    let mut replicas: Vec<Replica> = ["a", "b"]
        .into_iter()
        .map(|n| Replica::start(&api, root.path(), n))
        .collect();
    let first = leader(&api, &replicas);
    std::thread::sleep(Duration::from_secs(1));
    let term_at = SystemTime::now();
    assert!(
        replicas[first].sigterm(Duration::from_secs(10)),
        "the leader did not exit 0 within 10 s of SIGTERM"
    );
    let old = replicas[first].name;
    let release = api
        .writes()
        .into_iter()
        .find(|w| w.at > term_at && w.holder.as_deref().unwrap_or("").is_empty())
        .expect("the leader wrote a release");
    assert!(release.token.as_deref() == Some(token(old).as_str()));
    let lease_after = api.requests();
    let put = lease_after
        .iter()
        .rev()
        .find(|r| r.method == "PUT" && r.token.as_deref() == Some(token(old).as_str()))
        .unwrap();
    let body = put.body.as_ref().unwrap();
    assert_eq!(body["spec"]["leaseDurationSeconds"], 1, "{body}");
    assert!(body["spec"]
        .get("holderIdentity")
        .is_none_or(|h| h.is_null() || h == ""));
    assert!(body["metadata"]["resourceVersion"].is_string(), "{body}");
    assert_eq!(put.content_type.as_deref(), Some("application/json"));
    let new = replicas[1 - first].name;
    let (took_at, _) = wait_for(
        Duration::from_secs(10),
        "the other replica takes over",
        || acquired_by(&api, &[new], release.at),
    );
    eprintln!(
        "SIGTERM: exit and release {:?} after the signal, takeover {:?} after the release",
        since(term_at, release.at),
        since(release.at, took_at)
    );
    assert!(
        since(release.at, took_at) <= RETRY + SLACK,
        "took {:?} after the release: it waited for expiry",
        since(release.at, took_at)
    );
    // The old leader's actions all came before it released.
    assert!(replicas[first].acts().iter().all(|t| *t < release.at));
    assert!(replicas[first]
        .output()
        .contains("released Lease prescale/prescale"));
    assert_only_the_holder_acted(&api, &replicas);
    no_token_printed(&replicas);
}
