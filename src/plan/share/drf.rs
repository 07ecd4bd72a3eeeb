//! `fair`: weighted dominant-resource fairness (DRF, Ghodsi et al., NSDI 2011) between teams,
//! by progressive filling.
//!
//! A team's dominant share is the largest fraction of any one resource of the pool that its
//! workloads hold; the next replica always goes to the team with the lowest dominant share
//! divided by its weight. A team whose next replica fits nowhere is done, and the others go
//! on filling (the paper's algorithm stops at the first replica that does not fit; going on
//! leaves less idle and takes nothing from a team that could still grow). Within a team the
//! replica goes to the workload with the lowest dominant share of its own, so a team's
//! workloads grow evenly too.

use super::policy::{dominant, within, Fill};
use crate::plan::spec::Resources;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};

/// A team as the filler sees it.
pub(super) struct Group {
    /// Indices of its claims, by name.
    pub(super) members: Vec<usize>,
    /// What its workloads hold so far.
    pub(super) usage: Resources,
    /// Served after every group of a lower tier is done (static shares: teams without a share
    /// come last).
    pub(super) tier: u8,
    /// Its dominant share is divided by this (> 0).
    pub(super) weight: f64,
    /// Most it may hold, if less than the pool.
    pub(super) limit: Option<Resources>,
}

/// The claims grouped by team (teams and members by name), usage at what is granted.
pub(super) fn groups(fill: &Fill) -> BTreeMap<String, Group> {
    let mut out: BTreeMap<String, Group> = BTreeMap::new();
    for (i, c) in fill.claims.iter().enumerate() {
        let g = out.entry(c.team.clone()).or_insert_with(|| Group {
            members: Vec::new(),
            usage: Resources::default(),
            tier: 0,
            weight: 0.0,
            limit: None,
        });
        g.members.push(i);
        g.usage.add_scaled(&c.request, fill.granted[i] as f64);
    }
    for g in out.values_mut() {
        g.members
            .sort_by(|&a, &b| fill.claims[a].name.cmp(&fill.claims[b].name));
    }
    out
}

/// Weighted DRF between teams: a team weighs as its heaviest workload.
pub(super) fn allocate(fill: &mut Fill) {
    let mut groups: Vec<Group> = groups(fill).into_values().collect();
    for g in &mut groups {
        g.weight = g
            .members
            .iter()
            .map(|&i| fill.claims[i].weight)
            .fold(0.0, f64::max);
    }
    progressive(fill, &mut groups);
}

/// The heap's entry: lowest tier, then lowest weighted dominant share, then first group.
#[derive(PartialEq)]
struct Next {
    tier: u8,
    share: f64,
    group: usize,
}

impl Eq for Next {}

impl Ord for Next {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` pops the largest, and the smallest share must come first.
        (other.tier, other.share, other.group)
            .partial_cmp(&(self.tier, self.share, self.group))
            .unwrap_or_else(|| other.share.total_cmp(&self.share))
    }
}

impl PartialOrd for Next {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Progressive filling: one replica at a time to the group lowest in (tier, dominant share ÷
/// weight), until no group can take another.
pub(super) fn progressive(fill: &mut Fill, groups: &mut [Group]) {
    let cap = fill.cap;
    let key = |g: &Group, i: usize| Next {
        tier: g.tier,
        share: dominant(&g.usage, &cap) / g.weight.max(f64::MIN_POSITIVE),
        group: i,
    };
    let mut heap: BinaryHeap<Next> = groups.iter().enumerate().map(|(i, g)| key(g, i)).collect();
    while let Some(Next { group, .. }) = heap.pop() {
        let g = &mut groups[group];
        let mut best: Option<(f64, usize)> = None;
        for &i in &g.members {
            let c = &fill.claims[i];
            let fits_limit = g.limit.is_none_or(|l| within(&g.usage, &c.request, &l));
            if !fits_limit || !fill.can_take(i) {
                continue;
            }
            let mut held = Resources::default();
            held.add_scaled(&c.request, fill.granted[i] as f64);
            let own = dominant(&held, &cap) / c.weight.max(f64::MIN_POSITIVE);
            if best.is_none_or(|(s, _)| own < s) {
                best = Some((own, i));
            }
        }
        // A group none of whose workloads can grow is done: it leaves the heap.
        if let Some((_, i)) = best {
            fill.give(i, 1);
            g.usage.add_scaled(&fill.claims[i].request, 1.0);
            heap.push(key(g, group));
        }
    }
}
