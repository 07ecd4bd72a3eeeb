//! Faults a real Prometheus does not produce on demand, from a scripted local server: 5xx then
//! success (retried with backoff), truncated and malformed JSON, a stalled response (timeout), 4xx
//! with Prometheus' error body, a refused connection, answers over `max_answer_size`; and
//! authentication headers sent without any secret reaching errors, health or `Debug` output.

use crate::common;

use common::*;
use prescale::collect::{Collector, HealthState, PrometheusSource, RetryPolicy};
use prescale::config::Config;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const STEP: i64 = 60;

fn vector_ok() -> Vec<u8> {
    br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"instance":"a"},"value":[1,"1"]}]}}"#.to_vec()
}

/// A matrix answer with one point per step of the requested range, value = ts / 60.
fn matrix_for(request: &str) -> Vec<u8> {
    let field = |name: &str| -> i64 {
        request
            .rsplit_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or("")
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (start, end, step) = (field("start"), field("end"), field("step").max(1));
    let values: Vec<String> = (start..=end)
        .step_by(step as usize)
        .map(|t| format!("[{t},\"{}\"]", t / 60))
        .collect();
    format!(
        r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"instance":"a"}},"values":[{}]}}]}}}}"#,
        values.join(",")
    )
    .into_bytes()
}

fn is_instant(req: &str) -> bool {
    req.starts_with("POST /api/v1/query ")
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base: Duration::from_millis(20),
        cap: Duration::from_millis(200),
    }
}

fn config_for(dir: &Path, url: &str, prometheus_extra: &str) -> Config {
    let text = format!(
        "[prometheus]\nurl = \"{url}\"\ntimeout = \"1s\"\n{prometheus_extra}\n\n[[signal]]\nname = \"cpu\"\n\
         query = \"cpu\"\nseries_labels = [\"instance\"]\nstep = \"1m\"\nlookback = \"1h\"\n"
    );
    load_config(dir, &text)
}

async fn collector(cfg: &Config, now: i64) -> Result<Collector, prescale::collect::CollectError> {
    let source =
        PrometheusSource::new(cfg.prometheus.as_ref().expect("prometheus")).expect("source");
    Collector::with_source(source, cfg.signals.clone(), fast_retry(), now).await
}

/// Serves the instant check and then `script[k]` for the k-th range query (the last entry
/// repeats).
fn scripted(script: Vec<fn(&str) -> Action>) -> (TestServer, Arc<AtomicUsize>) {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    let server = TestServer::start(move |req| {
        if is_instant(req) {
            return Action::Respond(200, "application/json", vector_ok());
        }
        let k = n2.fetch_add(1, Ordering::SeqCst);
        script[k.min(script.len() - 1)](req)
    });
    (server, n)
}

const T0: i64 = 1_800_000_000 - 1_800_000_000 % STEP;

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let (server, range_requests) = scripted(vec![
        |_| {
            Action::Respond(
                503,
                "application/json",
                br#"{"status":"error","errorType":"unavailable","error":"overloaded"}"#.to_vec(),
            )
        },
        |_| Action::Respond(502, "text/html", b"<html>Bad Gateway</html>".to_vec()),
        |_| Action::Close,
        |r| Action::Respond(200, "application/json", matrix_for(r)),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(dir.path(), &server.url(), "");
    let mut c = collector(&cfg, T0).await.expect("starts");
    let r = tokio::time::timeout(Duration::from_secs(20), c.backfill(T0))
        .await
        .expect("in time");
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.signals[0].retries, 3);
    assert_eq!(range_requests.load(Ordering::SeqCst), 4);
    assert_eq!(r.signals[0].appended, 61);
    let h = c.health("cpu").expect("health");
    assert_eq!(h.state, HealthState::Healthy);
    assert_eq!(c.stats("cpu").expect("stats").request_failures, 3);
}

#[tokio::test]
async fn truncated_and_malformed_bodies_keep_what_is_held() {
    let (server, _) = scripted(vec![
        |r| Action::Respond(200, "application/json", matrix_for(r)),
        |r| {
            let body = matrix_for(r);
            let cut = body.len() / 2;
            Action::CloseDelimited(body[..cut].to_vec())
        },
        |r| {
            let body = matrix_for(r);
            let cut = body.len() / 2;
            Action::ShortBody(body, cut)
        },
        |_| {
            Action::Respond(200, "application/json", br#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}"#.to_vec())
        },
        |_| Action::Respond(200, "application/json", b"<html>not json</html>".to_vec()),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(dir.path(), &server.url(), "");
    let mut c = collector(&cfg, T0).await.expect("starts");
    assert!(c.backfill(T0).await.ok());
    let key = prescale::series::SeriesKey::new("cpu{instance=\"a\"}");
    let before = c.store().series(&key).expect("held").tail(1000);

    let r = tokio::time::timeout(Duration::from_secs(20), c.poll(T0 + STEP))
        .await
        .expect("in time");
    let err = r.signals[0].error.clone().expect("poll fails");
    assert_eq!(
        r.signals[0].requests, 4,
        "every garbled answer was retried: {r:?}"
    );
    assert!(err.contains("unreadable response: malformed JSON"), "{err}");
    let after = c.store().series(&key).expect("still held").tail(1000);
    assert_eq!(before.len(), after.len());
    assert!(
        before.iter().zip(&after).all(|(a, b)| a == b),
        "nothing held was changed"
    );
    let h = c.health("cpu").expect("health");
    assert_eq!(h.state, HealthState::Degraded);
    assert_eq!(h.consecutive_failures, 1);
}

#[tokio::test]
async fn truncated_json_is_named() {
    let (server, _) = scripted(vec![|r| {
        let body = matrix_for(r);
        Action::CloseDelimited(body[..body.len() - 10].to_vec())
    }]);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(dir.path(), &server.url(), "");
    let mut c = collector(&cfg, T0).await.expect("starts");
    let r = c.backfill(T0).await;
    let err = r.signals[0].error.clone().expect("fails");
    assert!(err.contains("truncated JSON"), "{err}");
    assert_eq!(r.signals[0].requests, 4);
}

/// An answer over `max_answer_size` is refused, whether its length is declared (a claim of
/// 1 GiB: nothing is read, and nothing reserved for it) or found while reading a body without
/// one; it is not retried at the same size, and what is held stays.
#[tokio::test]
async fn answers_over_max_answer_size_are_refused_unread() {
    let (server, range_requests) = scripted(vec![
        |r| Action::Respond(200, "application/json", matrix_for(r)),
        |r| Action::Claims(1 << 30, matrix_for(r)),
        |r| {
            let mut body = matrix_for(r);
            body.resize(body.len() + 8192, b' ');
            Action::CloseDelimited(body)
        },
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(dir.path(), &server.url(), "max_answer_size = \"4Ki\"");
    let mut c = collector(&cfg, T0).await.expect("starts");
    let r = c.backfill(T0).await;
    assert!(r.ok(), "61 points fit in 4 KiB: {r:?}");
    for t in [T0 + STEP, T0 + 2 * STEP] {
        let r = tokio::time::timeout(Duration::from_secs(10), c.poll(t))
            .await
            .expect("in time");
        let err = r.signals[0].error.clone().expect("refused");
        assert!(
            err.contains("answer larger than 4Ki, the limit ([prometheus] max_answer_size)"),
            "{err}"
        );
        assert_eq!(r.signals[0].requests, 1, "not retried at the same size");
    }
    assert_eq!(range_requests.load(Ordering::SeqCst), 3);
    let key = prescale::series::SeriesKey::new("cpu{instance=\"a\"}");
    assert_eq!(c.store().series(&key).expect("held").len(), 61);
    assert_eq!(c.health("cpu").expect("health").state, HealthState::Down);
}

/// A backfill whose chunk is refused for its size halves the chunk at once, in the same
/// backfill, until the answers fit: a day at 1 minute (1,441 points, ~23 KB) under 8 KiB.
#[tokio::test]
async fn a_backfill_halves_chunks_refused_for_their_size_until_they_fit() {
    let server = TestServer::start(|req| {
        if is_instant(req) {
            return Action::Respond(200, "application/json", vector_ok());
        }
        Action::Respond(200, "application/json", matrix_for(req))
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[prometheus]\nurl = \"{}\"\ntimeout = \"1s\"\nmax_answer_size = \"8Ki\"\n\n\
         [[signal]]\nname = \"cpu\"\nquery = \"cpu\"\nseries_labels = [\"instance\"]\n\
         step = \"1m\"\nlookback = \"1d\"\n",
        server.url()
    );
    let cfg = load_config(dir.path(), &text);
    let mut c = collector(&cfg, T0).await.expect("starts");
    let r = tokio::time::timeout(Duration::from_secs(20), c.backfill(T0))
        .await
        .expect("in time");
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.signals[0].appended, 1441);
    let key = prescale::series::SeriesKey::new("cpu{instance=\"a\"}");
    let ring = c.store().series(&key).expect("held");
    assert_eq!(ring.oldest_timestamp(), Some(T0 - 1440 * STEP));
    assert_eq!(ring.newest_timestamp(), Some(T0));
    // 1,441 and 625 points refused (24 bytes a point: ~35 and ~15 KB; 10,000 >> 4 is the first
    // size under half of 1,441), then chunks of 312 (7.5 KB).
    assert_eq!(r.signals[0].requests, 2 + 1441u32.div_ceil(312));
}

#[tokio::test]
async fn stalled_response_times_out() {
    let (server, _) = scripted(vec![|_| Action::Stall(Duration::from_secs(10))]);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(dir.path(), &server.url(), "");
    let mut c = collector(&cfg, T0).await.expect("starts");
    let t = Instant::now();
    // A poll's retries stay within half a step; with a 1 s timeout that is a few attempts.
    let r = tokio::time::timeout(Duration::from_secs(40), c.poll(T0))
        .await
        .expect("in time");
    let err = r.signals[0].error.clone().expect("fails");
    assert!(err.contains("no complete response within 1s"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(
        c.health("cpu").expect("health").state,
        HealthState::Down,
        "never succeeded"
    );
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let (server, range_requests) = scripted(vec![|_| {
        Action::Respond(
            422,
            "application/json",
            br#"{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory"}"#.to_vec(),
        )
    }]);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(dir.path(), &server.url(), "");
    let mut c = collector(&cfg, T0).await.expect("starts");
    let r = c.backfill(T0).await;
    let err = r.signals[0].error.clone().expect("fails");
    assert!(
        err.contains("HTTP 422, execution): query processing would load too many samples"),
        "{err}"
    );
    assert_eq!(range_requests.load(Ordering::SeqCst), 1);
    assert_eq!(c.health("cpu").expect("health").state, HealthState::Down);
}

#[tokio::test]
async fn bad_query_fails_start_up_without_retry() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let server = TestServer::start(move |_| {
        c2.fetch_add(1, Ordering::SeqCst);
        Action::Respond(
            400,
            "application/json",
            br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:4: parse error: unexpected <EOF>"}"#.to_vec(),
        )
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(dir.path(), &server.url(), "");
    let e = collector(&cfg, T0)
        .await
        .err()
        .expect("start-up fails")
        .to_string();
    assert!(
        e.contains("signal 'cpu'") && e.contains("parse error: unexpected <EOF>"),
        "{e}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn refused_connection_fails_start_up_naming_the_url() {
    // A port nobody listens on: every connection is refused.
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config_for(dir.path(), &format!("http://127.0.0.1:{port}"), "");
    let e = collector(&cfg, T0)
        .await
        .err()
        .expect("start-up fails")
        .to_string();
    assert!(e.contains("cannot connect to http://127.0.0.1:"), "{e}");
    assert!(e.contains("/api/v1/query"), "{e}");
}

#[tokio::test]
async fn auth_headers_are_sent_and_secrets_never_shown() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), "tok-SECRET-1\n").expect("token");
    std::fs::write(dir.path().join("pw"), "pw-SECRET-2").expect("pw");
    let server = TestServer::start(|req| {
        if is_instant(req) {
            Action::Respond(200, "application/json", vector_ok())
        } else {
            Action::Respond(503, "text/plain", b"down for maintenance".to_vec())
        }
    });

    // Bearer token plus an extra header.
    let cfg = config_for(
        dir.path(),
        &server.url(),
        "bearer_token_file = \"token\"\nheaders = { X-Scope-OrgID = \"org-SECRET-3\" }",
    );
    let mut c = collector(&cfg, T0).await.expect("starts");
    let r = c.backfill(T0).await;
    let reqs = server.requests.lock().expect("requests").clone();
    let head = reqs[0].to_ascii_lowercase();
    assert!(
        head.contains("authorization: bearer tok-secret-1\r\n"),
        "{}",
        reqs[0]
    );
    assert!(
        head.contains("x-scope-orgid: org-secret-3\r\n"),
        "{}",
        reqs[0]
    );
    let shown = format!(
        "{cfg:?} {:?} {r:?} {:?} {:?}",
        c.source(),
        c.health("cpu"),
        c.stats("cpu")
    );
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(
        shown.contains("down for maintenance"),
        "the error itself is shown: {shown}"
    );

    // Basic auth with the password from a file.
    let cfg = config_for(
        dir.path(),
        &server.url(),
        "basic_auth = { user = \"prescale\", password_file = \"pw\" }",
    );
    let mut c = collector(&cfg, T0).await.expect("starts");
    let r = c.backfill(T0).await;
    let reqs = server.requests.lock().expect("requests").clone();
    let last = reqs.last().expect("a request").to_ascii_lowercase();
    // base64("prescale:pw-SECRET-2")
    assert!(
        last.contains("authorization: basic chjlc2nhbgu6chctu0vdukvulti=\r\n"),
        "{last}"
    );
    let shown = format!("{cfg:?} {:?} {r:?} {:?}", c.source(), c.health("cpu"));
    assert!(!shown.contains("SECRET"), "{shown}");
}

/// Replica counts are read concurrently: a store that answers no query until four are in
/// flight (so that, one after the other, each would time out) gives every count.
#[tokio::test]
async fn replica_counts_are_read_concurrently() {
    use prescale::collect::{PromClient, ReplicaReader};
    use std::sync::{Arc, Condvar, Mutex};
    let arrived = Arc::new((Mutex::new(0usize), Condvar::new()));
    let seen = arrived.clone();
    let server = TestServer::start(move |_req| {
        let (count, cv) = &*seen;
        let mut n = count.lock().unwrap();
        *n += 1;
        cv.notify_all();
        let _ = cv
            .wait_timeout_while(n, Duration::from_secs(5), |n| *n < 4)
            .unwrap();
        Action::Respond(
            200,
            "application/json",
            br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"3"]}]}}"#.to_vec(),
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = load_config(
        dir.path(),
        &format!(
            "[prometheus]\nurl = \"{}\"\ntimeout = \"2s\"\n\n[[signal]]\nname = \"cpu\"\n\
             query = \"up\"\nstep = \"1m\"\nlookback = \"1h\"\n",
            server.url()
        ),
    );
    let reader = ReplicaReader::new(PromClient::new(cfg.prometheus.as_ref().unwrap()).unwrap());
    let queries: Vec<(String, String)> = (0..4)
        .map(|i| (format!("w{i}"), format!("replicas{i}")))
        .collect();
    let out = reader
        .read(queries.iter().map(|(w, q)| (w.as_str(), q.as_str())), 1)
        .await;
    let names: Vec<&str> = out.iter().map(|o| o.0).collect();
    assert_eq!(
        names,
        ["w0", "w1", "w2", "w3"],
        "answers in the queries' order"
    );
    assert!(out.iter().all(|o| o.1 == Some(3)), "{out:?}");
}
