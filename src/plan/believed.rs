//! The cluster as prescale believes it to be after its own decisions.
//!
//! With a replay, or a workload whose current replicas are not read from Prometheus, nothing
//! tells the loop what the cluster runs now. Planning against the configured start every cycle
//! would re-recommend the same change forever, so the loop plans against the running tally of
//! its decisions instead, as if each had been carried out. It lives here, next to the planners
//! whose decisions it follows, because only they know what each kind of decision means for
//! replicas and placement.
//!
//! At start-up the tally is recovered ([`BelievedState::recover`]) rather than reset, so a
//! restart goes on from where the last run stood instead of from `min_replicas`.

use super::decision::{Decision, DecisionKind};
use super::nodes::NodeState;
use super::spec::{CurrentReplicas, PoolSpec, WorkloadSpec};
use std::collections::BTreeMap;

/// Replica counts and placement as prescale believes them to be.
#[derive(Debug, Default)]
pub struct BelievedState {
    replicas: BTreeMap<String, u32>,
    nodes: Vec<NodeState>,
    /// Nodes added so far per pool, to name the next one.
    added: BTreeMap<String, u32>,
    /// What recovery had to change, per workload or pool, for its first decision's reason.
    start_notes: BTreeMap<String, String>,
}

/// The newest counts a previous run recorded (its decision log's tail): plain data, so the
/// planner does no I/O; the act stage reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordedCounts {
    /// Replicas per workload name.
    pub replicas: BTreeMap<String, u32>,
    /// Nodes per pool name.
    pub nodes: BTreeMap<String, u32>,
}

/// Where a recovered count came from, for the start-up log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartSource {
    /// Read from the cluster (`current_replicas` query).
    Cluster,
    /// The decision log's newest record.
    Log,
    /// The configuration: a fixed `current_replicas`, `min_replicas`, or the `[[node]]` list.
    Config,
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
                    ..NodeState::default()
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

    /// Recovers the state a restart starts from, per workload: a count read from the cluster
    /// (`cluster`, this cycle's `current_replicas` reads) wins; otherwise the log's newest
    /// count (`recorded`); otherwise what [`new`](Self::new) seeded. Per pool: the log's newest
    /// node count, the configured `[[node]]`s otherwise (nodes are not read from a cluster
    /// yet). A logged count outside the current configuration's bounds (`min_replicas`..
    /// `max_replicas`, `min_nodes`..`max_nodes`) is clamped, and the clamp is kept as a note
    /// for that target's first decision ([`take_start_note`](Self::take_start_note)).
    ///
    /// The log is preferred to a fixed `current_replicas`: it is what the last run believed
    /// after following its own decisions, which is what the tally would hold had there been
    /// no restart. Returns where each workload's and pool's count came from.
    pub fn recover(
        &mut self,
        workloads: &[WorkloadSpec],
        pools: &[PoolSpec],
        cluster: &BTreeMap<String, u32>,
        recorded: &RecordedCounts,
    ) -> Vec<(String, u32, StartSource)> {
        let mut sources = Vec::with_capacity(workloads.len() + pools.len());
        for w in workloads {
            let (n, source) = if let Some(&n) = cluster.get(&w.name) {
                (n, StartSource::Cluster)
            } else if let Some(&logged) = recorded.replicas.get(&w.name) {
                let n = logged.clamp(w.min_replicas, w.max_replicas);
                if n != logged {
                    let bound = if n < logged { "max" } else { "min" };
                    self.start_notes.insert(
                        w.name.clone(),
                        format!(
                            "started from {n}: the log's {logged} clamped to {bound}_replicas {n}"
                        ),
                    );
                }
                (n, StartSource::Log)
            } else {
                let n = self
                    .replicas
                    .get(&w.name)
                    .copied()
                    .unwrap_or(w.min_replicas);
                (n, StartSource::Config)
            };
            self.replicas.insert(w.name.clone(), n);
            sources.push((w.name.clone(), n, source));
        }
        for p in pools {
            let have = self.nodes.iter().filter(|n| n.pool == p.name).count() as u32;
            let Some(&logged) = recorded.nodes.get(&p.name) else {
                sources.push((p.name.clone(), have, StartSource::Config));
                continue;
            };
            let n = logged.clamp(p.min_nodes, p.max_nodes);
            if n != logged {
                let bound = if n < logged { "max" } else { "min" };
                self.start_notes.insert(
                    p.name.clone(),
                    format!(
                        "started from {n} nodes: the log's {logged} clamped to {bound}_nodes {n}"
                    ),
                );
            }
            self.resize_pool(&p.name, have, n);
            sources.push((p.name.clone(), n, StartSource::Log));
        }
        sources
    }

    /// Adds nodes named as [`apply`](Self::apply) names them, or removes the pool's last
    /// configured ones, until the pool has `want` nodes.
    fn resize_pool(&mut self, pool: &str, have: u32, want: u32) {
        for _ in have..want {
            let k = self.added.entry(pool.to_string()).or_insert(0);
            *k += 1;
            let name = format!("{pool}-new-{k}");
            self.nodes.push(NodeState {
                name,
                pool: pool.to_string(),
                replicas: Vec::new(),
                ..NodeState::default()
            });
        }
        for _ in want..have {
            if let Some(i) = self.nodes.iter().rposition(|n| n.pool == pool) {
                self.nodes.remove(i);
            }
        }
    }

    /// The note recovery left for `target`'s first decision (a clamp), if any, kept.
    pub fn start_note(&self, target: &str) -> Option<&str> {
        self.start_notes.get(target).map(String::as_str)
    }

    /// The note recovery left for `target`'s first decision (a clamp), once.
    pub fn take_start_note(&mut self, target: &str) -> Option<String> {
        self.start_notes.remove(target)
    }

    /// The replicas a workload is believed to run, if it is known at all.
    pub fn replicas(&self, workload: &str) -> Option<u32> {
        self.replicas.get(workload).copied()
    }

    /// Overrides a workload's count with one read from the cluster.
    pub fn set_replicas(&mut self, workload: &str, n: u32) {
        self.replicas.insert(workload.to_string(), n);
    }

    /// Replaces the nodes with those read from the cluster: what is there wins over what the
    /// decisions so far made believe.
    pub fn set_nodes(&mut self, nodes: Vec<NodeState>) {
        self.nodes = nodes;
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
                            ..NodeState::default()
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

    /// Takes `workload`'s replicas off the nodes (those holding most first) until at most
    /// `desired` are placed: for a workload another shard scales, whose scale-downs are no
    /// decision here (the node planner takes the excess off in its own cycle only). Without
    /// this its believed placement would only ever grow, and once its load is unknown it would
    /// be counted at the most it ever ran rather than at what its shard last planned.
    pub fn trim_placed(&mut self, workload: &str, desired: u32) {
        let placed: u32 = self
            .nodes
            .iter()
            .map(|n| count(&n.replicas, workload))
            .sum();
        if placed > desired {
            self.remove_replicas(workload, placed - desired);
        }
    }

    fn node_mut(&mut self, name: &str) -> Option<&mut NodeState> {
        self.nodes.iter_mut().find(|n| n.name == name)
    }

    /// Takes replicas off the nodes holding the most of them first (of equal holders, the
    /// last in node order). The holders are found once, not once per replica: a scale-down
    /// at 2,000 nodes scanned every node's list per replica taken off.
    fn remove_replicas(&mut self, workload: &str, mut n: u32) {
        // Per holder: its index, what it had, what it keeps.
        let mut holders: Vec<(usize, u32, u32)> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, x)| (i, count(&x.replicas, workload)))
            .filter(|&(_, c)| c > 0)
            .map(|(i, c)| (i, c, c))
            .collect();
        while n > 0 {
            let Some(top) = holders.iter_mut().filter(|h| h.2 > 0).max_by_key(|h| h.2) else {
                break;
            };
            top.2 -= 1;
            n -= 1;
        }
        for (i, had, keeps) in holders {
            if keeps != had {
                set_count(&mut self.nodes[i].replicas, workload, keeps);
            }
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

    /// Takes `n` replicas of `w` off one at a time from the node holding the most (the last
    /// of equal ones): the rule `remove_replicas` must keep to, written the slow obvious way.
    fn one_at_a_time(nodes: &mut [NodeState], w: &str, n: u32) {
        for _ in 0..n {
            let Some(node) = nodes
                .iter_mut()
                .filter(|x| count(&x.replicas, w) > 0)
                .max_by_key(|x| count(&x.replicas, w))
            else {
                return;
            };
            let have = count(&node.replicas, w);
            set_count(&mut node.replicas, w, have - 1);
        }
    }

    proptest::proptest! {
        /// Taking replicas off goes as it always went, one at a time from the node holding the
        /// most (the last of equal ones), other workloads' counts and every list's order
        /// included.
        #[test]
        fn replicas_come_off_the_fullest_nodes_first(
            layout in proptest::collection::vec([0u32..4, 0u32..4, 0u32..4], 1..7),
            n in 0u32..12,
        ) {
            let nodes: Vec<NodeState> = layout
                .iter()
                .enumerate()
                .map(|(i, counts)| NodeState {
                    name: format!("n{i}"),
                    replicas: ["w", "v", "u"]
                        .iter()
                        .zip(counts)
                        .filter(|(_, &c)| c > 0)
                        .map(|(w, &c)| (w.to_string(), c))
                        .collect(),
                    ..NodeState::default()
                })
                .collect();
            let mut t = BelievedState {
                nodes: nodes.clone(),
                ..BelievedState::default()
            };
            t.remove_replicas("w", n);
            let mut want = nodes;
            one_at_a_time(&mut want, "w", n);
            proptest::prop_assert_eq!(
                t.nodes.iter().map(|x| &x.replicas).collect::<Vec<_>>(),
                want.iter().map(|x| &x.replicas).collect::<Vec<_>>(),
                "{} off", n
            );
        }
    }

    #[test]
    fn the_tally_follows_decisions() {
        let mut t = BelievedState::default();
        t.nodes.push(NodeState {
            name: "a".into(),
            pool: "p".into(),
            replicas: Vec::new(),
            ..NodeState::default()
        });
        t.nodes.push(NodeState {
            name: "b".into(),
            pool: "p".into(),
            replicas: Vec::new(),
            ..NodeState::default()
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
        // Another shard's workload: trimmed to what its shard planned, never raised.
        t.apply(&[decision(
            DecisionKind::Place,
            "other",
            Some("a"),
            None,
            0,
            4,
        )]);
        t.trim_placed("other", 6);
        assert_eq!(count(&t.nodes[0].replicas, "other"), 4);
        t.trim_placed("other", 1);
        assert_eq!(count(&t.nodes[0].replicas, "other"), 1);
        assert_eq!(t.replicas("other"), None, "its count is its shard's");
    }

    fn counts(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn recovery_prefers_the_cluster_then_the_log_then_the_config() {
        let mut specs = vec![
            WorkloadSpec::new("read", "d", 1.0, 20),
            WorkloadSpec::new("logged", "d", 1.0, 20),
            WorkloadSpec::new("fixed", "d", 1.0, 20),
            WorkloadSpec::new("new", "d", 1.0, 20),
        ];
        specs[2].current_replicas = Some(CurrentReplicas::Fixed(4));
        specs[3].min_replicas = 2;
        let mut s = BelievedState::new(&[], &specs);
        let recorded = RecordedCounts {
            replicas: counts(&[("read", 9), ("logged", 6)]),
            nodes: BTreeMap::new(),
        };
        let sources = s.recover(&specs, &[], &counts(&[("read", 3)]), &recorded);
        assert_eq!(
            sources,
            vec![
                ("read".to_string(), 3, StartSource::Cluster),
                ("logged".to_string(), 6, StartSource::Log),
                ("fixed".to_string(), 4, StartSource::Config),
                ("new".to_string(), 2, StartSource::Config),
            ]
        );
        assert_eq!(s.replicas("logged"), Some(6));
        assert_eq!(s.take_start_note("logged"), None);
    }

    #[test]
    fn logged_counts_outside_the_bounds_are_clamped_and_said() {
        let mut spec = WorkloadSpec::new("web", "d", 1.0, 10);
        spec.min_replicas = 3;
        let low = WorkloadSpec {
            name: "low".into(),
            ..spec.clone()
        };
        let mut pool = PoolSpec::new("p", crate::plan::Resources::new(4.0, 0.0), 4);
        pool.min_nodes = 1;
        let nodes = vec![("a".to_string(), "p".to_string())];
        let specs = [spec, low];
        let mut s = BelievedState::new(&nodes, &specs);
        let recorded = RecordedCounts {
            replicas: counts(&[("web", 25), ("low", 1)]),
            nodes: counts(&[("p", 7)]),
        };
        s.recover(&specs, &[pool], &BTreeMap::new(), &recorded);
        assert_eq!(s.replicas("web"), Some(10));
        assert_eq!(s.replicas("low"), Some(3));
        let note = s.take_start_note("web").unwrap();
        assert!(
            note.contains("25") && note.contains("max_replicas 10"),
            "{note}"
        );
        assert!(s.take_start_note("web").is_none(), "said once");
        assert!(s.take_start_note("low").unwrap().contains("min_replicas 3"));
        // The pool: 7 logged, 4 at most, one configured node plus three recovered.
        assert_eq!(s.nodes_per_pool()["p"], 4);
        assert_eq!(s.nodes()[3].name, "p-new-3");
        assert!(s.take_start_note("p").unwrap().contains("max_nodes 4"));
    }

    #[test]
    fn a_pool_the_log_says_is_smaller_loses_its_last_configured_nodes() {
        let pool = PoolSpec::new("p", crate::plan::Resources::new(4.0, 0.0), 9);
        let nodes: Vec<(String, String)> = ["a", "b", "c"]
            .iter()
            .map(|n| (n.to_string(), "p".to_string()))
            .collect();
        let mut s = BelievedState::new(&nodes, &[]);
        let recorded = RecordedCounts {
            replicas: BTreeMap::new(),
            nodes: counts(&[("p", 1)]),
        };
        s.recover(&[], &[pool], &BTreeMap::new(), &recorded);
        let names: Vec<&str> = s.nodes().iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, vec!["a"]);
    }
}
