//! The request bodies and the words of outcomes, without a server (the requests themselves
//! are asserted against a fake API server in `tests/act_kube.rs`).

use super::call::{classify, patch_body, CallError};
use super::event::build;
use crate::plan::{ObjectKind, ObjectRef};
use std::time::{Duration, SystemTime};

#[test]
fn the_patch_sets_only_the_replicas_guarded_by_the_version_read() {
    assert_eq!(
        patch_body("4711", 6),
        serde_json::json!({"metadata": {"resourceVersion": "4711"}, "spec": {"replicas": 6}})
    );
}

#[test]
fn the_event_names_the_object_and_says_why() {
    let object = ObjectRef::parse(ObjectKind::StatefulSet, "shop/db").unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_750_000_000);
    let e = build(
        &object,
        Some("uid-1".into()),
        "2 → 3 replicas: demand up",
        "prescale-1",
        at,
    );
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["involvedObject"]["apiVersion"], "apps/v1");
    assert_eq!(json["involvedObject"]["kind"], "StatefulSet");
    assert_eq!(json["involvedObject"]["namespace"], "shop");
    assert_eq!(json["involvedObject"]["name"], "db");
    assert_eq!(json["involvedObject"]["uid"], "uid-1");
    assert_eq!(json["reason"], "PrescaleScaled");
    assert_eq!(json["type"], "Normal");
    assert_eq!(json["reportingComponent"], "prescale");
    assert_eq!(json["reportingInstance"], "prescale-1");
    assert_eq!(json["source"]["component"], "prescale");
    assert_eq!(json["source"]["host"], "prescale-1");
    assert_eq!(json["message"], "2 → 3 replicas: demand up");
    assert_eq!(json["metadata"]["namespace"], "shop");
    assert!(json["metadata"]["name"]
        .as_str()
        .unwrap()
        .starts_with("db."));
    assert_eq!(json["firstTimestamp"], "2025-06-15T15:06:40Z");
    // A runaway reason is cut to what the API server accepts, not refused.
    let long = build(&object, None, &"é".repeat(2000), "p", at);
    assert!(long.message.unwrap().len() <= 1024);
}

#[test]
fn api_errors_are_worded_from_their_status() {
    let status = |code: u16, reason: &str| {
        kube::Error::Api(
            kube::core::Status::failure(&format!("msg {code}"), reason)
                .with_code(code)
                .boxed(),
        )
    };
    let words = |e| classify("GET", e).reason();
    assert_eq!(words(status(403, "Forbidden")), "forbidden: msg 403");
    assert_eq!(words(status(404, "NotFound")), "not found: msg 404");
    assert_eq!(words(status(409, "Conflict")), "conflict: msg 409");
    assert_eq!(
        words(status(500, "InternalError")),
        "500 InternalError: msg 500"
    );
    // A 5xx does not say whether a write was carried out; a 4xx refusal does.
    assert!(matches!(
        classify("PATCH", status(503, "ServiceUnavailable")),
        CallError::Unanswered(_)
    ));
    assert!(matches!(
        classify("PATCH", status(422, "Invalid")),
        CallError::Other(_)
    ));
}
