//! The cluster as prescale believes it to be after its own decisions.
//!
//! With a replay, or a workload whose current replicas are not read from Prometheus, nothing
//! tells the loop what the cluster runs now. Planning against the configured start every cycle
//! would re-recommend the same change forever, so the loop plans against the running tally of
//! its decisions instead, as if each had been carried out. It lives here, next to the planners
//! whose decisions it follows, because only they know what each kind of decision means for
//! replicas and placement.

use super::decision::{Decision, DecisionKind};
use super::nodes::NodeState;
use super::spec::{CurrentReplicas, WorkloadSpec};
use std::collections::BTreeMap;

/// Replica counts and placement as prescale believes them to be.
#[derive(Debug, Default)]
pub struct BelievedState {
    replicas: BTreeMap<String, u32>,
    nodes: Vec<NodeState>,
    /// Nodes added so far per pool, to name the next one.
    added: BTreeMap<String, u32>,
}

impl BelievedState {
    /// Seeded from the configured nodes (`(name, pool)`, empty) and each workload's starting
    /// replicas: its fixed `current_replicas`, else its minimum.
    pub fn new(nodes: &[(String, String)], workloads: &[WorkloadSpec]) -> Self {
        let mut s = BelievedState {
            nodes: nodes
                .iter()
                .map(|(name, pool)| NodeState {
                    name: name.clone(),
                    pool: pool.clone(),
                    replicas: Vec::new(),
                })
                .collect(),
            ..BelievedState::default()
        };
        for w in workloads {
            let start = match w.current_replicas {
                Some(CurrentReplicas::Fixed(n)) => n,
                _ => w.min_replicas,
            };
            s.replicas.insert(w.name.clone(), start);
        }
        s
    }

    /// The replicas a workload is believed to run, if it is known at all.
    pub fn replicas(&self, workload: &str) -> Option<u32> {
        self.replicas.get(workload).copied()
    }

    /// Overrides a workload's count with one read from the cluster.
    pub fn set_replicas(&mut self, workload: &str, n: u32) {
        self.replicas.insert(workload.to_string(), n);
    }

    /// The nodes believed to exist, with what is placed on them.
    pub fn nodes(&self) -> &[NodeState] {
        &self.nodes
    }

    /// Nodes per pool, for the exporter's recommended-nodes gauge.
    pub fn nodes_per_pool(&self) -> BTreeMap<String, u32> {
        let mut pools: BTreeMap<String, u32> = BTreeMap::new();
        for n in &self.nodes {
            *pools.entry(n.pool.clone()).or_insert(0) += 1;
        }
        pools
    }

    /// Follows one cycle's decisions as if each had been carried out.
    pub fn apply(&mut self, decisions: &[Decision]) {
        for d in decisions {
            match d.kind {
                DecisionKind::ScaleUp | DecisionKind::ScaleDown | DecisionKind::Hold => {
                    self.replicas.insert(d.target.clone(), d.to);
                    if d.to < d.from {
                        self.remove_replicas(&d.target, d.from - d.to);
                    }
                }
                DecisionKind::Place => {
                    if let Some(n) = d.node.as_ref().and_then(|n| self.node_mut(n)) {
                        set_count(&mut n.replicas, &d.target, d.to);
                    }
                }
                DecisionKind::Move => {
                    let moved = d.from.saturating_sub(d.to);
                    if let Some(n) = d.node.as_ref().and_then(|n| self.node_mut(n)) {
                        set_count(&mut n.replicas, &d.target, d.to);
                    }
                    if let Some(n) = d.to_node.as_ref().and_then(|n| self.node_mut(n)) {
                        let have = count(&n.replicas, &d.target);
                        set_count(&mut n.replicas, &d.target, have + moved);
                    }
                }
                DecisionKind::AddNode => {
                    for _ in d.from..d.to {
                        let k = self.added.entry(d.target.clone()).or_insert(0);
                        *k += 1;
                        let name = format!("{}-new-{}", d.target, k);
                        self.nodes.push(NodeState {
                            name,
                            pool: d.target.clone(),
                            replicas: Vec::new(),
                        });
                    }
                }
                DecisionKind::RemoveNode => {
                    if let Some(name) = &d.node {
                        self.nodes.retain(|n| &n.name != name);
                    }
                }
            }
        }
    }

    fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// Takes replicas off the nodes holding the most of them first.
    fn remove_replicas(&mut self, workload: &str, mut n: u32) {
        while n > 0 {
            let Some(node) = self
                .nodes
                .iter_mut()
                .filter(|x| count(&x.replicas, workload) > 0)
                .max_by_key(|x| count(&x.replicas, workload))
            else {
                return;
            };
            let have = count(&node.replicas, workload);
            set_count(&mut node.replicas, workload, have - 1);
            n -= 1;
        }
    }
}

fn count(list: &[(String, u32)], w: &str) -> u32 {
    list.iter().find(|(n, _)| n == w).map_or(0, |x| x.1)
}

fn set_count(list: &mut Vec<(String, u32)>, w: &str, v: u32) {
    list.retain(|(n, _)| n != w);
    if v > 0 {
        list.push((w.to_string(), v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(
        kind: DecisionKind,
        target: &str,
        node: Option<&str>,
        to_node: Option<&str>,
        from: u32,
        to: u32,
    ) -> Decision {
        Decision {
            at: 0,
            kind,
            target: target.into(),
            node: node.map(String::from),
            to_node: to_node.map(String::from),
            from,
            to,
            raw: to,
            forecast: None,
            current: None,
            guards: Vec::new(),
            reason: String::new(),
        }
    }

    #[test]
    fn the_tally_follows_decisions() {
        let mut t = BelievedState::default();
        t.nodes.push(NodeState {
            name: "a".into(),
            pool: "p".into(),
            replicas: Vec::new(),
        });
        t.nodes.push(NodeState {
            name: "b".into(),
            pool: "p".into(),
            replicas: Vec::new(),
        });
        t.apply(&[
            decision(DecisionKind::ScaleUp, "web", None, None, 1, 5),
            decision(DecisionKind::Place, "web", Some("a"), None, 0, 3),
            decision(DecisionKind::Place, "web", Some("b"), None, 0, 2),
            decision(DecisionKind::AddNode, "p", None, None, 2, 3),
        ]);
        assert_eq!(t.replicas["web"], 5);
        assert_eq!(t.nodes.len(), 3);
        assert_eq!(t.nodes[2].name, "p-new-1");
        t.apply(&[decision(
            DecisionKind::Move,
            "web",
            Some("a"),
            Some("p-new-1"),
            3,
            1,
        )]);
        assert_eq!(count(&t.nodes[0].replicas, "web"), 1);
        assert_eq!(count(&t.nodes[2].replicas, "web"), 2);
        // Scaling down takes replicas off the fullest nodes first.
        t.apply(&[decision(DecisionKind::ScaleDown, "web", None, None, 5, 2)]);
        let left: u32 = t.nodes.iter().map(|n| count(&n.replicas, "web")).sum();
        assert_eq!(left, 2);
        t.apply(&[decision(
            DecisionKind::RemoveNode,
            "p",
            Some("b"),
            None,
            3,
            2,
        )]);
        assert!(t.nodes.iter().all(|n| n.name != "b"));
    }
}
