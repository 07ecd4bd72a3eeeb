//! Leader election through a `coordination.k8s.io/v1` Lease, so that of several prescale
//! replicas exactly one acts (issue #11 section 2).
//!
//! kube 5 ships no elector, so this is a small one that works the way client-go's
//! `leaderelection` package (kube-controller-manager's) does:
//!
//! - Every `retry_period`, a candidate GETs the Lease. If there is none, it creates it holding
//!   it; if the holder is empty, itself, or has not renewed for the record's
//!   `leaseDurationSeconds`, it PUTs the Lease with itself as `holderIdentity` (new
//!   `acquireTime`, `leaseTransitions` + 1 when the holder changes; `renewTime` now). The PUT
//!   carries the `resourceVersion` it read, so of two candidates only one can win (409 for the
//!   other).
//! - Expiry is judged on the local monotonic clock, never on the record's timestamps: a
//!   candidate notes *when it first saw* the current record and waits `leaseDurationSeconds`
//!   from then. Clock skew between machines therefore cannot make it take over early.
//! - The leader counts its leadership as valid until `renew_deadline` after the *start* of its
//!   last successful renewal ([`machine::Elector::is_leader`]). Another candidate can take over
//!   only `lease_duration` after it saw that renewal, which was after it started, and
//!   `renew_deadline < lease_duration` (checked at load), so a leader that cannot renew (API
//!   server down, a partition, a stalled request) stops acting at least
//!   `lease_duration - renew_deadline` before anyone else may start. The check reads the
//!   clock each time it is asked ([`Leadership::is_leader`]); it does not wait for a request to
//!   fail, so a request that hangs cannot extend it.
//! - On shutdown the leader PUTs the Lease with an empty holder and a 1 s duration (client-go's
//!   `ReleaseOnCancel`), so another replica takes over at its next retry instead of waiting
//!   out the lease.
//!
//! Only [`act`](crate::act) looks at the result ([`Leadership`], checked before every action;
//! with `[shard]`, the live loop instead, before planning the node pools: see [`crate::shard`]):
//! every replica collects, forecasts, plans and exports; a non-leader records its decisions as
//! `skipped (not leader)`. The run loop exports `prescale_leader` (0/1) and
//! `prescale_lease_transitions` through the [`OnChange`] callback, so election imports no stage
//! above it.
//!
//! Layout: `machine` is the decision logic with time passed in (unit-tested with a fake
//! clock), `lease` the three API calls and the record's JSON fields, `task` the loop that runs
//! them and the release.

mod lease;
pub mod machine;
mod task;

pub use task::{start, Elector, OnChange};

use serde::Deserialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The usual durations, as kube-controller-manager's defaults.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(15);
/// See [`DEFAULT_LEASE_DURATION`].
pub const DEFAULT_RENEW_DEADLINE: Duration = Duration::from_secs(10);
/// See [`DEFAULT_LEASE_DURATION`].
pub const DEFAULT_RETRY_PERIOD: Duration = Duration::from_secs(2);
/// The Lease's name unless `leader_election.name` says otherwise.
pub const DEFAULT_LEASE_NAME: &str = "prescale";

/// `[leader_election]` as written.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLeaderElection {
    /// Elect a leader (default false: a single replica acts alone).
    pub enabled: Option<bool>,
    /// Namespace of the Lease; default: the client's (the pod's own namespace in a cluster).
    pub namespace: Option<String>,
    /// Name of the Lease; default `prescale`.
    pub name: Option<String>,
    /// The start of this replica's `holderIdentity`; default `POD_NAME` (or the host name).
    /// `_` and 8 random hex digits are always added.
    pub identity: Option<String>,
    /// How long a Lease not renewed stays held (whole seconds, ≥ 1); default 15s.
    pub lease_duration: Option<String>,
    /// How long the leader keeps trying to renew before it stops acting; default 10s.
    pub renew_deadline: Option<String>,
    /// Time between attempts to acquire or renew; default 2s.
    pub retry_period: Option<String>,
}

/// Validated `[leader_election]` (present only when `enabled = true`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderConfig {
    /// The Lease's namespace; `None`: the client's default namespace.
    pub namespace: Option<String>,
    /// The Lease's name.
    pub name: String,
    /// This replica's `holderIdentity`.
    pub identity: String,
    /// `leaseDurationSeconds` written to the Lease.
    pub lease_duration: Duration,
    /// How long after the start of its last successful renewal the leader still acts.
    pub renew_deadline: Duration,
    /// Time between attempts.
    pub retry_period: Duration,
}

impl LeaderConfig {
    /// A configuration with the default durations (tests and examples).
    pub fn new(name: impl Into<String>, identity: impl Into<String>) -> Self {
        LeaderConfig {
            namespace: None,
            name: name.into(),
            identity: identity.into(),
            lease_duration: DEFAULT_LEASE_DURATION,
            renew_deadline: DEFAULT_RENEW_DEADLINE,
            retry_period: DEFAULT_RETRY_PERIOD,
        }
    }

    /// How long one API request may take before the attempt counts as failed: half the renew
    /// deadline, at least the retry period, so a leader gets at least two tries per deadline
    /// and a hung request never outlives the leadership it is meant to extend.
    pub fn request_timeout(&self) -> Duration {
        (self.renew_deadline / 2).max(self.retry_period)
    }

    /// Checks `[leader_election]`; `None` when it is absent or not enabled.
    pub(crate) fn validate(
        raw: Option<&RawLeaderElection>,
        problems: &mut Vec<(String, String)>,
    ) -> Option<LeaderConfig> {
        let raw = raw?;
        let key = |k: &str| format!("leader_election.{k}");
        let before = problems.len();
        let mut push = |k: &str, m: String| problems.push((key(k), m));
        let duration = |text: &Option<String>, default: Duration| -> Result<Duration, String> {
            match text {
                None => Ok(default),
                Some(t) => match humantime::parse_duration(t.trim()) {
                    Ok(d) if d.is_zero() => Err(format!("'{t}' must be longer than 0")),
                    Ok(d) if d.as_secs() > crate::series::MAX_DURATION as u64 => {
                        Err(format!("'{t}' is longer than the limit of 366d"))
                    }
                    Ok(d) => Ok(d),
                    Err(e) => Err(format!("'{t}' is not a duration (e.g. 15s, 500ms): {e}")),
                },
            }
        };
        let lease = duration(&raw.lease_duration, DEFAULT_LEASE_DURATION)
            .and_then(|d| {
                // 366 d at most (above), so it fits leaseDurationSeconds' i32.
                if d.subsec_nanos() != 0 {
                    Err(format!(
                        "{} is not whole seconds: the Lease's leaseDurationSeconds is an integer",
                        humantime::format_duration(d)
                    ))
                } else {
                    Ok(d)
                }
            })
            .map_err(|m| push("lease_duration", m))
            .ok();
        let renew = duration(&raw.renew_deadline, DEFAULT_RENEW_DEADLINE)
            .map_err(|m| push("renew_deadline", m))
            .ok();
        let retry = duration(&raw.retry_period, DEFAULT_RETRY_PERIOD)
            .map_err(|m| push("retry_period", m))
            .ok();
        // Each duration must leave room for the next: the leader stops acting before the lease
        // can be taken over, and gets more than one try to renew before it gives up.
        let ordered = [
            (
                "renew_deadline",
                renew,
                "lease_duration",
                lease,
                "the leader must stop acting before another replica may take the lease over",
            ),
            (
                "retry_period",
                retry,
                "renew_deadline",
                renew,
                "the leader needs more than one try to renew before it gives up",
            ),
        ];
        for (k, shorter, other, longer, why) in ordered {
            if let (Some(shorter), Some(longer)) = (shorter, longer) {
                if shorter >= longer {
                    push(
                        k,
                        format!(
                            "{} must be shorter than {other} ({}): {why}",
                            humantime::format_duration(shorter),
                            humantime::format_duration(longer)
                        ),
                    );
                }
            }
        }
        if let Some(ns) = &raw.namespace {
            if let Err(m) = dns_name(ns, 63, false) {
                push("namespace", format!("'{ns}' {m}"));
            }
        }
        let name = raw
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_LEASE_NAME.into());
        if let Err(m) = dns_name(&name, 253, true) {
            push("name", format!("'{name}' {m}"));
        }
        if raw.identity.as_deref().is_some_and(|i| i.trim().is_empty()) {
            push(
                "identity",
                "is empty: leave it out for POD_NAME (or the host name) plus a random suffix"
                    .into(),
            );
        }
        if !raw.enabled.unwrap_or(false) || problems.len() > before {
            return None;
        }
        Some(LeaderConfig {
            namespace: raw.namespace.clone(),
            name,
            identity: match &raw.identity {
                Some(base) => with_suffix(base),
                None => default_identity(),
            },
            lease_duration: lease?,
            renew_deadline: renew?,
            retry_period: retry?,
        })
    }
}

/// Checks a Kubernetes object name: lowercase letters, digits and `-` (and `.` for a DNS
/// subdomain), starting and ending with a letter or digit, at most `max` characters.
fn dns_name(s: &str, max: usize, dots: bool) -> Result<(), String> {
    let ok_char =
        |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (dots && c == '.');
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if s.is_empty() || s.len() > max {
        return Err(format!("must be 1 to {max} characters"));
    }
    if !s.chars().all(ok_char) || !alnum(s.chars().next()) || !alnum(s.chars().last()) {
        let allowed = if dots { "'-' and '.'" } else { "'-'" };
        return Err(format!(
            "is not a Kubernetes name: lowercase letters, digits, {allowed}, starting and \
             ending with a letter or digit"
        ));
    }
    Ok(())
}

/// The replica's name ([`crate::kubernetes::replica_name`]: `POD_NAME`, `HOSTNAME`, the host
/// name), then `_` and 8 random hex digits: client-go's `hostname_uuid` convention. The suffix makes a
/// restarted process a new candidate, so it never mistakes its predecessor's lease for its own.
pub fn default_identity() -> String {
    let base = crate::kubernetes::replica_name(|var| std::env::var(var).ok())
        .unwrap_or_else(|| "prescale".into());
    with_suffix(&base)
}

/// `base`, `_` and 8 random hex digits. A configured `identity` gets the suffix too: the one
/// configuration file is usually every replica's, and replicas sharing an identity would each
/// take the Lease for its own and all act.
fn with_suffix(base: &str) -> String {
    format!("{base}_{:08x}", rand::random::<u32>())
}

/// Why leader election could not start.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// No Kubernetes client configuration (`[kubernetes]`).
    #[error("leader election: {0}")]
    Config(#[from] crate::kubernetes::KubeConfigError),
    /// The client could not be built from it (a bad certificate, an unknown auth plugin).
    #[error("leader election: building the Kubernetes client: {0}")]
    Client(String),
}

/// Whether this replica may act now: a cheap, cloneable view of the elector's state that reads
/// the clock on every question (see the module docs).
#[derive(Debug, Clone)]
pub struct Leadership {
    inner: Arc<Mutex<Shared>>,
}

/// What the elector task publishes.
#[derive(Debug, Default)]
struct Shared {
    /// The instant this replica's leadership lapses unless renewed; `None`: not leader.
    leading_until: Option<Instant>,
    /// `leaseTransitions` of the Lease as last seen.
    transitions: i32,
}

impl Leadership {
    fn new() -> Self {
        Leadership {
            inner: Arc::new(Mutex::new(Shared::default())),
        }
    }

    /// A handle that always says "leader": a test stand-in for a replica that won.
    pub fn always() -> Self {
        let l = Leadership::new();
        l.set(
            Some(Instant::now() + Duration::from_secs(100 * 365 * 86_400)),
            0,
        );
        l
    }

    /// A handle that leads for `d` from now and is never renewed: a test stand-in for a
    /// replica about to lose its Lease (`Duration::ZERO`: a follower).
    pub fn lapsing_in(d: Duration) -> Self {
        let l = Leadership::new();
        l.set(Some(Instant::now() + d), 0);
        l
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, leading_until: Option<Instant>, transitions: i32) {
        let mut s = self.lock();
        s.leading_until = leading_until;
        s.transitions = transitions;
    }

    /// True while this replica holds the Lease and its last renewal is younger than the renew
    /// deadline. Read right before every action.
    pub fn is_leader(&self) -> bool {
        self.leading_until().is_some_and(|t| Instant::now() < t)
    }

    /// When leadership lapses unless renewed.
    pub fn leading_until(&self) -> Option<Instant> {
        self.lock().leading_until
    }

    /// `leaseTransitions` as last seen.
    pub fn transitions(&self) -> i32 {
        self.lock().transitions
    }

    /// Resolves once this replica is not the leader (at once if it is not now). Renewals
    /// move the deadline, so it sleeps to the deadline and looks again.
    pub async fn lost(&self) {
        while let Some(t) = self.leading_until().filter(|t| Instant::now() < *t) {
            tokio::time::sleep_until(t.into()).await;
        }
    }
}

#[cfg(test)]
mod tests;
