//! Which other shards look dead to the node planner: none of their workloads' plans could be
//! read back fresh ([`readback`](super::readback)), and since when.

use super::readback::ReadBack;
use crate::plan::WorkloadSpec;
use std::collections::BTreeMap;

/// Which other shards are stale: none of their workloads' plans could be read back fresh
/// this cycle (down, stalled, or not scraped), and since when, on the replica that plans the
/// node pools. Exported as `prescale_shard_stale{shard}` and named in the node decisions'
/// reasons, so that an operator sees a dead shard, not only its workloads one by one.
#[derive(Debug, Default)]
pub struct Staleness {
    replicas: u32,
    /// Per other shard with workloads: whether it was stale in the last read-back.
    last: BTreeMap<u32, bool>,
    /// Per stale shard: the cycle it was first seen stale, and its number of workloads.
    since: BTreeMap<u32, (i64, usize)>,
}

impl Staleness {
    /// For workloads split over `replicas` shards.
    pub fn new(replicas: u32) -> Self {
        Staleness {
            replicas,
            ..Staleness::default()
        }
    }

    /// Notes one read-back at `now`: a shard is stale when every one of its workloads among
    /// `others` is unknown. Logs a shard going stale, and coming back, once.
    pub fn observe(&mut self, others: &[WorkloadSpec], remote: &ReadBack, now: i64) {
        // Per shard: workloads, and the first unknown one's reason (to say why once).
        let mut per: BTreeMap<u32, (usize, usize, Option<&str>)> = BTreeMap::new();
        for w in others {
            let o = crate::shard::hash::owner(&w.name, self.replicas);
            let e = per.entry(o).or_insert((0, 0, None));
            e.0 += 1;
            match remote.get(&w.name) {
                Some(Ok(_)) => {}
                Some(Err(why)) => {
                    e.1 += 1;
                    e.2 = e.2.or(Some(why.as_str()));
                }
                None => e.1 += 1,
            }
        }
        self.last.clear();
        for (&o, &(n, unknown, why)) in &per {
            let stale = unknown == n;
            self.last.insert(o, stale);
            match (stale, self.since.get(&o)) {
                (true, None) => {
                    tracing::warn!(
                        "shard {o} is stale: none of its {n} workloads' plans could be read back                          fresh ({}); they are unmanaged until it returns, and hold node scale-in",
                        why.unwrap_or("not read back yet")
                    );
                    self.since.insert(o, (now, n));
                }
                (false, Some(&(since, _))) => {
                    tracing::info!(
                        "shard {o}: plans read back again after {}s stale",
                        now.saturating_sub(since)
                    );
                    self.since.remove(&o);
                }
                _ => {}
            }
        }
        self.since.retain(|o, _| per.contains_key(o));
    }

    /// No read-back this cycle (this replica does not plan the pools now): nothing to say
    /// about the others until it reads them again.
    pub fn forget(&mut self) {
        self.last.clear();
        self.since.clear();
    }

    /// `prescale_shard_stale`'s values: per other shard read back, 1 when stale.
    pub fn gauges(&self) -> Vec<(u32, bool)> {
        self.last.iter().map(|(&o, &s)| (o, s)).collect()
    }

    /// The reason's note for workload `w` if its shard is stale: `shard 2 stale for 40s (none
    /// of its 8 workloads read back)`.
    pub fn group_of(&self, w: &str, now: i64) -> Option<String> {
        if self.since.is_empty() {
            return None;
        }
        let o = crate::shard::hash::owner(w, self.replicas);
        let &(since, n) = self.since.get(&o)?;
        Some(format!(
            "shard {o} stale for {}s (none of its {n} workloads read back)",
            now.saturating_sub(since)
        ))
    }
}
