//! The elector's decisions, with time passed in: what to write to the Lease after reading it,
//! and whether this replica leads. No I/O and no clock of its own, so every rule in the
//! [module docs](super) is unit-tested with a fake clock (`tests.rs`).
//!
//! Two clocks, two uses: the monotonic [`Instant`] decides expiry and leadership (it cannot
//! jump, and another machine's wall clock never enters); the wall clock [`SystemTime`] only
//! fills `acquireTime` and `renewTime` for people and tools reading the Lease.

use std::time::{Duration, Instant, SystemTime};

/// The fields of a Lease's spec the election reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// `holderIdentity`; `None` or empty: free.
    pub holder: Option<String>,
    /// `leaseDurationSeconds`.
    pub lease_duration_seconds: i32,
    /// `acquireTime`.
    pub acquire_time: Option<SystemTime>,
    /// `renewTime`.
    pub renew_time: Option<SystemTime>,
    /// `leaseTransitions`.
    pub transitions: i32,
}

impl LeaseRecord {
    /// The holder, if there is one.
    pub fn holder(&self) -> Option<&str> {
        self.holder.as_deref().filter(|h| !h.is_empty())
    }
}

/// What to do after reading the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// There is no Lease: create it, holding it.
    Create(LeaseRecord),
    /// Write this record over the one read at `resource_version` (a renewal, or a takeover of
    /// a free or expired Lease).
    Update {
        /// The record to write.
        record: LeaseRecord,
        /// The version read; the write fails with 409 if anyone wrote since.
        resource_version: String,
    },
    /// Another replica holds a valid Lease: wait.
    Follow {
        /// Who holds it.
        holder: String,
        /// How long, on this replica's clock, until the Lease expires if not renewed.
        expires_in: Duration,
    },
}

/// The last Lease read, and since when it has looked like this.
#[derive(Debug, Clone)]
struct Observed {
    record: LeaseRecord,
    resource_version: String,
    since: Instant,
}

/// One replica's view of the election.
#[derive(Debug, Clone)]
pub struct Elector {
    identity: String,
    lease_duration: Duration,
    renew_deadline: Duration,
    observed: Option<Observed>,
    /// Another's Lease that has since been found gone (deleted by a person or a GitOps
    /// prune): its holder, its duration, and when it was first found missing. Its holder may
    /// still act until its own next read, so the Lease is created no sooner than a lease
    /// duration after that.
    vanished: Option<(String, Duration, Instant)>,
    leading_until: Option<Instant>,
}

impl Elector {
    /// A candidate named `identity` that writes `lease_duration` into the Lease and leads for
    /// `renew_deadline` after the start of each successful renewal.
    pub fn new(
        identity: impl Into<String>,
        lease_duration: Duration,
        renew_deadline: Duration,
    ) -> Self {
        Elector {
            identity: identity.into(),
            lease_duration,
            renew_deadline,
            observed: None,
            vanished: None,
            leading_until: None,
        }
    }

    /// This replica's `holderIdentity`.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Notes what a GET returned at `now` (`None`: 404). A record that differs from the last
    /// one seen restarts the expiry wait: it was renewed (or changed hands) since.
    /// A Lease held by another, or gone, ends this replica's leadership at once, whatever the
    /// clock says: someone else may act now.
    pub fn observe(&mut self, lease: Option<(LeaseRecord, String)>, now: Instant) {
        let ours = lease
            .as_ref()
            .is_some_and(|(r, _)| r.holder() == Some(self.identity.as_str()));
        if !ours {
            self.leading_until = None;
        }
        self.vanished = match (&lease, &self.observed) {
            (Some(_), _) => None,
            (None, _) if self.vanished.is_some() => self.vanished.take(),
            (None, Some(o)) => o
                .record
                .holder()
                .filter(|h| *h != self.identity)
                .map(|h| (h.to_string(), self.held(&o.record), now)),
            (None, None) => None,
        };
        self.observed = match lease {
            None => None,
            Some((record, resource_version)) => {
                let since = match &self.observed {
                    Some(o) if o.record == record => o.since,
                    _ => now,
                };
                Some(Observed {
                    record,
                    resource_version,
                    since,
                })
            }
        };
    }

    /// What to write, given the last observation, at monotonic `now` and wall-clock `wall`.
    pub fn next(&self, now: Instant, wall: SystemTime) -> Next {
        let Some(o) = &self.observed else {
            if let Some((holder, held, since)) = &self.vanished {
                let expires = *since + *held;
                if now < expires {
                    return Next::Follow {
                        holder: format!("{holder} (its Lease was deleted)"),
                        expires_in: expires - now,
                    };
                }
            }
            return Next::Create(LeaseRecord {
                holder: Some(self.identity.clone()),
                lease_duration_seconds: self.lease_seconds(),
                acquire_time: Some(wall),
                renew_time: Some(wall),
                transitions: 0,
            });
        };
        let r = &o.record;
        match r.holder() {
            Some(h) if h != self.identity => {
                let expires = o.since + self.held(r);
                if now < expires {
                    return Next::Follow {
                        holder: h.to_string(),
                        expires_in: expires - now,
                    };
                }
            }
            _ => {}
        }
        let ours = r.holder() == Some(self.identity.as_str());
        let record = LeaseRecord {
            holder: Some(self.identity.clone()),
            lease_duration_seconds: self.lease_seconds(),
            acquire_time: if ours {
                r.acquire_time.or(Some(wall))
            } else {
                Some(wall)
            },
            renew_time: Some(wall),
            transitions: if ours {
                r.transitions
            } else {
                r.transitions.saturating_add(1)
            },
        };
        Next::Update {
            record,
            resource_version: o.resource_version.clone(),
        }
    }

    /// A create or update of `record` that started at `started` (before its GET) returned the
    /// Lease at `resource_version` by `now`: this replica leads until `renew_deadline` after
    /// `started`. Returns true if that is a change (it did not lead just before).
    pub fn succeeded(
        &mut self,
        record: LeaseRecord,
        resource_version: String,
        started: Instant,
        now: Instant,
    ) -> bool {
        let was = self.is_leader(now);
        self.observed = Some(Observed {
            record,
            resource_version,
            since: now,
        });
        let until = started + self.renew_deadline;
        self.leading_until = Some(self.leading_until.map_or(until, |t| t.max(until)));
        !was && self.is_leader(now)
    }

    /// The last write was refused or the Lease is held by another: nothing to do but forget
    /// any leadership that the clock has already ended.
    pub fn follow(&mut self, now: Instant) {
        if !self.is_leader(now) {
            self.leading_until = None;
        }
    }

    /// How long until the Lease, held by another, expires if not renewed, on this replica's
    /// clock; `None` if no one else holds it. The loop tries again right then rather than up
    /// to a retry period later, so a takeover comes within one retry period of the expiry.
    pub fn expires_in(&self, now: Instant) -> Option<Duration> {
        match self.next(now, SystemTime::UNIX_EPOCH) {
            Next::Follow { expires_in, .. } => Some(expires_in),
            _ => None,
        }
    }

    /// True while the last successful renewal started less than `renew_deadline` ago.
    pub fn is_leader(&self, now: Instant) -> bool {
        self.leading_until.is_some_and(|t| now < t)
    }

    /// When leadership lapses unless renewed.
    pub fn leading_until(&self) -> Option<Instant> {
        self.leading_until
    }

    /// `leaseTransitions` of the last Lease seen.
    pub fn transitions(&self) -> i32 {
        self.observed.as_ref().map_or(0, |o| o.record.transitions)
    }

    /// Who holds the Lease as last seen.
    pub fn holder(&self) -> Option<&str> {
        self.observed.as_ref().and_then(|o| o.record.holder())
    }

    /// The write that hands the Lease back (empty holder, 1 s duration, as client-go's
    /// `ReleaseOnCancel`), if this replica is its holder as last seen. Leadership ends here,
    /// before the write: nothing may act after a release was decided.
    pub fn release(&mut self, wall: SystemTime) -> Option<(LeaseRecord, String)> {
        self.leading_until = None;
        let o = self.observed.as_ref()?;
        if o.record.holder() != Some(self.identity.as_str()) {
            return None;
        }
        let record = LeaseRecord {
            holder: None,
            lease_duration_seconds: 1,
            acquire_time: Some(wall),
            renew_time: Some(wall),
            transitions: o.record.transitions,
        };
        Some((record, o.resource_version.clone()))
    }

    /// How long `r` holds after it was last seen to change. The holder's own duration counts,
    /// not ours: replicas may be configured apart.
    fn held(&self, r: &LeaseRecord) -> Duration {
        match r.lease_duration_seconds {
            s if s > 0 => Duration::from_secs(s as u64),
            _ => self.lease_duration,
        }
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests;
