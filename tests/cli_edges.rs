//! What a well-behaved command does at its edges (issue #10): logs only on stderr, without
//! colour codes when stderr is not a terminal and as JSON when asked; the demo from any working
//! directory; a missing file's error saying the OS message once; and no secret in any error,
//! whether it came from the configuration or from a server's answer.

use crate::cli;
use crate::common;

use cli::{prescale, text};
use common::{Action, TestServer};
use std::path::Path;
use std::process::Command;

/// A small `timestamp,value` history: 400 five-minute rows with a daily-ish wave.
fn tiny_csv(dir: &Path) -> String {
    let mut csv = String::from("timestamp,value\n");
    for i in 0..400 {
        csv.push_str(&format!("{},{}\n", 1_700_000_000 + i * 300, 5 + i % 12));
    }
    let path = dir.join("tiny.csv");
    std::fs::write(&path, csv).expect("write csv");
    path.display().to_string()
}

/// `prescale train` on the tiny history at `info`, pipes for stdout and stderr.
fn train(dir: &Path, extra: &[&str]) -> std::process::Output {
    let csv = tiny_csv(dir);
    let out = dir.join("m.model").display().to_string();
    Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(extra)
        .args(["train", "--history", &csv, "--out", &out, "--trees", "5"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .output()
        .expect("run prescale")
}

/// A tracing line: RFC 3339 timestamp then a level.
fn looks_like_log(line: &str) -> bool {
    let plain: String = line.chars().filter(|c| *c != '\u{1b}').collect();
    ["INFO", "WARN", "ERROR", "DEBUG", "\"level\""]
        .iter()
        .any(|l| plain.contains(l))
        && plain.starts_with(|c: char| c.is_ascii_digit() || c == '{' || c == '[')
}

#[test]
fn logs_go_to_stderr_without_colour_when_piped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = train(dir.path(), &[]);
    assert!(o.status.success(), "{}", text(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !stdout.lines().any(looks_like_log),
        "log lines on stdout:\n{stdout}"
    );
    assert!(
        stderr.contains("INFO"),
        "info logs on stderr expected:\n{stderr}"
    );
    assert!(
        !o.stderr.contains(&0x1b),
        "ESC bytes on a piped stderr:\n{stderr:?}"
    );
}

#[test]
fn log_format_json_gives_one_json_object_per_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = train(dir.path(), &["--log-format", "json"]);
    assert!(o.status.success(), "{}", text(&o));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no logs at all");
    for l in &lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.get("level").is_some(), "{l}");
    }
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(!stdout.lines().any(looks_like_log), "{stdout}");
    // `text` is the default and is accepted by name; anything else is refused.
    let o = train(dir.path(), &["--log-format", "text"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = prescale(&["--log-format", "xml", "run", "--once"]);
    assert!(!o.status.success());
}

#[test]
fn demo_runs_from_any_working_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(["run", "--once"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run prescale");
    let all = text(&o);
    assert!(o.status.success(), "{all}");
    assert!(all.contains("done: 1 cycles"), "{all}");
    // The decisions table names the demo's workloads.
    assert!(all.contains("web") && all.contains("api"), "{all}");
    assert!(
        std::fs::read_dir(dir.path()).expect("ls").next().is_none(),
        "the demo wrote into the working directory"
    );
}

/// `--cycles 0` ran one whole cycle (acting with `--apply`) although the configuration's
/// `run.cycles = 0` is refused: the flag is refused too, before anything runs.
#[test]
fn zero_cycles_is_refused_before_any_cycle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(["run", "--cycles", "0"])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run prescale");
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(all.contains("--cycles") && all.contains("0"), "{all}");
    assert!(!all.contains("cycle 1"), "a cycle ran: {all}");
}

/// `backtest --forecasts-csv` pointed at the history it reads replaced the history with
/// forecasts; now a file that is not a forecasts CSV prescale wrote is left, with an error
/// naming it, and one that is (an earlier run's) is replaced as before.
#[test]
fn backtest_does_not_write_its_forecasts_over_a_file_it_did_not_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = tiny_csv(dir.path());
    let before = std::fs::read(&csv).unwrap();
    let report = dir.path().join("r").display().to_string();
    let backtest = |out: &str| {
        Command::new(env!("CARGO_BIN_EXE_prescale"))
            .args([
                "backtest",
                "--history",
                &csv,
                "--report",
                &report,
                "--trees",
                "5",
            ])
            .args(["--forecasts-csv", out])
            .env("RUST_LOG", "warn")
            .output()
            .expect("run prescale")
    };
    let o = backtest(&csv);
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&csv) && all.contains("refusing to replace it"),
        "{all}"
    );
    assert_eq!(
        std::fs::read(&csv).unwrap(),
        before,
        "the history was touched"
    );
    // A forecasts CSV of an earlier run is prescale's to replace.
    let out = dir.path().join("f.csv").display().to_string();
    for _ in 0..2 {
        let o = backtest(&out);
        assert!(o.status.success(), "{}", text(&o));
    }
    let written = std::fs::read_to_string(&out).unwrap();
    assert!(written.starts_with("timestamp,p50,"), "{written}");
}

/// `train --out` naming a directory passed the check before training and failed only at the
/// save: now it fails first, naming the path, with nothing trained.
#[test]
fn train_out_naming_a_directory_fails_before_training() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = tiny_csv(dir.path());
    let o = Command::new(env!("CARGO_BIN_EXE_prescale"))
        .args(["train", "--history", &csv, "--trees", "5", "--out"])
        .arg(dir.path())
        .env("RUST_LOG", "info")
        .output()
        .expect("run prescale");
    let all = text(&o);
    assert_eq!(o.status.code(), Some(1), "{all}");
    assert!(all.contains("is a directory"), "{all}");
    assert!(!all.contains("trained"), "it trained first: {all}");
}

/// The OS message appears exactly once, and the path is named.
fn says_once(o: &std::process::Output, path: &str) {
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let os = "No such file or directory";
    assert_eq!(err.matches(os).count(), 1, "{err}");
    assert!(err.contains(path), "{err}");
}

#[test]
fn a_missing_file_is_reported_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = tiny_csv(dir.path());
    let report = dir.path().join("r").display().to_string();
    says_once(
        &prescale(&["train", "--history", "/nonexistent.csv", "--out", "/tmp/x"]),
        "/nonexistent.csv",
    );
    says_once(
        &prescale(&["run", "--config", "/nonexistent.toml"]),
        "/nonexistent.toml",
    );
    says_once(
        &prescale(&[
            "backtest",
            "--model",
            "/nonexistent.model",
            "--history",
            &csv,
            "--report",
            &report,
        ]),
        "/nonexistent.model",
    );
}

#[test]
fn credentials_in_a_config_url_are_not_echoed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("prescale.toml");
    for url in [
        "htp://user:TOKEN@host",
        "http://user:TOKEN@host:9090",
        "https://TOKEN@host/prefix",
        "ftp://u:TOKEN@h/?q#f",
    ] {
        let toml = format!(
            "[prometheus]\nurl = \"{url}\"\n\n[[signal]]\nname = \"cpu\"\nquery = \"up\"\nstep = \"1m\"\nlookback = \"1h\"\n"
        );
        let e =
            prescale::config::Config::from_toml(&path, &toml).expect_err("credentials are refused");
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(shown.contains("prometheus.url"), "{shown}");
            assert!(!shown.contains("TOKEN"), "{url}: {shown}");
        }
    }
    // An unquoted URL is a TOML error, whose message never quotes the line.
    let toml = "[prometheus]\nurl = htp://user:TOKEN@host\n";
    let e = prescale::config::Config::from_toml(&path, toml).expect_err("not TOML");
    for shown in [e.to_string(), format!("{e:?}")] {
        assert!(!shown.contains("TOKEN"), "{shown}");
    }
}

/// A proxy that answers every request with an error body echoing its `Authorization` and
/// `X-Scope-OrgID` headers.
/// The request's credential header lines, as a reflecting proxy would send them back.
fn credential_lines(req: &str) -> Vec<&str> {
    req.lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            l.starts_with("authorization:") || l.starts_with("x-scope-orgid:")
        })
        .collect()
}

fn echoing_server(status: u16) -> TestServer {
    TestServer::start(move |req| {
        let echoed = credential_lines(req);
        let body = format!("denied; you sent {}", echoed.join(" and "));
        let body = if status == 400 {
            // Prometheus' own envelope, as a reflecting proxy in front of it might build it.
            format!(r#"{{"status":"error","errorType":"bad_data","error":"{body}"}}"#)
        } else {
            body
        };
        Action::Respond(status, "text/plain", body.into_bytes())
    })
}

#[tokio::test]
async fn a_server_echoing_credentials_does_not_put_them_in_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), "tok-SECRET-1\n").expect("token");
    std::fs::write(dir.path().join("pw"), "pw-SECRET-2").expect("pw");
    // base64("prescale:pw-SECRET-2"), what a Basic header carries.
    let basic64 = "cHJlc2NhbGU6cHctU0VDUkVULTI=";
    for status in [400, 500] {
        let server = echoing_server(status);
        for auth in [
            "bearer_token_file = \"token\"",
            "basic_auth = { user = \"prescale\", password_file = \"pw\" }",
        ] {
            let cfg = common::load_config(
                dir.path(),
                &format!(
                    "[prometheus]\nurl = \"{}\"\n{auth}\nheaders = {{ X-Scope-OrgID = \"org-SECRET-3\" }}\n\n\
                     [[signal]]\nname = \"cpu\"\nquery = \"up\"\nstep = \"1m\"\nlookback = \"1h\"\n",
                    server.url()
                ),
            );
            let client = prescale::collect::PromClient::new(cfg.prometheus.as_ref().unwrap())
                .expect("client");
            let e = client.query("up", None).await.expect_err("refused");
            for shown in [e.to_string(), format!("{e:?}")] {
                assert!(
                    shown.contains("denied"),
                    "the error itself is shown: {shown}"
                );
                assert!(!shown.contains("SECRET"), "{status} {auth}: {shown}");
                assert!(!shown.contains(basic64), "{status} {auth}: {shown}");
            }
        }
    }
}

/// A server that answers every request with a `307` to `location` and records the requests.
struct Redirector {
    port: u16,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Redirector {
    fn start(location: String) -> Redirector {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (reqs, st) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                let Ok((conn, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut reader = BufReader::new(conn.try_clone().expect("clone"));
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    match reader.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => head.push_str(&line),
                    }
                }
                reqs.lock().expect("requests").push(head);
                let mut conn = conn;
                let _ = write!(
                    conn,
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = conn.shutdown(std::net::Shutdown::Both);
            }
        });
        Redirector {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Redirector {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[tokio::test]
async fn configured_headers_are_never_sent_to_another_origin() {
    // The redirect's target: another origin (another port) that would record the headers.
    let other = TestServer::start(|_| Action::Respond(200, "application/json", b"{}".to_vec()));
    let redirector = Redirector::start(format!("{}/api/v1/query", other.url()));
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = common::load_config(
        dir.path(),
        &format!(
            "[prometheus]\nurl = \"http://127.0.0.1:{}\"\nheaders = {{ X-Scope-OrgID = \"org-SECRET-3\" }}\n\n\
             [[signal]]\nname = \"cpu\"\nquery = \"up\"\nstep = \"1m\"\nlookback = \"1h\"\n",
            redirector.port
        ),
    );
    let client =
        prescale::collect::PromClient::new(cfg.prometheus.as_ref().unwrap()).expect("client");
    let e = client
        .query("up", None)
        .await
        .expect_err("redirect refused");
    let shown = format!("{e} {e:?}");
    assert!(shown.contains("another origin"), "{shown}");
    assert!(!shown.contains("SECRET"), "{shown}");
    let sent = redirector.requests.lock().expect("requests").clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(
        sent[0].to_ascii_lowercase().contains("x-scope-orgid"),
        "{sent:?}"
    );
    assert_eq!(other.request_count(), 0, "headers followed the redirect");
}

/// A reflecting proxy (or a broken server) can put the request's credentials into a success
/// answer's `warnings` too, which the collector logs: they must be redacted and cut like errors.
#[tokio::test]
async fn warnings_echoing_credentials_are_redacted_cut_and_few() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), "tok-SECRET-1\n").expect("token");
    let server = TestServer::start(move |req| {
        let echoed = credential_lines(req);
        let mut warnings = vec![format!("\"you sent {}\"", echoed.join(" and "))];
        warnings.push(format!("\"{}\"", "w".repeat(10_000)));
        warnings.extend((0..500).map(|i| format!("\"warning {i}\"")));
        let body = format!(
            r#"{{"status":"success","warnings":[{}],"data":{{"resultType":"vector","result":[]}}}}"#,
            warnings.join(",")
        );
        Action::Respond(200, "application/json", body.into_bytes())
    });
    let cfg = common::load_config(
        dir.path(),
        &format!(
            "[prometheus]\nurl = \"{}\"\nbearer_token_file = \"token\"\nheaders = {{ X-Scope-OrgID = \"org-SECRET-3\" }}\n\n\
             [[signal]]\nname = \"cpu\"\nquery = \"up\"\nstep = \"1m\"\nlookback = \"1h\"\n",
            server.url()
        ),
    );
    let client =
        prescale::collect::PromClient::new(cfg.prometheus.as_ref().unwrap()).expect("client");
    let answer = client.query("up", None).await.expect("a success answer");
    let all = answer.warnings.join("\n");
    assert!(all.contains("you sent"), "{all}");
    assert!(!all.contains("SECRET"), "{all}");
    assert!(
        answer.warnings.iter().all(|w| w.chars().count() < 600),
        "every warning cut short"
    );
    assert!(
        answer.warnings.len() <= 11,
        "{} warnings",
        answer.warnings.len()
    );
    assert!(
        answer.warnings.last().unwrap().contains("more"),
        "says how many were left out: {:?}",
        answer.warnings.last()
    );
}

/// `--max-points` trains `train` and `backtest` on a spread sample of whole series, said on
/// stdout; the model records the series it saw.
#[test]
fn max_points_trains_on_a_spread_sample_of_whole_series() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("m.model").display().to_string();
    let history = cli::repo("data");
    let mut files: Vec<String> = std::fs::read_dir(&history)
        .expect("data/")
        .filter_map(|e| e.ok().map(|e| e.path().display().to_string()))
        .filter(|p| p.ends_with(".csv"))
        .collect();
    // Series are sampled in the order given.
    files.sort();
    // `command` with `flags`, `--trees 5` and every file as `--history`.
    let run = |command: &str, flags: &[&str]| {
        let mut args = vec![command, "--trees", "5"];
        args.extend(flags);
        for f in &files {
            args.extend(["--history", f.as_str()]);
        }
        let o = prescale(&args);
        let t = text(&o);
        assert!(o.status.success(), "{t}");
        t
    };
    let t = run("train", &["--max-points", "30000", "--out", &out]);
    assert!(
        t.contains(&format!(
            "training on a spread sample: 3 of {} series",
            files.len()
        )),
        "{t}"
    );
    assert!(t.contains("trained on 3 series"), "{t}");
    let model = prescale::forecast::Model::load(Path::new(&out)).expect("model");
    assert_eq!(model.meta.series.len(), 3);

    let report = dir.path().join("r").display().to_string();
    let t = run("backtest", &["--max-points", "20000", "--report", &report]);
    assert!(t.contains("training on a spread sample: "), "{t}");
}
