//! The node planner: where replicas go, which nodes will run hot, and how many nodes each pool
//! needs by the time a new one could boot.
//!
//! Usage is forecast per node from the replicas on it: CPU as each replica's request × its
//! workload's forecast utilisation (forecast peak ÷ the capacity of the desired replicas), so a
//! workload heading for its peak weighs more; memory as requested, because memory does not
//! shrink with load. Only workloads prescale manages count; leave room for the rest through the
//! pool's `target_utilization`.
//!
//! One cycle, per pool, deterministic (ties broken by name):
//!
//! 1. replicas to be removed (desired < placed) come off the fullest nodes (no decision: the
//!    scale-down decision already says it);
//! 2. new replicas (desired > placed) are placed by multi-resource best fit on forecast
//!    headroom: of the nodes where requests fit the capacity and the forecast stays within the
//!    pool's threshold, the one left with the least normalised headroom;
//! 3. replicas are moved off nodes whose forecast crosses the threshold, before they do;
//! 4. nodes are added when the pool's forecast (plus anything left unplaced or hot) would
//!    exceed what its nodes can hold at the threshold. The forecast is the peak over its window,
//!    which the live loop sizes to cover the node boot time, so deciding now is deciding a boot
//!    time ahead. Nodes asked for are counted as coming for twice their boot time, so one need
//!    does not add a node every cycle;
//! 5. the emptiest node is removed once the rest could hold its replicas and the pool's forecast
//!    has allowed that continuously for the pool's `scale_down_window`.

use super::decision::{num, Decision, DecisionKind, Guard, GuardKind};
use super::spec::{PoolSpec, Resources, WorkloadSpec};
use std::collections::HashMap;

/// Slack for float comparisons against thresholds, so an exact fit fits.
const EPS: f64 = 1e-9;

/// One node as it is now.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeState {
    /// Node name (unique).
    pub name: String,
    /// Pool it belongs to; nodes of unknown pools are left alone.
    pub pool: String,
    /// Replicas on it, per workload name.
    pub replicas: Vec<(String, u32)>,
}

/// What the node planner needs to know about one workload.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadLoad<'a> {
    /// Its spec (resources per replica, pool).
    pub spec: &'a WorkloadSpec,
    /// Replicas it should have, usually the scale planner's `to`.
    pub desired: u32,
    /// Fraction of each replica's CPU request it is forecast to use at the peak (1 = exactly its
    /// request); see [`WorkloadLoad::new`].
    pub utilization: f64,
}

impl<'a> WorkloadLoad<'a> {
    /// From the desired replicas and the forecast peak demand (at the workload's risk
    /// quantile): utilisation = peak ÷ (desired × capacity per replica). Without a usable
    /// forecast each replica is assumed to use what it requests.
    pub fn new(spec: &'a WorkloadSpec, desired: u32, forecast_peak: Option<f64>) -> Self {
        let cap = spec.effective_capacity() * desired as f64;
        let utilization = match forecast_peak {
            Some(p) if p.is_finite() && p >= 0.0 && cap > 0.0 && cap.is_finite() => {
                (p / cap).min(10.0)
            }
            _ => 1.0,
        };
        WorkloadLoad {
            spec,
            desired,
            utilization,
        }
    }
}

/// Plans nodes and placement, remembering nodes asked for and how long removal has fitted.
#[derive(Debug, Clone, Default)]
pub struct NodePlanner {
    /// Per pool: node count asked for, and until when it is expected to show up.
    coming: HashMap<String, (u32, i64)>,
    /// Per pool: since when removing a node has fitted the forecast.
    removable_since: HashMap<String, i64>,
}

struct WorkloadInfo<'a> {
    name: &'a str,
    request: Resources,
    forecast: Resources,
    pool: Option<usize>,
    desired: u32,
}

#[derive(Clone)]
struct NodeModel<'a> {
    name: &'a str,
    pool: usize,
    request: Resources,
    forecast: Resources,
    /// (workload index, replicas), only workloads known to the planner.
    reps: Vec<(usize, u32)>,
}

impl NodeModel<'_> {
    fn count(&self, w: usize) -> u32 {
        self.reps.iter().find(|r| r.0 == w).map_or(0, |r| r.1)
    }

    fn add(&mut self, w: usize, info: &WorkloadInfo, n: i64) {
        match self.reps.iter_mut().find(|r| r.0 == w) {
            Some(r) => r.1 = (r.1 as i64 + n).max(0) as u32,
            None if n > 0 => self.reps.push((w, n as u32)),
            None => {}
        }
        self.request.add_scaled(&info.request, n as f64);
        self.forecast.add_scaled(&info.forecast, n as f64);
    }
}

/// Where one more replica of `w` fits best in `pool`, skipping `exclude`: requests within
/// capacity, forecast within the threshold, least normalised headroom left; ties by name
/// because nodes are sorted by name.
fn best_fit(
    nodes: &[NodeModel],
    info: &WorkloadInfo,
    pool: &PoolSpec,
    pool_idx: usize,
    exclude: Option<usize>,
) -> Option<usize> {
    let cap = &pool.capacity;
    let thr = pool.target_utilization;
    let mut best: Option<(usize, f64)> = None;
    for (i, n) in nodes.iter().enumerate() {
        if n.pool != pool_idx || Some(i) == exclude {
            continue;
        }
        let mut req = n.request;
        req.add_scaled(&info.request, 1.0);
        let mut fc = n.forecast;
        fc.add_scaled(&info.forecast, 1.0);
        if req.fill_ratio(cap) > 1.0 + EPS || fc.fill_ratio(cap) > thr + EPS {
            continue;
        }
        let mut left = 0.0;
        if cap.cpu > 0.0 {
            left += thr - fc.cpu / cap.cpu;
        }
        if cap.memory > 0.0 {
            left += thr - fc.memory / cap.memory;
        }
        if best.is_none_or(|(_, b)| left < b - EPS) {
            best = Some((i, left));
        }
    }
    best.map(|b| b.0)
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

impl NodePlanner {
    /// A planner with no memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// One planning cycle over all pools. Invalid pools are skipped (configuration validation
    /// reports them); decisions come pool by pool, then placements, moves, node changes.
    pub fn plan(
        &mut self,
        now: i64,
        pools: &[PoolSpec],
        nodes: &[NodeState],
        workloads: &[WorkloadLoad],
    ) -> Vec<Decision> {
        let mut pools: Vec<&PoolSpec> = pools.iter().filter(|p| p.validate().is_ok()).collect();
        pools.sort_by(|a, b| a.name.cmp(&b.name));
        pools.dedup_by(|a, b| a.name == b.name);
        let pool_idx: HashMap<&str, usize> = pools
            .iter()
            .enumerate()
            .map(|(i, p)| (p.name.as_str(), i))
            .collect();

        let mut winfo: Vec<WorkloadInfo> = workloads
            .iter()
            .map(|w| {
                let u = if w.utilization.is_finite() {
                    w.utilization.clamp(0.0, 10.0)
                } else {
                    1.0
                };
                let r = w.spec.resources;
                let ok = |v: f64| if v.is_finite() && v >= 0.0 { v } else { 0.0 };
                let request = Resources::new(ok(r.cpu), ok(r.memory));
                WorkloadInfo {
                    name: w.spec.name.as_str(),
                    request,
                    forecast: Resources::new(request.cpu * u, request.memory),
                    pool: match &w.spec.pool {
                        Some(p) => pool_idx.get(p.as_str()).copied(),
                        None if pools.is_empty() => None,
                        None => Some(0),
                    },
                    desired: w.desired,
                }
            })
            .collect();
        winfo.sort_by(|a, b| a.name.cmp(b.name));
        winfo.dedup_by(|a, b| a.name == b.name);
        let widx: HashMap<&str, usize> =
            winfo.iter().enumerate().map(|(i, w)| (w.name, i)).collect();

        let mut model: Vec<NodeModel> = Vec::with_capacity(nodes.len());
        for n in nodes {
            let Some(&p) = pool_idx.get(n.pool.as_str()) else {
                continue;
            };
            let mut m = NodeModel {
                name: n.name.as_str(),
                pool: p,
                request: Resources::default(),
                forecast: Resources::default(),
                reps: Vec::new(),
            };
            for (w, count) in &n.replicas {
                if let Some(&wi) = widx.get(w.as_str()) {
                    m.add(wi, &winfo[wi], *count as i64);
                }
            }
            model.push(m);
        }
        model.sort_by(|a, b| a.name.cmp(b.name));
        model.dedup_by(|a, b| a.name == b.name);
        let original: Vec<Vec<(usize, u32)>> = model.iter().map(|m| m.reps.clone()).collect();

        let mut placed = vec![0u32; winfo.len()];
        for m in &model {
            for &(w, c) in &m.reps {
                placed[w] = placed[w].saturating_add(c);
            }
        }

        // 1. Removals come off the fullest nodes.
        for (w, info) in winfo.iter().enumerate() {
            let mut excess = placed[w].saturating_sub(info.desired);
            while excess > 0 {
                let Some(i) =
                    (0..model.len())
                        .filter(|&i| model[i].count(w) > 0)
                        .max_by(|&a, &b| {
                            let (ca, cb) = (
                                &pools[model[a].pool].capacity,
                                &pools[model[b].pool].capacity,
                            );
                            model[a]
                                .forecast
                                .fill_ratio(ca)
                                .total_cmp(&model[b].forecast.fill_ratio(cb))
                                .then(model[b].name.cmp(model[a].name))
                        })
                else {
                    break;
                };
                model[i].add(w, info, -1);
                excess -= 1;
            }
        }

        let mut decisions = Vec::new();
        // Per pool: unplaced replicas' requests and forecast.
        let mut unplaced = vec![(0u32, Resources::default(), Resources::default()); pools.len()];

        // 2. Placement of new replicas.
        let mut place_counts: Vec<(usize, usize, u32)> = Vec::new(); // (workload, node, n)
        for (w, info) in winfo.iter().enumerate() {
            let Some(p) = info.pool else { continue };
            for _ in placed[w]..info.desired {
                match best_fit(&model, info, pools[p], p, None) {
                    Some(i) => {
                        model[i].add(w, info, 1);
                        match place_counts.iter_mut().find(|c| c.0 == w && c.1 == i) {
                            Some(c) => c.2 += 1,
                            None => place_counts.push((w, i, 1)),
                        }
                    }
                    None => {
                        let u = &mut unplaced[p];
                        u.0 += 1;
                        u.1.add_scaled(&info.request, 1.0);
                        u.2.add_scaled(&info.forecast, 1.0);
                    }
                }
            }
        }
        for (w, i, n) in place_counts {
            let before = original[i].iter().find(|r| r.0 == w).map_or(0, |r| r.1);
            let pool = pools[model[i].pool];
            decisions.push(Decision {
                at: now,
                kind: DecisionKind::Place,
                target: winfo[w].name.to_string(),
                node: Some(model[i].name.to_string()),
                to_node: None,
                from: before,
                to: before + n,
                raw: before + n,
                forecast: None,
                current: Some(model[i].forecast.fill_ratio(&pool.capacity)),
                guards: Vec::new(),
                reason: format!(
                    "{n} new replica{} of {}: best fit on forecast headroom, {} forecast {} of {} after",
                    if n == 1 { "" } else { "s" },
                    winfo[w].name,
                    model[i].name,
                    pct(model[i].forecast.fill_ratio(&pool.capacity)),
                    pct(pool.target_utilization),
                ),
            });
        }

        // 3. Moves off nodes forecast to run hot.
        let mut still_hot = vec![0u32; pools.len()];
        for src in 0..model.len() {
            let pool = pools[model[src].pool];
            let cap = pool.capacity;
            let thr = pool.target_utilization;
            let hot_before = model[src].forecast.fill_ratio(&cap);
            if hot_before <= thr + EPS {
                continue;
            }
            let start = model[src].reps.clone();
            let mut moves: Vec<(usize, usize, u32)> = Vec::new();
            let budget: u32 = model[src].reps.iter().map(|r| r.1).sum();
            for _ in 0..budget {
                if model[src].forecast.fill_ratio(&cap) <= thr + EPS {
                    break;
                }
                // Biggest forecast first: fewest moves to cool the node.
                let mut cands: Vec<usize> = model[src]
                    .reps
                    .iter()
                    .filter(|r| r.1 > 0)
                    .map(|r| r.0)
                    .collect();
                cands.sort_by(|&a, &b| {
                    winfo[b]
                        .forecast
                        .fill_ratio(&cap)
                        .total_cmp(&winfo[a].forecast.fill_ratio(&cap))
                        .then(winfo[a].name.cmp(winfo[b].name))
                });
                let found = cands.into_iter().find_map(|w| {
                    best_fit(&model, &winfo[w], pool, model[src].pool, Some(src)).map(|d| (w, d))
                });
                let Some((w, dst)) = found else { break };
                model[src].add(w, &winfo[w], -1);
                model[dst].add(w, &winfo[w], 1);
                match moves.iter_mut().find(|m| m.0 == w && m.1 == dst) {
                    Some(m) => m.2 += 1,
                    None => moves.push((w, dst, 1)),
                }
            }
            let after = model[src].forecast.fill_ratio(&cap);
            if after > thr + EPS {
                still_hot[model[src].pool] += 1;
            }
            let mut on_src = start;
            for (w, dst, n) in moves {
                let Some(slot) = on_src.iter_mut().find(|r| r.0 == w) else {
                    continue;
                };
                let before = slot.1;
                slot.1 = before.saturating_sub(n);
                decisions.push(Decision {
                    at: now,
                    kind: DecisionKind::Move,
                    target: winfo[w].name.to_string(),
                    node: Some(model[src].name.to_string()),
                    to_node: Some(model[dst].name.to_string()),
                    from: before,
                    to: before.saturating_sub(n),
                    raw: before.saturating_sub(n),
                    forecast: None,
                    current: Some(hot_before),
                    guards: Vec::new(),
                    reason: format!(
                        "{} forecast {} > {} threshold; move {n} replica{} of {} to {} ({} forecast {} after)",
                        model[src].name,
                        pct(hot_before),
                        pct(thr),
                        if n == 1 { "" } else { "s" },
                        winfo[w].name,
                        model[dst].name,
                        model[src].name,
                        pct(after),
                    ),
                });
            }
        }

        // 4 and 5. Node counts per pool.
        for (p, pool) in pools.iter().enumerate() {
            let cap = pool.capacity;
            let thr = pool.target_utilization;
            let members: Vec<usize> = (0..model.len()).filter(|&i| model[i].pool == p).collect();
            let actual = members.len() as u32;
            let (n_unplaced, un_req, un_fc) = unplaced[p];
            let mut req = un_req;
            let mut fc = un_fc;
            for &i in &members {
                req.add_scaled(&model[i].request, 1.0);
                fc.add_scaled(&model[i].forecast, 1.0);
            }
            let coming = match self.coming.get(&pool.name) {
                Some(&(n, until)) if now < until && n > actual => n,
                _ => {
                    self.coming.remove(&pool.name);
                    actual
                }
            };
            let nodes_for = |used: f64, per_node: f64| -> u32 {
                if per_node > 0.0 {
                    let n = (used / per_node - EPS).ceil();
                    if n.is_finite() && n > 0.0 {
                        n.min(u32::MAX as f64) as u32
                    } else {
                        0
                    }
                } else {
                    0
                }
            };
            let mut need = nodes_for(fc.cpu, cap.cpu * thr)
                .max(nodes_for(fc.memory, cap.memory * thr))
                .max(nodes_for(req.cpu, cap.cpu))
                .max(nodes_for(req.memory, cap.memory));
            let squeezed = n_unplaced > 0 || still_hot[p] > 0;
            if squeezed {
                // Fragmentation: the totals fit, but some replicas do not.
                need = need.max(actual + 1);
            }
            let pool_fill = fc.fill_ratio(&Resources::new(
                cap.cpu * actual.max(1) as f64,
                cap.memory * actual.max(1) as f64,
            ));
            let basis = format!(
                "forecast cpu {}/{} cores, memory {}/{} GiB at {} threshold{} needs {need} node{}",
                num(fc.cpu),
                num(cap.cpu * actual as f64),
                num(fc.memory / GIB),
                num(cap.memory * actual as f64 / GIB),
                pct(thr),
                match (n_unplaced, still_hot[p]) {
                    (0, 0) => String::new(),
                    (u, 0) => format!(", {u} replica{} unplaced", if u == 1 { "" } else { "s" }),
                    (0, h) => format!(", {h} node{} still hot", if h == 1 { "" } else { "s" }),
                    (u, h) => format!(", {u} replicas unplaced, {h} nodes still hot"),
                },
                if need == 1 { "" } else { "s" },
            );

            let mut target = need;
            let mut guards = Vec::new();
            if target < pool.min_nodes {
                guards.push(Guard {
                    kind: GuardKind::MinNodes,
                    before: target,
                    after: pool.min_nodes,
                });
                target = pool.min_nodes;
            }
            if target > pool.max_nodes {
                guards.push(Guard {
                    kind: GuardKind::MaxNodes,
                    before: target,
                    after: pool.max_nodes,
                });
                target = pool.max_nodes;
            }
            let node_decision = |kind, node: Option<String>, from, to, guards, reason| Decision {
                at: now,
                kind,
                target: pool.name.clone(),
                node,
                to_node: None,
                from,
                to,
                raw: need,
                forecast: None,
                current: Some(pool_fill),
                guards,
                reason,
            };

            if target > coming {
                self.coming.insert(
                    pool.name.clone(),
                    (
                        target,
                        now.saturating_add(pool.boot_time.max(30).saturating_mul(2)),
                    ),
                );
                self.removable_since.remove(&pool.name);
                let mut reason = format!(
                    "{basis}; add {} ahead of {} node boot",
                    target - coming,
                    crate::series::format_duration(pool.boot_time)
                );
                if guards.iter().any(|g: &Guard| g.kind == GuardKind::MaxNodes) {
                    reason.push_str(&format!("; capped at max {}", pool.max_nodes));
                }
                if guards.iter().any(|g: &Guard| g.kind == GuardKind::MinNodes) {
                    reason.push_str(&format!("; raised to min {}", pool.min_nodes));
                }
                decisions.push(node_decision(
                    DecisionKind::AddNode,
                    None,
                    coming,
                    target,
                    guards,
                    reason,
                ));
                continue;
            }
            if need > pool.max_nodes && coming >= pool.max_nodes {
                self.removable_since.remove(&pool.name);
                let reason = format!("{basis}; pool at max {} nodes, cannot add", pool.max_nodes);
                decisions.push(node_decision(
                    DecisionKind::Hold,
                    None,
                    coming,
                    coming,
                    guards,
                    reason,
                ));
                continue;
            }
            if squeezed || coming > actual || need >= actual || actual <= pool.min_nodes {
                self.removable_since.remove(&pool.name);
                continue;
            }

            // Removal: the emptiest node, if the rest can hold its replicas within the threshold.
            let Some(&victim) = members.iter().min_by(|&&a, &&b| {
                model[a]
                    .forecast
                    .fill_ratio(&cap)
                    .total_cmp(&model[b].forecast.fill_ratio(&cap))
                    .then(model[a].name.cmp(model[b].name))
            }) else {
                continue;
            };
            let mut trial = model.clone();
            let mut fits = true;
            let reps = trial[victim].reps.clone();
            'outer: for (w, c) in reps {
                for _ in 0..c {
                    match best_fit(&trial, &winfo[w], pool, p, Some(victim)) {
                        Some(d) => {
                            trial[victim].add(w, &winfo[w], -1);
                            trial[d].add(w, &winfo[w], 1);
                        }
                        None => {
                            fits = false;
                            break 'outer;
                        }
                    }
                }
            }
            if !fits {
                self.removable_since.remove(&pool.name);
                continue;
            }
            let since = *self.removable_since.entry(pool.name.clone()).or_insert(now);
            if now.saturating_sub(since) < pool.scale_down_window {
                continue;
            }
            self.removable_since.remove(&pool.name);
            let n_reps: u32 = model[victim].reps.iter().map(|r| r.1).sum();
            let reason = format!(
                "{basis}; remove emptiest {} (forecast {}), its {n_reps} replica{} fit the rest, removal has fitted for {}",
                model[victim].name,
                pct(model[victim].forecast.fill_ratio(&cap)),
                if n_reps == 1 { "" } else { "s" },
                crate::series::format_duration(now.saturating_sub(since).max(pool.scale_down_window)),
            );
            decisions.push(node_decision(
                DecisionKind::RemoveNode,
                Some(model[victim].name.to_string()),
                actual,
                actual - 1,
                Vec::new(),
                reason,
            ));
        }
        decisions
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GI: f64 = GIB;

    fn pool() -> PoolSpec {
        let mut p = PoolSpec::new("gp", Resources::new(4.0, 16.0 * GI), 10);
        p.boot_time = 180;
        p.min_nodes = 1;
        p
    }

    fn wl(name: &str, cpu: f64, mem_gi: f64) -> WorkloadSpec {
        let mut s = WorkloadSpec::new(name, name, 10.0, 100);
        s.resources = Resources::new(cpu, mem_gi * GI);
        s
    }

    fn node(name: &str, reps: &[(&str, u32)]) -> NodeState {
        NodeState {
            name: name.into(),
            pool: "gp".into(),
            replicas: reps.iter().map(|(w, n)| (w.to_string(), *n)).collect(),
        }
    }

    fn load(spec: &WorkloadSpec, desired: u32, utilization: f64) -> WorkloadLoad<'_> {
        WorkloadLoad {
            spec,
            desired,
            utilization,
        }
    }

    fn kinds(ds: &[Decision]) -> Vec<DecisionKind> {
        ds.iter().map(|d| d.kind).collect()
    }

    #[test]
    fn utilization_from_forecast_peak() {
        let s = wl("api", 1.0, 1.0); // 10 per replica
        assert_eq!(WorkloadLoad::new(&s, 4, Some(30.0)).utilization, 0.75);
        assert_eq!(WorkloadLoad::new(&s, 4, None).utilization, 1.0);
        assert_eq!(WorkloadLoad::new(&s, 4, Some(f64::NAN)).utilization, 1.0);
        assert_eq!(WorkloadLoad::new(&s, 0, Some(30.0)).utilization, 1.0);
    }

    #[test]
    fn places_new_replicas_by_best_fit() {
        let api = wl("api", 1.0, 1.0);
        let filler = wl("filler", 1.0, 1.0);
        let nodes = [
            node("a", &[("filler", 2)]),
            node("b", &[("filler", 1)]),
            node("c", &[]),
        ];
        let ds = NodePlanner::new().plan(
            0,
            &[pool()],
            &nodes,
            &[load(&api, 1, 1.0), load(&filler, 3, 1.0)],
        );
        assert_eq!(kinds(&ds), vec![DecisionKind::Place], "{ds:#?}");
        let d = &ds[0];
        assert_eq!(
            (d.target.as_str(), d.node.as_deref(), d.from, d.to),
            ("api", Some("a"), 0, 1)
        );
        assert!(d.reason.contains("best fit"), "{}", d.reason);
        // A second replica would take a past its threshold (4 of 3.2 allowed cores): b next.
        let ds = NodePlanner::new().plan(
            0,
            &[pool()],
            &nodes,
            &[load(&api, 3, 1.0), load(&filler, 3, 1.0)],
        );
        let placed: Vec<_> = ds
            .iter()
            .map(|d| (d.node.clone().unwrap(), d.to - d.from))
            .collect();
        assert_eq!(
            placed,
            vec![("a".to_string(), 1), ("b".to_string(), 2)],
            "{ds:#?}"
        );
    }

    #[test]
    fn best_fit_weighs_every_resource() {
        // a has CPU room but its memory is nearly full; b fits on both.
        let hog = wl("hog", 0.1, 12.0);
        let cpu = wl("cpu", 2.0, 0.0);
        let api = wl("api", 1.0, 2.0);
        let nodes = [node("a", &[("hog", 1)]), node("b", &[("cpu", 1)])];
        let w = [load(&api, 1, 1.0), load(&cpu, 1, 1.0), load(&hog, 1, 1.0)];
        let ds = NodePlanner::new().plan(0, &[pool()], &nodes, &w);
        assert_eq!(ds.len(), 1, "{ds:#?}");
        assert_eq!(ds[0].node.as_deref(), Some("b"), "{ds:#?}");
    }

    #[test]
    fn moves_replicas_off_a_node_forecast_to_run_hot() {
        let api = wl("api", 1.0, 1.0);
        let nodes = [node("a", &[("api", 3)]), node("b", &[]), node("c", &[])];
        // Forecast utilisation 1.2: a would use 3.6 of 4 cores (90% > 80%).
        let ds = NodePlanner::new().plan(0, &[pool()], &nodes, &[load(&api, 3, 1.2)]);
        assert_eq!(kinds(&ds), vec![DecisionKind::Move], "{ds:#?}");
        let d = &ds[0];
        assert_eq!(
            (d.node.as_deref(), d.to_node.as_deref(), d.from, d.to),
            (Some("a"), Some("b"), 3, 2)
        );
        assert!(
            d.reason.starts_with("a forecast 90% > 80% threshold"),
            "{}",
            d.reason
        );
        // Not hot: nothing to do.
        let ds = NodePlanner::new().plan(0, &[pool()], &nodes, &[load(&api, 3, 1.0)]);
        assert!(ds.iter().all(|d| d.kind != DecisionKind::Move), "{ds:#?}");
    }

    #[test]
    fn scale_down_frees_the_fullest_node_first() {
        let api = wl("api", 1.0, 1.0);
        let nodes = [node("a", &[("api", 3)]), node("b", &[("api", 1)])];
        // At utilisation 1.2 node a would be hot with 3 replicas; with one fewer it is not.
        let ds = NodePlanner::new().plan(0, &[pool()], &nodes, &[load(&api, 3, 1.2)]);
        assert!(ds.iter().all(|d| d.kind != DecisionKind::Move), "{ds:#?}");
    }

    #[test]
    fn adds_nodes_ahead_of_forecast_demand_once() {
        let api = wl("api", 1.0, 1.0);
        let nodes = [node("a", &[("api", 3)]), node("b", &[("api", 3)])];
        let mut p = NodePlanner::new();
        // 9 replicas at 1 core forecast: needs ceil(9 / 3.2) = 3 nodes.
        let w = [load(&api, 9, 1.0)];
        let ds = p.plan(0, &[pool()], &nodes, &w);
        let add: Vec<_> = ds
            .iter()
            .filter(|d| d.kind == DecisionKind::AddNode)
            .collect();
        assert_eq!(add.len(), 1, "{ds:#?}");
        assert_eq!(
            (add[0].target.as_str(), add[0].from, add[0].to),
            ("gp", 2, 3)
        );
        assert!(
            add[0].reason.contains("ahead of 3m node boot"),
            "{}",
            add[0].reason
        );
        // Next cycle, the node is still booting: no second request.
        let ds = p.plan(15, &[pool()], &nodes, &w);
        assert!(
            ds.iter().all(|d| d.kind != DecisionKind::AddNode),
            "{ds:#?}"
        );
        // It never showed up: ask again after twice the boot time.
        let ds = p.plan(361, &[pool()], &nodes, &w);
        assert!(
            ds.iter().any(|d| d.kind == DecisionKind::AddNode),
            "{ds:#?}"
        );
    }

    #[test]
    fn unplaceable_replica_adds_a_node_even_when_totals_fit() {
        let big = wl("big", 2.0, 1.0);
        let small = wl("small", 1.5, 1.0);
        let nodes = [node("a", &[("small", 1)]), node("b", &[("small", 1)])];
        // 5 cores forecast on 6.4 allowed fits the totals, but 2 more cores fit on neither node.
        let ds = NodePlanner::new().plan(
            0,
            &[pool()],
            &nodes,
            &[load(&big, 1, 1.0), load(&small, 2, 1.0)],
        );
        assert_eq!(kinds(&ds), vec![DecisionKind::AddNode], "{ds:#?}");
        assert_eq!((ds[0].from, ds[0].to), (2, 3));
        assert!(
            ds[0].reason.contains("1 replica unplaced"),
            "{}",
            ds[0].reason
        );
    }

    #[test]
    fn guard_max_nodes() {
        let api = wl("api", 1.0, 1.0);
        let mut pl = pool();
        pl.max_nodes = 3;
        let nodes = [node("a", &[("api", 3)]), node("b", &[("api", 3)])];
        let ds = NodePlanner::new().plan(0, &[pl.clone()], &nodes, &[load(&api, 20, 1.0)]);
        let add = ds
            .iter()
            .find(|d| d.kind == DecisionKind::AddNode)
            .expect("add");
        assert_eq!((add.from, add.to, add.raw), (2, 3, 7));
        assert!(add.guarded_by(GuardKind::MaxNodes), "{add:#?}");
        let nodes = [
            node("a", &[("api", 3)]),
            node("b", &[("api", 3)]),
            node("c", &[("api", 3)]),
        ];
        let ds = NodePlanner::new().plan(0, &[pl], &nodes, &[load(&api, 20, 1.0)]);
        let hold = ds.iter().find(|d| d.target == "gp").expect("pool decision");
        assert_eq!((hold.kind, hold.from, hold.to), (DecisionKind::Hold, 3, 3));
        assert!(
            hold.guarded_by(GuardKind::MaxNodes) && hold.reason.contains("pool at max 3"),
            "{hold:#?}"
        );
    }

    #[test]
    fn guard_min_nodes() {
        let mut pl = pool();
        pl.min_nodes = 2;
        let ds = NodePlanner::new().plan(0, &[pl], &[], &[]);
        assert_eq!(kinds(&ds), vec![DecisionKind::AddNode]);
        assert_eq!((ds[0].from, ds[0].to), (0, 2));
        assert!(ds[0].guarded_by(GuardKind::MinNodes));
    }

    #[test]
    fn removes_the_emptiest_node_only_after_the_window() {
        let api = wl("api", 1.0, 1.0);
        let nodes = [
            node("a", &[("api", 2)]),
            node("b", &[("api", 1)]),
            node("c", &[("api", 2)]),
        ];
        let w = [load(&api, 5, 1.0)];
        let mut p = NodePlanner::new();
        for t in [0, 300, 599] {
            assert!(p.plan(t, &[pool()], &nodes, &w).is_empty(), "t={t}");
        }
        let ds = p.plan(600, &[pool()], &nodes, &w);
        assert_eq!(kinds(&ds), vec![DecisionKind::RemoveNode], "{ds:#?}");
        assert_eq!(
            (ds[0].node.as_deref(), ds[0].from, ds[0].to),
            (Some("b"), 3, 2)
        );
        assert!(
            ds[0].reason.contains("remove emptiest b"),
            "{}",
            ds[0].reason
        );
    }

    #[test]
    fn a_busy_moment_restarts_the_removal_window() {
        let api = wl("api", 1.0, 1.0);
        let nodes = [
            node("a", &[("api", 2)]),
            node("b", &[("api", 1)]),
            node("c", &[("api", 2)]),
        ];
        let mut p = NodePlanner::new();
        assert!(p
            .plan(0, &[pool()], &nodes, &[load(&api, 5, 1.0)])
            .is_empty());
        // At t=300 the forecast peaks: 5 × 1.3 = 6.5 cores no longer fit two nodes at 80%.
        let ds = p.plan(300, &[pool()], &nodes, &[load(&api, 5, 1.3)]);
        assert!(ds.iter().all(|d| d.kind != DecisionKind::RemoveNode));
        assert!(p
            .plan(600, &[pool()], &nodes, &[load(&api, 5, 1.0)])
            .is_empty());
        assert_eq!(
            kinds(&p.plan(1200, &[pool()], &nodes, &[load(&api, 5, 1.0)])),
            vec![DecisionKind::RemoveNode]
        );
    }

    #[test]
    fn removal_respects_min_nodes() {
        let mut pl = pool();
        pl.min_nodes = 2;
        pl.scale_down_window = 0;
        let nodes = [node("a", &[]), node("b", &[])];
        assert!(NodePlanner::new().plan(0, &[pl], &nodes, &[]).is_empty());
    }

    #[test]
    fn invalid_pools_and_unknown_names_are_skipped() {
        let mut bad = pool();
        bad.capacity = Resources::new(0.0, 0.0);
        let api = wl("api", 1.0, 1.0);
        let nodes = [
            node("a", &[("ghost", 5), ("api", 1)]),
            NodeState {
                pool: "nowhere".into(),
                ..node("z", &[])
            },
        ];
        assert!(NodePlanner::new()
            .plan(0, &[bad], &nodes, &[load(&api, 3, 1.0)])
            .is_empty());
    }

    /// (pools: min, span, instant removal), (nodes: replicas per workload),
    /// (workloads: cpu, memory GiB, desired, utilisation).
    type Case = (
        Vec<(u32, u32, bool)>,
        Vec<Vec<u32>>,
        Vec<(f64, f64, u32, f64)>,
    );

    fn arb_case() -> impl Strategy<Value = Case> {
        (
            proptest::collection::vec((0u32..3, 0u32..8, any::<bool>()), 1..3),
            proptest::collection::vec(proptest::collection::vec(0u32..4, 4), 0..12),
            proptest::collection::vec(
                (
                    0.0f64..3.0,
                    0.0f64..6.0,
                    0u32..20,
                    prop_oneof![0.0f64..3.0, Just(f64::NAN), Just(f64::INFINITY)],
                ),
                4,
            ),
        )
    }

    proptest! {
        /// No panics on odd inputs; node counts stay in bounds; the same input in another
        /// order gives the same decisions.
        #[test]
        fn node_planner_invariants((pools_in, nodes_in, wls) in arb_case(), now in 0i64..10_000) {
            let pools: Vec<PoolSpec> = pools_in
                .iter()
                .enumerate()
                .map(|(i, &(min, span, instant))| {
                    let mut p = PoolSpec::new(&format!("p{i}"), Resources::new(4.0, 16.0 * GI), min + span);
                    p.min_nodes = min;
                    if instant {
                        p.scale_down_window = 0;
                    }
                    p
                })
                .collect();
            let specs: Vec<WorkloadSpec> = wls
                .iter()
                .enumerate()
                .map(|(i, &(cpu, mem, _, _))| {
                    let mut s = wl(&format!("w{i}"), cpu, mem);
                    s.pool = Some(format!("p{}", i % pools.len()));
                    s
                })
                .collect();
            let loads: Vec<WorkloadLoad> =
                specs.iter().zip(&wls).map(|(s, &(_, _, desired, u))| load(s, desired, u)).collect();
            let nodes: Vec<NodeState> = nodes_in
                .iter()
                .enumerate()
                .map(|(i, reps)| NodeState {
                    name: format!("n{i:02}"),
                    pool: format!("p{}", i % pools.len()),
                    replicas: reps.iter().enumerate().map(|(w, &c)| (format!("w{w}"), c)).collect(),
                })
                .collect();
            let a = NodePlanner::new().plan(now, &pools, &nodes, &loads);
            let mut rev_nodes = nodes.clone();
            rev_nodes.reverse();
            let mut rev_loads = loads.clone();
            rev_loads.reverse();
            let mut rev_pools = pools.clone();
            rev_pools.reverse();
            let b = NodePlanner::new().plan(now, &rev_pools, &rev_nodes, &rev_loads);
            prop_assert_eq!(&a, &b);
            for d in &a {
                if let Some(p) = pools.iter().find(|p| p.name == d.target) {
                    match d.kind {
                        DecisionKind::AddNode => prop_assert!(d.to <= p.max_nodes && d.to > d.from, "{d:?}"),
                        DecisionKind::RemoveNode => prop_assert!(d.to >= p.min_nodes && d.to + 1 == d.from, "{d:?}"),
                        _ => {}
                    }
                }
                prop_assert!(!d.reason.is_empty());
            }
            // Placements never exceed what was asked for.
            for (s, l) in specs.iter().zip(&loads) {
                let on_nodes: u32 = nodes.iter().flat_map(|n| &n.replicas).filter(|r| r.0 == s.name).map(|r| r.1).sum();
                let placed: u32 = a.iter().filter(|d| d.kind == DecisionKind::Place && d.target == s.name).map(|d| d.to - d.from).sum();
                prop_assert!(on_nodes + placed <= l.desired.max(on_nodes), "{}", s.name);
            }
        }
    }
}
