//! Known future events through the real `prescale run` binary on the bundled replay: a
//! declared event raises the workload's count in the decision log, and the reason and the
//! guard say which event did it; a malformed event is refused naming its key (or, for a time
//! that does not parse, its line and column).

use crate::cli;
use cli::{demo_config, key, listen_line, prescale, text};

use std::path::{Path, PathBuf};

/// The demo configuration with a private log, one cycle, no exporter, and `extra` inserted
/// into the `api` workload.
fn config(dir: &Path, extra: &str) -> PathBuf {
    demo_config(dir, |line| match key(line) {
        "cycles" => Some("cycles = 1".into()),
        "listen" => Some(listen_line(None)),
        "speed" => Some("speed = 1e6".into()),
        _ if line == "name = \"api\"" => Some(format!("{line}\n{extra}")),
        _ => None,
    })
}

/// The `api` decision of the first (only) cycle in the log.
fn api_decision(dir: &Path) -> serde_json::Value {
    let log = std::fs::read_to_string(dir.join("d.jsonl")).unwrap();
    log.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["decision"]["target"] == "api")
        .unwrap_or_else(|| panic!("no api decision in {log}"))["decision"]
        .clone()
}

#[test]
fn an_active_event_raises_the_count_with_its_name_in_the_reason() {
    // Without an event: the api workload's number as the forecast has it (well under 25).
    let plain = tempfile::tempdir().unwrap();
    let cfg = config(plain.path(), "");
    let o = prescale(&["run", "--config", cfg.to_str().unwrap(), "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    let base = api_decision(plain.path());
    let base_to = base["to"].as_u64().unwrap();
    assert!(
        base_to < 25,
        "the demo's api already wants {base_to}: {base}"
    );

    // The replay's clock is the data's (2015-2016); an event spanning it is active, one in
    // 2099 is not, and one that starts a boot time (2 m) after now would be: none of the
    // latter two may change anything.
    let with = tempfile::tempdir().unwrap();
    let cfg = config(
        with.path(),
        r#"events = [
  { name = "far-future", from = "2099-01-01T00:00:00Z", to = "2099-01-02T00:00:00Z", floor = 30 },
  { name = "launch", from = 0, to = "2100-01-01T00:00:00+00:00", floor = 25 },
]"#,
    );
    let o = prescale(&["run", "--config", cfg.to_str().unwrap(), "--once"]);
    assert!(o.status.success(), "{}", text(&o));
    let d = api_decision(with.path());
    assert_eq!(d["to"], 25, "{d}");
    let reason = d["reason"].as_str().unwrap();
    assert!(
        reason.contains("raised to event floor 25 by event 'launch'"),
        "{reason}"
    );
    let guards = d["guards"].as_array().unwrap();
    assert!(
        guards
            .iter()
            .any(|g| g["kind"] == "event_floor" && g["after"] == 25),
        "{d}"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("event floor 25"));
}

#[test]
fn a_bad_event_is_refused_naming_its_key() {
    let dir = tempfile::tempdir().unwrap();
    for (extra, want) in [
        (
            r#"events = [{ from = "2026-12-24T18:00:00Z", to = "2026-12-24T17:00:00Z", floor = 4 }]"#,
            "events[0]",
        ),
        (
            r#"events = [{ from = "christmas", to = "2026-12-24T17:00:00Z", floor = 4 }]"#,
            "christmas",
        ),
    ] {
        let cfg = config(dir.path(), extra);
        let o = prescale(&["run", "--config", cfg.to_str().unwrap(), "--once"]);
        let all = text(&o);
        assert!(!o.status.success(), "{all}");
        assert!(
            all.contains(want) && all.contains("events"),
            "{want}: {all}"
        );
        assert!(!all.contains("panicked"), "{all}");
    }
}
