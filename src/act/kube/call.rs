//! One workload's change through the `scale` subresource: GET it, then a merge PATCH of
//! `spec.replicas` carrying the `resourceVersion` read, with `fieldManager=prescale`.
//!
//! The PATCH is conditional (a `resourceVersion` in a patch makes the API server refuse it,
//! 409, if the object changed since it was read), so prescale never overwrites a count it has
//! not seen. A Deployment's version moves with every status update, so a 409 is usually not a
//! person: the change is tried once more on fresh state, and then recorded `failed: conflict`.
//! Every request is bounded by the `[kubernetes] timeout`.

use super::event;
use crate::act::{Outcome, Skip};
use crate::kubernetes::{cut, error_text, is_auth_error};
use crate::plan::{ObjectKind, ObjectRef};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::core::subresource::Scale;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The field manager named on every write, so `kubectl get -o yaml --show-managed-fields`
/// tells prescale's changes from a person's.
pub const FIELD_MANAGER: &str = "prescale";

/// One change to make: the object, the count wanted, and what prescale last set.
#[derive(Debug, Clone)]
pub(super) struct Change {
    /// The workload's name (for the log).
    pub workload: String,
    /// Its Deployment or StatefulSet.
    pub object: ObjectRef,
    /// The replica count the decision was planned from (what prescale believed running).
    pub from: u32,
    /// The replica count decided.
    pub to: u32,
    /// The count prescale last set (or adopted), if it set one since it started.
    pub last_set: Option<u32>,
    /// The count an unanswered PATCH of prescale's asked for, until a read settles it.
    pub pending: Option<u32>,
    /// The decision's one line, for the Event.
    pub reason: String,
    /// How far the change got, read when it is abandoned (dropped mid-way when leadership
    /// lapses): by then a PATCH may have been sent, or even answered.
    pub progress: Arc<AtomicU8>,
}

/// [`Change::progress`]: no PATCH sent yet.
pub(super) const NOT_SENT: u8 = 0;
/// [`Change::progress`]: the PATCH was sent and not answered yet: it may land.
pub(super) const SENT: u8 = 1;
/// [`Change::progress`]: the PATCH was answered applied (the Event may still be on its way).
pub(super) const LANDED: u8 = 2;

/// What became of a change, and the count prescale now knows the workload at.
#[derive(Debug)]
pub(super) struct Done {
    /// The decision's outcome.
    pub outcome: Outcome,
    /// The count to remember as prescale's (set by it, or adopted from a change elsewhere);
    /// `None`: unchanged.
    pub remember: Option<u32>,
    /// What becomes of the count an unanswered change of prescale's may have set.
    pub pending: Pending,
}

/// The count an earlier PATCH may have set though no answer said so, after a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pending {
    /// Nothing was read: as it was.
    Keep,
    /// A read gave the live count: nothing is pending any more.
    Settled,
    /// This call's PATCH to this count had no answer: it may have landed.
    Asked(u32),
}

impl From<Outcome> for Done {
    fn from(outcome: Outcome) -> Done {
        Done::outcome(outcome)
    }
}

impl Done {
    /// An outcome with nothing to remember: no change reached the object, or none is believed.
    pub fn outcome(outcome: Outcome) -> Done {
        Done {
            outcome,
            remember: None,
            pending: Pending::Keep,
        }
    }

    /// The PATCH to `to` was answered applied: the count is prescale's.
    pub fn applied(to: u32) -> Done {
        Done {
            outcome: Outcome::Applied,
            remember: Some(to),
            pending: Pending::Settled,
        }
    }

    /// A PATCH to `to` had no answer (`why`): it may have landed, so `to` is remembered as asked.
    pub fn unanswered(why: String, to: u32) -> Done {
        Done {
            outcome: Outcome::unanswered(why, to),
            remember: None,
            pending: Pending::Asked(to),
        }
    }
}

/// Why one request failed, as the outcome's reason.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum CallError {
    /// 409: the object changed since it was read.
    Conflict(String),
    /// No answer, or one that does not say whether the request was carried out: a timeout, a
    /// transport error, a 5xx. A PATCH may have been applied.
    Unanswered(String),
    /// Anything else, a refusal: `forbidden: …`, `not found: …`, `<code> <reason>: …` (4xx).
    Other(String),
}

impl CallError {
    pub(super) fn reason(self) -> String {
        match self {
            CallError::Conflict(m) => format!("conflict: {m}"),
            CallError::Unanswered(m) | CallError::Other(m) => m,
        }
    }
}

/// The client, the request timeout, and the Api of each kind.
#[derive(Clone)]
pub(super) struct Calls {
    pub client: kube::Client,
    pub timeout: Duration,
    /// The Events' `reportingInstance` (this replica: [`crate::kubernetes::replica_name`]).
    pub instance: String,
}

impl Calls {
    /// Makes `change`: never returns an error, every failure is the outcome.
    pub(super) async fn change(&self, change: Change) -> Done {
        let o = &change.object;
        match o.kind {
            ObjectKind::Deployment => {
                let api: Api<Deployment> = Api::namespaced(self.client.clone(), &o.namespace);
                self.change_with(api, change).await
            }
            ObjectKind::StatefulSet => {
                let api: Api<StatefulSet> = Api::namespaced(self.client.clone(), &o.namespace);
                self.change_with(api, change).await
            }
        }
    }

    async fn change_with<K>(&self, api: Api<K>, change: Change) -> Done
    where
        K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let name = &change.object.name;
        // A failed GET learns nothing: what an earlier PATCH may have set stays pending.
        let failed = |e: CallError| Done::outcome(Outcome::Failed(e.reason()));
        // Whatever this call ends with after a GET, the live count settled any pending one.
        let settled = |outcome, remember| Done {
            outcome,
            remember,
            pending: Pending::Settled,
        };
        let mut retried = false;
        loop {
            let scale = match self.bounded("GET", api.get_scale(name)).await {
                Ok(s) => s,
                Err(e) => return failed(e),
            };
            let live = live_replicas(&scale);
            if live == change.to {
                // Already there (set by someone, or a change of prescale's whose answer was
                // lost): nothing to write, and the count is prescale's from now on.
                return settled(Outcome::Applied, Some(live));
            }
            if change.pending == Some(live) {
                tracing::info!(
                    "workload '{}': {} runs {live} replicas, what prescale's unanswered change \
                     asked for: it landed; planning from {live} next cycle",
                    change.workload,
                    change.object
                );
                return settled(Outcome::Skipped(Skip::Landed { live }), Some(live));
            }
            // The count prescale expects to find: the one it last set, or else the one the
            // decision was planned from. Any other means someone else changed it, or prescale's
            // belief never was the cluster's (a first `--apply` with no replica read, planning
            // from the log's or the configuration's count): writing `to` over it could make
            // the reviewed "scale-up 2 → 4" a 20 → 4 that no scale-down guard saw.
            let expected = change.last_set.unwrap_or(change.from);
            if live != expected {
                let whose = match change.last_set {
                    Some(last) => format!("prescale last set {last}"),
                    None => format!("the decision was planned from {}", change.from),
                };
                tracing::warn!(
                    "workload '{}': {} runs {live} replicas, {whose}: changed elsewhere, not \
                     patched this cycle",
                    change.workload,
                    change.object
                );
                return settled(
                    Outcome::Skipped(Skip::ChangedElsewhere { live }),
                    Some(live),
                );
            }
            if live != change.from {
                // prescale's own last count, but the decision was planned from another: a
                // replica read older than that change (kube-state-metrics not scraped since).
                // Writing `to` would make the reviewed "scale-up 10 → 15" a 20 → 15 that no
                // scale-down guard saw.
                tracing::info!(
                    "workload '{}': {} runs {live} replicas, what prescale last set, but the \
                     decision was planned from {} (a count read before that change): not \
                     patched this cycle; planning from {live} next cycle",
                    change.workload,
                    change.object,
                    change.from
                );
                return settled(Outcome::Skipped(Skip::Landed { live }), Some(live));
            }
            let version = scale.metadata.resource_version.clone().unwrap_or_default();
            let body = patch_body(&version, change.to);
            let params = PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..PatchParams::default()
            };
            change.progress.store(SENT, Ordering::SeqCst);
            match self
                .bounded(
                    "PATCH",
                    api.patch_scale(name, &params, &Patch::Merge(&body)),
                )
                .await
            {
                Ok(_) => {
                    change.progress.store(LANDED, Ordering::SeqCst);
                    let message = format!("{live} → {} replicas: {}", change.to, change.reason);
                    let uid = scale.metadata.uid.clone();
                    if let Err(e) = post_event(self, &change.object, uid, &message).await {
                        tracing::warn!(
                            "workload '{}': scaled, but the Event on {} was not recorded: {e}",
                            change.workload,
                            change.object
                        );
                    }
                    return Done::applied(change.to);
                }
                Err(CallError::Conflict(m)) if !retried => {
                    // Refused, so not applied: nothing of this change is out there.
                    change.progress.store(NOT_SENT, Ordering::SeqCst);
                    tracing::info!(
                        "workload '{}': {} changed while being scaled ({m}); trying once more",
                        change.workload,
                        change.object
                    );
                    retried = true;
                }
                // The PATCH may have been applied: the next read tells.
                Err(CallError::Unanswered(m)) => return Done::unanswered(m, change.to),
                Err(e) => return settled(Outcome::Failed(e.reason()), None),
            }
        }
    }

    /// Runs one request within the timeout, turning its error into the outcome's reason.
    pub(super) async fn bounded<T>(
        &self,
        verb: &str,
        call: impl std::future::Future<Output = kube::Result<T>>,
    ) -> Result<T, CallError> {
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(CallError::Unanswered(format!(
                "timeout: {verb} had no answer within {}",
                humantime::format_duration(self.timeout)
            ))),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(verb, e)),
        }
    }
}

/// The merge patch: the count, guarded by the version read.
pub(super) fn patch_body(resource_version: &str, to: u32) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"resourceVersion": resource_version},
        "spec": {"replicas": to},
    })
}

/// `spec.replicas` of a Scale (absent means 0, as the API defaults it).
fn live_replicas(scale: &Scale) -> u32 {
    scale
        .spec
        .as_ref()
        .and_then(|s| s.replicas)
        .unwrap_or(0)
        .max(0) as u32
}

/// An error as the outcome says it: the API's Status reason and message where there is one.
pub(super) fn classify(verb: &str, e: kube::Error) -> CallError {
    match e {
        kube::Error::Api(s) => {
            let message = cut(&s.message);
            match s.code {
                409 => CallError::Conflict(message),
                403 => CallError::Other(format!("forbidden: {message}")),
                404 => CallError::Other(format!("not found: {message}")),
                code if code >= 500 => {
                    CallError::Unanswered(format!("{code} {}: {message}", s.reason))
                }
                code => CallError::Other(format!("{code} {}: {message}", s.reason)),
            }
        }
        // The auth layer failed it before it was sent: it cannot have landed.
        e if is_auth_error(&e) => CallError::Other(format!("{verb}: {}", error_text(&e))),
        e => CallError::Unanswered(format!("{verb}: {}", error_text(&e))),
    }
}

/// POSTs the Event for a change of `object`, within the request timeout.
async fn post_event(
    calls: &Calls,
    object: &ObjectRef,
    uid: Option<String>,
    message: &str,
) -> Result<(), String> {
    let api: Api<Event> = Api::namespaced(calls.client.clone(), &object.namespace);
    let event = event::build(object, uid, message, &calls.instance, SystemTime::now());
    calls
        .bounded("POST event", api.create(&PostParams::default(), &event))
        .await
        .map(|_| ())
        .map_err(CallError::reason)
}
