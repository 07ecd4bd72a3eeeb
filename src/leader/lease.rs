//! The three Lease calls the election makes (GET, POST, PUT on
//! `/apis/coordination.k8s.io/v1/namespaces/{ns}/leases[/{name}]`, the verbs `get`, `create`
//! and `update` that `deploy/role.yaml` grants) and the record's JSON fields.
//!
//! A PUT sends back the whole object last read with only the election's fields changed, so
//! labels or annotations someone put on the Lease survive, and its `resourceVersion` makes the
//! write fail (409) if anyone wrote since.

use super::machine::LeaseRecord;
use crate::kubernetes::{cut, error_text};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use std::time::{Duration, SystemTime};

/// Why one call failed, in a line for the log (never a token: the client's errors carry none).
#[derive(Debug, thiserror::Error)]
pub(super) enum CallError {
    /// Someone wrote the Lease since it was read (409), or created it first.
    #[error("{0}: the Lease changed since it was read (another replica wrote it)")]
    Conflict(&'static str),
    /// No answer within the request timeout.
    #[error("{0}: no answer within {1:?}")]
    Timeout(&'static str, Duration),
    /// The API server refused (`reason: message`) or could not be reached.
    #[error("{0}: {1}")]
    Failed(&'static str, String),
}

/// One Lease, read and written.
pub(super) struct LeaseApi {
    api: Api<Lease>,
    name: String,
    timeout: Duration,
    /// The object last read or written, sent back (changed) on update.
    last: Option<Lease>,
}

impl LeaseApi {
    pub(super) fn new(api: Api<Lease>, name: String, timeout: Duration) -> Self {
        LeaseApi {
            api,
            name,
            timeout,
            last: None,
        }
    }

    /// GET: the record and its version, or `None` if there is no Lease (404).
    pub(super) async fn get(&mut self) -> Result<Option<(LeaseRecord, String)>, CallError> {
        let got = self.bounded("get", self.api.get_opt(&self.name)).await?;
        self.last = got.clone();
        Ok(got.as_ref().map(record_of))
    }

    /// POST a new Lease holding `record`.
    pub(super) async fn create(
        &mut self,
        record: &LeaseRecord,
    ) -> Result<(LeaseRecord, String), CallError> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: Some(
                    [(
                        "app.kubernetes.io/managed-by".to_string(),
                        "prescale".to_string(),
                    )]
                    .into(),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(spec_of(record, LeaseSpec::default())),
        };
        let made = self
            .bounded("create", self.api.create(&PostParams::default(), &lease))
            .await?;
        let out = record_of(&made);
        self.last = Some(made);
        Ok(out)
    }

    /// PUT `record` over the Lease read at `resource_version`.
    pub(super) async fn update(
        &mut self,
        record: &LeaseRecord,
        resource_version: &str,
    ) -> Result<(LeaseRecord, String), CallError> {
        let mut lease = self.last.clone().unwrap_or_default();
        lease.metadata.name = Some(self.name.clone());
        lease.metadata.resource_version = Some(resource_version.to_string());
        lease.spec = Some(spec_of(record, lease.spec.unwrap_or_default()));
        let put = self
            .bounded(
                "update",
                self.api.replace(&self.name, &PostParams::default(), &lease),
            )
            .await?;
        let out = record_of(&put);
        self.last = Some(put);
        Ok(out)
    }

    /// Runs one call within the request timeout, naming it in the error.
    async fn bounded<T>(
        &self,
        verb: &'static str,
        call: impl std::future::Future<Output = kube::Result<T>>,
    ) -> Result<T, CallError> {
        match tokio::time::timeout(self.timeout, call).await {
            Err(_) => Err(CallError::Timeout(verb, self.timeout)),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(kube::Error::Api(s))) if s.code == 409 => Err(CallError::Conflict(verb)),
            Ok(Err(kube::Error::Api(s))) => Err(CallError::Failed(
                verb,
                format!("{} {}: {}", s.code, s.reason, cut(&s.message)),
            )),
            Ok(Err(e)) => Err(CallError::Failed(verb, error_text(&e))),
        }
    }
}

/// The election's fields of a Lease, and its version.
fn record_of(l: &Lease) -> (LeaseRecord, String) {
    let spec = l.spec.clone().unwrap_or_default();
    let record = LeaseRecord {
        holder: spec.holder_identity,
        lease_duration_seconds: spec.lease_duration_seconds.unwrap_or(0),
        acquire_time: spec.acquire_time.map(|t| SystemTime::from(t.0)),
        renew_time: spec.renew_time.map(|t| SystemTime::from(t.0)),
        transitions: spec.lease_transitions.unwrap_or(0),
    };
    let version = l.metadata.resource_version.clone().unwrap_or_default();
    (record, version)
}

/// `base` with the election's fields set from `r` (other fields, e.g. `strategy`, kept).
fn spec_of(r: &LeaseRecord, base: LeaseSpec) -> LeaseSpec {
    let micro = |t: Option<SystemTime>| {
        t.and_then(|t| k8s_openapi::jiff::Timestamp::try_from(t).ok())
            .map(MicroTime)
    };
    LeaseSpec {
        holder_identity: r.holder.clone(),
        lease_duration_seconds: Some(r.lease_duration_seconds),
        acquire_time: micro(r.acquire_time),
        renew_time: micro(r.renew_time),
        lease_transitions: Some(r.transitions),
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_survives_the_lease_json_round_trip() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_750_000_000_123_456);
        let r = LeaseRecord {
            holder: Some("prescale-0_0a1b2c3d".into()),
            lease_duration_seconds: 15,
            acquire_time: Some(t),
            renew_time: Some(t + Duration::from_secs(2)),
            transitions: 3,
        };
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some("prescale".into()),
                resource_version: Some("42".into()),
                ..ObjectMeta::default()
            },
            spec: Some(spec_of(&r, LeaseSpec::default())),
        };
        let json = serde_json::to_value(&lease).unwrap();
        // The API's field names and MicroTime's RFC 3339 with microseconds.
        assert_eq!(json["spec"]["holderIdentity"], "prescale-0_0a1b2c3d");
        assert_eq!(json["spec"]["leaseDurationSeconds"], 15);
        assert_eq!(json["spec"]["leaseTransitions"], 3);
        assert_eq!(json["spec"]["acquireTime"], "2025-06-15T15:06:40.123456Z");
        let back: Lease = serde_json::from_value(json).unwrap();
        assert_eq!(record_of(&back), (r, "42".to_string()));
    }
}
