//! The Event recorded on the target object for every change prescale makes, so that
//! `kubectl describe deployment …` shows who scaled it and why: core/v1 `events` (the group
//! every cluster serves and `kubectl describe` reads), reason `PrescaleScaled`, type `Normal`,
//! the decision's one line as the message, reported by this replica (`reportingInstance` and
//! `source.host`: its pod name).
//!
//! Built here, posted by `call` (which holds the client). The Event is a record, not part of
//! the change: a failed post is logged there and
//! the decision stays applied.

use crate::plan::ObjectRef;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use std::time::SystemTime;

/// The Event's `reason`.
pub const REASON: &str = "PrescaleScaled";

/// The Event's `reportingComponent` and `source.component`.
pub const COMPONENT: &str = "prescale";

/// The Event for a change of `object` (`uid` as the GET read it), at `now`, reported by
/// `instance` (this replica: [`crate::kubernetes::replica_name`]).
pub(super) fn build(
    object: &ObjectRef,
    uid: Option<String>,
    message: &str,
    instance: &str,
    now: SystemTime,
) -> Event {
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let time = k8s_openapi::jiff::Timestamp::try_from(now).ok().map(Time);
    Event {
        metadata: ObjectMeta {
            // As client-go's recorder names them: the object's name and a unique suffix.
            name: Some(format!("{}.{nanos:x}", object.name)),
            namespace: Some(object.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some(object.kind.as_kind().into()),
            name: Some(object.name.clone()),
            namespace: Some(object.namespace.clone()),
            uid,
            ..ObjectReference::default()
        },
        reason: Some(REASON.into()),
        message: Some(cut_message(message)),
        type_: Some("Normal".into()),
        action: Some("Scale".into()),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(instance.into()),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: Some(instance.into()),
        }),
        first_timestamp: time.clone(),
        last_timestamp: time,
        count: Some(1),
        ..Event::default()
    }
}

/// The API server refuses an Event message over 1 KiB; a reason is one line, but a long one
/// is cut rather than lose the Event.
fn cut_message(m: &str) -> String {
    const MAX: usize = 1024;
    if m.len() <= MAX {
        return m.to_string();
    }
    let mut end = MAX - '…'.len_utf8();
    while !m.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &m[..end])
}
