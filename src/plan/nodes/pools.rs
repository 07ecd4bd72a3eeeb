//! Steps 4 and 5 of the module doc: how many nodes each pool needs, adding them a boot time
//! ahead and removing the emptiest once the forecast has allowed it for the pool's window.

use super::cycle::Cycle;
use super::fit::best_fit;
use super::model::WorkloadInfo;
use super::{pct, NodePlanner, EPS, GIB};
use crate::plan::decision::{num, Decision, DecisionKind, Guard, GuardKind};
use crate::plan::spec::{PoolSpec, Resources};

/// What one pool needs this cycle, and the words every decision about it starts with.
struct PoolNeed<'a> {
    now: i64,
    pool: &'a PoolSpec,
    /// Nodes the pool has now.
    actual: u32,
    /// Nodes the forecast needs, before min/max.
    need: u32,
    /// Replicas left unplaced or nodes still hot: the totals fit, some replicas do not.
    squeezed: bool,
    /// Forecast fill of the pool's current nodes.
    pool_fill: f64,
    basis: String,
}

impl PoolNeed<'_> {
    fn decision(
        &self,
        kind: DecisionKind,
        node: Option<String>,
        from: u32,
        to: u32,
        guards: Vec<Guard>,
        reason: String,
    ) -> Decision {
        Decision {
            at: self.now,
            kind,
            target: self.pool.name.clone(),
            node,
            to_node: None,
            from,
            to,
            raw: self.need,
            forecast: None,
            current: Some(self.pool_fill),
            guards,
            reason,
        }
    }

    /// `need` within the pool's min and max, with the guards that moved it.
    fn bounded(&self) -> (u32, Vec<Guard>) {
        let pool = self.pool;
        let mut target = self.need;
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
        (target, guards)
    }
}

/// Nodes of `per_node` each needed to hold `used`; 0 when there is no capacity to count in.
fn nodes_for(used: f64, per_node: f64) -> u32 {
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
}

impl<'a> Cycle<'a> {
    /// Step 4's arithmetic for pool `p`: the pool's forecast plus anything left unplaced or
    /// hot, against what its nodes hold at the threshold.
    fn pool_need(&self, p: usize) -> PoolNeed<'a> {
        let pool = self.pools[p];
        let cap = pool.capacity;
        let thr = pool.target_utilization;
        let members = &self.members[p];
        let actual = members.len() as u32;
        let (n_unplaced, un_req, un_fc) = self.unplaced[p];
        let still_hot = self.still_hot[p];
        let mut req = un_req;
        let mut fc = un_fc;
        for &i in members {
            req.add_scaled(&self.model[i].request, 1.0);
            fc.add_scaled(&self.model[i].forecast, 1.0);
        }
        fc.add_scaled(&self.unfit_load[p], -1.0);
        let mut need = nodes_for(fc.cpu, cap.cpu * thr)
            .max(nodes_for(fc.memory, cap.memory * thr))
            .max(nodes_for(req.cpu, cap.cpu))
            .max(nodes_for(req.memory, cap.memory));
        let squeezed = n_unplaced > 0 || still_hot > 0;
        if squeezed {
            // Fragmentation: the totals fit, but some replicas do not.
            need = need.max(actual + 1);
        }
        let pool_fill = fc.fill_ratio(&Resources::new(
            cap.cpu * actual.max(1) as f64,
            cap.memory * actual.max(1) as f64,
        ));
        let unfit = if self.unfit[p].is_empty() {
            String::new()
        } else {
            let each: Vec<String> = self.unfit[p]
                .iter()
                .map(|(w, n)| format!("{n} of {w}"))
                .collect();
            format!(
                " ({} replicas fit no node even empty at the threshold, so no node added \
                 would hold them: {}; see their requests and max_replicas)",
                self.unfit[p].values().sum::<u32>(),
                each.join(", ")
            )
        };
        let basis = format!(
            "forecast cpu {}/{} cores, memory {}/{} GiB at {} threshold{} needs {need} node{}{unfit}",
            num(fc.cpu),
            num(cap.cpu * actual as f64),
            num(fc.memory / GIB),
            num(cap.memory * actual as f64 / GIB),
            pct(thr),
            match (n_unplaced, still_hot) {
                (0, 0) => String::new(),
                (u, 0) => format!(", {u} replica{} unplaced", if u == 1 { "" } else { "s" }),
                (0, h) => format!(", {h} node{} still hot", if h == 1 { "" } else { "s" }),
                (u, h) => format!(", {u} replicas unplaced, {h} nodes still hot"),
            },
            if need == 1 { "" } else { "s" },
        );
        PoolNeed {
            now: self.now,
            pool,
            actual,
            need,
            squeezed,
            pool_fill,
            basis,
        }
    }

    /// The node of pool `p` with the least forecast fill; ties by name.
    fn emptiest(&self, p: usize) -> Option<usize> {
        let cap = self.pools[p].capacity;
        let model = &self.model;
        self.members[p].iter().copied().min_by(|&a, &b| {
            model[a]
                .forecast
                .fill_ratio(&cap)
                .total_cmp(&model[b].forecast.fill_ratio(&cap))
                .then(model[a].name.cmp(model[b].name))
        })
    }

    /// Whether the other nodes of pool `p` could take every pod of `victim` that would need
    /// a place, each by best fit within the threshold (tried on a copy: nothing moves): first
    /// the pods prescale does not manage, largest first (they cannot be asked to shrink), then
    /// its replicas.
    fn rest_can_hold(&self, p: usize, victim: usize) -> bool {
        let mut trial = self.model.clone();
        let pool = self.pools[p];
        let mut pods = trial[victim].movable.to_vec();
        pods.sort_by(|a, b| {
            b.fill_ratio(&pool.capacity)
                .total_cmp(&a.fill_ratio(&pool.capacity))
        });
        for r in &pods {
            let info = WorkloadInfo {
                name: "",
                request: *r,
                forecast: *r,
                pool: Some(p),
                desired: 0,
            };
            match best_fit(
                &trial,
                &self.members[p],
                &info,
                pool,
                Some(victim),
                self.shortcuts,
            ) {
                Some(d) => trial[d].add_pod(r),
                None => return false,
            }
        }
        let reps = trial[victim].reps.clone();
        for (w, c) in reps {
            for _ in 0..c {
                let info = &self.winfo[w];
                match best_fit(
                    &trial,
                    &self.members[p],
                    info,
                    pool,
                    Some(victim),
                    self.shortcuts,
                ) {
                    Some(d) => {
                        trial[victim].add(w, info, -1);
                        trial[d].add(w, info, 1);
                    }
                    None => return false,
                }
            }
        }
        true
    }
}

impl NodePlanner {
    /// Steps 4 and 5 for pool `p`: add nodes a boot time ahead of need, hold at max, or remove
    /// the emptiest once removal has fitted for the pool's `scale_down_window`.
    /// With `unknown` (why some demand is unknown), no node is removed: where one could be,
    /// the pool holds, saying why; added nodes' reasons say they come from known demand.
    pub(super) fn size_pool(&mut self, c: &mut Cycle, p: usize, unknown: Option<&str>) {
        let before = c.decisions.len();
        let need = c.pool_need(p);
        self.size_pool_for(c, p, &need, unknown);
        // Replicas no node could hold leave nothing for the table to show unless said here:
        // the pool holds, its reason naming them.
        let decided = c.decisions[before..]
            .iter()
            .any(|d| d.target == need.pool.name);
        if !c.unfit[p].is_empty() && !decided {
            let reason = format!("{}; no node added", need.basis);
            let d = need.decision(
                DecisionKind::Hold,
                None,
                need.actual,
                need.actual,
                Vec::new(),
                reason,
            );
            c.decisions.push(d);
        }
    }

    fn size_pool_for(&mut self, c: &mut Cycle, p: usize, need: &PoolNeed, unknown: Option<&str>) {
        let now = c.now;
        let pool = need.pool;
        let actual = need.actual;
        let coming = match self.coming.get(&pool.name) {
            Some(&(n, until)) if now < until && n > actual => n,
            _ => {
                self.coming.remove(&pool.name);
                actual
            }
        };
        let (target, guards) = need.bounded();

        if target > coming {
            // Counted as coming for twice the boot time, so one need does not add a node every
            // cycle.
            self.coming.insert(
                pool.name.clone(),
                (
                    target,
                    now.saturating_add(pool.boot_time.max(30).saturating_mul(2)),
                ),
            );
            self.removable_since.remove(&pool.name);
            let mut reason = format!(
                "{}; add {} ahead of {} node boot",
                need.basis,
                target - coming,
                crate::series::format_duration(pool.boot_time)
            );
            if guards.iter().any(|g: &Guard| g.kind == GuardKind::MaxNodes) {
                reason.push_str(&format!("; capped at max {}", pool.max_nodes));
            }
            if guards.iter().any(|g: &Guard| g.kind == GuardKind::MinNodes) {
                reason.push_str(&format!("; raised to min {}", pool.min_nodes));
            }
            if let Some(why) = unknown {
                reason.push_str(&format!("; from known demand only: {why}"));
            }
            let d = need.decision(DecisionKind::AddNode, None, coming, target, guards, reason);
            c.decisions.push(d);
            return;
        }
        if need.need > pool.max_nodes && coming >= pool.max_nodes {
            self.removable_since.remove(&pool.name);
            let reason = if coming > pool.max_nodes {
                format!(
                    "{}; pool over its max {} nodes, none added (nodes above max_nodes are \
                     not removed for it: raise max_nodes or drain them)",
                    need.basis, pool.max_nodes
                )
            } else {
                format!(
                    "{}; pool at max {} nodes, cannot add",
                    need.basis, pool.max_nodes
                )
            };
            let d = need.decision(DecisionKind::Hold, None, coming, coming, guards, reason);
            c.decisions.push(d);
            return;
        }
        if need.squeezed || coming > actual || need.need >= actual || actual <= pool.min_nodes {
            self.removable_since.remove(&pool.name);
            return;
        }
        if let Some(why) = unknown {
            // What the unknown workloads will need is not known: removing a node for want of
            // load that cannot be seen is not advice.
            self.removable_since.remove(&pool.name);
            let reason = format!("{}; scale-in held: {why}", need.basis);
            let d = need.decision(DecisionKind::Hold, None, actual, actual, guards, reason);
            c.decisions.push(d);
            return;
        }
        if let Some(d) = self.remove_emptiest(c, p, need) {
            c.decisions.push(d);
        }
    }

    /// Step 5: the emptiest node, if the rest can hold its replicas within the threshold and
    /// that has been so for the pool's `scale_down_window`.
    fn remove_emptiest(&mut self, c: &Cycle, p: usize, need: &PoolNeed) -> Option<Decision> {
        let (now, pool) = (c.now, need.pool);
        let victim = c.emptiest(p)?;
        if !c.rest_can_hold(p, victim) {
            self.removable_since.remove(&pool.name);
            return None;
        }
        let since = *self.removable_since.entry(pool.name.clone()).or_insert(now);
        if now.saturating_sub(since) < pool.scale_down_window {
            return None;
        }
        self.removable_since.remove(&pool.name);
        let node = &c.model[victim];
        let n_reps: u32 = node.reps.iter().map(|r| r.1).sum();
        let others = match node.movable.len() {
            0 => String::new(),
            1 => " and 1 other pod".to_string(),
            n => format!(" and {n} other pods"),
        };
        let reason = format!(
            "{}; remove emptiest {} (forecast {}), its {n_reps} replica{}{others} fit the rest, removal has fitted for {}",
            need.basis,
            node.name,
            pct(node.forecast.fill_ratio(&pool.capacity)),
            if n_reps == 1 { "" } else { "s" },
            crate::series::format_duration(now.saturating_sub(since).max(pool.scale_down_window)),
        );
        Some(need.decision(
            DecisionKind::RemoveNode,
            Some(node.name.to_string()),
            need.actual,
            need.actual - 1,
            Vec::new(),
            reason,
        ))
    }
}
