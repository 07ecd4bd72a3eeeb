//! `[run]`: the live loop's own keys (actuator, files kept across restarts, retraining, the
//! online calibration).

use super::*;

#[test]
fn live_sections_are_checked_by_key() {
    let text = r#"
[[signal]]
name = "cpu"
query = "up"
step = "1m"
lookback = "1d"

[replay]
signal = "mem"
files = ["x.csv"]
speed = -1

[run]
interval = "soon"
cycles = 0

[[workload]]
name = "a"
demand = "cpu"
replica_capacity = 0
max_replicas = 3
boot_time = "1m"
pool = "nope"

[[pool]]
name = "p"
capacity = { cpu = 4, memory = "8Gi" }
boot_time = "2m"
max_nodes = 3

[[node]]
name = "n1"
pool = "q"

[accuracy]
good_wape = 0.9
bad_wape = 0.1

[online_calibration]
gain = 0
"#;
    let e = Config::from_toml(Path::new("t.toml"), text)
        .unwrap_err()
        .to_string();
    for key in [
        "replay.signal",
        "replay.speed",
        "run.interval",
        "run.cycles",
        "workload[0]",
        "workload[0].pool",
        "node[0].pool",
        "accuracy",
        "online_calibration.gain",
    ] {
        assert!(e.contains(&format!("{key}:")), "missing {key} in:\n{e}");
    }
}

#[test]
fn apply_command_is_split_at_load_and_a_shell_script_with_a_value_is_refused() {
    let with = |cmd: &str| format!("{GOOD}\n[run]\napply_command = {cmd:?}\n");
    let c = parse(&with("kubectl scale 'deployment/{target}' --replicas={to}")).unwrap();
    let t = c.live.apply_command.expect("a template");
    assert_eq!(t.program(), "kubectl");
    for bad in [
        "sh -c 'kubectl scale deployment/{target} --replicas={to}'",
        "{target}",
        "kubectl scale 'deployment/{target}",
        "kubectl scale deployment/{name}",
        "",
    ] {
        let e = parse(&with(bad)).unwrap_err().to_string();
        assert!(e.contains("run.apply_command: "), "{bad}: {e}");
    }
}

#[test]
fn retrain_exclude_is_read_and_bad_ranges_name_their_key() {
    let base = "[run]\nretrain_every = \"24h\"\n";
    let good = format!(
        "{base}retrain_exclude = [{{ from = \"2026-11-02T09:00:00Z\", to = 1793613600 }}]\n"
    );
    let c = parse(&good).unwrap();
    let r = c.live.retrain_exclude;
    assert_eq!(r.len(), 1);
    assert_eq!((r[0].from, r[0].to), (1_793_610_000, 1_793_613_600));
    let backwards = format!("{base}retrain_exclude = [{{ from = 200, to = 100 }}]\n");
    let e = parse(&backwards).unwrap_err().to_string();
    assert!(
        e.contains("run.retrain_exclude[0]") && e.contains("must be after"),
        "{e}"
    );
    let garbled = format!("{base}retrain_exclude = [{{ from = \"monday\", to = 100 }}]\n");
    let e = parse(&garbled).unwrap_err().to_string();
    // Read by serde: the error says where (the `from` of the third line) and what.
    assert!(
        e.contains("line 3, column 29 (key retrain_exclude > from): 'monday' is neither"),
        "{e}"
    );
}

#[test]
fn own_model_after_defaults_to_the_measured_threshold_and_can_be_off() {
    let c = parse("[run]\n").unwrap();
    assert_eq!(
        c.live.own_model_after,
        Some(crate::forecast::stage::DEFAULT_OWN_MODEL_AFTER)
    );
    let c = parse("[run]\nown_model_after = \"36h\"\n").unwrap();
    assert_eq!(c.live.own_model_after, Some(36 * 3600));
    let c = parse("[run]\nown_model_after = \"off\"\n").unwrap();
    assert_eq!(c.live.own_model_after, None);
    for bad in ["\"0s\"", "\"soon\""] {
        let e = parse(&format!("[run]\nown_model_after = {bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("run.own_model_after") && e.contains("\"off\""),
            "{e}"
        );
    }
}

#[test]
fn the_actuator_is_chosen_and_checked_against_what_it_needs() {
    use crate::act::ActuatorKind;
    let workload = |object: &str| {
        format!(
            "[[workload]]\nname = \"web\"\ndemand = 'cpu{{instance=\"a\"}}'\nreplica_capacity = 1\n\
             max_replicas = 5\nboot_time = \"1m\"\n{object}\n"
        )
    };
    // Defaults: the command when there is one, the Kubernetes API otherwise.
    let c = parse(&format!("{GOOD}\n[run]\napply_command = \"true\"\n")).unwrap();
    assert_eq!(c.live.actuator(), ActuatorKind::Command);
    let c = parse(GOOD).unwrap();
    assert_eq!(c.live.actuator(), ActuatorKind::Kubernetes);
    // Explicit, with what it needs.
    let c = parse(&format!(
        "{GOOD}\n[run]\nactuator = \"kubernetes\"\napply_command = \"true\"\n\n{}",
        workload("deployment = \"shop/web\"")
    ))
    .unwrap();
    assert_eq!(c.live.actuator(), ActuatorKind::Kubernetes);
    // Without: the key, and the workload by name.
    let e = parse(&format!(
        "{GOOD}\n[run]\nactuator = \"kubernetes\"\n\n{}",
        workload("")
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("workload[0]: 'web': run.actuator"), "{e}");
    let e = parse(&format!("{GOOD}\n[run]\nactuator = \"command\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("run.actuator: is \"command\" but run.apply_command"),
        "{e}"
    );
    let e = parse(&format!("{GOOD}\n[run]\nactuator = \"kubectl\"\n"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("run.actuator: 'kubectl' is not an actuator"),
        "{e}"
    );
}

#[test]
fn online_calibration_is_on_by_default_and_can_be_turned_off() {
    let c = parse(GOOD).unwrap();
    assert_eq!(
        c.live.online_calibration,
        crate::forecast::OnlineConfig::default()
    );
    assert!(c.live.online_calibration.enabled);
    let off = parse(&format!(
        "{GOOD}\n[online_calibration]\nenabled = false\ngain = 0.02\n"
    ))
    .unwrap();
    assert!(!off.live.online_calibration.enabled);
    assert_eq!(off.live.online_calibration.gain, 0.02);
    let e = parse(&format!("{GOOD}\n[online_calibration]\nstep = 1\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("step"), "{e}");
}

#[test]
fn the_calibration_state_lives_beside_the_decision_log_unless_placed() {
    let c = parse(GOOD).unwrap();
    assert_eq!(
        c.live.calibration_state,
        Path::new("/nonexistent/prescale-decisions.calibration.json")
    );
    let c = parse(&format!("{GOOD}\n[run]\ndecision_log = \"logs/d.jsonl\"\n")).unwrap();
    assert_eq!(
        c.live.calibration_state,
        Path::new("/nonexistent/logs/d.calibration.json")
    );
    let c = parse(&format!(
        "{GOOD}\n[run]\ncalibration_state = \"/var/lib/prescale/cal.json\"\n"
    ))
    .unwrap();
    assert_eq!(
        c.live.calibration_state,
        Path::new("/var/lib/prescale/cal.json")
    );
    let e = parse(&format!(
        "{GOOD}\n[run]\ndecision_log = \"x.json\"\ncalibration_state = \"x.json\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("run.calibration_state"), "{e}");
}

/// The retrained model's file is replaced at each retraining that wins: it may be none of the
/// files the user gave or the loop writes.
#[test]
fn the_retrained_model_lives_beside_the_decision_log_in_a_file_of_its_own() {
    let c = parse(&format!("{GOOD}\n[run]\ndecision_log = \"logs/d.jsonl\"\n")).unwrap();
    assert_eq!(
        c.live.retrained_model,
        Path::new("/nonexistent/logs/d.retrained.model")
    );
    for (extra, what) in [
        (
            "model = \"m.model\"\nretrained_model = \"m.model\"",
            "run.model's",
        ),
        (
            "retrained_model = \"prescale-decisions.jsonl\"",
            "the decision log's",
        ),
        (
            "calibration_state = \"c.json\"\nretrained_model = \"c.json\"",
            "run.calibration_state's",
        ),
    ] {
        let e = parse(&format!("{GOOD}\n[run]\n{extra}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(&format!("run.retrained_model: is {what} path")),
            "{extra}: {e}"
        );
    }
}

#[test]
fn retrain_max_points_defaults_to_a_million_and_is_bounded() {
    assert_eq!(parse(GOOD).unwrap().live.retrain_max_points, 1_000_000);
    let with = |n: &str| parse(&format!("{GOOD}\n[run]\nretrain_max_points = {n}\n"));
    assert_eq!(with("250000").unwrap().live.retrain_max_points, 250_000);
    for n in ["9999", "100000001", "0"] {
        let e = with(n).unwrap_err().to_string();
        assert!(e.contains("run.retrain_max_points: "), "{n}: {e}");
    }
    let e = with("-1").unwrap_err().to_string();
    assert!(e.contains("retrain_max_points"), "{e}");
    // GOOD's signal holds 7 days at 1 minute (10,083 points): a budget under one series of it
    // hands retraining nothing, refused once retraining is on.
    assert!(with("10000").is_ok());
    let e = parse(&format!(
        "{GOOD}\n[run]\nretrain_every = \"1d\"\nretrain_max_points = 10000\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("run.retrain_max_points: 10000 is less than one series of signal 'cpu' holds (10083 points)"),
        "{e}"
    );
}
