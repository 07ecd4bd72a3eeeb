//! What `prescale simulate` refuses, end to end through the binary: bad trace, task and node
//! files (named with their line), bad `--workload-opts` in shared mode, and a `--step` that is
//! not the `--model`'s, each before any work.

use crate::cli;
use cli::{data, prescale, repo, text, write};

#[test]
fn bad_files_get_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let rep = dir.path().join("r");
    // Runs `prescale simulate ARGS… --report r`, which must fail, and returns what it printed.
    let refused = |args: &[&str]| {
        let mut all = vec!["simulate"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--report", rep.to_str().unwrap()]);
        let o = prescale(&all);
        assert!(!o.status.success(), "{args:?} succeeded: {}", text(&o));
        text(&o)
    };
    let trace = write(dir.path(), "t.csv", "timestamp,value\n60,1\n120,oops\n");
    let out = refused(&["--trace", trace.to_str().unwrap()]);
    assert!(
        out.contains("t.csv:3:") && out.contains("'oops' is not a number"),
        "{out}"
    );

    let tasks = write(
        dir.path(),
        "tasks.csv",
        "id,submit,duration,priority,cpu,mem,gpu\n1,0,10,0,1,1,0\n2,0,-5,0,1,1,0\n",
    );
    let out = refused(&["--tasks", tasks.to_str().unwrap()]);
    assert!(
        out.contains("tasks.csv:3: duration -5 must be > 0"),
        "{out}"
    );

    let nodes = write(
        dir.path(),
        "nodes.toml",
        "[[node]]\nname = \"a\"\ncpu = \"lots\"\nmem = 1\n",
    );
    let out = refused(&["--tasks", "gen:10", "--nodes", nodes.to_str().unwrap()]);
    assert!(out.contains("nodes.toml") && out.contains("cpu"), "{out}");

    let out = refused(&["--tasks", "gen:zero"]);
    assert!(out.contains("gen:N"), "{out}");
}

#[test]
fn shared_mode_names_bad_workload_opts() {
    let dir = tempfile::tempdir().unwrap();
    let trace = data("nab_ec2_cpu_utilization_5f5533.csv");
    let o = prescale(&[
        "simulate",
        "--trace",
        &trace,
        "--pool-cap",
        "10",
        "--workload-opts",
        "nab_ec2_cpu_utilization_5f5533:prio=1",
        "--report",
        dir.path().to_str().unwrap(),
    ]);
    let out = text(&o);
    assert!(!o.status.success());
    assert!(out.contains("unknown key 'prio'"), "{out}");
    let o = prescale(&[
        "simulate",
        "--trace",
        &trace,
        "--trace",
        &trace,
        "--report",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("give --pool-cap"), "{}", text(&o));
}

/// A trained model reads its features on the step it was trained on: `--step` of another
/// step is refused before anything is replayed, naming the trace and both steps, in shared
/// mode as in single-trace mode (shared mode once replayed with features of the wrong scale).
#[test]
fn a_step_that_is_not_the_models_is_refused_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let trace = data("nab_ec2_cpu_utilization_5f5533.csv");
    let model = repo("models/web.model");
    let rep = dir.path().join("rep");
    let run = |extra: &[&str]| {
        let mut args = vec![
            "simulate",
            "--trace",
            &trace,
            "--model",
            &model,
            "--step",
            "1m",
            "--report",
            rep.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        prescale(&args)
    };
    for extra in [&["--pool-cap", "10"][..], &[]] {
        let o = run(extra);
        let out = text(&o);
        assert!(!o.status.success(), "{extra:?}: {out}");
        for part in [
            trace.as_str(),
            "the model was trained on a 300s step, the data has a 60s step",
        ] {
            assert!(out.contains(part), "{extra:?}: {part}\nnot in:\n{out}");
        }
        assert!(!rep.exists(), "{extra:?}: a report was written");
    }
    // Before any trace is read: a second trace that is not CSV is not what is reported.
    let junk = write(dir.path(), "junk.csv", "not,a\ntrace");
    let o = run(&["--trace", junk.to_str().unwrap(), "--pool-cap", "10"]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("the data has a 60s step") && out.contains(junk.to_str().unwrap()),
        "{out}"
    );
}
