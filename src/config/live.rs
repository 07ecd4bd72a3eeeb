//! The live loop's sections, `[run]`, `[export]` and `[replay]`, and the cross-section checks
//! on `[[workload]]`, `[[pool]]` and `[[node]]`.

use super::raw::RawConfig;
use super::{problem, Problem};
use crate::act::{ActuatorKind, CommandTemplate};
use crate::collect::config::resolve;
use crate::collect::SignalConfig;
use crate::plan::{AccuracyConfig, PoolSpec, Resources, WorkloadSpec};
use crate::series::parse_duration;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default `run.retrain_max_points`: a global model learns load shapes from a spread sample as
/// well as from every series, and a retraining holds about 500 bytes a point (measured with
/// `benches/retrain.rs`: 459 MiB at a million points), so a million keeps it within what a
/// pod of a few GiB can spare, and takes about a minute on two cores.
pub const DEFAULT_RETRAIN_MAX_POINTS: usize = 1_000_000;

/// The live loop's validated settings.
#[derive(Debug, Clone, Default)]
pub struct LiveConfig {
    /// Model file.
    pub model: Option<PathBuf>,
    /// Seconds between cycles.
    pub interval: i64,
    /// Decision log path.
    pub decision_log: PathBuf,
    /// The online calibration's state file (`run.calibration_state`; default beside the
    /// decision log, `<its stem>.calibration.json`).
    pub calibration_state: PathBuf,
    /// `run.apply_command`: the command run per scale decision with `--apply`, split into
    /// arguments and checked at load (no shell; see [`CommandTemplate`]).
    pub apply_command: Option<CommandTemplate>,
    /// `run.actuator` as written; `None`: the default (see [`actuator`](Self::actuator)).
    pub actuator_key: Option<ActuatorKind>,
    /// `run.apply_timeout`: how long one `apply_command` may run before it is killed, seconds.
    pub apply_timeout: i64,
    /// Retraining period, seconds.
    pub retrain_every: Option<i64>,
    /// `run.retrained_model`: where the model retraining put in place is kept, so a restart
    /// goes on with it (default beside the decision log, `<its stem>.retrained.model`).
    pub retrained_model: PathBuf,
    /// `run.retrain_exclude`: time ranges whose samples retraining treats as gaps.
    pub retrain_exclude: Vec<crate::series::TimeRange>,
    /// `run.retrain_max_points`: most points one retraining is handed (a spread sample of the
    /// series past it); its memory is about 500 bytes a point (`benches/retrain.rs`).
    pub retrain_max_points: usize,
    /// `run.own_model_after`: seconds of history after which a series' own model is trained
    /// and tried against the global one; `None` (`"off"`) = never. See
    /// [`forecast::stage`](crate::forecast::stage).
    pub own_model_after: Option<i64>,
    /// Cycles to run, if limited.
    pub cycles: Option<u64>,
    /// Print holds in the table.
    pub show_holds: bool,
    /// Where to serve /metrics; `None` = not at all.
    pub listen: Option<SocketAddr>,
    /// `export.keda_listen`: where to serve KEDA's external-scaler gRPC interface; `None` (the
    /// default) = not at all. Independent of `export.enabled`.
    pub keda_listen: Option<SocketAddr>,
    /// Replay instead of Prometheus.
    pub replay: Option<ReplayConfig>,
    /// Workloads, validated.
    pub workloads: Vec<WorkloadSpec>,
    /// Pools, validated.
    pub pools: Vec<PoolSpec>,
    /// Nodes at start: (name, pool).
    pub nodes: Vec<(String, String)>,
    /// Accuracy tracking.
    pub accuracy: AccuracyConfig,
    /// Online calibration of the forecast quantiles (`[online_calibration]`).
    pub online_calibration: crate::forecast::OnlineConfig,
}

impl LiveConfig {
    /// The actuator `--apply` uses: `run.actuator`, else `command` when `run.apply_command` is
    /// set and `kubernetes` otherwise.
    pub fn actuator(&self) -> ActuatorKind {
        match (self.actuator_key, &self.apply_command) {
            (Some(k), _) => k,
            (None, Some(_)) => ActuatorKind::Command,
            (None, None) => ActuatorKind::Kubernetes,
        }
    }
}

/// Validated `[replay]`.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Signal name.
    pub signal: String,
    /// Files, resolved and sorted.
    pub files: Vec<PathBuf>,
    /// Replay seconds per wall second.
    pub speed: f64,
    /// Seconds of history before the first cycle.
    pub warmup: i64,
    /// `--apply` may act on the replay's decisions (`replay.allow_apply`): for trying an
    /// actuator on a test cluster; without it `run --apply` refuses to start.
    pub allow_apply: bool,
}

/// Slowest `replay.speed` accepted (replay seconds per wall-clock second): a cycle's pause is
/// `interval / speed`, so at this speed a 366-day interval pauses about a thousand years,
/// which a `Duration` still holds; slower is surely a typo.
pub const MIN_REPLAY_SPEED: f64 = 0.001;

/// The default listen address of the exporter.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9464";

fn duration_key(
    text: &Option<String>,
    key: &str,
    default: i64,
    problems: &mut Vec<Problem>,
) -> i64 {
    match text {
        None => default,
        Some(t) => parse_duration(t).unwrap_or_else(|e| {
            problem(problems, key, e);
            default
        }),
    }
}

/// Checks the live loop's sections and the cross-section references of workloads, pools and
/// nodes.
pub(super) fn validate_live(
    raw: &RawConfig,
    base: &Path,
    signals: &[SignalConfig],
    problems: &mut Vec<Problem>,
) -> LiveConfig {
    let run = raw.run.as_ref();
    let default_interval = signals.first().map(|s| s.step).unwrap_or(60);
    let interval = duration_key(
        &run.and_then(|r| r.interval.clone()),
        "run.interval",
        default_interval,
        problems,
    );
    let retrain_every = run.and_then(|r| r.retrain_every.as_ref()).and_then(|t| {
        parse_duration(t)
            .map_err(|e| problem(problems, "run.retrain_every", e))
            .ok()
    });
    let retrain_max_points = match run.and_then(|r| r.retrain_max_points) {
        None => DEFAULT_RETRAIN_MAX_POINTS,
        Some(n) if (10_000..=100_000_000).contains(&n) => n as usize,
        Some(n) => {
            problem(
                problems,
                "run.retrain_max_points",
                format!(
                    "{n} is outside 10000..=100000000 (a retraining holds about 500 bytes a \
                     point: 1000000 is ~460 MiB)"
                ),
            );
            DEFAULT_RETRAIN_MAX_POINTS
        }
    };
    // Series are handed over whole: one longer than the budget could never be.
    if retrain_every.is_some() {
        if let Some(s) = signals
            .iter()
            .max_by_key(|s| s.ring_capacity())
            .filter(|s| s.ring_capacity() > retrain_max_points)
        {
            problem(
                problems,
                "run.retrain_max_points",
                format!(
                    "{retrain_max_points} is less than one series of signal '{}' holds ({} \
                     points): retraining would be handed nothing; raise it or shorten the \
                     signal's lookback",
                    s.name,
                    s.ring_capacity()
                ),
            );
        }
    }
    let retrain_exclude = run
        .and_then(|r| r.retrain_exclude.clone())
        .unwrap_or_default();
    for (i, r) in retrain_exclude.iter().enumerate() {
        let key = format!("run.retrain_exclude[{i}]");
        if let Err(crate::series::RangeError::Invalid { message, .. }) = r.validate(&key) {
            problem(problems, key, message);
        }
    }
    let own_model_after = own_model_after(run.and_then(|r| r.own_model_after.as_deref()), problems);
    let apply_timeout = duration_key(
        &run.and_then(|r| r.apply_timeout.clone()),
        "run.apply_timeout",
        crate::act::DEFAULT_APPLY_TIMEOUT.as_secs() as i64,
        problems,
    );
    if apply_timeout < 1 {
        problem(problems, "run.apply_timeout", "must be at least 1s");
    }
    if let Some(Some(c)) = run.map(|r| r.cycles) {
        if c == 0 {
            problem(problems, "run.cycles", "must be at least 1");
        }
    }
    let listen = validate_listen(raw, problems);
    let keda_listen = raw
        .export
        .as_ref()
        .and_then(|e| e.keda_listen.as_deref())
        .and_then(|text| {
            text.parse::<SocketAddr>()
                .map_err(|e| {
                    problem(
                        problems,
                        "export.keda_listen",
                        format!("'{text}' is not host:port: {e}"),
                    )
                })
                .ok()
        });
    if let (Some(k), Some(l)) = (keda_listen, listen) {
        if k.port() == l.port()
            && k.port() != 0
            && (k.ip() == l.ip() || k.ip().is_unspecified() || l.ip().is_unspecified())
        {
            problem(
                problems,
                "export.keda_listen",
                format!("{k} is the port export.listen serves /metrics on ({l}); give it another"),
            );
        }
    }
    let actuator_key = validate_actuator(raw, problems);
    let replay = validate_replay(raw, base, signals, problems);
    check_references(raw, problems);
    if raw.cluster.is_some() {
        check_cluster_mode(raw, problems);
    }
    let decision_log = resolve(
        base,
        run.and_then(|r| r.decision_log.as_deref())
            .unwrap_or(Path::new("prescale-decisions.jsonl")),
    );
    let calibration_state = match run.and_then(|r| r.calibration_state.as_deref()) {
        Some(p) => resolve(base, p),
        // `d.jsonl` → `d.calibration.json`: one state per log, so two configurations
        // sharing a directory do not share a state.
        None => decision_log.with_extension("calibration.json"),
    };
    if calibration_state == decision_log {
        problem(
            problems,
            "run.calibration_state",
            "is the decision log's path: give each its own file",
        );
    }
    let model = run.and_then(|r| r.model.as_ref()).map(|m| resolve(base, m));
    let retrained_model = match run.and_then(|r| r.retrained_model.as_deref()) {
        Some(p) => resolve(base, p),
        None => decision_log.with_extension("retrained.model"),
    };
    // The file is replaced at each retraining that wins: never the model the user gave, nor
    // another file the loop writes.
    for (other, what) in [
        (Some(&decision_log), "the decision log's"),
        (Some(&calibration_state), "run.calibration_state's"),
        (model.as_ref(), "run.model's"),
    ] {
        if other == Some(&retrained_model) {
            problem(
                problems,
                "run.retrained_model",
                format!("is {what} path: give it its own file"),
            );
        }
    }
    LiveConfig {
        model,
        interval,
        decision_log,
        calibration_state,
        apply_command: run.and_then(|r| r.apply_command.as_deref()).and_then(|t| {
            CommandTemplate::parse(t)
                .map_err(|e| problem(problems, "run.apply_command", e))
                .ok()
        }),
        actuator_key,
        apply_timeout,
        retrain_every,
        retrained_model,
        retrain_max_points,
        retrain_exclude,
        own_model_after,
        cycles: run.and_then(|r| r.cycles),
        show_holds: run.and_then(|r| r.show_holds).unwrap_or(false),
        listen,
        keda_listen,
        replay,
        workloads: raw.workload.clone(),
        pools: raw.pool.clone(),
        nodes: raw
            .node
            .iter()
            .map(|n| (n.name.clone(), n.pool.clone()))
            .collect(),
        accuracy: {
            let a = raw.accuracy.unwrap_or_default();
            if let Err(e) = a.validate() {
                problem(problems, "accuracy", e.to_string());
            }
            a
        },
        online_calibration: {
            let o = raw.online_calibration.unwrap_or_default();
            if let Err(e) = o.validate() {
                problem(problems, "online_calibration.gain", e.to_string());
            }
            o
        },
    }
}

/// `run.actuator`: a known name, with what it needs: `command` a `run.apply_command`,
/// `kubernetes` an object (`deployment`/`statefulset`) for every workload.
fn validate_actuator(raw: &RawConfig, problems: &mut Vec<Problem>) -> Option<ActuatorKind> {
    let run = raw.run.as_ref()?;
    let kind = ActuatorKind::parse(run.actuator.as_deref()?)
        .map_err(|e| problem(problems, "run.actuator", e))
        .ok()?;
    match kind {
        ActuatorKind::Command if run.apply_command.is_none() => problem(
            problems,
            "run.actuator",
            "is \"command\" but run.apply_command is not set: give the command, or use \
             \"kubernetes\"",
        ),
        ActuatorKind::Command => {}
        ActuatorKind::Kubernetes => {
            for (i, w) in raw.workload.iter().enumerate() {
                if w.object().is_none() {
                    problem(
                        problems,
                        format!("workload[{i}]"),
                        format!(
                            "'{}': run.actuator = \"kubernetes\" scales a Deployment or \
                             StatefulSet: name it, deployment = \"namespace/name\" or \
                             statefulset = \"namespace/name\"",
                            w.name
                        ),
                    );
                }
            }
        }
    }
    Some(kind)
}

/// `run.own_model_after`: a duration of at least a second, or `off`; absent, the measured
/// default [`DEFAULT_OWN_MODEL_AFTER`](crate::forecast::stage::DEFAULT_OWN_MODEL_AFTER).
fn own_model_after(text: Option<&str>, problems: &mut Vec<Problem>) -> Option<i64> {
    let default = crate::forecast::stage::DEFAULT_OWN_MODEL_AFTER;
    match text.map(str::trim) {
        None => Some(default),
        Some("off") => None,
        Some(t) => match parse_duration(t) {
            Ok(s) if s >= 1 => Some(s),
            Ok(_) => {
                problem(
                    problems,
                    "run.own_model_after",
                    "must be at least 1s, or \"off\"",
                );
                None
            }
            Err(e) => {
                problem(problems, "run.own_model_after", format!("{e} (or \"off\")"));
                None
            }
        },
    }
}

/// `[export]`: where to serve /metrics, or nowhere.
fn validate_listen(raw: &RawConfig, problems: &mut Vec<Problem>) -> Option<SocketAddr> {
    let export = raw.export.as_ref();
    if export.and_then(|e| e.enabled) == Some(false) {
        None
    } else {
        let text = export
            .and_then(|e| e.listen.clone())
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        match text.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(e) => {
                problem(
                    problems,
                    "export.listen",
                    format!("'{text}' is not host:port: {e}"),
                );
                None
            }
        }
    }
}

/// `[replay]`: its files (listed, or every CSV of a directory) and pace.
fn validate_replay(
    raw: &RawConfig,
    base: &Path,
    signals: &[SignalConfig],
    problems: &mut Vec<Problem>,
) -> Option<ReplayConfig> {
    raw.replay.as_ref().and_then(|r| {
        let before = problems.len();
        if !signals.iter().any(|s| s.name == r.signal) {
            problem(
                problems,
                "replay.signal",
                format!("'{}' is not the name of a [[signal]]", r.signal),
            );
        }
        let mut files: Vec<PathBuf> = r.files.iter().map(|f| resolve(base, f)).collect();
        if let Some(dir) = &r.dir {
            let dir = resolve(base, dir);
            match crate::series::csv_files(&dir) {
                Ok(found) => files.extend(found),
                Err(e) => problem(problems, "replay.dir", format!("{}: {e}", dir.display())),
            }
        }
        files.sort();
        files.dedup();
        if files.is_empty() && problems.len() == before {
            problem(
                problems,
                "replay",
                "no files: give files = [...] or dir = \"...\"",
            );
        }
        let speed = r.speed.unwrap_or(600.0);
        if !(speed.is_finite() && speed >= MIN_REPLAY_SPEED) {
            problem(
                problems,
                "replay.speed",
                format!("must be a number of at least {MIN_REPLAY_SPEED}, got {speed}"),
            );
        }
        let warmup = duration_key(&r.warmup, "replay.warmup", 8 * 86_400, problems);
        (problems.len() == before).then(|| ReplayConfig {
            signal: r.signal.clone(),
            files,
            speed,
            warmup,
            allow_apply: r.allow_apply,
        })
    })
}

/// Names used twice among workloads, pools and nodes, and references to pools that do not
/// exist.
fn check_references(raw: &RawConfig, problems: &mut Vec<Problem>) {
    let mut names = BTreeSet::new();
    for (i, w) in raw.workload.iter().enumerate() {
        if let Err(e) = w.validate() {
            problem(problems, format!("workload[{i}]"), e.to_string());
        }
        if !names.insert(w.name.clone()) {
            problem(
                problems,
                format!("workload[{i}].name"),
                format!("'{}' is used twice", w.name),
            );
        }
        // With [cluster], pools are discovered: a workload may name one no [[pool]] lists.
        if let Some(pool) = w.pool.as_ref().filter(|_| raw.cluster.is_none()) {
            if !raw.pool.iter().any(|p| &p.name == pool) {
                problem(
                    problems,
                    format!("workload[{i}].pool"),
                    format!("no [[pool]] named '{pool}'"),
                );
            }
        }
    }
    let mut pools = BTreeSet::new();
    for (i, p) in raw.pool.iter().enumerate() {
        let checked = match raw.cluster {
            Some(_) => p.validate_policy(),
            None => p.validate(),
        };
        if let Err(e) = checked {
            problem(problems, format!("pool[{i}]"), e.to_string());
        }
        if !pools.insert(p.name.clone()) {
            problem(
                problems,
                format!("pool[{i}].name"),
                format!("'{}' is used twice", p.name),
            );
        }
        // A pool's decisions (a hold at max_nodes among them) and a workload's are named by
        // their target alone in the believed state, the decision log and the KEDA scaler.
        if names.contains(&p.name) {
            problem(
                problems,
                format!("pool[{i}].name"),
                format!(
                    "'{}' is also a workload's name: a pool's decisions and a workload's are \
                     told apart by name, so rename one",
                    p.name
                ),
            );
        }
        if raw.cluster.is_none() {
            for (key, message) in unoffered_resources(raw, i) {
                problem(problems, key, message);
            }
        }
    }
    // Shares and quotas span workloads and pools (a static pool's shares add up to ≤ 1).
    for (key, message) in crate::plan::validate_shares(&raw.workload, &raw.pool) {
        problem(problems, key, message);
    }
    let mut nodes = BTreeSet::new();
    for (i, n) in raw.node.iter().enumerate() {
        if !pools.contains(&n.pool) {
            problem(
                problems,
                format!("node[{i}].pool"),
                format!("no [[pool]] named '{}'", n.pool),
            );
        }
        if !nodes.insert(n.name.clone()) {
            problem(
                problems,
                format!("node[{i}].name"),
                format!("'{}' is used twice", n.name),
            );
        }
    }
}

/// A resource pool `i`'s nodes do not offer (left out of `capacity`, so 0) that a workload in
/// the pool requests: no node could ever hold one of its replicas, so a capped pool would cut
/// it to its minimum and the node planner would add nodes that cannot help. Refused, naming
/// the workloads, rather than read as "unlimited".
fn unoffered_resources(raw: &RawConfig, i: usize) -> Vec<(String, String)> {
    let p = &raw.pool[i];
    let first = raw.pool.iter().map(|p| p.name.as_str()).min();
    let members: Vec<&WorkloadSpec> = raw
        .workload
        .iter()
        .filter(|w| w.pool.as_deref().or(first) == Some(p.name.as_str()))
        .collect();
    let mut problems = Vec::new();
    let cpu: fn(&Resources) -> f64 = |r| r.cpu;
    let memory: fn(&Resources) -> f64 = |r| r.memory;
    for (field, amount) in [("cpu", cpu), ("memory", memory)] {
        let asking: Vec<&str> = members
            .iter()
            .filter(|w| amount(&w.resources) > 0.0)
            .map(|w| w.name.as_str())
            .collect();
        if amount(&p.capacity) <= 0.0 && !asking.is_empty() {
            problems.push((
                format!("pool[{i}].capacity.{field}"),
                format!(
                    "pool '{}' offers no {field} (0, or left out) but {} request it: no node \
                     could hold one of their replicas; give a node's allocatable {field}",
                    p.name,
                    asking.join(", ")
                ),
            ));
        }
    }
    problems
}

/// With `[cluster]`, the cluster says what `[[node]]`, a pool's `capacity` and a workload's
/// `current_replicas` would: each is refused rather than silently overridden, and every
/// workload must name the object whose state is read.
fn check_cluster_mode(raw: &RawConfig, problems: &mut Vec<Problem>) {
    if !raw.node.is_empty() {
        problem(
            problems,
            "node",
            "[[node]] is the offline source; with [cluster] nodes are discovered from \
             kube-state-metrics: remove the [[node]] entries",
        );
    }
    for (i, p) in raw.pool.iter().enumerate() {
        if p.capacity != crate::plan::Resources::default() {
            problem(
                problems,
                format!("pool[{i}].capacity"),
                "with [cluster], a pool's capacity is its nodes' allocatable \
                 (kube_node_status_allocatable): remove capacity",
            );
        }
    }
    for (i, w) in raw.workload.iter().enumerate() {
        if w.deployment.is_none() && w.statefulset.is_none() {
            problem(
                problems,
                format!("workload[{i}]"),
                format!(
                    "'{}': with [cluster], name its object: deployment = \"namespace/name\" or \
                     statefulset = \"namespace/name\"",
                    w.name
                ),
            );
        }
        if w.current_replicas.is_some() {
            problem(
                problems,
                format!("workload[{i}].current_replicas"),
                "with [cluster], the replica count is read from kube-state-metrics: remove \
                 current_replicas",
            );
        }
    }
}
