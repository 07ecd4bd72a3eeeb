//! Generator for `prescale.toml`: a valid configuration touching every section, with values
//! replaced by known trouble, keys renamed, lines repeated or deleted, then byte mutations.

use super::{apply, mutation, Bytes};
use proptest::prelude::*;

/// A valid configuration touching every section; `token` is a file beside it.
pub const BASE_CONFIG: &str = r#"[prometheus]
url = "http://127.0.0.1:9"
timeout = "10s"
bearer_token_file = "token"
headers = { X-Scope-OrgID = "team-a" }

[[signal]]
name = "rps"
query = 'sum by (service) (rate(http_requests_total[2m]))'
series_labels = ["service"]
step = "5m"
lookback = "8d"
stale_after = "15m"
drop_after = "1h"
max_series = 10000
overlap_steps = 2

[[signal]]
name = "cpu"
query = 'sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[2m]))'
step = "5m"
lookback = "8d"

[run]
model = "web.model"
interval = "5m"
decision_log = "decisions.jsonl"
apply_command = "kubectl scale deployment/{target} --replicas={to}"
apply_timeout = "30s"
retrain_every = "24h"
cycles = 100
show_holds = false

[export]
listen = "127.0.0.1:9464"
enabled = true

[accuracy]
alpha = 0.1
good_wape = 0.15
bad_wape = 0.5
coverage_ok = 0.8
coverage_bad = 0.5
min_scored = 5
prior_weight = 0.5
max_pending = 512

[[workload]]
name = "api"
demand = 'rps{service="api"}'
unit = "rps"
replica_capacity = 50
target_utilization = 0.8
min_replicas = 2
max_replicas = 50
boot_time = "3m"
quantile = "p95"
headroom = 0.1
scale_down_window = "10m"
tolerance = 0.1
max_step_up = 10
max_step_down = 2
resources = { cpu = "500m", memory = "512Mi" }
pool = "general"

[[pool]]
name = "general"
capacity = { cpu = 8, memory = "32Gi" }
boot_time = "4m"
min_nodes = 2
max_nodes = 20
target_utilization = 0.8
scale_down_window = "10m"

[[node]]
name = "node-a"
pool = "general"
"#;

/// Values to put where a configuration value was: wrong types, wrong units, out of range,
/// special files, secrets in URLs, huge and binary strings.
fn config_value() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(vec![
            "\"\"",
            "0",
            "-1",
            "1e400",
            "-1e400",
            "nan",
            "inf",
            "-inf",
            "true",
            "[]",
            "{}",
            "9223372036854775807",
            "18446744073709551616",
            "\"0s\"",
            "\"-5m\"",
            "\"1.5s\"",
            "\"99999999999999999d\"",
            "\"5 parsecs\"",
            "\"p101\"",
            "\"p0\"",
            "1.0e-300",
            "\"/dev/zero\"",
            "\"/dev/null\"",
            "\"/\"",
            "\"/nonexistent/file\"",
            "\"htp://user:TOKEN@host\"",
            "\"http://user:TOKEN@127.0.0.1:9\"",
            "\"\\u0000\"",
            "'\"'",
            "\"{target}; touch /tmp/x\"",
            "\"[::1]:0\"",
            "\"999.1.1.1:99999\"",
            "{ cpu = -1 }",
            "{ cpu = \"1e400\", memory = \"9999999999Ei\" }",
            "[1, \"a\", {}]",
            "\"node-a\"",
            "\"general\"",
            "\"rps\"",
            "2024-05-01T00:00:00Z",
        ])
        .prop_map(str::to_string),
        (1usize..30_000).prop_map(|n| format!("\"{}\"", "v".repeat(n))),
        "[ -~]{0,20}".prop_map(|s| format!("\"{}\"", s.replace(['\\', '"'], ""))),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:?}")),
    ]
}

/// One line-level change to a configuration.
#[derive(Debug, Clone)]
pub enum ConfigEdit {
    /// Replace the value of the n-th `key = value` line.
    Value(usize, String),
    /// Rename the n-th key (a typo, a key of another section, a huge key).
    Key(usize, String),
    /// Repeat the n-th line (duplicate key or section).
    Repeat(usize),
    /// Delete the n-th line.
    Delete(usize),
}

fn config_edit() -> impl Strategy<Value = ConfigEdit> {
    let key = prop_oneof![
        proptest::sample::select(vec![
            "nme",
            "url",
            "step",
            "lookback",
            "quantile",
            "pool",
            "name",
            "demand",
            "\"\"",
            "password_file",
            "ca_file",
            "cycles",
            "a.b.c",
        ])
        .prop_map(str::to_string),
        (1usize..10_000).prop_map(|n| "k".repeat(n)),
    ];
    prop_oneof![
        6 => (any::<usize>(), config_value()).prop_map(|(i, v)| ConfigEdit::Value(i, v)),
        2 => (any::<usize>(), key).prop_map(|(i, k)| ConfigEdit::Key(i, k)),
        1 => any::<usize>().prop_map(ConfigEdit::Repeat),
        1 => any::<usize>().prop_map(ConfigEdit::Delete),
    ]
}

/// [`BASE_CONFIG`] with line edits and byte mutations.
pub fn config() -> impl Strategy<Value = Bytes> {
    (
        proptest::collection::vec(config_edit(), 0..5),
        proptest::collection::vec(mutation(), 0..2),
    )
        .prop_map(|(edits, muts)| {
            let mut lines: Vec<String> = BASE_CONFIG.lines().map(str::to_string).collect();
            let kv: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].contains(" = "))
                .collect();
            for e in &edits {
                match e {
                    ConfigEdit::Value(i, v) => {
                        let at = kv[i % kv.len()];
                        if let Some((k, _)) = lines[at].split_once(" = ") {
                            lines[at] = format!("{k} = {v}");
                        }
                    }
                    ConfigEdit::Key(i, key) => {
                        let at = kv[i % kv.len()];
                        if let Some((_, v)) = lines[at].split_once(" = ") {
                            lines[at] = format!("{key} = {v}");
                        }
                    }
                    ConfigEdit::Repeat(i) => {
                        let at = i % lines.len();
                        let l = lines[at].clone();
                        lines.insert(at, l);
                    }
                    ConfigEdit::Delete(i) => {
                        let at = i % lines.len();
                        lines[at].clear();
                    }
                }
            }
            let mut bytes = lines.join("\n").into_bytes();
            for m in &muts {
                apply(&mut bytes, m);
            }
            Bytes(bytes)
        })
}
