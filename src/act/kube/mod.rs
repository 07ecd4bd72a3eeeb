//! The Kubernetes actuator: changes a workload's replicas through the `scale` subresource of
//! its Deployment or StatefulSet (`deployment = "ns/name"` in its `[[workload]]`), the way
//! `kubectl scale` and the HPA do, and records an Event on the object for every change.
//!
//! Rules, and why:
//! - **One GET, one conditional PATCH.** The GET reads the live count and the object's
//!   `resourceVersion`; the merge PATCH (`application/merge-patch+json`,
//!   `{"metadata":{"resourceVersion":…},"spec":{"replicas":N}}`, `fieldManager=prescale`)
//!   is refused by the API server if the object changed in between, so prescale never writes
//!   over a count it has not seen. A 409 is retried once on fresh state (a Deployment's
//!   version moves with each status update), then recorded `failed: conflict: …`.
//! - **Never fight a person.** The count prescale last set is remembered per workload. If the
//!   GET reads another count, someone else changed it (`kubectl scale`, another controller):
//!   no PATCH this cycle, the outcome is `skipped (changed elsewhere: live N)`, the live loop
//!   counts it (`prescale_external_changes_total`) and plans from N next cycle, and N becomes
//!   the count prescale goes on from. The remembered counts outlive a restart: they are
//!   seeded from the decision log's tail (the newest `applied` change, or count adopted, per
//!   workload). Only a workload prescale never set (no such record) has nothing to compare
//!   with, and its first change acts.
//! - **Bounded, independent calls.** Every request is bounded by `[kubernetes] timeout`
//!   (10 s by default) with the client's own retries off, so the timeout means what it says.
//!   A cycle's changes run concurrently, at most [`MAX_IN_FLIGHT`](super::MAX_IN_FLIGHT) at
//!   once, each in its own task (as every actuator's do): a refusal, a stall or even a panic
//!   in one is that decision's `failed: …` and never stops the others or the loop. Under
//!   leader election each task asks whether this replica leads right before its first
//!   request, and is abandoned if leadership lapses while it runs.
//! - **Outcomes say what the API said:** `failed: forbidden: …`, `not found: …`,
//!   `conflict: …`, `timeout: …`, or `<code> <Reason>: <message>` from the API's Status.
//! - **An Event per change** (reason `PrescaleScaled`, type `Normal`, message `from → to
//!   replicas: <the decision's reason>`), so `kubectl describe` shows why it scaled; a failed
//!   Event is logged and the change stays applied.
//!
//! Only scale decisions reach the API; holds and node decisions are `skipped`. Which workloads
//! may be changed at all (`mode = "auto"`) is decided before this, for every actuator.
//!
//! Layout: `call` is one change (GET, PATCH, retry, the error's words), `event` the Event.

mod call;
mod event;
#[cfg(test)]
mod tests;

pub use call::FIELD_MANAGER;
pub use event::{COMPONENT as EVENT_COMPONENT, REASON as EVENT_REASON};

use super::{is_scale, Actuator, Applying, Outcome, Skip};
use crate::kubernetes::{KubeConfigError, KubernetesConfig};
use crate::leader::Leadership;
use crate::plan::{Decision, ObjectRef, WorkloadSpec};
use call::{Calls, Change, Done, Pending, LANDED, SENT};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why the Kubernetes actuator could not be set up (at start-up, never during the loop).
#[derive(Debug, thiserror::Error)]
pub enum KubeActError {
    /// `[kubernetes]` selects no usable client configuration.
    #[error(transparent)]
    Config(#[from] KubeConfigError),
    /// The client could not be built from it.
    #[error("kubernetes client: {0}")]
    Client(String),
    /// A workload names no object to scale.
    #[error(
        "workload '{0}': the kubernetes actuator needs its deployment = \"namespace/name\" \
         (or statefulset), or set run.actuator = \"command\""
    )]
    NoObject(String),
}

/// Carries scale decisions out through the Kubernetes API (see the module docs).
pub struct KubeActuator {
    calls: Calls,
    /// The object of each workload, by workload name.
    objects: HashMap<String, ObjectRef>,
    /// Per workload, the count prescale last set or adopted.
    last_set: HashMap<String, u32>,
    /// Per workload, the count an unanswered PATCH asked for, until a read settles it (memory
    /// only: after a restart such a change reads as one made elsewhere).
    pending: HashMap<String, u32>,
    /// Reads true once prescale is asked to stop: changes still waiting for a slot then start
    /// no request. Changes under way finish (each request within the timeout), as a PATCH cut
    /// off mid-flight would leave its outcome unknown.
    stop: Option<tokio::sync::watch::Receiver<bool>>,
}

impl KubeActuator {
    /// Connects as `[kubernetes]` says to the objects of `workloads`; every workload must name
    /// one.
    pub async fn connect(
        cfg: &KubernetesConfig,
        workloads: &[WorkloadSpec],
    ) -> Result<KubeActuator, KubeActError> {
        let objects = objects(workloads)?;
        let mut client_cfg = cfg.client_config().await?;
        // The timeout bounds each request; the client's hidden retries would stretch it.
        client_cfg.default_retry = false;
        client_cfg.read_timeout = Some(cfg.timeout());
        let client = kube::Client::try_from(client_cfg)
            .map_err(|e| KubeActError::Client(crate::kubernetes::error_text(&e)))?;
        Ok(KubeActuator::new(client, objects, cfg.timeout()))
    }

    /// An actuator on `client` for `objects` (workload name → object), each request bounded by
    /// `timeout`.
    pub fn new(
        client: kube::Client,
        objects: HashMap<String, ObjectRef>,
        timeout: Duration,
    ) -> KubeActuator {
        KubeActuator {
            calls: Calls {
                client,
                timeout,
                instance: crate::kubernetes::replica_name(|var| std::env::var(var).ok())
                    .unwrap_or_else(|| EVENT_COMPONENT.into()),
            },
            objects,
            last_set: HashMap::new(),
            pending: HashMap::new(),
            stop: None,
        }
    }

    /// Starts with the counts earlier runs asked for in changes that got no answer and that
    /// nothing settled since (the decision log's tail:
    /// [`LogTail::pending`](crate::act::LogTail::pending)): found live, such a count is that
    /// change landed, not someone else's.
    pub fn with_pending(mut self, counts: impl IntoIterator<Item = (String, u32)>) -> Self {
        for (w, n) in counts {
            if self.objects.contains_key(&w) {
                self.pending.insert(w, n);
            }
        }
        self
    }

    /// Starts from the counts a previous run set or adopted (workload → count, from the
    /// decision log's tail: [`LogTail::last_set`](crate::act::LogTail::last_set)), so that the
    /// first change after a restart is checked for a change elsewhere like every other.
    /// Workloads this actuator does not manage are ignored.
    pub fn with_last_set(mut self, counts: impl IntoIterator<Item = (String, u32)>) -> Self {
        for (w, n) in counts {
            if self.objects.contains_key(&w) {
                self.last_set.insert(w, n);
            }
        }
        self
    }

    /// Starts no more changes once `stop` reads true (on SIGTERM); see the field.
    pub fn with_stop(mut self, stop: tokio::sync::watch::Receiver<bool>) -> Self {
        self.stop = Some(stop);
        self
    }

    /// The count prescale last set (or adopted) for `workload`, if any.
    pub fn last_set(&self, workload: &str) -> Option<u32> {
        self.last_set.get(workload).copied()
    }
}

/// What an abandoned change (dropped when leadership lapsed) comes to, by how far it got: a
/// PATCH answered applied is applied (only its Event was cut off), one sent but not answered
/// may have landed and is remembered as asked, as an unanswered PATCH is; before any PATCH,
/// nothing reached the object.
fn abandoned_after(progress: u8, to: u32, done: Done) -> Done {
    match progress {
        LANDED => Done::applied(to),
        SENT => Done::unanswered(super::ABANDONED.to_string(), to),
        _ => done,
    }
}

/// Each workload's object, or the first workload without one.
pub fn objects(workloads: &[WorkloadSpec]) -> Result<HashMap<String, ObjectRef>, KubeActError> {
    workloads
        .iter()
        .map(|w| match w.object() {
            Some(o) => Ok((w.name.clone(), o)),
            None => Err(KubeActError::NoObject(w.name.clone())),
        })
        .collect()
}

impl Actuator for KubeActuator {
    fn apply<'a>(&'a mut self, decisions: &'a [Decision]) -> Applying<'a> {
        Box::pin(self.changes(decisions, None))
    }

    /// Concurrently as without leader election, each change asking leadership in its own task
    /// once it has its slot, right before its first request.
    fn apply_led<'a>(
        &'a mut self,
        decisions: &'a [Decision],
        leadership: &'a Leadership,
    ) -> Applying<'a> {
        Box::pin(self.changes(decisions, Some(leadership)))
    }
}

impl KubeActuator {
    /// One cycle's changes through [`super::bounded::changes`]; each remembers the count it
    /// set (or adopted) once done.
    async fn changes(
        &mut self,
        decisions: &[Decision],
        leadership: Option<&Leadership>,
    ) -> Vec<Outcome> {
        let mut progress: HashMap<String, Arc<AtomicU8>> = HashMap::new();
        let done = super::bounded::changes(decisions, leadership, self.stop.as_ref(), |d| {
            if !is_scale(d) {
                return Err(Done::outcome(Outcome::Skipped(Skip::Nothing)));
            }
            let Some(object) = self.objects.get(&d.target) else {
                return Err(Done::outcome(Outcome::Failed(format!(
                    "workload '{}' names no deployment or statefulset",
                    d.target
                ))));
            };
            let change = Change {
                workload: d.target.clone(),
                object: object.clone(),
                from: d.from,
                to: d.to,
                last_set: self.last_set.get(&d.target).copied(),
                pending: self.pending.get(&d.target).copied(),
                reason: d.reason.clone(),
                progress: progress.entry(d.target.clone()).or_default().clone(),
            };
            let calls = self.calls.clone();
            Ok(Box::pin(async move { calls.change(change).await }))
        })
        .await;
        decisions
            .iter()
            .zip(done)
            .map(|(d, done)| {
                let done = match progress.get(&d.target) {
                    Some(p) if done.outcome == super::abandoned() => {
                        abandoned_after(p.load(Ordering::SeqCst), d.to, done)
                    }
                    _ => done,
                };
                if let Some(n) = done.remember {
                    self.last_set.insert(d.target.clone(), n);
                }
                match done.pending {
                    Pending::Asked(n) => {
                        self.pending.insert(d.target.clone(), n);
                    }
                    Pending::Settled => {
                        self.pending.remove(&d.target);
                    }
                    Pending::Keep => {}
                }
                done.outcome
            })
            .collect()
    }
}
