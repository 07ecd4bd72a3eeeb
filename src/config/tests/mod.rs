//! The whole file's validation, through [`Config::from_toml`], as a user meets it.

use super::*;
use crate::collect::{Auth, Secret};
use std::time::Duration;

mod run;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(Path::new("/nonexistent/prescale.toml"), text)
}

const GOOD: &str = r#"
[prometheus]
url = "http://127.0.0.1:9090/"
timeout = "5s"

[[signal]]
name = "cpu"
query = 'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[2m]))'
series_labels = ["instance"]
step = "1m"
lookback = "7d"
"#;

#[test]
fn good_config() {
    let c = parse(GOOD).unwrap();
    let p = c.prometheus.as_ref().unwrap();
    assert_eq!(p.url, "http://127.0.0.1:9090");
    assert_eq!(p.timeout, Duration::from_secs(5));
    assert_eq!(p.auth, Auth::None);
    let s = c.signal("cpu").unwrap();
    assert_eq!((s.step, s.lookback), (60, 7 * 86_400));
    assert_eq!(s.series_labels, vec!["instance"]);
    assert_eq!(s.stale_after, 180);
    assert_eq!(s.drop_after, 3600);
    assert_eq!(s.ring_capacity(), 10_080 + 1 + 2);
}

#[test]
fn errors_name_the_key() {
    let text = GOOD.replace("step = \"1m\"", "step = \"soon\"")
            + "\n[[signal]]\nname = \"cpu\"\nquery = \"\"\nstep = \"1m\"\nlookback = \"1h\"\nseries_labels = [\"0x\"]\n";
    let e = parse(&text).unwrap_err().to_string();
    assert!(e.contains("signal[0].step: 'soon'"), "{e}");
    assert!(e.contains("signal[1].name: 'cpu' is used"), "{e}");
    assert!(e.contains("signal[1].query: is empty"), "{e}");
    assert!(e.contains("signal[1].series_labels: '0x'"), "{e}");
}

#[test]
fn unknown_keys_are_refused() {
    let e = parse(&GOOD.replace("timeout", "timout"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("timout"), "{e}");
    let e = parse("[promethus]\nurl='x'\n").unwrap_err().to_string();
    assert!(e.contains("promethus"), "{e}");
}

#[test]
fn url_credentials_are_refused_without_echo() {
    let e = parse(&GOOD.replace("127.0.0.1:9090/", "admin:hunter2@127.0.0.1:9090"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("prometheus.url: credentials"), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
}

/// A line the parser refuses is reported by file, line, column and what is wrong, never by
/// quoting it: in `[prometheus]` it may hold a token or a header's value.
#[test]
fn a_parse_error_names_where_and_never_quotes_the_line() {
    let with = |line: &str| GOOD.replace("timeout = \"5s\"", line);
    // An unknown field: the key is named, the value is not shown.
    let e = parse(&with("bearer_token = \"eyJhbGciSECRET\""))
        .unwrap_err()
        .to_string();
    assert!(!e.contains("SECRET"), "{e}");
    assert!(
        e.starts_with("/nonexistent/prescale.toml: line 4, column 1: unknown field `bearer_token`"),
        "{e}"
    );
    // A value that does not parse, on the line of another header's key.
    let e = parse(&with(
        "headers = { X-Api-Key = \"sk-live-123\", X-Scope-OrgID = team-a }",
    ))
    .unwrap_err()
    .to_string();
    assert!(!e.contains("sk-live-123"), "{e}");
    assert!(
        e.starts_with(
            "/nonexistent/prescale.toml: line 4, column 56 (key headers > X-Api-Key > \
             X-Scope-OrgID): invalid string\nexpected"
        ),
        "{e}"
    );
    // serde's own messages quote a string of the wrong type.
    let e = parse(&with("headers = \"X-Api-Key: sk-live-123\""))
        .unwrap_err()
        .to_string();
    assert!(!e.contains("sk-live-123"), "{e}");
    assert!(
        e.contains("line 4, column 11 (key headers): invalid type: a string, expected a map"),
        "{e}"
    );
    // Keys are named from the line, strings skipped whole: a value holding `=` is no key.
    assert_eq!(
        keys_before("a = { \"x = y\" = 1, 'k' = \"v=\\\" = \", b = [{ c = ", 100),
        ["a", "\"x = y\"", "\"k\"", "b", "c"]
    );
    assert_eq!(
        hide_strings(r#"string "a\"b\\" or string "c", expected x"#),
        "a string or a string, expected x"
    );
}

/// A password holding an unencoded `/` hid the `@` from the credentials check, and then the
/// whole password was shown wherever the URL was.
#[test]
fn a_password_with_a_slash_is_refused_and_redacted() {
    for url in [
        "admin:pa/ss@127.0.0.1:9090",
        "admin:pa/ss@127.0.0.1:9090/prom/",
    ] {
        let e = parse(&GOOD.replace("127.0.0.1:9090/", url))
            .unwrap_err()
            .to_string();
        assert!(e.contains("prometheus.url: credentials"), "{url}: {e}");
        assert!(e.contains("basic_auth with password_file"), "{url}: {e}");
        assert!(!e.contains("pa/ss") && !e.contains("admin"), "{url}: {e}");
    }
    assert_eq!(
        redact_userinfo("at 'http://admin:pa/ss@prom:9090/api' now"),
        "at 'http://***@prom:9090/api' now"
    );
    // An `@` in the query or fragment is not userinfo; a URL in a query is redacted too.
    assert_eq!(
        redact_userinfo("http://prom:9090/api?to=a@b#c@d"),
        "http://prom:9090/api?to=a@b#c@d"
    );
    assert_eq!(
        redact_userinfo("\"http://u:p/q@h/x?next=https://v:w/z@k\""),
        "\"http://***@h/x?next=https://***@k\""
    );
}

/// A URL that is not http(s) is refused naming its scheme only: with a password holding an
/// unencoded `?` or `#` (`ftp://admin:pa?ss@host`), no rule tells where the userinfo ends.
#[test]
fn a_url_of_another_scheme_is_refused_without_quoting_it() {
    for (url, want) in [
        (
            "ftp://admin:pa?ss@127.0.0.1:9090/",
            "scheme 'ftp' is not http or https",
        ),
        (
            "ftp://admin:pa#ss@127.0.0.1:9090/",
            "scheme 'ftp' is not http or https",
        ),
        ("admin:pa?ss@127.0.0.1:9090/", "has no scheme"),
    ] {
        let e = parse(&GOOD.replace("http://127.0.0.1:9090/", url))
            .unwrap_err()
            .to_string();
        assert!(e.contains(&format!("prometheus.url: {want}")), "{url}: {e}");
        assert!(
            !e.contains("pa?ss") && !e.contains("pa#ss") && !e.contains("admin"),
            "{url}: {e}"
        );
    }
}

#[test]
fn secrets_from_files_are_redacted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "tok-SECRET\n").unwrap();
    std::fs::write(dir.path().join("pw"), "pw-SECRET").unwrap();
    let path = dir.path().join("prescale.toml");
    let c = Config::from_toml(
        &path,
        &GOOD.replace(
            "timeout = \"5s\"",
            "bearer_token_file = \"token\"\nheaders = { X-Scope-OrgID = \"org-SECRET\" }",
        ),
    )
    .unwrap();
    let p = c.prometheus.as_ref().unwrap();
    assert_eq!(p.auth, Auth::Bearer(Secret::new("tok-SECRET")));
    assert!(!format!("{c:?}").contains("SECRET"));

    let c = Config::from_toml(
        &path,
        &GOOD.replace(
            "timeout = \"5s\"",
            "basic_auth = { user = \"u\", password_file = \"pw\" }",
        ),
    )
    .unwrap();
    assert!(!format!("{c:?}").contains("SECRET"));
    assert!(
        matches!(&c.prometheus.unwrap().auth, Auth::Basic { user, password }
            if user == "u" && password.expose() == "pw-SECRET")
    );

    let e = Config::from_toml(
        &path,
        &GOOD.replace("timeout = \"5s\"", "bearer_token_file = \"missing\""),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("prometheus.bearer_token_file: cannot read"),
        "{e}"
    );
}

#[test]
fn bounds_memory_by_configuration() {
    let e = parse(
        &GOOD
            .replace("step = \"1m\"", "step = \"1s\"")
            .replace("7d", "300d"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("signal[0].lookback"), "{e}");
    let e = parse(&GOOD.replace("lookback = \"7d\"", "lookback = \"7d\"\nmax_series = 0"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("signal[0].max_series"), "{e}");
}

#[test]
fn bad_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not a cert").unwrap();
    let e = Config::from_toml(
        &dir.path().join("p.toml"),
        &GOOD.replace("timeout = \"5s\"", "ca_file = \"ca.pem\""),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("prometheus.ca_file"), "{e}");
}

#[test]
fn the_example_and_the_demo_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for name in ["config/prescale.example.toml", "config/demo.toml"] {
        let path = root.join(name);
        let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!cfg.live.workloads.is_empty(), "{name}");
        assert!(!cfg.live.pools.is_empty(), "{name}");
    }
}

const CLUSTER: &str = r#"
[prometheus]
url = "http://127.0.0.1:9090"

[cluster]
source = "kube-state-metrics"
pool_label = "eks.amazonaws.com/nodegroup"

[[signal]]
name = "rps"
query = "rps"
step = "5m"
lookback = "1d"

[[workload]]
name = "web"
deployment = "shop/web"
demand = "rps"
replica_capacity = 10
max_replicas = 20
boot_time = "1m"
pool = "discovered-only"

[[pool]]
name = "general"
boot_time = "4m"
max_nodes = 9
"#;

#[test]
fn cluster_mode_discovers_what_the_file_would_otherwise_list() {
    let c = parse(CLUSTER).unwrap();
    let cl = c.cluster.unwrap();
    assert_eq!(cl.pool_label, "label_eks_amazonaws_com_nodegroup");
    // A pool without capacity and a workload naming a pool no [[pool]] lists are fine.
    assert_eq!(c.live.pools[0].capacity, crate::plan::Resources::default());
    // Without [cluster] the same pool needs its capacity.
    let without = CLUSTER.replace("[cluster]\nsource = \"kube-state-metrics\"\npool_label = \"eks.amazonaws.com/nodegroup\"\n", "");
    let e = parse(&without).unwrap_err().to_string();
    assert!(e.contains("pool[0]") && e.contains("capacity"), "{e}");
    assert!(e.contains("workload[0].pool"), "{e}");
}

#[test]
fn cluster_mode_refuses_what_the_cluster_says_with_the_key() {
    for (extra, key) in [
        ("[[node]]\nname = \"a\"\npool = \"general\"\n", "node:"),
        ("", "pool[0].capacity"),
        ("", "workload[1]:"),
        ("", "workload[1].current_replicas"),
    ] {
        let mut text = CLUSTER.to_string();
        match key {
            "pool[0].capacity" => {
                text = text.replace("max_nodes = 9", "max_nodes = 9\ncapacity = { cpu = 4 }")
            }
            "workload[1]:" | "workload[1].current_replicas" => text.push_str(
                "\n[[workload]]\nname = \"api\"\ndemand = \"rps\"\nreplica_capacity = 1\nmax_replicas = 2\nboot_time = \"1m\"\ncurrent_replicas = 3\n",
            ),
            _ => text.push_str(extra),
        }
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains(key), "{key}: {e}");
    }
    let e = parse(&CLUSTER.replace("[prometheus]\nurl = \"http://127.0.0.1:9090\"\n", ""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("cluster: [cluster] reads kube-state-metrics through [prometheus]"),
        "{e}"
    );
    let e = parse(&CLUSTER.replace("source = \"kube-state-metrics\"", "source = \"api\""))
        .unwrap_err()
        .to_string();
    assert!(e.contains("cluster.source"), "{e}");
}

/// `export.keda_listen`: none by default, an address when set, and a bad address or the
/// /metrics port is refused naming the key.
#[test]
fn keda_listen_is_optional_and_checked() {
    assert_eq!(parse(GOOD).unwrap().live.keda_listen, None);
    let c = parse(&format!(
        "{GOOD}\n[export]\nkeda_listen = \"0.0.0.0:9091\"\n"
    ))
    .unwrap();
    assert_eq!(c.live.keda_listen, Some("0.0.0.0:9091".parse().unwrap()));
    let e = parse(&format!("{GOOD}\n[export]\nkeda_listen = \"grpc\"\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("export.keda_listen: 'grpc'"), "{e}");
    let e = parse(&format!(
        "{GOOD}\n[export]\nlisten = \"0.0.0.0:9464\"\nkeda_listen = \"127.0.0.1:9464\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("export.keda_listen") && e.contains("export.listen"),
        "{e}"
    );
}

#[test]
fn shard_section_is_read_and_checked_by_key() {
    let base = "[[signal]]\nname = \"cpu\"\nquery = \"up\"\nstep = \"1m\"\nlookback = \"1d\"\n";
    let cfg = Config::from_toml(
        Path::new("t.toml"),
        &format!("{base}[shard]\nreplicas = 3\nordinal = 2\n"),
    )
    .unwrap();
    assert_eq!(cfg.shard, crate::shard::ShardConfig::new(3, 2));
    let cfg = Config::from_toml(Path::new("t.toml"), base).unwrap();
    assert!(!cfg.shard.is_sharded());
    let e = Config::from_toml(
        Path::new("t.toml"),
        &format!("{base}[shard]\nreplicas = 2\nordinal = 2\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("shard.ordinal: 2 is not below shard.replicas = 2"),
        "{e}"
    );
    let e = Config::from_toml(
        Path::new("t.toml"),
        &format!("{base}[shard]\nreplica = 2\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("replica"), "{e}");
    // Sharding and leader election together: the Lease elects the node planner.
    let cfg = Config::from_toml(
        Path::new("t.toml"),
        &format!("{base}[shard]\nreplicas = 2\nordinal = 1\n[leader_election]\nenabled = true\n"),
    )
    .unwrap();
    assert!(cfg.leader.is_some());
    assert_eq!(
        cfg.shard.node_planning(true),
        crate::shard::NodePlanning::WhileLeading
    );
}

/// A bad `shard.selector` fails the load, naming the key and what is wrong.
#[test]
fn a_bad_shard_selector_is_named() {
    let base = "[[signal]]\nname = \"rps\"\nquery = \"x\"\nstep = \"5m\"\nlookback = \"1d\"\n\
                [[workload]]\nname = \"web\"\ndemand = \"rps\"\nreplica_capacity = 10\n\
                max_replicas = 5\nboot_time = \"1m\"\n";
    let e = Config::from_toml(
        Path::new("t.toml"),
        &format!("{base}[shard]\nreplicas = 2\nordinal = 0\nselector = 'job=\"a\" env=\"b\"'\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("shard.selector: expected ','"), "{e}");
}

/// Durations past [`crate::series::MAX_DURATION`] and a replay speed under
/// [`super::live::MIN_REPLAY_SPEED`] are refused at load, naming the key: further on they
/// panicked or overflowed (`interval / speed`, `3 x interval`, `start + warmup`, `3 x step`).
#[test]
fn durations_and_replay_speed_past_their_bounds_are_refused_by_key() {
    let signal = |extra: &str| {
        format!(
            "[[signal]]\nname = \"cpu\"\nquery = \"up\"\nstep = \"1m\"\nlookback = \"1d\"\n{extra}"
        )
    };
    let replay = |extra: &str| {
        signal("") + &format!("[replay]\nsignal = \"cpu\"\nfiles = [\"x.csv\"]\n{extra}")
    };
    // In order, so that only the bound refuses them.
    let leader = signal(
        "[leader_election]\nlease_duration = \"369d\"\nrenew_deadline = \"368d\"\n\
         retry_period = \"367d\"\n",
    );
    let cases = [
        (
            signal("[run]\ninterval = \"200000000000y\"\n"),
            "run.interval",
        ),
        (
            signal("[run]\nretrain_every = \"367d\"\n"),
            "run.retrain_every",
        ),
        (
            signal("[run]\nown_model_after = \"367d\"\n"),
            "run.own_model_after",
        ),
        (
            signal("[run]\napply_timeout = \"367d\"\n"),
            "run.apply_timeout",
        ),
        (
            replay("warmup = \"9223372036000000000s\"\n"),
            "replay.warmup",
        ),
        (replay("speed = 1e-17\n"), "replay.speed"),
        (replay("speed = 0.0009\n"), "replay.speed"),
        (
            signal("").replace("step = \"1m\"", "step = \"100000000000y\""),
            "signal[0].step",
        ),
        (signal("stale_after = \"367d\"\n"), "signal[0].stale_after"),
        (signal("drop_after = \"367d\"\n"), "signal[0].drop_after"),
        (
            signal("").replace("\"1d\"", "\"367d\""),
            "signal[0].lookback",
        ),
        (GOOD.replace("\"5s\"", "\"367d\""), "prometheus.timeout"),
        (
            signal("[kubernetes]\ntimeout = \"367d\"\n"),
            "kubernetes.timeout",
        ),
        (leader.clone(), "leader_election.lease_duration"),
        (leader.clone(), "leader_election.renew_deadline"),
        (leader, "leader_election.retry_period"),
        (
            signal("[shard]\nreplicas = 2\nordinal = 0\nmax_age = \"367d\"\n"),
            "shard.max_age",
        ),
    ];
    for (text, key) in cases {
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains(&format!("{key}: ")), "{key}:\n{e}");
    }
    // A workload's durations are read by serde: the error names the line and column.
    let workload = |boot: &str| {
        signal("")
            + "[[workload]]\nname = \"w\"\ndemand = \"cpu\"\nreplica_capacity = 1\n\
               max_replicas = 2\nboot_time = "
            + boot
            + "\n"
    };
    for boot in ["\"367d\"", "31708800"] {
        let e = parse(&workload(boot)).unwrap_err().to_string();
        assert!(
            e.contains("line 11, column 13 (key boot_time): "),
            "{boot}: {e}"
        );
    }
    parse(&workload("\"366d\"")).unwrap_or_else(|e| panic!("{e}"));
    parse(&workload("31622400")).unwrap_or_else(|e| panic!("{e}"));
    // At the bounds, everything loads.
    let at = "\"366d\"";
    let c = parse(&replay(&format!(
        "speed = 0.001\nwarmup = {at}\n[run]\ninterval = {at}\nretrain_every = {at}\n\
         own_model_after = {at}\napply_timeout = {at}\n"
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.live.interval, 366 * 86_400);
    let c = parse(
        &signal(&format!("stale_after = {at}\ndrop_after = {at}\n"))
            .replace("\"1m\"", at)
            .replace("\"1d\"", at),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.signals[0].step, 366 * 86_400);
    parse(&GOOD.replace("\"5s\"", at)).unwrap_or_else(|e| panic!("{e}"));
}

/// A pool left without memory while its workloads request memory, and a pool named like a
/// workload, are refused with their keys; the same pool offering both, renamed, loads.
#[test]
fn a_pool_must_offer_what_its_workloads_request_and_not_share_a_workload_name() {
    let with = |capacity: &str, pool: &str| {
        format!(
            "{GOOD}\n[[workload]]\nname = \"batch\"\ndemand = \"cpu\"\nreplica_capacity = 1\n\
             max_replicas = 9\nboot_time = \"1m\"\nresources = {{ cpu = 1, memory = \"1Gi\" }}\n\
             \n[[workload]]\nname = \"web\"\ndemand = \"cpu\"\nreplica_capacity = 1\n\
             max_replicas = 9\nboot_time = \"1m\"\nresources = {{ cpu = 1 }}\n\
             \n[[pool]]\nname = \"{pool}\"\ncapacity = {capacity}\nboot_time = \"2m\"\n\
             max_nodes = 3\n"
        )
    };
    let e = parse(&with("{ cpu = 8 }", "batch"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("pool[0].capacity.memory: pool 'batch' offers no memory (0, or left out) but batch request it"),
        "{e}"
    );
    assert!(!e.contains("capacity.cpu"), "{e}");
    assert!(
        e.contains("pool[0].name: 'batch' is also a workload's name"),
        "{e}"
    );
    let ok = parse(&with("{ cpu = 8, memory = \"16Gi\" }", "general")).unwrap();
    assert_eq!(ok.live.pools[0].name, "general");
    // Only what is requested must be offered: no workload asks for memory here.
    let cpu_only = with("{ cpu = 8 }", "general").replace(", memory = \"1Gi\"", "");
    parse(&cpu_only).unwrap();
}

#[test]
fn max_answer_size_reads_a_quantity_and_names_what_is_wrong() {
    let with =
        |size: &str| GOOD.replace("timeout = \"5s\"", &format!("max_answer_size = \"{size}\""));
    let bytes = |size: &str| {
        parse(&with(size))
            .unwrap_or_else(|e| panic!("{size}: {e}"))
            .prometheus
            .expect("prometheus")
            .max_answer_bytes
    };
    assert_eq!(
        parse(GOOD).unwrap().prometheus.unwrap().max_answer_bytes,
        128 << 20
    );
    // Written as a workload's memory is.
    assert_eq!(bytes("64Ki"), 64 << 10);
    assert_eq!(bytes("1 Gi"), 1 << 30);
    assert_eq!(bytes("16Gi"), 16 << 30);
    assert_eq!(bytes("100M"), 100_000_000);
    assert_eq!(bytes("1048576"), 1 << 20);
    for (size, why) in [
        ("256MB", "unknown unit 'MB'"),
        ("256MiB", "unknown unit 'MiB'"),
        ("-1Mi", "must be a finite number"),
        ("Mi", "is not a quantity"),
        ("99999999999999999999Gi", "between 1Ki and 16Gi"),
        ("17Gi", "between 1Ki and 16Gi"),
        ("1000", "between 1Ki and 16Gi"),
    ] {
        let e = parse(&with(size)).unwrap_err().to_string();
        assert!(
            e.contains("prometheus.max_answer_size: ") && e.contains(why),
            "{size}: {e}"
        );
    }
}
