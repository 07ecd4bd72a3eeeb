//! Label sets of the metric families, and the bookkeeping that removes the ones gone.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use std::collections::HashSet;

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct SeriesLabel {
    pub(super) series: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct QuantileLabels {
    pub(super) series: Lv,
    pub(super) quantile: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct WorkloadLabel {
    pub(super) workload: Lv,
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
    pub(super) version: String,
}

pub(super) type FGauge<L> = Family<L, Gauge<f64, std::sync::atomic::AtomicU64>>;

/// The label sets last exported per family, so that those missing from the next snapshot can
/// be removed (otherwise `/metrics` would grow with every series or workload that ever existed).
#[derive(Default)]
pub(super) struct Seen {
    pub(super) forecast: HashSet<QuantileLabels>,
    pub(super) window: HashSet<SeriesLabel>,
    pub(super) observed: HashSet<SeriesLabel>,
    pub(super) recommended_replicas: HashSet<WorkloadLabel>,
    pub(super) current_replicas: HashSet<WorkloadLabel>,
    pub(super) recommended_nodes: HashSet<PoolLabel>,
    pub(super) signal_up: HashSet<SignalLabel>,
    pub(super) staleness: HashSet<SignalLabel>,
    pub(super) errors: HashSet<SignalErrorLabels>,
    pub(super) series_refused: HashSet<SignalLabel>,
    pub(super) replica_reads: HashSet<WorkloadLabel>,
    pub(super) wape: HashSet<SeriesLabel>,
    pub(super) coverage: HashSet<SeriesLabel>,
    pub(super) scored: HashSet<SeriesLabel>,
    pub(super) model: HashSet<ModelLabels>,
}
