//! `prescale_shard_stale{shard}`: on the replica that plans the node pools, per other shard
//! ordinal, whether none of that shard's workloads could be read back fresh this cycle (1) or
//! at least one was (0). A stale shard's workloads are unmanaged until it returns (nobody else
//! scales them) and hold node scale-in meanwhile, so `== 1` is the alert for a dead or stalled
//! shard; the node decisions' reasons name it too.
//!
//! Only the replica that reads the others back exports it: the other shards (and the node
//! planner in a cycle it does not hold the Lease) have no view of them, so they export no
//! series rather than a guess.

use super::labels::{Lv, Seen, ShardLabel};
use super::{set_each, sync, Metrics};
use prometheus_client::registry::Registry;

impl Metrics {
    /// Registers the family.
    pub(super) fn register_shard_stale(&self, r: &mut Registry) {
        r.register(
            "shard_stale",
            "On the node planner, per other shard: none of its workloads' plans could be read back fresh (1: down, stalled or not scraped; its workloads are unmanaged and hold node scale-in) or some could (0)",
            self.shard_stale.clone(),
        );
    }

    /// State: a shard gone from the snapshot is gone from `/metrics`.
    pub(super) fn observe_shard_stale(&self, stale: &[(u32, bool)], seen: &mut Seen) {
        let now = set_each(
            &self.shard_stale,
            stale.iter().map(|(o, s)| {
                let l = ShardLabel {
                    shard: Lv::from(o.to_string()),
                };
                (l, i64::from(*s))
            }),
        );
        sync(&self.shard_stale, &mut seen.shard_stale, now);
    }
}

#[cfg(test)]
mod tests {
    use crate::export::{Metrics, Snapshot};

    /// One gauge per other shard as the snapshot says, in both formats; none when the snapshot
    /// has none (a replica that does not plan the node pools this cycle).
    #[test]
    fn shard_stale_follows_the_snapshot() {
        let m = Metrics::new();
        assert!(!m.encode_text().contains("prescale_shard_stale{"));
        m.observe(&Snapshot {
            shard_stale: vec![(1, false), (2, true)],
            ..Snapshot::default()
        });
        for text in [m.encode(), m.encode_text()] {
            for line in [
                r#"prescale_shard_stale{shard="1"} 0"#,
                r#"prescale_shard_stale{shard="2"} 1"#,
            ] {
                assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
            }
        }
        m.observe(&Snapshot::default());
        assert!(!m.encode_text().contains("prescale_shard_stale{"));
    }
}
