//! One cycle's working model of the cluster, and steps 1 to 3 of the module doc (removals,
//! placements, moves), which change that model replica by replica.

use super::fit::{best_fit, fits_empty, headroom_after};
use super::model::{NodeModel, WorkloadInfo};
use super::{pct, NodeState, WorkloadLoad, EPS};
use crate::plan::decision::{Decision, DecisionKind};
use crate::plan::spec::{PoolSpec, Resources};
use std::collections::{BTreeMap, HashMap};

/// The cycle's state: valid pools, known workloads and the nodes of known pools, each sorted by
/// name (so the outcome does not depend on input order), and what the steps so far decided.
pub(super) struct Cycle<'a> {
    pub(super) now: i64,
    pub(super) pools: Vec<&'a PoolSpec>,
    pub(super) winfo: Vec<WorkloadInfo<'a>>,
    pub(super) model: Vec<NodeModel<'a>>,
    /// Nodes of each pool, in name order: membership does not change within a cycle.
    pub(super) members: Vec<Vec<usize>>,
    /// Each node's replicas before this cycle changed anything.
    original: Vec<Vec<(usize, u32)>>,
    /// Replicas of each workload on nodes before this cycle.
    placed: Vec<u32>,
    /// Per pool: unplaced replicas, their requests and forecast.
    pub(super) unplaced: Vec<(u32, Resources, Resources)>,
    /// Per pool: nodes still forecast hot after the moves, by replicas a new node could take.
    pub(super) still_hot: Vec<u32>,
    /// Per pool: replicas, per workload, that fit no node of the pool even empty (left
    /// unplaced, or keeping a node hot alone): no node added would help, so they are named in
    /// the pool's reason and make it grow by nothing.
    pub(super) unfit: Vec<BTreeMap<&'a str, u32>>,
    /// Per pool: the forecast of those of them on nodes, left out of the pool's totals (no
    /// number of nodes would make room for them).
    pub(super) unfit_load: Vec<Resources>,
    pub(super) decisions: Vec<Decision>,
    /// Take the shortcuts of steps 1 and 2 and the best-fit scans' floor (`fit::Floor`): on,
    /// except in the tests that check they change nothing against the plain scans.
    pub(super) shortcuts: bool,
}

impl<'a> Cycle<'a> {
    /// The model of the cluster as it is: invalid pools, unknown workloads and nodes of unknown
    /// pools are left out, duplicates by name dropped.
    pub(super) fn new(
        now: i64,
        pools: &'a [PoolSpec],
        nodes: &'a [NodeState],
        workloads: &[WorkloadLoad<'a>],
    ) -> Self {
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
        winfo.sort_unstable_by(|a, b| a.name.cmp(b.name));
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
                request: n.reserved,
                forecast: n.reserved,
                unschedulable: n.unschedulable,
                reps: Vec::new(),
                movable: &n.movable,
            };
            for (w, count) in &n.replicas {
                if let Some(&wi) = widx.get(w.as_str()) {
                    m.add(wi, &winfo[wi], *count as i64);
                }
            }
            model.push(m);
        }
        model.sort_unstable_by(|a, b| a.name.cmp(b.name));
        model.dedup_by(|a, b| a.name == b.name);
        let mut members: Vec<Vec<usize>> = vec![Vec::new(); pools.len()];
        for (i, m) in model.iter().enumerate() {
            members[m.pool].push(i);
        }
        let original: Vec<Vec<(usize, u32)>> = model.iter().map(|m| m.reps.clone()).collect();

        let mut placed = vec![0u32; winfo.len()];
        for m in &model {
            for &(w, c) in &m.reps {
                placed[w] = placed[w].saturating_add(c);
            }
        }
        let n_pools = pools.len();
        Cycle {
            now,
            pools,
            winfo,
            model,
            members,
            original,
            placed,
            unplaced: vec![(0u32, Resources::default(), Resources::default()); n_pools],
            still_hot: vec![0u32; n_pools],
            unfit: vec![BTreeMap::new(); n_pools],
            unfit_load: vec![Resources::default(); n_pools],
            decisions: Vec::new(),
            shortcuts: true,
        }
    }

    /// Step 1: replicas to be removed come off the fullest nodes. No decision: the scale-down
    /// decision already says it.
    pub(super) fn remove_excess(&mut self) {
        let Cycle {
            pools,
            winfo,
            model,
            placed,
            shortcuts,
            ..
        } = self;
        // The nodes holding each workload, in index order: only replicas of `w` itself come
        // off while `w` is handled, so no other node can start holding it, and scanning these
        // instead of every node finds the same fullest one (names are unique, so the order
        // below has one maximum).
        let mut holders: Vec<Vec<usize>> = vec![Vec::new(); winfo.len()];
        for (i, m) in model.iter().enumerate() {
            for &(w, c) in &m.reps {
                if c > 0 && placed[w] > winfo[w].desired {
                    holders[w].push(i);
                }
            }
        }
        if !*shortcuts {
            holders
                .iter_mut()
                .for_each(|h| *h = (0..model.len()).collect());
        }
        for (w, info) in winfo.iter().enumerate() {
            let mut excess = placed[w].saturating_sub(info.desired);
            while excess > 0 {
                let Some(i) = holders[w]
                    .iter()
                    .copied()
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
    }

    /// Step 2: new replicas go where they fit best on forecast headroom; what fits nowhere is
    /// counted per pool for step 4.
    pub(super) fn place_new(&mut self) {
        let mut place_counts: Vec<(usize, usize, u32)> = Vec::new(); // (workload, node, n)
        {
            let Cycle {
                pools,
                winfo,
                model,
                members,
                placed,
                unplaced,
                unfit,
                shortcuts,
                ..
            } = self;
            for (w, info) in winfo.iter().enumerate() {
                let Some(p) = info.pool else { continue };
                // This workload's entries are the tail of `place_counts` from here.
                let first = place_counts.len();
                // The node the previous replica went to, and whether none fitted.
                let mut last: Option<usize> = None;
                let mut none_fits = false;
                for _ in placed[w]..info.desired {
                    // Only `last` changed since the previous search, and it only filled up:
                    // its headroom shrank, so while the next replica still fits there the
                    // scan would pick it again (nodes before it are as they were, nodes after
                    // it lost to its larger headroom already); when nothing fitted, nothing
                    // fits now. Both skip a scan of the pool without changing the answer.
                    let pick = if none_fits && *shortcuts {
                        None
                    } else {
                        match last {
                            Some(i)
                                if *shortcuts
                                    && headroom_after(&model[i], info, pools[p]).is_some() =>
                            {
                                Some(i)
                            }
                            _ => best_fit(model, &members[p], info, pools[p], None, *shortcuts),
                        }
                    };
                    none_fits = pick.is_none();
                    last = pick;
                    match pick {
                        Some(i) => {
                            model[i].add(w, info, 1);
                            match place_counts[first..]
                                .iter_mut()
                                .find(|c| c.0 == w && c.1 == i)
                            {
                                Some(c) => c.2 += 1,
                                None => place_counts.push((w, i, 1)),
                            }
                        }
                        None if !fits_empty(info, pools[p]) => {
                            *unfit[p].entry(info.name).or_insert(0) += 1;
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
        }
        for (w, i, n) in place_counts {
            let before = self.original[i]
                .iter()
                .find(|r| r.0 == w)
                .map_or(0, |r| r.1);
            let node = &self.model[i];
            let pool = self.pools[node.pool];
            let name = self.winfo[w].name;
            self.decisions.push(Decision {
                at: self.now,
                kind: DecisionKind::Place,
                target: name.to_string(),
                node: Some(node.name.to_string()),
                to_node: None,
                from: before,
                to: before + n,
                raw: before + n,
                forecast: None,
                current: Some(node.forecast.fill_ratio(&pool.capacity)),
                guards: Vec::new(),
                reason: format!(
                    "{n} new replica{} of {}: best fit on forecast headroom, {} forecast {} of {} after",
                    if n == 1 { "" } else { "s" },
                    name,
                    node.name,
                    pct(node.forecast.fill_ratio(&pool.capacity)),
                    pct(pool.target_utilization),
                ),
            });
        }
    }

    /// Step 3: replicas move off nodes whose forecast crosses the threshold, before they do;
    /// nodes that stay hot are counted per pool for step 4.
    pub(super) fn move_off_hot(&mut self) {
        for src in 0..self.model.len() {
            let pool = self.pools[self.model[src].pool];
            let cap = pool.capacity;
            let thr = pool.target_utilization;
            let hot_before = self.model[src].forecast.fill_ratio(&cap);
            if hot_before <= thr + EPS {
                continue;
            }
            let start = self.model[src].reps.clone();
            let moves = self.cool(src, pool);
            let after = self.model[src].forecast.fill_ratio(&cap);
            if after > thr + EPS {
                // Hot only through replicas that fit no empty node: a new node cannot cool it.
                let mut rest = self.model[src].forecast;
                let p = self.model[src].pool;
                for &(w, c) in &self.model[src].reps {
                    let info = &self.winfo[w];
                    if !fits_empty(info, pool) {
                        rest.add_scaled(&info.forecast, -f64::from(c));
                        self.unfit_load[p].add_scaled(&info.forecast, f64::from(c));
                        *self.unfit[p].entry(info.name).or_insert(0) += c;
                    }
                }
                if rest.fill_ratio(&cap) > thr + EPS {
                    self.still_hot[p] += 1;
                }
            }
            let mut on_src = start;
            for (w, dst, n) in moves {
                let Some(slot) = on_src.iter_mut().find(|r| r.0 == w) else {
                    continue;
                };
                let before = slot.1;
                slot.1 = before.saturating_sub(n);
                let (src_name, dst_name) = (self.model[src].name, self.model[dst].name);
                self.decisions.push(Decision {
                    at: self.now,
                    kind: DecisionKind::Move,
                    target: self.winfo[w].name.to_string(),
                    node: Some(src_name.to_string()),
                    to_node: Some(dst_name.to_string()),
                    from: before,
                    to: before.saturating_sub(n),
                    raw: before.saturating_sub(n),
                    forecast: None,
                    current: Some(hot_before),
                    guards: Vec::new(),
                    reason: format!(
                        "{} forecast {} > {} threshold; move {n} replica{} of {} to {} ({} forecast {} after)",
                        src_name,
                        pct(hot_before),
                        pct(thr),
                        if n == 1 { "" } else { "s" },
                        self.winfo[w].name,
                        dst_name,
                        src_name,
                        pct(after),
                    ),
                });
            }
        }
    }

    /// Moves replicas off the hot node `src` until it is within the threshold or nothing else
    /// fits; returns `(workload, destination, replicas)` in the order first moved.
    fn cool(&mut self, src: usize, pool: &PoolSpec) -> Vec<(usize, usize, u32)> {
        let cap = pool.capacity;
        let thr = pool.target_utilization;
        let Cycle {
            winfo,
            model,
            members,
            shortcuts,
            ..
        } = self;
        let mut moves: Vec<(usize, usize, u32)> = Vec::new();
        // Biggest forecast first: fewest moves to cool the node. Workload indices follow
        // name order, so ties go by name. A workload that found no destination once will
        // not find one later in this cycle (other nodes only fill up), so each is tried
        // until it fails, then the next.
        let mut cands: Vec<usize> = model[src].reps.iter().map(|r| r.0).collect();
        cands.sort_unstable_by(|&a, &b| {
            winfo[b]
                .forecast
                .fill_ratio(&cap)
                .total_cmp(&winfo[a].forecast.fill_ratio(&cap))
                .then(a.cmp(&b))
        });
        'cands: for w in cands {
            while model[src].count(w) > 0 {
                if model[src].forecast.fill_ratio(&cap) <= thr + EPS {
                    break 'cands;
                }
                let Some(dst) = best_fit(
                    model,
                    &members[model[src].pool],
                    &winfo[w],
                    pool,
                    Some(src),
                    *shortcuts,
                ) else {
                    continue 'cands;
                };
                model[src].add(w, &winfo[w], -1);
                model[dst].add(w, &winfo[w], 1);
                match moves.iter_mut().find(|m| m.0 == w && m.1 == dst) {
                    Some(m) => m.2 += 1,
                    None => moves.push((w, dst, 1)),
                }
            }
        }
        moves
    }
}
