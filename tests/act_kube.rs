//! Issue #9 section 2: the Kubernetes actuator against a fake API server (no real one can run
//! here) that answers the scale subresource and Events with the API's JSON shapes and records
//! every request, so each test asserts on the exact requests sent, not only on outcomes.

use crate::cli;
use crate::fake_kube;

use fake_kube::FakeKube;
use prescale::act::{Act, KubeActuator, Outcome, Skip};
use prescale::plan::{Decision, DecisionKind, Mode, ObjectKind, ObjectRef};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

const MERGE_PATCH: &str = "application/merge-patch+json";

fn decision(kind: DecisionKind, target: &str, from: u32, to: u32) -> Decision {
    Decision {
        at: 1_700_000_000,
        kind,
        target: target.into(),
        node: None,
        to_node: None,
        from,
        to,
        raw: to,
        forecast: None,
        current: None,
        guards: Vec::new(),
        reason: format!("p90 demand needs {to} replicas"),
    }
}

fn up(target: &str, from: u32, to: u32) -> Decision {
    decision(DecisionKind::ScaleUp, target, from, to)
}

/// `(workload, "deployment ns/name")` → the actuator's object map.
fn objects(list: &[(&str, ObjectKind, &str)]) -> HashMap<String, ObjectRef> {
    list.iter()
        .map(|(w, k, r)| (w.to_string(), ObjectRef::parse(*k, r).unwrap()))
        .collect()
}

fn actuator(fake: &FakeKube, list: &[(&str, ObjectKind, &str)], timeout: Duration) -> KubeActuator {
    let mut cfg = kube::Config::new(fake.url().parse().unwrap());
    cfg.default_retry = false;
    let client = kube::Client::try_from(cfg).unwrap();
    KubeActuator::new(client, objects(list), timeout)
}

async fn apply(a: &mut KubeActuator, ds: &[Decision]) -> Vec<Outcome> {
    use prescale::act::Actuator;
    a.apply(ds).await
}

/// The query's parameters, as a server splits them (empty ones dropped).
fn query_params(r: &fake_kube::Recorded) -> Vec<String> {
    r.query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

const D: ObjectKind = ObjectKind::Deployment;
const S: ObjectKind = ObjectKind::StatefulSet;
const SECOND: Duration = Duration::from_secs(1);

#[tokio::test]
async fn a_change_is_a_get_then_a_conditional_merge_patch_then_an_event() {
    let fake = FakeKube::start();
    fake.add("deployments", "shop", "web", 3);
    fake.add("statefulsets", "shop", "db", 4);
    let mut a = actuator(
        &fake,
        &[("web", D, "shop/web"), ("db", S, "shop/db")],
        10 * SECOND,
    );
    let ds = vec![
        up("web", 3, 5),
        decision(DecisionKind::ScaleDown, "db", 4, 2),
        decision(DecisionKind::Hold, "web", 5, 5),
    ];
    let out = apply(&mut a, &ds).await;
    assert_eq!(
        out,
        [
            Outcome::Applied,
            Outcome::Applied,
            Outcome::Skipped(Skip::Nothing)
        ]
    );
    assert_eq!(fake.replicas("deployments", "shop", "web"), 5);
    assert_eq!(fake.replicas("statefulsets", "shop", "db"), 2);
    for (resource, name, version, to) in [
        ("deployments", "web", "1", 5),
        ("statefulsets", "db", "2", 2),
    ] {
        let reqs = fake.requests_on(resource, "shop", name);
        let path = format!("/apis/apps/v1/namespaces/shop/{resource}/{name}/scale");
        let seen: Vec<(&str, &str)> = reqs
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(seen, [("GET", path.as_str()), ("PATCH", path.as_str())]);
        let patch = &reqs[1];
        // kube writes `?&fieldManager=…`; what counts is the parameter set, as the server parses it.
        assert_eq!(query_params(patch), ["fieldManager=prescale"]);
        assert_eq!(patch.content_type.as_deref(), Some(MERGE_PATCH));
        assert_eq!(
            patch.body,
            Some(json!({"metadata": {"resourceVersion": version}, "spec": {"replicas": to}}))
        );
        assert_eq!(patch.status, Some(200));
    }
    // One Event per change, on the object, saying why.
    let events = fake.events();
    assert_eq!(events.len(), 2, "{events:#?}");
    let web = events
        .iter()
        .find(|e| e["involvedObject"]["name"] == "web")
        .expect("an Event on web");
    assert_eq!(web["involvedObject"]["kind"], "Deployment");
    assert_eq!(web["involvedObject"]["apiVersion"], "apps/v1");
    assert_eq!(web["involvedObject"]["namespace"], "shop");
    assert!(web["involvedObject"]["uid"]
        .as_str()
        .is_some_and(|u| !u.is_empty()));
    assert_eq!(web["reason"], "PrescaleScaled");
    assert_eq!(web["type"], "Normal");
    assert_eq!(web["reportingComponent"], "prescale");
    // Which replica scaled: never left out (the binary's test below sets POD_NAME).
    let instance = web["reportingInstance"].as_str().unwrap_or_default();
    assert!(!instance.is_empty(), "{web}");
    assert_eq!(web["source"]["host"], instance, "{web}");
    assert_eq!(
        web["message"],
        "3 → 5 replicas: p90 demand needs 5 replicas"
    );
    let posts: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path)
        .collect();
    assert_eq!(posts, ["/api/v1/namespaces/shop/events"; 2]);
    assert_eq!(a.last_set("web"), Some(5));
}

#[tokio::test]
async fn a_conflict_is_retried_once_on_fresh_state_and_a_second_one_fails() {
    let fake = FakeKube::start();
    fake.add("deployments", "shop", "web", 3);
    fake.add("deployments", "shop", "api", 3);
    fake.conflicts("deployments", "shop", "web", 1);
    fake.conflicts("deployments", "shop", "api", 2);
    let mut a = actuator(
        &fake,
        &[("web", D, "shop/web"), ("api", D, "shop/api")],
        10 * SECOND,
    );
    let out = apply(&mut a, &[up("web", 3, 6), up("api", 3, 7)]).await;
    assert_eq!(out[0], Outcome::Applied);
    assert!(
        out[1]
            .to_string()
            .starts_with("failed: conflict: Operation cannot be fulfilled"),
        "{}",
        out[1]
    );
    let web = fake.requests_on("deployments", "shop", "web");
    let calls: Vec<(&str, Option<u16>)> =
        web.iter().map(|r| (r.method.as_str(), r.status)).collect();
    assert_eq!(
        calls,
        [
            ("GET", Some(200)),
            ("PATCH", Some(409)),
            ("GET", Some(200)),
            ("PATCH", Some(200))
        ]
    );
    // The retry carries the version read again, not the stale one.
    let v =
        |r: &fake_kube::Recorded| r.body.as_ref().unwrap()["metadata"]["resourceVersion"].clone();
    assert_ne!(v(&web[1]), v(&web[3]));
    assert_eq!(fake.replicas("deployments", "shop", "web"), 6);
    // Only once: GET, PATCH 409, GET, PATCH 409, and no third try.
    assert_eq!(fake.requests_on("deployments", "shop", "api").len(), 4);
    assert_eq!(fake.replicas("deployments", "shop", "api"), 3);
    assert_eq!(fake.events().len(), 1);
}

#[tokio::test]
async fn refusals_fail_with_the_apis_reason_and_the_others_are_applied() {
    let fake = FakeKube::start();
    for name in ["a", "b", "c", "d", "e"] {
        fake.add("deployments", "shop", name, 2);
    }
    fake.fail("deployments", "shop", "a", 403);
    fake.fail("deployments", "shop", "b", 404);
    fake.fail("deployments", "shop", "c", 500);
    let list: Vec<(&str, ObjectKind, String)> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| (*n, D, format!("shop/{n}")))
        .collect();
    let list: Vec<(&str, ObjectKind, &str)> =
        list.iter().map(|(w, k, r)| (*w, *k, r.as_str())).collect();
    let mut a = actuator(&fake, &list, 10 * SECOND);
    let ds: Vec<Decision> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| up(n, 2, 4))
        .collect();
    let out = apply(&mut a, &ds).await;
    let words: Vec<String> = out.iter().map(|o| o.to_string()).collect();
    assert!(
        words[0].starts_with("failed: forbidden: deployments.apps \"a\" is forbidden: User"),
        "{}",
        words[0]
    );
    assert_eq!(
        words[1],
        "failed: not found: deployments.apps \"b\" not found"
    );
    assert_eq!(
        words[2],
        "failed: 500 InternalError: Internal error occurred: etcdserver: request timed out"
    );
    assert_eq!(&words[3..], ["applied", "applied"]);
    assert_eq!(fake.replicas("deployments", "shop", "d"), 4);
    assert_eq!(fake.replicas("deployments", "shop", "e"), 4);
    // A refused GET is not followed by a PATCH.
    for n in ["a", "b", "c"] {
        let reqs = fake.requests_on("deployments", "shop", n);
        assert_eq!(reqs.len(), 1, "{n}: {reqs:#?}");
        assert_eq!(reqs[0].method, "GET");
    }
    assert_eq!(fake.events().len(), 2);
    assert_eq!(a.last_set("a"), None);
}

/// Seven Deployments at 1 replica, the first of which (`s`) never answers.
const STALLED: [&str; 7] = ["s", "a", "b", "c", "d", "e", "f"];

/// [`STALLED`]'s `namespace/name` references.
const STALLED_REFS: [&str; 7] = [
    "shop/s", "shop/a", "shop/b", "shop/c", "shop/d", "shop/e", "shop/f",
];

/// The fake holding [`STALLED`], with `s` stalled.
fn stalled_fake() -> FakeKube {
    let fake = FakeKube::start();
    for n in STALLED {
        fake.add("deployments", "shop", n, 1);
    }
    fake.stall("deployments", "shop", "s");
    fake
}

/// The stalled object timed out and every other one was patched to 3 before that timeout ran
/// out: none waited for it.
fn assert_not_held_by_the_stall(fake: &FakeKube, out: &[Outcome], timeout: Duration) {
    assert_eq!(
        out[0].to_string(),
        "failed: timeout: GET had no answer within 1s 500ms"
    );
    assert!(out[1..].iter().all(|o| *o == Outcome::Applied), "{out:?}");
    let stalled_at = fake.requests_on("deployments", "shop", "s")[0].at;
    for n in &STALLED[1..] {
        let reqs = fake.requests_on("deployments", "shop", n);
        let patched = reqs.iter().find(|r| r.method == "PATCH").expect("a PATCH");
        assert!(
            patched.at < stalled_at + timeout,
            "{n} waited for the stall"
        );
        assert_eq!(fake.replicas("deployments", "shop", n), 3);
    }
}

#[tokio::test]
async fn a_stalled_object_times_out_while_the_others_are_applied() {
    let fake = stalled_fake();
    let list: Vec<(&str, ObjectKind, &str)> = STALLED
        .iter()
        .zip(STALLED_REFS)
        .map(|(n, r)| (*n, D, r))
        .collect();
    let timeout = Duration::from_millis(1500);
    let mut a = actuator(&fake, &list, timeout);
    let ds: Vec<Decision> = STALLED.iter().map(|n| up(n, 1, 3)).collect();
    let t0 = Instant::now();
    let out = apply(&mut a, &ds).await;
    let took = t0.elapsed();
    // Bounded by the timeout, not by the stall, and the others did not wait for it: six
    // changes on three free slots finished while the stalled GET was still held.
    assert!(took < timeout + SECOND, "{took:?}");
    assert_not_held_by_the_stall(&fake, &out, timeout);
}

/// Leadership lapsing while a PATCH is out (sent, not answered) abandons the change, but not
/// as if nothing had been sent: the count asked for is logged and remembered, so the next read
/// that finds it takes it for prescale's own change landing, not for someone else's.
#[tokio::test]
async fn a_change_abandoned_with_its_patch_out_remembers_the_count_asked() {
    use prescale::act::Actuator;
    use prescale::leader::Leadership;
    let fake = FakeKube::start();
    fake.add("deployments", "shop", "web", 1);
    fake.apply_then_stall("deployments", "shop", "web");
    let mut a = actuator(&fake, &[("web", D, "shop/web")], 10 * SECOND);
    let lease = Leadership::lapsing_in(Duration::from_millis(300));
    let out = a.apply_led(&[up("web", 1, 5)], &lease).await;
    assert_eq!(
        out[0].to_string(),
        "failed: abandoned: this replica stopped leading while it ran; no answer, it may have \
         landed: asked 5"
    );
    assert_eq!(fake.replicas("deployments", "shop", "web"), 5);
    fake.heal("deployments", "shop", "web");
    let out = apply(&mut a, &[up("web", 1, 6)]).await;
    assert_eq!(out, [Outcome::Skipped(Skip::Landed { live: 5 })]);
    assert_eq!(a.last_set("web"), Some(5));

    // A PATCH answered applied, the lapse coming while its Event is out: applied, and the
    // count is prescale's (only the Event was cut off).
    fake.stall_events();
    let lease = Leadership::lapsing_in(Duration::from_millis(300));
    let out = a.apply_led(&[up("web", 5, 7)], &lease).await;
    assert_eq!(out, [Outcome::Applied]);
    assert_eq!(fake.replicas("deployments", "shop", "web"), 7);
    assert_eq!(a.last_set("web"), Some(7));
}

/// Asked to stop (SIGTERM) while every slot is held by a stalled object, the changes still
/// waiting start nothing once they get a slot: after the stop, no request leaves for them,
/// and the cycle ends with the stalled ones' timeouts, not a change later.
#[tokio::test]
async fn after_a_stop_the_changes_still_waiting_start_nothing() {
    let fake = FakeKube::start();
    let names = ["s1", "s2", "s3", "s4", "w5", "w6"];
    for n in names {
        fake.add("deployments", "shop", n, 1);
    }
    for n in &names[..4] {
        fake.stall("deployments", "shop", n);
    }
    let refs: Vec<String> = names.iter().map(|n| format!("shop/{n}")).collect();
    let list: Vec<(&str, ObjectKind, &str)> = names
        .iter()
        .zip(&refs)
        .map(|(n, r)| (*n, D, r.as_str()))
        .collect();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut a = actuator(&fake, &list, Duration::from_millis(1500)).with_stop(rx);
    let ds: Vec<Decision> = names.iter().map(|n| up(n, 1, 3)).collect();
    let stopper = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send(true).unwrap();
    };
    let (out, ()) = tokio::join!(apply(&mut a, &ds), stopper);
    for o in &out[..4] {
        assert!(o.to_string().contains("timeout"), "{out:?}");
    }
    for (n, o) in names[4..].iter().zip(&out[4..]) {
        assert_eq!(o.to_string(), "failed: not started: prescale is stopping");
        assert!(fake.requests_on("deployments", "shop", n).is_empty(), "{n}");
        assert_eq!(fake.replicas("deployments", "shop", n), 1);
    }
}

/// Under leader election the changes still run concurrently (at most 4), each asking for
/// leadership right before its first request: a stalled object holds up none of the others;
/// a follower sends nothing; and a lease lapsing mid-cycle abandons the stalled change at the
/// lapse, not at its timeout, while nothing starts after it.
#[tokio::test]
async fn under_leader_election_a_stalled_object_does_not_hold_up_the_others() {
    use prescale::leader::Leadership;
    let fake = stalled_fake();
    let list: Vec<(&str, ObjectKind, &str)> = STALLED
        .iter()
        .zip(STALLED_REFS)
        .map(|(n, r)| (*n, D, r))
        .collect();
    let timeout = Duration::from_millis(1500);
    let ds: Vec<Decision> = STALLED.iter().map(|n| up(n, 1, 3)).collect();
    let led = |l: Leadership| {
        Act::dry_run(Box::new(std::io::sink()), None)
            .with_actuator(Box::new(actuator(&fake, &list, timeout)))
            .with_leadership(l)
    };

    let t0 = Instant::now();
    let out = led(Leadership::always()).handle(1, 0, &ds).await.unwrap();
    let took = t0.elapsed();
    assert!(took < timeout + SECOND, "{took:?}");
    // One at a time, the six after the stalled one would all have waited for its timeout.
    assert_not_held_by_the_stall(&fake, &out, timeout);

    // A follower sends nothing at all.
    let sent = fake.requests().len();
    let out = led(Leadership::lapsing_in(Duration::ZERO))
        .handle(2, 0, &ds)
        .await
        .unwrap();
    assert!(out.iter().all(|o| *o == Outcome::Skipped(Skip::NotLeader)));
    assert_eq!(fake.requests().len(), sent);

    // The lease lapses 300 ms in: the stalled change is abandoned then (recorded failed, not
    // believed done), well before its 1.5 s timeout; the others were done by then.
    let ds: Vec<Decision> = STALLED.iter().map(|n| up(n, 3, 4)).collect();
    let t0 = Instant::now();
    let out = led(Leadership::lapsing_in(Duration::from_millis(300)))
        .handle(3, 0, &ds)
        .await
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(
        out[0].to_string(),
        "failed: abandoned: this replica stopped leading while it ran"
    );
    assert!(took < timeout, "{took:?}");
    assert!(out[1..].iter().all(|o| *o == Outcome::Applied), "{out:?}");
}

#[tokio::test]
async fn a_count_changed_elsewhere_is_left_and_then_gone_on_from() {
    let fake = FakeKube::start();
    fake.add("deployments", "shop", "web", 3);
    let mut a = actuator(&fake, &[("web", D, "shop/web")], 10 * SECOND);
    assert_eq!(apply(&mut a, &[up("web", 3, 5)]).await, [Outcome::Applied]);
    // A person scales web to 8.
    fake.set_replicas("deployments", "shop", "web", 8);
    let before = fake.requests().len();
    let out = apply(&mut a, &[up("web", 5, 6)]).await;
    assert_eq!(out, [Outcome::Skipped(Skip::ChangedElsewhere { live: 8 })]);
    assert_eq!(out[0].to_string(), "skipped (changed elsewhere: live 8)");
    let after: Vec<String> = fake.requests()[before..]
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(after, ["GET"], "no PATCH over a person's change");
    assert_eq!(fake.replicas("deployments", "shop", "web"), 8);
    assert_eq!(a.last_set("web"), Some(8));
    // The next cycle plans from 8, and prescale acts again from there.
    assert_eq!(apply(&mut a, &[up("web", 8, 9)]).await, [Outcome::Applied]);
    assert_eq!(fake.replicas("deployments", "shop", "web"), 9);
}

/// A replica read older than prescale's last change plans from the count before it: "scale-up
/// 10 → 15" while the workload runs the 20 prescale set would PATCH 20 → 15, a scale-down no
/// guard saw. It is left as prescale's own count landed, and the next cycle plans from 20.
#[tokio::test]
async fn a_decision_planned_from_a_count_before_prescales_last_change_is_left() {
    let fake = FakeKube::start();
    fake.add("deployments", "shop", "web", 10);
    let mut a = actuator(&fake, &[("web", D, "shop/web")], 10 * SECOND);
    assert_eq!(
        apply(&mut a, &[up("web", 10, 20)]).await,
        [Outcome::Applied]
    );
    let before = fake.requests().len();
    let out = apply(&mut a, &[up("web", 10, 15)]).await;
    assert_eq!(out, [Outcome::Skipped(Skip::Landed { live: 20 })]);
    let after: Vec<String> = fake.requests()[before..]
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(after, ["GET"], "no PATCH from a count older than its own");
    assert_eq!(fake.replicas("deployments", "shop", "web"), 20);
    assert_eq!(a.last_set("web"), Some(20));
    assert_eq!(
        apply(&mut a, &[up("web", 20, 22)]).await,
        [Outcome::Applied]
    );
    assert_eq!(fake.replicas("deployments", "shop", "web"), 22);
}

/// Before prescale has set any count, the decision's `from` is what it expects to find: a
/// first `--apply` that planned "scale-up 2 → 4" from a count it never read (the log held only
/// dry-runs, the replica read failed) must not PATCH 20 → 4, which no scale-down guard saw.
#[tokio::test]
async fn before_any_count_is_set_a_live_count_other_than_the_planned_from_is_left() {
    let fake = FakeKube::start();
    fake.add("deployments", "shop", "web", 20);
    fake.add("deployments", "shop", "api", 3);
    let mut a = actuator(
        &fake,
        &[("web", D, "shop/web"), ("api", D, "shop/api")],
        10 * SECOND,
    );
    assert_eq!(a.last_set("web"), None);
    let out = apply(&mut a, &[up("web", 2, 4), up("api", 3, 5)]).await;
    assert_eq!(
        out,
        [
            Outcome::Skipped(Skip::ChangedElsewhere { live: 20 }),
            Outcome::Applied
        ]
    );
    let methods: Vec<String> = fake
        .requests_on("deployments", "shop", "web")
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(
        methods,
        ["GET"],
        "no PATCH over a count it did not plan from"
    );
    assert_eq!(fake.replicas("deployments", "shop", "web"), 20);
    assert_eq!(fake.replicas("deployments", "shop", "api"), 5);
    // The live count is adopted: the next cycle plans from 20 and acts from there.
    assert_eq!(a.last_set("web"), Some(20));
    assert_eq!(
        apply(&mut a, &[up("web", 20, 22)]).await,
        [Outcome::Applied]
    );
    assert_eq!(fake.replicas("deployments", "shop", "web"), 22);
    // A count already where the decision wants it is not written, whatever it was planned from.
    fake.set_replicas("deployments", "shop", "api", 7);
    let fresh = &mut actuator(&fake, &[("api", D, "shop/api")], 10 * SECOND);
    assert_eq!(apply(fresh, &[up("api", 4, 7)]).await, [Outcome::Applied]);
    assert_eq!(fresh.last_set("api"), Some(7));
}

/// A PATCH applied whose answer never came fails (the change is not believed), and the next
/// read finds its count: that is prescale's own change landing, left this cycle without being
/// taken for a person's, and gone on from after.
#[tokio::test]
async fn an_unanswered_patch_that_landed_is_not_taken_for_someone_elses_change() {
    let fake = FakeKube::start();
    fake.add("deployments", "shop", "web", 3);
    let mut a = actuator(&fake, &[("web", D, "shop/web")], SECOND);
    fake.apply_then_stall("deployments", "shop", "web");
    let out = apply(&mut a, &[up("web", 3, 5)]).await;
    assert_eq!(
        out[0].to_string(),
        "failed: timeout: PATCH had no answer within 1s; no answer, it may have landed: asked 5"
    );
    assert_eq!(fake.replicas("deployments", "shop", "web"), 5, "it landed");
    assert_eq!(a.last_set("web"), None);
    fake.heal("deployments", "shop", "web");
    // The next cycle still plans from 3 (the failure is not believed) and wants 6.
    let before = fake.requests().len();
    let out = apply(&mut a, &[up("web", 3, 6)]).await;
    assert_eq!(out, [Outcome::Skipped(Skip::Landed { live: 5 })]);
    assert_eq!(
        out[0].to_string(),
        "skipped (earlier change landed: live 5)"
    );
    assert_eq!(
        out[0].changed_elsewhere(),
        None,
        "not counted as a person's"
    );
    assert_eq!(out[0].live_count(), Some(5));
    let methods: Vec<String> = fake.requests()[before..]
        .iter()
        .map(|r| r.method.clone())
        .collect();
    assert_eq!(methods, ["GET"]);
    assert_eq!(a.last_set("web"), Some(5));
    assert_eq!(apply(&mut a, &[up("web", 5, 6)]).await, [Outcome::Applied]);
    assert_eq!(fake.replicas("deployments", "shop", "web"), 6);
    // Settled: the same count later is someone else's again, not a landing.
    fake.set_replicas("deployments", "shop", "web", 5);
    assert_eq!(
        apply(&mut a, &[up("web", 6, 7)]).await,
        [Outcome::Skipped(Skip::ChangedElsewhere { live: 5 })]
    );
}

/// The same lost answer, then a restart: what the PATCH asked for reaches the decision log,
/// the next process reads it back from the log's tail, and finding that count live reads as
/// the change having landed, not as someone else's (which it counted before: pending counts
/// lived in memory only).
#[tokio::test]
async fn an_unanswered_patch_that_landed_is_recognised_after_a_restart() {
    use prescale::act::{read_tail, Act, DecisionLog, TailOptions};
    let fake = FakeKube::start();
    fake.add("deployments", "shop", "web", 3);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("d.jsonl");
    let first = actuator(&fake, &[("web", D, "shop/web")], SECOND);
    fake.apply_then_stall("deployments", "shop", "web");
    {
        let mut act = Act::dry_run(Box::new(Sink), Some(DecisionLog::open(&log).unwrap()))
            .with_actuator(Box::new(first));
        let out = act
            .handle(1, 1_700_000_000, &[up("web", 3, 5)])
            .await
            .unwrap();
        assert!(out[0].is_failed(), "{out:?}");
        act.flush().unwrap();
    }
    assert_eq!(fake.replicas("deployments", "shop", "web"), 5, "it landed");
    fake.heal("deployments", "shop", "web");
    // The restart: a new actuator from the log's tail, as `prescale run --apply` builds it.
    let tail = read_tail(
        &log,
        TailOptions {
            applied_only: true,
            ..TailOptions::default()
        },
    )
    .unwrap();
    assert_eq!(tail.pending.get("web"), Some(&5), "{tail:?}");
    let mut second = actuator(&fake, &[("web", D, "shop/web")], SECOND)
        .with_last_set(tail.last_set)
        .with_pending(tail.pending);
    let out = apply(&mut second, &[up("web", 3, 6)]).await;
    assert_eq!(out, [Outcome::Skipped(Skip::Landed { live: 5 })]);
    assert_eq!(out[0].changed_elsewhere(), None);
}

/// A sink for the act stage's table.
struct Sink;
impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_preview_workload_is_never_patched_even_under_apply() {
    let fake = FakeKube::start();
    fake.add("deployments", "shop", "web", 3);
    fake.add("deployments", "shop", "api", 3);
    let a = actuator(
        &fake,
        &[("web", D, "shop/web"), ("api", D, "shop/api")],
        10 * SECOND,
    );
    let modes = HashMap::from([
        ("web".to_string(), Mode::Auto),
        ("api".to_string(), Mode::Preview),
    ]);
    let mut act = Act::dry_run(Box::new(Sink), None)
        .with_actuator(Box::new(a))
        .with_modes(modes);
    let out = act
        .handle(1, 1_700_000_000, &[up("web", 3, 5), up("api", 3, 5)])
        .await
        .unwrap();
    assert_eq!(out, [Outcome::Applied, Outcome::Skipped(Skip::Preview)]);
    assert_eq!(out[1].to_string(), "skipped (preview)");
    assert!(fake.requests_on("deployments", "shop", "api").is_empty());
    assert_eq!(fake.replicas("deployments", "shop", "api"), 3);
    assert_eq!(fake.requests_on("deployments", "shop", "web").len(), 2);
}

#[tokio::test]
async fn a_refused_event_does_not_undo_the_change() {
    let fake = FakeKube::start();
    fake.add("deployments", "shop", "web", 3);
    fake.fail_events(403);
    let mut a = actuator(&fake, &[("web", D, "shop/web")], 10 * SECOND);
    assert_eq!(apply(&mut a, &[up("web", 3, 4)]).await, [Outcome::Applied]);
    assert_eq!(fake.replicas("deployments", "shop", "web"), 4);
    let posts: Vec<Option<u16>> = fake
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.status)
        .collect();
    assert_eq!(posts, [Some(403)]);
    assert_eq!(a.last_set("web"), Some(4));
}

/// The demo configuration acting through the fake (kubeconfig in `dir`), with web in `auto`
/// mode, its exporter on `port` and a limit of `cycles`; returns its path.
fn demo_config(dir: &std::path::Path, port: u16, cycles: u32) -> std::path::PathBuf {
    let cfg = cli::demo_config(dir, |line| match cli::key(line) {
        "decision_log" => Some(format!(
            "decision_log = {:?}\nactuator = \"kubernetes\"",
            dir.join("d.jsonl").display().to_string()
        )),
        "cycles" => Some(format!("cycles = {cycles}")),
        "listen" => Some(cli::listen_line(Some(port))),
        _ if line.trim() == "name = \"web\"" => {
            fake_kube::demo_object(line).map(|l| format!("{l}\nmode = \"auto\""))
        }
        _ => fake_kube::demo_object(line),
    });
    fake_kube::with_kubernetes(&cfg, "");
    cfg
}

/// After a restart, the count prescale last set comes from the decision log: a live count
/// that differs from the newest applied one was changed while prescale was down, and is left
/// (`skipped (changed elsewhere: live N)`, no PATCH), not overwritten by the first change.
#[test]
fn after_a_restart_a_count_changed_meanwhile_is_left() {
    let fake = FakeKube::start();
    // The log says prescale last set web to 3; someone has scaled it to 9 since.
    fake.add("deployments", "shop", "web", 9);
    fake.add("deployments", "shop", "api", 2);
    fake.add("statefulsets", "shop", "db-readers", 1);
    let dir = tempfile::tempdir().unwrap();
    fake.kubeconfig(&dir.path().join("kubeconfig"));
    let cfg = demo_config(dir.path(), cli::free_port(), 1);
    let mut before = up("web", 2, 3);
    before.at = 1_400_000_000;
    let record = json!({"cycle": 7, "decision": before, "applied": true, "outcome": "applied"});
    std::fs::write(dir.path().join("d.jsonl"), format!("{record}\n")).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(["run", "--apply", "--config", cfg.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let output = cli::text(&o);
    assert!(o.status.success(), "{output}");
    let log = cli::log_lines(dir.path());
    let web: Vec<&serde_json::Value> = log
        .iter()
        .skip(1)
        .filter(|l| l["decision"]["target"] == "web" && l["decision"]["kind"] != "place")
        .collect();
    assert_eq!(web.len(), 1, "{log:#?}");
    assert_eq!(
        web[0]["decision"]["from"], 3,
        "planned from the log's count"
    );
    assert_eq!(
        web[0]["outcome"], "skipped (changed elsewhere: live 9)",
        "{:#}\n{output}",
        web[0]
    );
    let reqs = fake.requests_on("deployments", "shop", "web");
    assert!(!reqs.is_empty(), "web was read: {output}");
    assert!(reqs.iter().all(|r| r.method == "GET"), "{reqs:#?}");
    assert_eq!(fake.replicas("deployments", "shop", "web"), 9);
    assert!(fake.events().is_empty());
}

/// The real `prescale run --apply` against the fake through a kubeconfig file: only the
/// `auto` workload is patched, a person's override is left alone, counted and planned from.
#[test]
fn prescale_run_apply_scales_through_the_api_and_does_not_fight_a_person() {
    let fake = FakeKube::start();
    fake.add("deployments", "shop", "web", 2);
    fake.add("deployments", "shop", "api", 2);
    fake.add("statefulsets", "shop", "db-readers", 1);
    // Whenever prescale scales web, a person sets it 3 higher right after.
    fake.person_after_patch("deployments", "shop", "web", 3);
    let dir = tempfile::tempdir().unwrap();
    fake.kubeconfig(&dir.path().join("kubeconfig"));
    let port = cli::free_port();
    let cfg = demo_config(dir.path(), port, 300);
    let out = std::fs::File::create(dir.path().join("out.txt")).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(["run", "--apply", "--config", cfg.to_str().unwrap()])
        .env("RUST_LOG", "warn")
        .env("POD_NAME", "prescale-0")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let mut running = cli::Running(child, None);
    let series = "prescale_external_changes_total{workload=\"web\"}";
    let t0 = Instant::now();
    let mut metrics = None;
    while t0.elapsed() < Duration::from_secs(60) {
        if let Some(m) =
            cli::scrape(port).filter(|m| cli::sample(m, series).is_some_and(|v| v >= 1.0))
        {
            metrics = Some(m);
            break;
        }
        if running.0.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = std::fs::read_to_string(dir.path().join("out.txt")).unwrap_or_default();
    let metrics = metrics.unwrap_or_else(|| panic!("no external change counted:\n{output}"));
    assert!(
        cli::sample(
            &metrics,
            "prescale_actions_total{workload=\"web\",outcome=\"applied\"}"
        )
        .is_some_and(|v| v >= 1.0),
        "{metrics}"
    );
    // The cycle after the override must be in the log before the run is stopped.
    let t1 = Instant::now();
    while t1.elapsed() < Duration::from_secs(20) && elsewhere_then_next(dir.path()) == 0 {
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = running.0.kill();
    let _ = running.0.wait();

    // Only the auto workload was touched; preview ones were not even read.
    assert!(fake.requests_on("deployments", "shop", "api").is_empty());
    assert!(fake
        .requests_on("statefulsets", "shop", "db-readers")
        .is_empty());
    let web = fake.requests_on("deployments", "shop", "web");
    let patches: Vec<_> = web.iter().filter(|r| r.method == "PATCH").collect();
    assert!(!patches.is_empty(), "{output}");
    for p in &patches {
        assert_eq!(query_params(p), ["fieldManager=prescale"]);
        assert_eq!(p.content_type.as_deref(), Some(MERGE_PATCH));
    }
    let ok = patches.iter().filter(|p| p.status == Some(200)).count();
    assert_eq!(fake.events().len(), ok, "an Event per applied change");
    for e in fake.events() {
        assert_eq!(e["reportingInstance"], "prescale-0", "{e}");
        assert_eq!(e["source"]["host"], "prescale-0", "{e}");
    }

    // The log: web's changed-elsewhere outcome, and the next web decision plans from it.
    assert!(elsewhere_then_next(dir.path()) >= 1, "{output}");
    let log = cli::log_lines(dir.path());
    for l in log.iter().filter(|l| l["decision"]["target"] == "api") {
        let o = l["outcome"].as_str().unwrap();
        assert!(o == "skipped (preview)" || o == "skipped", "{l}");
    }
    assert!(!output.contains("fake-token"), "{output}");
}

/// How many of web's `skipped (changed elsewhere: live L)` records the log follows with a web
/// decision; panics if such a next decision does not start from L.
fn elsewhere_then_next(dir: &std::path::Path) -> usize {
    // Read while prescale may be appending: a last line half written is skipped.
    let log: Vec<serde_json::Value> = std::fs::read_to_string(dir.join("d.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Replica decisions only: a node decision placing web's replicas names web too.
    let web: Vec<&serde_json::Value> = log
        .iter()
        .filter(|l| l["decision"]["target"] == "web" && l["decision"]["node"].is_null())
        .collect();
    let mut checked = 0;
    for pair in web.windows(2) {
        let outcome = pair[0]["outcome"].as_str().unwrap_or("");
        if let Some(live) = outcome
            .strip_prefix("skipped (changed elsewhere: live ")
            .and_then(|r| r.strip_suffix(')'))
        {
            let live: u64 = live.parse().unwrap();
            assert_eq!(pair[1]["decision"]["from"], live, "{pair:#?}");
            checked += 1;
        }
    }
    checked
}
