//! The metric families prescale exports and the [`Snapshot`] the live loop fills to update them.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

/// The decision kinds the planner and actuator emit. Their counters exist (at 0) from the start
/// so that `rate()` and `increase()` have a baseline before the first decision of a kind.
pub const DECISION_KINDS: [&str; 7] = [
    "scale_up",
    "scale_down",
    "hold",
    "add_node",
    "remove_node",
    "move",
    "place",
];

/// Upper bounds of the cycle duration histogram, seconds: 1 ms to 10 s in 1-2.5-5 steps, so
/// that both a cached cycle (milliseconds) and one that retrains or waits on a slow collector
/// (seconds) land in a bucket narrow enough for a useful p99.
pub const CYCLE_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Everything one cycle of the live loop knows that the exporter shows.
///
/// Plain data on purpose: the stages that produce these values must not be coupled to the
/// exporter, and the exporter must not be coupled to them. The loop copies what it has into a
/// `Snapshot` and calls [`Metrics::observe`].
///
/// Two kinds of fields: **state** (forecasts, workloads, pools, signals' `up`/staleness,
/// accuracy, model) is the complete current picture, and anything absent from it is removed
/// from `/metrics`; **events** (`decisions`, signals' `new_errors`, `cycle_seconds`) happened
/// during this cycle only and are added to counters and the histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Latest forecast per series.
    pub forecasts: Vec<ForecastSample>,
    /// Replica counts per workload.
    pub workloads: Vec<WorkloadSample>,
    /// Node counts per node pool.
    pub pools: Vec<PoolSample>,
    /// Kinds of the decisions taken this cycle, one entry per decision, e.g. `"scale_up"`; see
    /// [`DECISION_KINDS`]. Other kinds are counted too.
    pub decisions: Vec<String>,
    /// Health of each collected signal.
    pub signals: Vec<SignalSample>,
    /// Rolling forecast accuracy per series.
    pub accuracy: Vec<AccuracySample>,
    /// The model in use; `None` until one is loaded (and `/readyz` says so).
    pub model: Option<ModelSample>,
    /// Wall-clock duration of this cycle, seconds.
    pub cycle_seconds: f64,
    /// When this cycle finished, Unix seconds.
    pub at_unix: i64,
}

/// One series' forecast of its peak over the next window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ForecastSample {
    /// Series name, e.g. `"web"`.
    pub series: String,
    /// Length of the forecast window, seconds.
    pub window_seconds: f64,
    /// `(level, value)` pairs, e.g. `(0.9, 412.0)`, values in the series' units.
    pub quantiles: Vec<(f64, f64)>,
    /// The series' latest collected value, in its units, if the loop has one; exported so a
    /// dashboard can put forecast and reality side by side without a second data source.
    pub observed: Option<f64>,
}

/// One workload's replica counts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkloadSample {
    /// Workload name, e.g. `"web"`.
    pub workload: String,
    /// Replicas running now.
    pub current_replicas: u64,
    /// Replicas the planner recommends.
    pub recommended_replicas: u64,
}

/// One node pool's recommended size.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolSample {
    /// Pool name.
    pub pool: String,
    /// Nodes the planner recommends.
    pub recommended_nodes: u64,
}

/// One collected signal's health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignalSample {
    /// Signal name, e.g. `"web_rps"`.
    pub signal: String,
    /// Whether the last collection of this signal succeeded.
    pub up: bool,
    /// Age of the newest good sample, seconds.
    pub staleness_seconds: f64,
    /// Errors since the previous snapshot, as `(kind, count)`, e.g. `("timeout", 1)`. Kinds
    /// should be a small fixed vocabulary (`timeout`, `http`, `parse`, ...), never an error
    /// message: each kind is a time series kept as long as the signal exists.
    pub new_errors: Vec<(String, u64)>,
}

/// One series' rolling forecast accuracy, as the accuracy tracker reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AccuracySample {
    /// Series name.
    pub series: String,
    /// Weighted absolute percentage error of the median forecast (0.1 = 10 %); `None` until a
    /// forecast has been scored.
    pub wape: Option<f64>,
    /// Fraction of scored windows whose actual peak was at or below the p90 forecast (should
    /// be near 0.9); `None` until a forecast has been scored.
    pub coverage_p90: Option<f64>,
    /// Forecasts scored so far (cumulative; a smaller value than last time means the tracker
    /// restarted, and the counter resets with it).
    pub scored: u64,
}

/// The model in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelSample {
    /// Model name or file stem.
    pub model: String,
    /// When it was trained, RFC 3339.
    pub trained_at: String,
    /// Version of prescale (or the model format) that trained it.
    pub version: String,
}

/// A label value, escaped when encoded: prometheus-client 0.23 writes label values verbatim,
/// and one `"`, `\` or newline in a series or workload name (they come from configuration)
/// would make Prometheus reject the whole scrape.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct Lv(String);

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
struct SeriesLabel {
    series: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuantileLabels {
    series: Lv,
    quantile: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkloadLabel {
    workload: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabel {
    pool: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalLabel {
    signal: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignalErrorLabels {
    signal: Lv,
    kind: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModelLabels {
    model: Lv,
    trained_at: Lv,
    version: Lv,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type FGauge<L> = Family<L, Gauge<f64, std::sync::atomic::AtomicU64>>;

/// The label sets last exported per family, so that those missing from the next snapshot can
/// be removed (otherwise `/metrics` would grow with every series or workload that ever existed).
#[derive(Default)]
struct Seen {
    forecast: HashSet<QuantileLabels>,
    window: HashSet<SeriesLabel>,
    observed: HashSet<SeriesLabel>,
    recommended_replicas: HashSet<WorkloadLabel>,
    current_replicas: HashSet<WorkloadLabel>,
    recommended_nodes: HashSet<PoolLabel>,
    signal_up: HashSet<SignalLabel>,
    staleness: HashSet<SignalLabel>,
    errors: HashSet<SignalErrorLabels>,
    wape: HashSet<SeriesLabel>,
    coverage: HashSet<SeriesLabel>,
    scored: HashSet<SeriesLabel>,
    model: HashSet<ModelLabels>,
}

/// prescale's metric registry: every family it exports, updated from [`Snapshot`]s.
///
/// Cheap to share behind an `Arc`; [`observe`](Self::observe) and [`encode`](Self::encode)
/// take `&self` and serialise on one lock, so a scrape never sees half a snapshot (e.g. a
/// workload's recommendation from one cycle and its current replicas from the next).
pub struct Metrics {
    registry: Registry,
    lock: Mutex<Seen>,
    forecast: FGauge<QuantileLabels>,
    forecast_window: FGauge<SeriesLabel>,
    observed: FGauge<SeriesLabel>,
    recommended_replicas: Family<WorkloadLabel, Gauge>,
    current_replicas: Family<WorkloadLabel, Gauge>,
    recommended_nodes: Family<PoolLabel, Gauge>,
    decisions: Family<KindLabel, Counter>,
    errors: Family<SignalErrorLabels, Counter>,
    signal_up: Family<SignalLabel, Gauge>,
    staleness: FGauge<SignalLabel>,
    wape: FGauge<SeriesLabel>,
    coverage: FGauge<SeriesLabel>,
    scored: Family<SeriesLabel, Counter>,
    cycle_duration: Histogram,
    cycles: Counter,
    last_cycle: Gauge<f64, std::sync::atomic::AtomicU64>,
    model_info: Family<ModelLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family under the `prescale_` prefix, with the decision counters at 0
    /// and `prescale_build_info` set.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("prescale");
        let m = Metrics {
            registry: Registry::default(),
            lock: Mutex::new(Seen::default()),
            forecast: Family::default(),
            forecast_window: Family::default(),
            observed: Family::default(),
            recommended_replicas: Family::default(),
            current_replicas: Family::default(),
            recommended_nodes: Family::default(),
            decisions: Family::default(),
            errors: Family::default(),
            signal_up: Family::default(),
            staleness: Family::default(),
            wape: Family::default(),
            coverage: Family::default(),
            scored: Family::default(),
            cycle_duration: Histogram::new(CYCLE_BUCKETS),
            cycles: Counter::default(),
            last_cycle: Gauge::default(),
            model_info: Family::default(),
        };
        // Counter and unit suffixes (`_total`, `_seconds`) are appended by the encoder.
        r.register(
            "forecast",
            "Forecast peak of a series over the next window at a quantile level, in the series' units",
            m.forecast.clone(),
        );
        r.register_with_unit(
            "forecast_window",
            "Length of the window a series' forecast covers",
            Unit::Seconds,
            m.forecast_window.clone(),
        );
        r.register(
            "observed_demand",
            "Latest collected value of a series, in the series' units",
            m.observed.clone(),
        );
        r.register(
            "recommended_replicas",
            "Replicas the planner recommends for a workload",
            m.recommended_replicas.clone(),
        );
        r.register(
            "current_replicas",
            "Replicas a workload runs now",
            m.current_replicas.clone(),
        );
        r.register(
            "recommended_nodes",
            "Nodes the planner recommends for a node pool",
            m.recommended_nodes.clone(),
        );
        r.register("decisions", "Decisions taken, by kind", m.decisions.clone());
        r.register(
            "collection_errors",
            "Failed collections, by signal and kind of error",
            m.errors.clone(),
        );
        r.register(
            "signal_up",
            "Whether the last collection of a signal succeeded (1) or not (0)",
            m.signal_up.clone(),
        );
        r.register_with_unit(
            "data_staleness",
            "Age of a signal's newest good sample",
            Unit::Seconds,
            m.staleness.clone(),
        );
        r.register(
            "forecast_wape",
            "Rolling weighted absolute percentage error of a series' median forecast (0.1 = 10%)",
            m.wape.clone(),
        );
        r.register(
            "forecast_p90_coverage",
            "Rolling fraction of a series' windows whose actual peak was at or below the p90 forecast",
            m.coverage.clone(),
        );
        r.register(
            "forecasts_scored",
            "Forecasts of a series scored against what happened",
            m.scored.clone(),
        );
        r.register_with_unit(
            "cycle_duration",
            "Wall-clock duration of one collect-forecast-plan-act cycle",
            Unit::Seconds,
            m.cycle_duration.clone(),
        );
        r.register("cycles", "Cycles completed", m.cycles.clone());
        r.register_with_unit(
            "last_cycle_timestamp",
            "Unix time the last cycle completed",
            Unit::Seconds,
            m.last_cycle.clone(),
        );
        r.register(
            "model_info",
            "The forecast model in use (value always 1)",
            m.model_info.clone(),
        );
        r.register(
            "build",
            "prescale's build",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            }),
        );
        for kind in DECISION_KINDS {
            let _ = m.decisions.get_or_create(&KindLabel { kind: kind.into() });
        }
        Metrics { registry: r, ..m }
    }

    /// Updates every family from one cycle's snapshot: sets the state gauges, removes label
    /// sets that are no longer in the snapshot, and adds the cycle's events to the counters
    /// and the histogram.
    pub fn observe(&self, s: &Snapshot) {
        let mut seen = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let seen = &mut *seen;

        let mut now = HashSet::new();
        for f in &s.forecasts {
            for &(level, value) in &f.quantiles {
                let l = QuantileLabels {
                    series: Lv::from(&f.series),
                    quantile: Lv(quantile_label(level)),
                };
                self.forecast.get_or_create(&l).set(value);
                now.insert(l);
            }
        }
        sync(&self.forecast, &mut seen.forecast, now);
        let now = set_each(
            &self.forecast_window,
            s.forecasts
                .iter()
                .map(|f| (series(&f.series), f.window_seconds)),
        );
        sync(&self.forecast_window, &mut seen.window, now);
        let now = set_each(
            &self.observed,
            s.forecasts
                .iter()
                .filter_map(|f| f.observed.map(|v| (series(&f.series), v))),
        );
        sync(&self.observed, &mut seen.observed, now);

        let now = set_each(
            &self.recommended_replicas,
            s.workloads.iter().map(|w| {
                (
                    workload(&w.workload),
                    saturating_i64(w.recommended_replicas),
                )
            }),
        );
        sync(
            &self.recommended_replicas,
            &mut seen.recommended_replicas,
            now,
        );
        let now = set_each(
            &self.current_replicas,
            s.workloads
                .iter()
                .map(|w| (workload(&w.workload), saturating_i64(w.current_replicas))),
        );
        sync(&self.current_replicas, &mut seen.current_replicas, now);
        let now = set_each(
            &self.recommended_nodes,
            s.pools.iter().map(|p| {
                (
                    PoolLabel {
                        pool: Lv::from(&p.pool),
                    },
                    saturating_i64(p.recommended_nodes),
                )
            }),
        );
        sync(&self.recommended_nodes, &mut seen.recommended_nodes, now);

        for kind in &s.decisions {
            self.decisions
                .get_or_create(&KindLabel {
                    kind: Lv::from(kind),
                })
                .inc();
        }

        let now = set_each(
            &self.signal_up,
            s.signals
                .iter()
                .map(|g| (signal(&g.signal), i64::from(g.up))),
        );
        sync(&self.signal_up, &mut seen.signal_up, now);
        let now = set_each(
            &self.staleness,
            s.signals
                .iter()
                .map(|g| (signal(&g.signal), g.staleness_seconds)),
        );
        sync(&self.staleness, &mut seen.staleness, now);
        // Error counters live as long as their signal does: an error kind that stops
        // recurring keeps its count (it is a counter), but a signal that is gone takes its
        // counters with it.
        for g in &s.signals {
            for (kind, n) in &g.new_errors {
                let l = SignalErrorLabels {
                    signal: Lv::from(&g.signal),
                    kind: Lv::from(kind),
                };
                self.errors.get_or_create(&l).inc_by(*n);
                seen.errors.insert(l);
            }
        }
        let live: HashSet<&str> = s.signals.iter().map(|g| g.signal.as_str()).collect();
        seen.errors.retain(|l| {
            let keep = live.contains(l.signal.0.as_str());
            if !keep {
                self.errors.remove(l);
            }
            keep
        });

        let now = set_each(
            &self.wape,
            s.accuracy
                .iter()
                .filter_map(|a| a.wape.map(|v| (series(&a.series), v))),
        );
        sync(&self.wape, &mut seen.wape, now);
        let now = set_each(
            &self.coverage,
            s.accuracy
                .iter()
                .filter_map(|a| a.coverage_p90.map(|v| (series(&a.series), v))),
        );
        sync(&self.coverage, &mut seen.coverage, now);
        let mut now = HashSet::new();
        for a in &s.accuracy {
            let l = series(&a.series);
            // The tracker owns the count; mirroring it (rather than adding deltas) keeps the two
            // equal, and a tracker restart shows up as the counter reset Prometheus expects.
            self.scored
                .get_or_create(&l)
                .inner()
                .store(a.scored, Ordering::Relaxed);
            now.insert(l);
        }
        sync(&self.scored, &mut seen.scored, now);

        let now = set_each(
            &self.model_info,
            s.model.iter().map(|m| {
                let l = ModelLabels {
                    model: Lv::from(&m.model),
                    trained_at: Lv::from(&m.trained_at),
                    version: Lv::from(&m.version),
                };
                (l, 1)
            }),
        );
        sync(&self.model_info, &mut seen.model, now);

        if s.cycle_seconds.is_finite() && s.cycle_seconds >= 0.0 {
            self.cycle_duration.observe(s.cycle_seconds);
        }
        self.cycles.inc();
        self.last_cycle.set(s.at_unix as f64);
    }

    /// The registry in the OpenMetrics text format, ending with `# EOF`.
    pub fn encode(&self) -> String {
        let _consistent = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(4096);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

fn series(s: &str) -> SeriesLabel {
    SeriesLabel { series: s.into() }
}

fn workload(s: &str) -> WorkloadLabel {
    WorkloadLabel { workload: s.into() }
}

fn signal(s: &str) -> SignalLabel {
    SignalLabel { signal: s.into() }
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// `0.9` → `"0.9"`, `0.5` → `"0.5"`: Rust's shortest round-trip form, which is also what a
/// person types in PromQL (`quantile="0.9"`).
fn quantile_label(level: f64) -> String {
    format!("{level}")
}

/// Sets one gauge per label set and returns the label sets set.
fn set_each<L, N, A>(
    family: &Family<L, Gauge<N, A>>,
    values: impl Iterator<Item = (L, N)>,
) -> HashSet<L>
where
    L: Clone + Hash + Eq,
    A: prometheus_client::metrics::gauge::Atomic<N> + Default,
{
    values
        .map(|(l, v)| {
            family.get_or_create(&l).set(v);
            l
        })
        .collect()
}

/// Removes the label sets exported last time but not this time.
fn sync<L: Clone + Hash + Eq, M, C>(
    family: &Family<L, M, C>,
    seen: &mut HashSet<L>,
    now: HashSet<L>,
) where
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    for gone in seen.difference(&now) {
        family.remove(gone);
    }
    *seen = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forecast(series: &str, p50: f64, p90: f64) -> ForecastSample {
        ForecastSample {
            series: series.into(),
            window_seconds: 300.0,
            quantiles: vec![(0.5, p50), (0.9, p90)],
            observed: Some(p50 * 0.9),
        }
    }

    fn signal(name: &str, errors: &[(&str, u64)]) -> SignalSample {
        SignalSample {
            signal: name.into(),
            up: errors.is_empty(),
            staleness_seconds: 12.5,
            new_errors: errors.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        }
    }

    /// A snapshot that touches every family, with two of everything that has labels.
    pub(crate) fn full_snapshot() -> Snapshot {
        Snapshot {
            forecasts: vec![forecast("web", 100.0, 140.5), forecast("batch", 10.0, 30.0)],
            workloads: vec![
                WorkloadSample {
                    workload: "web".into(),
                    current_replicas: 4,
                    recommended_replicas: 7,
                },
                WorkloadSample {
                    workload: "batch".into(),
                    current_replicas: 2,
                    recommended_replicas: 1,
                },
            ],
            pools: vec![
                PoolSample {
                    pool: "general".into(),
                    recommended_nodes: 3,
                },
                PoolSample {
                    pool: "spot".into(),
                    recommended_nodes: 0,
                },
            ],
            decisions: vec!["scale_up".into(), "scale_up".into(), "scale_down".into()],
            signals: vec![
                signal("web_rps", &[]),
                signal("batch_queue", &[("timeout", 2)]),
            ],
            accuracy: vec![
                AccuracySample {
                    series: "web".into(),
                    wape: Some(0.12),
                    coverage_p90: Some(0.875),
                    scored: 40,
                },
                AccuracySample {
                    series: "batch".into(),
                    wape: None,
                    coverage_p90: None,
                    scored: 0,
                },
            ],
            model: Some(ModelSample {
                model: "default".into(),
                trained_at: "2025-01-01T00:00:00Z".into(),
                version: "0.1.0".into(),
            }),
            cycle_seconds: 0.042,
            at_unix: 1_750_000_000,
        }
    }

    fn lines(m: &Metrics) -> Vec<String> {
        m.encode().lines().map(str::to_string).collect()
    }

    fn assert_has(text: &[String], line: &str) {
        assert!(
            text.iter().any(|l| l == line),
            "missing line {line:?} in:\n{}",
            text.join("\n")
        );
    }

    fn assert_no_mention(text: &[String], needle: &str) {
        let hits: Vec<_> = text.iter().filter(|l| l.contains(needle)).collect();
        assert!(hits.is_empty(), "{needle:?} still exported: {hits:#?}");
    }

    #[test]
    fn fresh_registry_has_build_info_and_zeroed_decisions() {
        let text = lines(&Metrics::new());
        assert_has(
            &text,
            &format!(
                "prescale_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
        );
        for kind in DECISION_KINDS {
            assert_has(
                &text,
                &format!("prescale_decisions_total{{kind=\"{kind}\"}} 0"),
            );
        }
        assert_has(&text, "prescale_cycles_total 0");
        assert_eq!(text.last().map(String::as_str), Some("# EOF"));
    }

    #[test]
    fn encode_after_observe_contains_every_value() {
        let m = Metrics::new();
        m.observe(&full_snapshot());
        let text = lines(&m);
        for line in [
            "# TYPE prescale_forecast gauge",
            r#"prescale_forecast{series="web",quantile="0.5"} 100.0"#,
            r#"prescale_forecast{series="web",quantile="0.9"} 140.5"#,
            r#"prescale_forecast{series="batch",quantile="0.9"} 30.0"#,
            "# UNIT prescale_forecast_window_seconds seconds",
            r#"prescale_forecast_window_seconds{series="web"} 300.0"#,
            r#"prescale_observed_demand{series="web"} 90.0"#,
            r#"prescale_recommended_replicas{workload="web"} 7"#,
            r#"prescale_current_replicas{workload="web"} 4"#,
            r#"prescale_recommended_replicas{workload="batch"} 1"#,
            r#"prescale_recommended_nodes{pool="general"} 3"#,
            r#"prescale_recommended_nodes{pool="spot"} 0"#,
            "# TYPE prescale_decisions counter",
            r#"prescale_decisions_total{kind="scale_up"} 2"#,
            r#"prescale_decisions_total{kind="scale_down"} 1"#,
            r#"prescale_decisions_total{kind="hold"} 0"#,
            r#"prescale_collection_errors_total{signal="batch_queue",kind="timeout"} 2"#,
            r#"prescale_signal_up{signal="web_rps"} 1"#,
            r#"prescale_signal_up{signal="batch_queue"} 0"#,
            r#"prescale_data_staleness_seconds{signal="web_rps"} 12.5"#,
            r#"prescale_forecast_wape{series="web"} 0.12"#,
            r#"prescale_forecast_p90_coverage{series="web"} 0.875"#,
            r#"prescale_forecasts_scored_total{series="web"} 40"#,
            r#"prescale_forecasts_scored_total{series="batch"} 0"#,
            "prescale_cycle_duration_seconds_count 1",
            "prescale_cycles_total 1",
            "prescale_last_cycle_timestamp_seconds 1750000000.0",
            r#"prescale_model_info{model="default",trained_at="2025-01-01T00:00:00Z",version="0.1.0"} 1"#,
        ] {
            assert_has(&text, line);
        }
        // An unscored series has no accuracy gauges rather than a NaN or a misleading 0.
        assert_no_mention(&text, r#"prescale_forecast_wape{series="batch"}"#);
        assert_no_mention(&text, r#"prescale_forecast_p90_coverage{series="batch"}"#);
    }

    #[test]
    fn series_missing_from_the_next_snapshot_vanish() {
        let m = Metrics::new();
        m.observe(&full_snapshot());
        let mut next = full_snapshot();
        next.forecasts.retain(|f| f.series == "web");
        next.forecasts[0].quantiles.retain(|q| q.0 == 0.9);
        next.workloads.retain(|w| w.workload == "web");
        next.pools.retain(|p| p.pool == "general");
        next.signals.retain(|s| s.signal == "web_rps");
        next.accuracy.retain(|a| a.series == "web");
        next.model = None;
        m.observe(&next);
        let text = lines(&m);
        for gone in [
            "\"batch\"",
            "batch_queue",
            "\"spot\"",
            r#"quantile="0.5""#,
            "prescale_model_info{",
        ] {
            assert_no_mention(&text, gone);
        }
        assert_has(
            &text,
            r#"prescale_forecast{series="web",quantile="0.9"} 140.5"#,
        );
        assert_has(&text, r#"prescale_recommended_replicas{workload="web"} 7"#);
        assert_has(&text, r#"prescale_signal_up{signal="web_rps"} 1"#);
        // Decision counters are not state: they keep counting.
        assert_has(&text, r#"prescale_decisions_total{kind="scale_up"} 4"#);

        // Back again: the series reappears from its new value, not a leftover.
        let mut again = full_snapshot();
        again.workloads[1].recommended_replicas = 9;
        m.observe(&again);
        let text = lines(&m);
        assert_has(
            &text,
            r#"prescale_recommended_replicas{workload="batch"} 9"#,
        );
        assert_has(
            &text,
            r#"prescale_collection_errors_total{signal="batch_queue",kind="timeout"} 2"#,
        );
    }

    #[test]
    fn error_counters_accumulate_while_their_signal_lives() {
        let m = Metrics::new();
        let mut s = Snapshot {
            signals: vec![signal("q", &[("timeout", 2), ("parse", 1)])],
            ..Snapshot::default()
        };
        m.observe(&s);
        s.signals = vec![signal("q", &[("timeout", 3)])];
        m.observe(&s);
        s.signals = vec![signal("q", &[])];
        m.observe(&s);
        let text = lines(&m);
        assert_has(
            &text,
            r#"prescale_collection_errors_total{signal="q",kind="timeout"} 5"#,
        );
        assert_has(
            &text,
            r#"prescale_collection_errors_total{signal="q",kind="parse"} 1"#,
        );
        assert_has(&text, r#"prescale_signal_up{signal="q"} 1"#);
    }

    #[test]
    fn scored_counter_mirrors_the_tracker_including_its_restarts() {
        let m = Metrics::new();
        let acc = |n| Snapshot {
            accuracy: vec![AccuracySample {
                series: "web".into(),
                wape: Some(0.1),
                coverage_p90: Some(0.9),
                scored: n,
            }],
            ..Snapshot::default()
        };
        m.observe(&acc(10));
        m.observe(&acc(25));
        assert_has(
            &lines(&m),
            r#"prescale_forecasts_scored_total{series="web"} 25"#,
        );
        m.observe(&acc(3));
        assert_has(
            &lines(&m),
            r#"prescale_forecasts_scored_total{series="web"} 3"#,
        );
    }

    #[test]
    fn model_change_replaces_the_info_series() {
        let m = Metrics::new();
        let mut s = full_snapshot();
        m.observe(&s);
        s.model.as_mut().unwrap().trained_at = "2025-02-01T00:00:00Z".into();
        m.observe(&s);
        let text = lines(&m);
        let infos: Vec<_> = text
            .iter()
            .filter(|l| l.starts_with("prescale_model_info{"))
            .collect();
        assert_eq!(infos.len(), 1, "{infos:?}");
        assert!(infos[0].contains("2025-02-01"), "{infos:?}");
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new();
        m.observe(&Snapshot {
            workloads: vec![WorkloadSample {
                workload: "we\"b\\x\ny".into(),
                current_replicas: 1,
                recommended_replicas: 2,
            }],
            ..Snapshot::default()
        });
        assert_has(
            &lines(&m),
            r#"prescale_recommended_replicas{workload="we\"b\\x\ny"} 2"#,
        );
    }

    #[test]
    fn histogram_counts_each_cycle_in_its_bucket() {
        let m = Metrics::new();
        for secs in [0.0005, 0.002, 0.3, 0.3, 20.0, f64::NAN] {
            m.observe(&Snapshot {
                cycle_seconds: secs,
                ..Snapshot::default()
            });
        }
        let text = lines(&m);
        // NaN is not a duration: the cycle counts, the histogram skips it.
        assert_has(&text, "prescale_cycles_total 6");
        assert_has(&text, "prescale_cycle_duration_seconds_count 5");
        assert_has(&text, "prescale_cycle_duration_seconds_sum 20.6025");
        assert_has(
            &text,
            r#"prescale_cycle_duration_seconds_bucket{le="0.001"} 1"#,
        );
        assert_has(
            &text,
            r#"prescale_cycle_duration_seconds_bucket{le="0.0025"} 2"#,
        );
        assert_has(
            &text,
            r#"prescale_cycle_duration_seconds_bucket{le="0.25"} 2"#,
        );
        assert_has(
            &text,
            r#"prescale_cycle_duration_seconds_bucket{le="0.5"} 4"#,
        );
        assert_has(
            &text,
            r#"prescale_cycle_duration_seconds_bucket{le="10.0"} 4"#,
        );
        assert_has(
            &text,
            r#"prescale_cycle_duration_seconds_bucket{le="+Inf"} 5"#,
        );
    }

    /// Names of the samples in an OpenMetrics text (`foo_bucket`, `foo_total`, ...).
    fn sample_names(text: &str) -> HashSet<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split(['{', ' ']).next().unwrap_or_default().to_string())
            .collect()
    }

    /// Every `prescale_*` name in a string (PromQL, a variable query, a description).
    fn metric_names_in(s: &str, out: &mut HashSet<String>) {
        let mut rest = s;
        while let Some(i) = rest.find("prescale_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            out.insert(tail[..end].to_string());
            rest = &tail[end..];
        }
    }

    /// The PromQL in a dashboard: panel targets' `expr` and template variables' queries
    /// (descriptions may name a family, e.g. a histogram, which is not a queryable name).
    fn queries<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Array(a) => a.iter().for_each(|v| queries(v, out)),
            serde_json::Value::Object(o) => {
                for (k, v) in o {
                    match (k.as_str(), v) {
                        ("expr" | "query" | "definition", serde_json::Value::String(s)) => {
                            out.push(s)
                        }
                        _ => queries(v, out),
                    }
                }
            }
            _ => {}
        }
    }

    #[test]
    fn dashboard_is_json_and_queries_only_exported_metrics() {
        let text = include_str!("../../dashboards/prescale-grafana.json");
        let dash: serde_json::Value = serde_json::from_str(text).expect("dashboard is JSON");
        assert!(dash["schemaVersion"].as_u64().unwrap() >= 36);
        let vars = dash["templating"]["list"].as_array().unwrap();
        assert!(
            vars.iter()
                .any(|v| v["name"] == "DS_PROMETHEUS" && v["type"] == "datasource"),
            "no DS_PROMETHEUS datasource variable"
        );

        let panels = dash["panels"].as_array().unwrap();
        let mut ids = HashSet::new();
        let mut exprs = 0;
        for p in panels {
            assert!(ids.insert(p["id"].as_u64().unwrap()), "duplicate panel id");
            for t in p["targets"].as_array().into_iter().flatten() {
                assert_eq!(t["datasource"]["uid"], "${DS_PROMETHEUS}", "{t}");
                assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()), "{t}");
                exprs += 1;
            }
        }
        assert!(exprs >= 15, "only {exprs} queries");

        let mut all = Vec::new();
        queries(&dash, &mut all);
        let mut referenced = HashSet::new();
        all.iter().for_each(|s| metric_names_in(s, &mut referenced));
        let m = Metrics::new();
        m.observe(&full_snapshot());
        let exported = sample_names(&m.encode());
        let mut unknown: Vec<_> = referenced.difference(&exported).collect();
        unknown.sort();
        assert!(
            unknown.is_empty(),
            "dashboard uses names /metrics does not have: {unknown:?}"
        );
        // And the dashboard shows every family the brief asked for.
        for needed in [
            "prescale_forecast",
            "prescale_observed_demand",
            "prescale_recommended_replicas",
            "prescale_current_replicas",
            "prescale_recommended_nodes",
            "prescale_decisions_total",
            "prescale_collection_errors_total",
            "prescale_data_staleness_seconds",
            "prescale_signal_up",
            "prescale_forecast_wape",
            "prescale_forecast_p90_coverage",
            "prescale_cycle_duration_seconds_bucket",
            "prescale_build_info",
            "prescale_model_info",
        ] {
            assert!(referenced.contains(needed), "dashboard lacks {needed}");
        }
    }
}
