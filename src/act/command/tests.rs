//! Template parsing and refusals, and the actuator on real processes.

use super::*;
use crate::act::tests::decision;
use crate::act::{Actuator, MAX_IN_FLIGHT};
use std::time::Instant;

fn parse(t: &str) -> Result<CommandTemplate, TemplateError> {
    CommandTemplate::parse(t)
}

#[test]
fn templates_split_like_a_shell_and_values_fill_whole_arguments() {
    let t = parse(
        r#"kubectl scale "deployment/{target}" --replicas={to} -l 'app={target},from={from}' {kind}"#,
    )
    .unwrap();
    assert_eq!(t.program(), "kubectl");
    let d = decision(
        DecisionKind::ScaleUp,
        "x;touch /tmp/f $(id) `id` ' \" {to}",
        3,
        5,
    );
    assert_eq!(
        t.argv(&d).unwrap(),
        [
            "kubectl",
            "scale",
            "deployment/x;touch /tmp/f $(id) `id` ' \" {to}",
            "--replicas=5",
            "-l",
            "app=x;touch /tmp/f $(id) `id` ' \" {to},from=3",
            "scale-up",
        ]
    );
    // Nothing is expanded: no shell reads the template either.
    let t = parse("echo $HOME ~ * {to}").unwrap();
    assert_eq!(
        t.argv(&decision(DecisionKind::ScaleDown, "w", 2, 1))
            .unwrap(),
        ["echo", "$HOME", "~", "*", "1"]
    );
    // Braces that are not placeholders stay (a JSON patch, say).
    let t = parse(r#"kubectl patch deploy/{target} -p '{"spec":{"replicas":{to}}}'"#).unwrap();
    assert_eq!(
        t.argv(&decision(DecisionKind::ScaleUp, "web", 2, 4))
            .unwrap()[4],
        r#"{"spec":{"replicas":4}}"#
    );
    assert_eq!(
        t.to_string(),
        r#"kubectl patch 'deploy/{target}' -p '{"spec":{"replicas":{to}}}'"#
    );
}

#[test]
fn positional_arguments_to_a_shell_are_allowed() {
    for ok in [
        r#"sh -c 'kubectl scale "deployment/$1" --replicas="$2"' _ {target} {to}"#,
        r#"bash -ec 'echo "$@"' prescale {kind} {target}"#,
        "/usr/bin/env bash ./scale.sh {target} {to}",
        "sh ./scale.sh {target}",
        "kubectl scale deployment/sh --replicas={to}",
    ] {
        parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn a_placeholder_in_a_shell_script_is_refused() {
    for (bad, shell, index) in [
        ("sh -c 'echo {target}'", "sh", 2),
        (r#"sh -c "kubectl scale '{target}'""#, "sh", 2),
        ("bash -c 'kubectl scale deployment/\"{target}\"'", "bash", 2),
        ("/bin/sh -ec 'echo {to}'", "/bin/sh", 2),
        ("zsh -x -c 'echo {kind}'", "zsh", 3),
        ("env dash -c 'echo {target}'", "dash", 3),
        ("bash -o pipefail -c 'echo {target} | cat'", "bash", 4),
        ("busybox sh -c 'echo {target}'", "sh", 3),
        ("kubectl exec pod -- sh -c 'echo {target}'", "sh", 6),
        ("fish --command 'echo {target}'", "fish", 2),
        ("fish --command='echo {target}'", "fish", 1),
        ("sudo -u ops ksh -c 'echo {target}'", "ksh", 5),
    ] {
        let err = parse(bad).unwrap_err();
        assert_eq!(
            err,
            TemplateError::ShellScript {
                shell: shell.into(),
                index
            },
            "{bad}"
        );
        let msg = err.to_string();
        assert!(msg.contains("positional") && msg.contains("$1"), "{msg}");
    }
}

#[test]
fn other_refusals_say_what_is_wrong() {
    assert_eq!(parse("").unwrap_err(), TemplateError::Empty);
    assert_eq!(parse("   ").unwrap_err(), TemplateError::Empty);
    assert_eq!(
        parse("kubectl scale 'deployment/{target}").unwrap_err(),
        TemplateError::Unsplittable
    );
    assert_eq!(
        parse("{target} --replicas={to}").unwrap_err(),
        TemplateError::PlaceholderProgram {
            program: "{target}".into()
        }
    );
    assert_eq!(
        parse("/opt/{kind}.sh {target}").unwrap_err(),
        TemplateError::PlaceholderProgram {
            program: "/opt/{kind}.sh".into()
        }
    );
    let err = parse("kubectl scale deployment/{taget} --replicas={to}").unwrap_err();
    assert_eq!(
        err,
        TemplateError::UnknownPlaceholder {
            name: "taget".into(),
            index: 2
        }
    );
    assert!(err
        .to_string()
        .contains("{target}, {from}, {to} and {kind}"));
}

#[test]
fn excerpts_are_one_short_line_of_the_end() {
    assert_eq!(
        excerpt(b"\x1b[31mError\x1b[0m from server:\n  not found\n"),
        "[31mError [0m from server: not found"
    );
    let long = format!("{}END", "x".repeat(1000));
    let e = excerpt(long.as_bytes());
    assert!(e.starts_with('…') && e.ends_with("END"), "{e}");
    assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
    let mut kept = Vec::new();
    for _ in 0..100 {
        keep_tail(&mut kept, &[b'a'; 1000]);
    }
    keep_tail(&mut kept, b"tail");
    assert_eq!(kept.len(), STDERR_KEPT);
    assert!(kept.ends_with(b"tail"));
}

fn actuator(t: &str) -> CommandActuator {
    CommandActuator::new(parse(t).unwrap())
}

#[tokio::test]
async fn outcomes_per_decision_with_exit_status_and_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("applied.txt");
    let mut a = actuator(&format!(
        r#"sh -c 'if [ "$1" = api ]; then printf "no\n such deployment" >&2; exit 3; fi; echo "$2 $1 $3 $4" >> "$0"' {} {{target}} {{kind}} {{from}} {{to}}"#,
        out.display()
    ));
    let ds = vec![
        decision(DecisionKind::ScaleUp, "web", 3, 5),
        decision(DecisionKind::AddNode, "pool", 1, 2),
        decision(DecisionKind::ScaleDown, "api", 5, 4),
        decision(DecisionKind::Hold, "db", 2, 2),
        decision(DecisionKind::ScaleDown, "x; rm -rf /", 5, 4),
    ];
    let outcomes = a.apply(&ds).await;
    assert_eq!(
        outcomes,
        [
            Outcome::Applied,
            Outcome::Skipped(Skip::Nothing),
            Outcome::Failed("sh exited with status 3: no such deployment".into()),
            Outcome::Skipped(Skip::Nothing),
            Outcome::Applied,
        ]
    );
    // The two ran concurrently: either may have written first.
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["scale-down x; rm -rf / 5 4", "scale-up web 3 5"]);
}

/// A value that would start an argument with `-` is read as an option by most programs: the
/// decision fails, saying so, and nothing runs; inside a word, or not first, it is a value.
#[tokio::test]
async fn a_value_that_would_be_an_option_fails_its_decision_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ran.txt");
    let mut a = actuator(&format!(
        r#"sh -c 'echo "$1" >> "$0"' {} {{target}}"#,
        out.display()
    ));
    let o = a
        .apply(&[
            decision(DecisionKind::ScaleUp, "--kubeconfig=/tmp/x", 3, 5),
            decision(DecisionKind::ScaleUp, "web", 3, 5),
        ])
        .await;
    let Outcome::Failed(why) = &o[0] else {
        panic!("{o:?}")
    };
    assert!(
        why.contains("`{target}` would be `--kubeconfig=/tmp/x`") && why.contains("an option"),
        "{why}"
    );
    assert_eq!(o[1], Outcome::Applied);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "web\n");
    let t = parse("kubectl scale deployment/{target} --replicas={to} x{target}").unwrap();
    let argv = t
        .argv(&decision(DecisionKind::ScaleUp, "-w", 3, 5))
        .unwrap();
    assert_eq!(argv[2], "deployment/-w");
    assert_eq!(argv[4], "x-w");
}

#[tokio::test]
async fn a_program_that_cannot_start_fails_its_decision_only() {
    let mut a = actuator("/nonexistent/kubectl scale {target}");
    let o = a
        .apply(&[decision(DecisionKind::ScaleUp, "web", 3, 5)])
        .await;
    let Outcome::Failed(why) = &o[0] else {
        panic!("{o:?}")
    };
    assert!(
        why.starts_with("/nonexistent/kubectl could not be started: "),
        "{why}"
    );
}

#[tokio::test]
async fn a_hanging_command_is_killed_at_its_timeout_and_holds_back_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("applied.txt");
    // Each command appends its target and the time it ran at (ms since the epoch).
    let mut a = actuator(&format!(
        r#"sh -c 'echo "$1 $(date +%s%3N)" >> "$0"; [ "$1" = web ] && sleep 1000; true' {} {{target}}"#,
        out.display()
    ))
    .with_timeout(Duration::from_millis(1500));
    // web hangs; six more behind it, more than the slots left beside it.
    let names = ["web", "a", "b", "c", "d", "e", "f"];
    let ds: Vec<Decision> = names
        .iter()
        .map(|n| decision(DecisionKind::ScaleUp, n, 3, 5))
        .collect();
    let t0 = Instant::now();
    let o = a.apply(&ds).await;
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(
        o[0],
        Outcome::Failed("sh timed out after 1.5s (run.apply_timeout) and was killed".into())
    );
    assert!(o[1..].iter().all(|o| *o == Outcome::Applied), "{o:?}");
    // One at a time, all six would have started after web's timeout.
    let text = std::fs::read_to_string(&out).unwrap();
    let at = |name: &str| -> u128 {
        let line = text.lines().find(|l| l.split(' ').next() == Some(name));
        line.and_then(|l| l.split(' ').nth(1)?.parse().ok())
            .unwrap_or_else(|| panic!("{name} did not run: {text}"))
    };
    for n in &names[1..] {
        assert!(at(n) < at("web") + 1000, "{n} waited for web: {text}");
    }
}

#[tokio::test]
async fn a_stop_kills_the_running_command_and_starts_no_more() {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut a = actuator("sleep 1000").with_stop(rx);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let _ = tx.send(true);
        // Kept open: a stop is a value, not a closed channel.
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    // More decisions than slots: the first MAX_IN_FLIGHT start, the others wait for a slot.
    let ds: Vec<Decision> = (0..MAX_IN_FLIGHT + 2)
        .map(|i| decision(DecisionKind::ScaleUp, &format!("w{i}"), 3, 5))
        .collect();
    let t0 = Instant::now();
    let o = a.apply(&ds).await;
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    let killed = Outcome::Failed("sleep killed: prescale is stopping".into());
    let not_started = Outcome::Failed("not started: prescale is stopping".into());
    assert!(o[..MAX_IN_FLIGHT].iter().all(|x| *x == killed), "{o:?}");
    assert!(
        o[MAX_IN_FLIGHT..].iter().all(|x| *x == not_started),
        "{o:?}"
    );
}

#[tokio::test]
async fn a_flood_of_stderr_is_bounded_and_does_not_block_the_command() {
    // 4 MB to stderr: a command blocked on a full pipe would hit the timeout instead.
    let mut a =
        actuator(r#"sh -c 'head -c 4000000 /dev/zero | tr "\0" e >&2; echo LAST >&2; exit 1'"#)
            .with_timeout(Duration::from_secs(20));
    let o = a
        .apply(&[decision(DecisionKind::ScaleUp, "web", 3, 5)])
        .await;
    let Outcome::Failed(why) = &o[0] else {
        panic!("{o:?}")
    };
    assert!(why.starts_with("sh exited with status 1: …"), "{why}");
    assert!(why.ends_with("eeeLAST"), "{why}");
    assert!(why.len() < 300, "{}", why.len());
}

#[tokio::test]
async fn under_leader_election_a_follower_runs_nothing_and_a_lapse_abandons_the_command() {
    use crate::leader::Leadership;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("applied.txt");
    let mut a = actuator(&format!(
        r#"sh -c 'echo "$1" >> "$0"; [ "$1" = web ] && sleep 1037; true' {} {{target}}"#,
        out.display()
    ));
    let ds = [
        decision(DecisionKind::ScaleUp, "web", 3, 5),
        decision(DecisionKind::ScaleUp, "api", 2, 4),
    ];
    let o = a
        .apply_led(&ds, &Leadership::lapsing_in(Duration::ZERO))
        .await;
    assert!(
        o.iter().all(|o| *o == Outcome::Skipped(Skip::NotLeader)),
        "{o:?}"
    );
    assert!(!out.exists(), "a follower ran a command");

    // Leading until 500 ms in: api is done by then, web is abandoned at the lapse.
    let t0 = Instant::now();
    let o = a
        .apply_led(&ds, &Leadership::lapsing_in(Duration::from_millis(500)))
        .await;
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert_eq!(o[0], crate::act::abandoned());
    assert_eq!(o[1], Outcome::Applied);
    // The abandoned command's group was killed with it: no `sleep 1037` is left behind.
    let marker = "sleep\u{0}1037\u{0}";
    let deadline = Instant::now() + Duration::from_secs(3);
    while left_running(marker) {
        assert!(
            Instant::now() < deadline,
            "the abandoned command still runs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a process whose command line names `marker` still runs (read from /proc).
fn left_running(marker: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
    })
}
