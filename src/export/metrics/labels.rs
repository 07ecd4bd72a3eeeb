//! Label sets of the metric families, and the bookkeeping that removes the ones gone.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::HashSet;

use crate::export::snapshot::SeriesId;

/// A label value, escaped when encoded: prometheus-client 0.23 writes label values verbatim,
/// and one `"`, `\` or newline in a series or workload name (they come from configuration)
/// would make Prometheus reject the whole scrape.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub(super) struct Lv(pub(super) String);

impl<S: AsRef<str>> From<S> for Lv {
    fn from(s: S) -> Self {
        Lv(s.as_ref().to_string())
    }
}

impl EncodeLabelValue for Lv {
    fn encode(&self, enc: &mut LabelValueEncoder) -> std::fmt::Result {
        use std::fmt::Write;
        // Most values need no escaping: one write, not one per character (a scrape writes a
        // label value per sample, 900,000 of them at the scale target).
        if !self.0.contains(['\\', '"', '\n']) {
            return enc.write_str(&self.0);
        }
        for c in self.0.chars() {
            match c {
                '\\' => enc.write_str("\\\\")?,
                '"' => enc.write_str("\\\"")?,
                '\n' => enc.write_str("\\n")?,
                c => enc.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A series' label set: `signal` and the series' own labels (see [`series_labels`]), plus
/// `level` on `prescale_forecast`. Dynamic, as different signals' series have different labels.
pub(super) type SeriesLabels = Vec<(String, Lv)>;

/// The label names prescale itself puts on its families. A series label of the same name is
/// exported as `exported_<name>`, as Prometheus does with a target's colliding labels, so that
/// it can neither overwrite nor be overwritten by prescale's. `le` and `quantile` are here
/// too: on a gauge they would read as a histogram's or a summary's (promtool rejects them).
const PRESCALE_LABELS: [&str; 11] = [
    "signal",
    "stage",
    "level",
    "workload",
    "pool",
    "kind",
    "model",
    "trained_at",
    "version",
    "le",
    "quantile",
];

/// `signal="<signal>"` and the series' own labels, sorted by name (so that the same series gets
/// the same label set from every snapshot), with names made valid and unique:
///
/// - a name that is not a valid Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`; a key read from
///   a history file may hold anything) has every other character replaced by `_`, and a `_`
///   put before a leading digit;
/// - a name reserved by Prometheus (`__*`) or used by prescale ([`PRESCALE_LABELS`]) or by an
///   earlier label of the set gets `exported_` prepended until it is unique.
pub(super) fn series_labels(id: &SeriesId) -> SeriesLabels {
    let mut own: Vec<&(String, String)> = id.labels().iter().collect();
    own.sort();
    let mut out: SeriesLabels = Vec::with_capacity(own.len() + 2);
    out.push(("signal".to_string(), Lv::from(id.signal())));
    for (name, value) in own {
        let mut name = valid_label_name(name);
        while name.starts_with("__")
            || PRESCALE_LABELS.contains(&name.as_str())
            || out.iter().any(|(n, _)| *n == name)
        {
            name.insert_str(0, "exported_");
        }
        out.push((name, Lv::from(value)));
    }
    out
}

/// `name` with every character outside `[a-zA-Z0-9_]` replaced by `_`, and a `_` before a
/// leading digit (or as the whole name if it is empty).
fn valid_label_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        out.insert(0, '_');
    }
    out
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct WorkloadLabel {
    pub(super) workload: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ActionLabels {
    pub(super) workload: Lv,
    pub(super) outcome: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct StageLabels {
    pub(super) workload: Lv,
    pub(super) stage: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct PoolLabel {
    pub(super) pool: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct KindLabel {
    pub(super) kind: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct SignalLabel {
    pub(super) signal: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct SignalErrorLabels {
    pub(super) signal: Lv,
    pub(super) kind: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ModelLabels {
    pub(super) model: Lv,
    pub(super) trained_at: Lv,
    pub(super) version: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct BuildLabels {
    pub(super) version: Lv,
}

/// `prescale_shard_info`'s labels: which share of the workloads this replica plans.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ShardLabels {
    pub(super) ordinal: Lv,
    pub(super) replicas: Lv,
}

/// `prescale_shard_stale`'s label: another shard's ordinal.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ShardLabel {
    pub(super) shard: Lv,
}

pub(super) type FGauge<L> = Family<L, Gauge<f64, std::sync::atomic::AtomicU64>>;

/// The label sets last exported per family, so that those missing from the next snapshot can
/// be removed (otherwise `/metrics` would grow with every series or workload that ever existed).
/// In the order exported: see [`sync`](super::sync).
#[derive(Default)]
pub(super) struct Seen {
    pub(super) recommended_replicas: Vec<WorkloadLabel>,
    pub(super) current_replicas: Vec<WorkloadLabel>,
    pub(super) recommended_nodes: Vec<PoolLabel>,
    pub(super) shortfall: Vec<PoolLabel>,
    pub(super) allocation_cuts: Vec<WorkloadLabel>,
    pub(super) signal_up: Vec<SignalLabel>,
    pub(super) staleness: Vec<SignalLabel>,
    pub(super) errors: HashSet<SignalErrorLabels>,
    pub(super) series_refused: Vec<SignalLabel>,
    pub(super) replica_reads: Vec<WorkloadLabel>,
    pub(super) actions: Vec<ActionLabels>,
    pub(super) actuator_failures: Vec<WorkloadLabel>,
    pub(super) external_changes: Vec<WorkloadLabel>,
    pub(super) model: Vec<ModelLabels>,
    pub(super) short_share: Vec<WorkloadLabel>,
    pub(super) short_budget: Vec<WorkloadLabel>,
    pub(super) risk_level: Vec<WorkloadLabel>,
    pub(super) risk_margin: Vec<WorkloadLabel>,
    pub(super) risk_floor: Vec<WorkloadLabel>,
    pub(super) calibration: Vec<WorkloadLabel>,
    pub(super) forecast_stage: Vec<StageLabels>,
    pub(super) utilization: Vec<WorkloadLabel>,
    pub(super) planned_at: Vec<WorkloadLabel>,
    pub(super) cluster_state_known: Vec<WorkloadLabel>,
    pub(super) shard_stale: Vec<ShardLabel>,
}
