//! The decision log through the binary: `decision_log` pointed at a file that is not a log is
//! refused and left byte for byte, and a complete last line without its newline survives a
//! restart.

use crate::cli;
use cli::{prescale, repo, text};

use std::path::Path;

/// The demo configuration with absolute paths, no exporter, and the log at `log`.
fn config(dir: &Path, log: &Path) -> String {
    let demo = std::fs::read_to_string(repo("config/demo.toml")).unwrap();
    let mut out = String::new();
    for line in demo.lines() {
        let line = match line.split_whitespace().next() {
            Some("model") => format!("model = {:?}", repo("models/web.model")),
            Some("decision_log") => format!("decision_log = {:?}", log.display().to_string()),
            Some("listen") => "enabled = false".to_string(),
            Some("dir") => format!("dir = {:?}", repo("data")),
            Some("speed") => "speed = 1e6".to_string(),
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    let p = dir.join("live.toml");
    std::fs::write(&p, out).unwrap();
    p.display().to_string()
}

#[test]
fn a_decision_log_pointed_at_a_model_file_is_refused_and_left_intact() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("web.model");
    std::fs::copy(repo("models/web.model"), &victim).unwrap();
    let before = std::fs::read(&victim).unwrap();
    let cfg = config(dir.path(), &victim);
    let o = prescale(&["run", "--config", &cfg, "--once"]);
    let all = text(&o);
    assert!(!o.status.success(), "{all}");
    assert!(
        all.contains("web.model") && all.contains("not a decision log"),
        "{all}"
    );
    assert_eq!(
        std::fs::read(&victim).unwrap(),
        before,
        "the model file was modified"
    );
}

#[test]
fn a_complete_last_line_without_newline_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("d.jsonl");
    let cfg = config(dir.path(), &log);
    let o = prescale(&["run", "--config", &cfg, "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut bytes = std::fs::read(&log).unwrap();
    assert_eq!(bytes.pop(), Some(b'\n'));
    std::fs::write(&log, &bytes).unwrap();
    let lines = bytes.split(|&b| b == b'\n').count();

    let o = prescale(&["run", "--config", &cfg, "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    let after = std::fs::read_to_string(&log).unwrap();
    // Every line of the first run is still there, whole, and the second run appended after.
    assert!(after.as_bytes().starts_with(&bytes), "a line was lost");
    assert!(after.lines().count() > lines, "{after}");
    for l in after.lines() {
        serde_json::from_str::<serde_json::Value>(l).expect("every log line parses");
    }
}
