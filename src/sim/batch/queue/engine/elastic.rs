//! The elastic cluster's side of the event loop: what a [`Scaler`](super::super::Scaler) sees
//! at each planning event, the nodes it adds (booting, then ready) and drains (removed when
//! their last task ends), and the node-hours and counts those changes add up to. A fixed
//! cluster never gets here: no planning event is ever queued for it.

use super::{Kind, Ord64, Sim};
use crate::sim::batch::queue::{
    ClusterLog, ClusterView, NodeChange, NodeLife, NodePhase, NodeView,
};
use crate::sim::batch::tasks::{Node, Res};
use std::cmp::Reverse;

impl Sim<'_> {
    pub(super) fn view(&self) -> ClusterView<'_> {
        ClusterView {
            now: self.now,
            nodes: (0..self.nodes.len())
                .map(|n| NodeView {
                    node: &self.nodes[n],
                    phase: self.phase[n],
                    used: self.cap[n].minus(&self.free[n]),
                    tasks: self.on_count[n],
                })
                .collect(),
            outstanding: self.outstanding,
            queued: self.waiting.len(),
            running: self.running,
        }
    }

    pub(super) fn plan(&mut self) {
        let Some(scaler) = self.scaler.take() else {
            return;
        };
        let changes = scaler.plan(&self.view());
        let interval = scaler.interval();
        self.scaler = Some(scaler);
        for c in changes {
            match c {
                NodeChange::Add { node, boot } => self.add_node(node, boot),
                NodeChange::Drain(n) => self.drain(n),
            }
        }
        if self.unfinished > 0 && self.now < self.give_up_at {
            self.events
                .push(Reverse((Ord64(self.now + interval), Kind::Plan, 0, 0, 0)));
        }
    }

    pub(super) fn add_node(&mut self, node: Node, boot: f64) {
        let n = self.nodes.len();
        let boot = if boot.is_finite() { boot.max(0.0) } else { 0.0 };
        self.cap.push(node.capacity());
        self.free.push(node.capacity());
        self.busy.push(Res::default());
        self.up.push(false);
        self.phase.push(NodePhase::Booting);
        self.life.push(NodeLife {
            name: node.name.clone(),
            added: self.now,
            ready: None,
            drained: None,
            removed: None,
        });
        self.on_count.push(0);
        self.wrr_current.push(0.0);
        self.nodes.push(node);
        self.build_ring();
        self.events.push(Reverse((
            Ord64(self.now + boot),
            Kind::NodeUp,
            n as u64,
            n,
            0,
        )));
    }

    pub(super) fn node_up(&mut self, n: usize) {
        if self.phase.get(n) == Some(&NodePhase::Booting) {
            self.phase[n] = NodePhase::Ready;
            self.up[n] = true;
            self.life[n].ready = Some(self.now);
        }
    }

    pub(super) fn drain(&mut self, n: usize) {
        if self.phase.get(n) != Some(&NodePhase::Ready) {
            return;
        }
        self.phase[n] = NodePhase::Draining;
        self.up[n] = false;
        self.life[n].drained = Some(self.now);
        if self.on_count[n] == 0 {
            self.remove_node(n);
        }
    }

    pub(super) fn remove_node(&mut self, n: usize) {
        self.phase[n] = NodePhase::Removed;
        self.up[n] = false;
        self.life[n].removed = Some(self.now);
    }

    /// Node-hours and counts over `[from, to]`.
    pub(in crate::sim::batch::queue) fn cluster_log(&self, from: f64, to: f64) -> ClusterLog {
        let mut edges: Vec<(f64, i64)> = Vec::new();
        let mut hours = 0.0;
        for l in &self.life {
            let end = l.removed.unwrap_or(f64::INFINITY);
            hours += (end.min(to) - l.added.max(from)).max(0.0) / 3600.0;
            edges.push((l.added, 1));
            if let Some(r) = l.removed {
                edges.push((r, -1));
            }
        }
        // Removals before additions at the same instant: a swap is not a peak.
        edges.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (mut count, mut peak, mut low) = (0i64, 0i64, i64::MAX);
        for (k, &(t, d)) in edges.iter().enumerate() {
            count += d;
            peak = peak.max(count);
            let settled = edges.get(k + 1).is_none_or(|e| e.0 != t);
            if settled && t >= from && t <= to {
                low = low.min(count);
            }
        }
        let at_start = self
            .life
            .iter()
            .filter(|l| l.added <= from && l.removed.is_none_or(|r| r > from))
            .count() as i64;
        ClusterLog {
            nodes: self.life.clone(),
            node_hours: hours,
            added: self.life.len() - self.initial,
            removed: self.life.iter().filter(|l| l.removed.is_some()).count(),
            peak_nodes: peak.max(0) as usize,
            min_nodes: low.min(at_start).max(0) as usize,
        }
    }
}
