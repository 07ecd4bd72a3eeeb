//! The other shards' per-workload loads, read back from Prometheus by the replica that plans
//! the node pools (ordinal 0).
//!
//! Every shard exports, per workload it plans, what the node planner needs of it: the replicas
//! planned ([`DESIRED_METRIC`]), the forecast peak's share of each replica's CPU request
//! ([`UTILIZATION_METRIC`]) and when that cycle ran ([`PLANNED_AT_METRIC`]). Prometheus scrapes
//! every shard, so the planning replica reads them with one instant query per family: no
//! protocol between replicas, at the cost of up to one scrape interval of delay.
//!
//! The three answers are matched by label set (the target's `instance`/`job` and the
//! `workload`), so values from different shards are never mixed; when two targets export the
//! same workload (a resize in progress), the freshest plan wins. A workload is **unknown**,
//! with the reason named, when a query failed, a family has no series for it, a value is not a
//! finite count or share, or its plan is older than the freshness bound (or dated further
//! ahead of this replica's clock than the bound, when its age cannot be judged): its shard is
//! down, stalled, or no longer scraped. The node planner then holds scale-in and sizes scale-out
//! from known demand only.

use crate::collect::prometheus::{InstantSample, QueryData};
use crate::collect::PromClient;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Replicas each shard planned per workload (exported already for dashboards).
pub const DESIRED_METRIC: &str = "prescale_recommended_replicas";
/// Forecast peak ÷ the planned replicas' capacity, per workload.
pub const UTILIZATION_METRIC: &str = "prescale_forecast_utilization";
/// Unix time of the cycle that planned a workload.
pub const PLANNED_AT_METRIC: &str = "prescale_plan_timestamp_seconds";

/// One other shard's workload, as its last exported plan says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemoteLoad {
    /// Replicas planned.
    pub desired: u32,
    /// Share of each replica's CPU request forecast used at the peak.
    pub utilization: f64,
    /// Unix time of the cycle that planned it.
    pub planned_at: i64,
}

/// Per wanted workload: its load, or why it is unknown.
pub type ReadBack = BTreeMap<String, Result<RemoteLoad, String>>;

/// One family's answer: its samples, or why the query failed.
pub type FamilyAnswer = Result<Vec<InstantSample>, String>;

/// Reads the other shards' loads through the collector's Prometheus client (same address,
/// auth, headers and timeout).
#[derive(Clone)]
pub struct ShardReader {
    client: PromClient,
    max_age: i64,
    selector: Option<String>,
}

impl ShardReader {
    /// A reader that counts a plan older than `max_age` seconds as unknown.
    pub fn new(client: PromClient, max_age: i64) -> Self {
        ShardReader {
            client,
            max_age,
            selector: None,
        }
    }

    /// Asks only for the series `selector` matches (`shard.selector`, already checked by
    /// [`super::selector::parse`]): this deployment's targets, not another's in the same
    /// Prometheus.
    pub fn with_selector(mut self, selector: Option<String>) -> Self {
        self.selector = selector;
        self
    }

    /// The query for one family: its name, narrowed by the selector if there is one.
    pub fn query_for(&self, family: &str) -> String {
        super::selector::narrowed(family, self.selector.as_deref())
    }

    /// The freshness bound, seconds.
    pub fn max_age(&self) -> i64 {
        self.max_age
    }

    /// Reads each of `wanted`'s loads: one instant query per family, their plans' ages
    /// measured from `now`.
    pub async fn read(&self, wanted: &[String], now: i64) -> ReadBack {
        if wanted.is_empty() {
            return ReadBack::new();
        }
        let mut answers = Vec::with_capacity(3);
        for family in [DESIRED_METRIC, UTILIZATION_METRIC, PLANNED_AT_METRIC] {
            // At Prometheus' own now, not `now`: a whole-second time in the past of the
            // newest scrape would miss it, and the two clocks need not agree.
            let query = self.query_for(family);
            let answer = match self.client.query(&query, None).await {
                Ok(a) => match a.data {
                    QueryData::Vector(v) => Ok(v),
                    other => Err(format!("answered a {}, not a vector", other.type_name())),
                },
                Err(e) => Err(e.to_string()),
            };
            answers.push(answer);
        }
        let at = answers.pop().unwrap_or_else(|| Ok(Vec::new()));
        let util = answers.pop().unwrap_or_else(|| Ok(Vec::new()));
        let desired = answers.pop().unwrap_or_else(|| Ok(Vec::new()));
        let mut read = map_answers(wanted, &desired, &util, &at, now, self.max_age);
        if let Some(sel) = &self.selector {
            // A selector that matches nothing looks like a shard that is down: say it was used.
            for why in read.values_mut().filter_map(|r| r.as_mut().err()) {
                why.push_str(&format!(" (read with shard.selector {{{sel}}})"));
            }
        }
        read
    }
}

/// A series' labels without `__name__`: the key that matches one target's three families.
/// Borrowed from the answers: thousands of workloads per cycle, none of it copied.
type Target<'a> = Vec<(&'a str, &'a str)>;

/// Per workload, per target: the family's value.
type ByWorkload<'a> = HashMap<&'a str, HashMap<Target<'a>, f64>>;

fn by_workload(samples: &[InstantSample]) -> ByWorkload<'_> {
    let mut out = ByWorkload::with_capacity(samples.len());
    for s in samples {
        let (Some(w), Some(p)) = (s.metric.get("workload"), s.value.as_ref()) else {
            continue;
        };
        let target: Target = s
            .metric
            .iter()
            .filter(|(k, _)| k.as_str() != "__name__")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        out.entry(w.as_str()).or_default().insert(target, p.value);
    }
    out
}

/// Maps the three families' answers to each wanted workload's load or the reason it is
/// unknown (see the module doc). `now` and `max_age` are Unix seconds and seconds.
pub fn map_answers(
    wanted: &[String],
    desired: &FamilyAnswer,
    utilization: &FamilyAnswer,
    planned_at: &FamilyAnswer,
    now: i64,
    max_age: i64,
) -> ReadBack {
    let families = [
        (DESIRED_METRIC, desired),
        (UTILIZATION_METRIC, utilization),
        (PLANNED_AT_METRIC, planned_at),
    ];
    if let Some((family, Err(why))) = families.iter().find(|(_, a)| a.is_err()) {
        let why = format!("reading {family} from Prometheus failed: {why}");
        return wanted
            .iter()
            .map(|w| (w.clone(), Err(why.clone())))
            .collect();
    }
    let empty = Vec::new();
    let maps: Vec<ByWorkload> = families
        .iter()
        .map(|(_, a)| by_workload(a.as_ref().unwrap_or(&empty)))
        .collect();
    wanted
        .iter()
        .map(|w| (w.clone(), one(w, &maps, now, max_age)))
        .collect()
}

/// One workload: the freshest target that exports all three families with valid values.
fn one(w: &str, maps: &[ByWorkload], now: i64, max_age: i64) -> Result<RemoteLoad, String> {
    let names = [DESIRED_METRIC, UTILIZATION_METRIC, PLANNED_AT_METRIC];
    let per_family: Vec<Option<&HashMap<Target, f64>>> = maps.iter().map(|m| m.get(w)).collect();
    let missing: Vec<&str> = names
        .iter()
        .zip(&per_family)
        .filter(|(_, m)| m.is_none())
        .map(|(n, _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "no {}{{workload=\"{w}\"}} in Prometheus (its shard is down, not scraped yet, or not \
             running)",
            missing.join(" nor ")
        ));
    }
    let [Some(desired), Some(util), Some(at)] = per_family[..] else {
        unreachable!("checked above: every family has the workload");
    };
    let mut targets: Vec<&Target> = at.keys().collect();
    targets.sort_by(|a, b| at[*b].total_cmp(&at[*a]).then(a.cmp(b)));
    let complete: HashSet<&Target> = targets
        .iter()
        .copied()
        .filter(|t| desired.contains_key(*t) && util.contains_key(*t))
        .collect();
    let Some(target) = targets.into_iter().find(|t| complete.contains(t)) else {
        return Err(format!(
            "{DESIRED_METRIC}, {UTILIZATION_METRIC} and {PLANNED_AT_METRIC} of workload '{w}' \
             come from different targets, none exports all three"
        ));
    };
    let (d, u, t) = (desired[target], util[target], at[target]);
    let from = describe(target);
    if !(d.is_finite() && d >= 0.0 && d.fract() == 0.0 && d <= f64::from(u32::MAX)) {
        return Err(format!(
            "{DESIRED_METRIC}{{workload=\"{w}\"}} is {d} ({from}), not a replica count"
        ));
    }
    if !(u.is_finite() && u >= 0.0) {
        return Err(format!(
            "{UTILIZATION_METRIC}{{workload=\"{w}\"}} is {u} ({from}), not a share ≥ 0"
        ));
    }
    if !t.is_finite() {
        return Err(format!(
            "{PLANNED_AT_METRIC}{{workload=\"{w}\"}} is {t} ({from}), not a time"
        ));
    }
    let planned_at = t as i64;
    let age = now.saturating_sub(planned_at);
    // Dated ahead of this clock by more than the bound, a plan's age says nothing: a shard
    // whose clock runs ahead would otherwise stay "fresh" for that much longer after it stalls.
    if -age > max_age {
        return Err(format!(
            "its plan is dated {}s ahead of this replica's clock ({from}), more than the {max_age}s \
             bound (shard.max_age): the clocks disagree, so its freshness cannot be judged",
            age.saturating_neg()
        ));
    }
    if age > max_age {
        return Err(format!(
            "its plan is {age}s old ({from}), older than the {max_age}s bound (shard.max_age): \
             its shard is stalled or no longer scraped"
        ));
    }
    Ok(RemoteLoad {
        desired: d as u32,
        utilization: u,
        planned_at,
    })
}

/// `instance="10.0.0.7:9100"` of a target, for a reason; all its labels but `workload`.
fn describe(target: &Target) -> String {
    let labels: Vec<String> = target
        .iter()
        .filter(|(k, _)| *k != "workload")
        .map(|(k, v)| format!("{k}=\"{v}\""))
        .collect();
    if labels.is_empty() {
        "no target labels".into()
    } else {
        labels.join(", ")
    }
}

#[cfg(test)]
mod tests;
