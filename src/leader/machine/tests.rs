//! The election's rules on a fake clock: instants are a base plus offsets, so nothing sleeps.

use super::*;

const LEASE: Duration = Duration::from_secs(15);
const RENEW: Duration = Duration::from_secs(10);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A fake clock: `at(s)` is `s` seconds after a fixed origin, on both clocks.
struct Clock {
    mono: Instant,
    wall: SystemTime,
}

impl Clock {
    fn new() -> Self {
        Clock {
            mono: Instant::now(),
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000),
        }
    }
    fn at(&self, s: f64) -> (Instant, SystemTime) {
        (self.mono + secs(s), self.wall + secs(s))
    }
}

/// The API server's side: one Lease with a version, as the fake in tests/common does.
#[derive(Default)]
struct Server {
    lease: Option<(LeaseRecord, u64)>,
}

impl Server {
    fn get(&self) -> Option<(LeaseRecord, String)> {
        self.lease.clone().map(|(r, v)| (r, v.to_string()))
    }
    /// Applies a create or update; `Err` on a conflict, like a 409.
    fn write(&mut self, next: &Next) -> Result<(LeaseRecord, String), ()> {
        match (next, &self.lease) {
            (Next::Create(r), None) => self.lease = Some((r.clone(), 1)),
            (
                Next::Update {
                    record,
                    resource_version,
                },
                Some((_, v)),
            ) if *resource_version == v.to_string() => self.lease = Some((record.clone(), v + 1)),
            _ => return Err(()),
        }
        Ok(self.get().unwrap())
    }
}

/// One full attempt (GET, decide, write) starting at `t` seconds and answered at once.
fn attempt(e: &mut Elector, server: &mut Server, clock: &Clock, t: f64) -> Next {
    let (now, wall) = clock.at(t);
    e.observe(server.get(), now);
    let next = e.next(now, wall);
    match &next {
        Next::Follow { .. } => e.follow(now),
        w => match server.write(w) {
            Ok((r, v)) => {
                e.succeeded(r, v, now, now);
            }
            Err(()) => e.follow(now),
        },
    }
    next
}

#[test]
fn the_first_candidate_creates_the_lease_and_leads() {
    let clock = Clock::new();
    let mut server = Server::default();
    let mut a = Elector::new("a", LEASE, RENEW);
    let next = attempt(&mut a, &mut server, &clock, 0.0);
    let Next::Create(r) = next else {
        panic!("{next:?}")
    };
    assert_eq!(r.holder(), Some("a"));
    assert_eq!(r.lease_duration_seconds, 15);
    assert_eq!(r.transitions, 0);
    assert_eq!(r.acquire_time, Some(clock.at(0.0).1));
    assert!(a.is_leader(clock.at(0.0).0));
    assert!(a.is_leader(clock.at(9.9).0));
    // Not renewed: it stops leading at the renew deadline, on its own clock.
    assert!(!a.is_leader(clock.at(10.0).0));
}

#[test]
fn a_second_candidate_follows_until_the_lease_expires_on_its_own_clock() {
    let clock = Clock::new();
    let mut server = Server::default();
    let mut a = Elector::new("a", LEASE, RENEW);
    let mut b = Elector::new("b", LEASE, RENEW);
    attempt(&mut a, &mut server, &clock, 0.0);
    // b first sees the record at 1 s: expiry counts from then, not from the record's renewTime.
    match attempt(&mut b, &mut server, &clock, 1.0) {
        Next::Follow { holder, expires_in } => {
            assert_eq!(holder, "a");
            assert_eq!(expires_in, LEASE);
        }
        n => panic!("{n:?}"),
    }
    // a renews every 2 s: b keeps following, and its wait restarts at each new record.
    for t in [2.0, 4.0, 6.0] {
        attempt(&mut a, &mut server, &clock, t);
        assert!(matches!(
            attempt(&mut b, &mut server, &clock, t + 0.5),
            Next::Follow { .. }
        ));
        assert!(a.is_leader(clock.at(t + 0.5).0));
        assert!(!b.is_leader(clock.at(t + 0.5).0));
    }
    // a dies after its renewal at 6 s; b saw that record at 6.5 s and waits 15 s from then.
    assert!(matches!(
        attempt(&mut b, &mut server, &clock, 21.0),
        Next::Follow { .. }
    ));
    assert!(!a.is_leader(clock.at(16.0).0), "a stopped at 6 + 10 s");
    let next = attempt(&mut b, &mut server, &clock, 21.5);
    let Next::Update { record, .. } = next else {
        panic!("{next:?}")
    };
    assert_eq!(record.holder(), Some("b"));
    assert_eq!(record.transitions, 1);
    assert_eq!(record.acquire_time, Some(clock.at(21.5).1));
    assert!(b.is_leader(clock.at(21.5).0));
}

#[test]
fn the_leader_stops_before_anyone_can_take_over() {
    // Whenever a follower first saw the leader's last renewal, the leader (counting from the
    // start of that renewal) stops at least lease - renew earlier than the takeover.
    let clock = Clock::new();
    for seen_after in [0.0, 0.1, 1.0, 1.9] {
        let mut server = Server::default();
        let mut a = Elector::new("a", LEASE, RENEW);
        let mut b = Elector::new("b", LEASE, RENEW);
        attempt(&mut a, &mut server, &clock, 0.0);
        attempt(&mut b, &mut server, &clock, seen_after);
        let mut t = seen_after;
        let takeover = loop {
            t += 0.25;
            if let Next::Update { .. } = attempt(&mut b, &mut server, &clock, t) {
                break t;
            }
        };
        let stopped = a.leading_until().unwrap();
        assert!(
            clock.at(takeover).0 - stopped >= LEASE - RENEW,
            "seen at {seen_after}: takeover at {takeover}"
        );
    }
}

#[test]
fn a_renewal_keeps_acquire_time_and_transitions() {
    let clock = Clock::new();
    let mut server = Server::default();
    let mut a = Elector::new("a", LEASE, RENEW);
    attempt(&mut a, &mut server, &clock, 0.0);
    let next = attempt(&mut a, &mut server, &clock, 2.0);
    let Next::Update { record, .. } = next else {
        panic!("{next:?}")
    };
    assert_eq!(record.acquire_time, Some(clock.at(0.0).1));
    assert_eq!(record.renew_time, Some(clock.at(2.0).1));
    assert_eq!(record.transitions, 0);
    assert!(
        a.is_leader(clock.at(11.0).0),
        "renewed at 2 s: leads until 12 s"
    );
}

#[test]
fn leadership_counts_from_the_start_of_the_attempt_not_its_answer() {
    let clock = Clock::new();
    let mut a = Elector::new("a", LEASE, RENEW);
    let (started, wall) = clock.at(0.0);
    a.observe(None, started);
    let Next::Create(r) = a.next(started, wall) else {
        panic!()
    };
    // The answer took 4 s (a slow API server): 6 s of leadership are left, not 10.
    let became = a.succeeded(r, "1".into(), started, clock.at(4.0).0);
    assert!(became);
    assert!(a.is_leader(clock.at(9.9).0));
    assert!(!a.is_leader(clock.at(10.0).0));
    // An answer later than the deadline gives no leadership at all.
    let mut b = Elector::new("b", LEASE, RENEW);
    b.observe(None, started);
    let Next::Create(r) = b.next(started, wall) else {
        panic!()
    };
    assert!(!b.succeeded(r, "1".into(), started, clock.at(10.5).0));
    assert!(!b.is_leader(clock.at(10.5).0));
}

#[test]
fn seeing_another_holder_ends_leadership_at_once() {
    let clock = Clock::new();
    let mut server = Server::default();
    let mut a = Elector::new("a", LEASE, RENEW);
    attempt(&mut a, &mut server, &clock, 0.0);
    assert!(a.is_leader(clock.at(1.0).0));
    // Someone wrote the Lease over (an operator, a misconfigured replica).
    let (mut r, _) = server.get().unwrap();
    r.holder = Some("intruder".into());
    server.lease = Some((r, 7));
    a.observe(server.get(), clock.at(1.0).0);
    assert!(!a.is_leader(clock.at(1.0).0));
    // And a deleted Lease too.
    let mut b = Elector::new("b", LEASE, RENEW);
    let mut s2 = Server::default();
    attempt(&mut b, &mut s2, &clock, 0.0);
    b.observe(None, clock.at(1.0).0);
    assert!(!b.is_leader(clock.at(1.0).0));
}

#[test]
fn two_candidates_racing_for_a_free_lease_get_one_winner() {
    let clock = Clock::new();
    let mut server = Server::default();
    let mut a = Elector::new("a", LEASE, RENEW);
    let mut b = Elector::new("b", LEASE, RENEW);
    // Both read "no lease" and both try to create it: the second create conflicts.
    let (now, wall) = clock.at(0.0);
    a.observe(server.get(), now);
    b.observe(server.get(), now);
    let (na, nb) = (a.next(now, wall), b.next(now, wall));
    let (ra, va) = server.write(&na).unwrap();
    a.succeeded(ra, va, now, now);
    assert!(server.write(&nb).is_err());
    b.follow(now);
    assert!(a.is_leader(now) && !b.is_leader(now));
    // The same on a free (released) Lease: both read one version, one update wins.
    let (t, wall) = clock.at(5.0);
    let (rel, v) = a.release(wall).unwrap();
    assert!(
        !a.is_leader(t),
        "leadership ends before the release is written"
    );
    server
        .write(&Next::Update {
            record: rel,
            resource_version: v,
        })
        .unwrap();
    a.observe(server.get(), t);
    b.observe(server.get(), t);
    let (na, nb) = (a.next(t, wall), b.next(t, wall));
    assert!(matches!(na, Next::Update { .. }) && matches!(nb, Next::Update { .. }));
    let (rb, vb) = server.write(&nb).unwrap();
    b.succeeded(rb, vb, t, t);
    assert!(server.write(&na).is_err());
    a.follow(t);
    assert!(b.is_leader(t) && !a.is_leader(t));
    assert_eq!(
        b.transitions(),
        1,
        "a, released, then b: one change of holder"
    );
}

#[test]
fn a_released_lease_is_taken_at_the_next_try() {
    let clock = Clock::new();
    let mut server = Server::default();
    let mut a = Elector::new("a", LEASE, RENEW);
    let mut b = Elector::new("b", LEASE, RENEW);
    attempt(&mut a, &mut server, &clock, 0.0);
    attempt(&mut b, &mut server, &clock, 0.5);
    let (rel, v) = a.release(clock.at(1.0).1).unwrap();
    assert_eq!(rel.holder(), None);
    assert_eq!(rel.lease_duration_seconds, 1);
    server
        .write(&Next::Update {
            record: rel,
            resource_version: v,
        })
        .unwrap();
    // No waiting out the 15 s: the holder is empty.
    assert!(matches!(
        attempt(&mut b, &mut server, &clock, 1.5),
        Next::Update { .. }
    ));
    assert!(b.is_leader(clock.at(1.5).0));
    assert_eq!(b.holder(), Some("b"));
    // A non-holder has nothing to release.
    a.observe(server.get(), clock.at(2.0).0);
    assert!(a.release(clock.at(2.0).1).is_none());
}

#[test]
fn the_holders_own_duration_decides_expiry() {
    let clock = Clock::new();
    let mut server = Server::default();
    // a writes a 5 s lease; b is configured for 15 s but waits only the 5 a wrote.
    let mut a = Elector::new("a", Duration::from_secs(5), Duration::from_secs(3));
    let mut b = Elector::new("b", LEASE, RENEW);
    attempt(&mut a, &mut server, &clock, 0.0);
    assert!(matches!(
        attempt(&mut b, &mut server, &clock, 0.0),
        Next::Follow { .. }
    ));
    assert!(matches!(
        attempt(&mut b, &mut server, &clock, 4.9),
        Next::Follow { .. }
    ));
    assert!(matches!(
        attempt(&mut b, &mut server, &clock, 5.0),
        Next::Update { .. }
    ));
}

#[test]
fn a_lapsed_holder_that_sees_its_own_record_renews_without_a_transition() {
    let clock = Clock::new();
    let mut server = Server::default();
    let mut a = Elector::new("a", LEASE, RENEW);
    attempt(&mut a, &mut server, &clock, 0.0);
    // Partitioned from 0 to 12 s: it stopped leading at 10 s; nobody took the lease.
    assert!(!a.is_leader(clock.at(12.0).0));
    let next = attempt(&mut a, &mut server, &clock, 12.0);
    let Next::Update { record, .. } = next else {
        panic!("{next:?}")
    };
    assert_eq!(record.transitions, 0);
    assert!(a.is_leader(clock.at(12.0).0));
}

/// A Lease deleted under its holder (by a person, by a GitOps prune) is not recreated at once:
/// its holder acts until its own next read finds it gone, so a follower waits a lease duration
/// from first finding it missing, as if the deletion were one more change of the record.
#[test]
fn a_deleted_lease_is_recreated_only_after_a_lease_duration() {
    let clock = Clock::new();
    let mut server = Server::default();
    let mut a = Elector::new("a", LEASE, RENEW);
    let mut b = Elector::new("b", LEASE, RENEW);
    attempt(&mut a, &mut server, &clock, 0.0);
    assert!(matches!(
        attempt(&mut b, &mut server, &clock, 1.0),
        Next::Follow { .. }
    ));
    server.lease = None;
    match attempt(&mut b, &mut server, &clock, 3.0) {
        Next::Follow { holder, expires_in } => {
            assert_eq!(holder, "a (its Lease was deleted)");
            assert_eq!(expires_in, LEASE);
        }
        n => panic!("{n:?}"),
    }
    // The wait counts from the first time it was found missing, not from each read.
    match attempt(&mut b, &mut server, &clock, 10.0) {
        Next::Follow { expires_in, .. } => assert_eq!(expires_in, secs(8.0)),
        n => panic!("{n:?}"),
    }
    assert_eq!(b.expires_in(clock.at(10.0).0), Some(secs(8.0)));
    assert!(server.lease.is_none());
    assert!(!b.is_leader(clock.at(17.9).0));
    assert!(matches!(
        attempt(&mut b, &mut server, &clock, 18.0),
        Next::Create(_)
    ));
    assert!(b.is_leader(clock.at(18.0).0));
    // The holder itself, finding its own Lease gone, stops at once and may recreate it.
    let mut server = Server::default();
    let mut a = Elector::new("a", LEASE, RENEW);
    attempt(&mut a, &mut server, &clock, 0.0);
    server.lease = None;
    assert!(matches!(
        attempt(&mut a, &mut server, &clock, 2.0),
        Next::Create(_)
    ));
}
