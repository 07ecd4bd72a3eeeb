//! Where a task goes: the scheduler pass after each instant's events (strict queue order,
//! or first-fit-decreasing batches from the head) and the placement strategies choosing a node
//! for one task, with the consistent-hash ring they need. Kept apart from the event loop
//! because it only reads the nodes' free capacity and writes nothing but through
//! [`Sim::start`]: each strategy can be read (and changed) on its own.

use super::Sim;
use crate::sim::batch::queue::Placement;
use crate::sim::batch::tasks::Res;

/// A fast, stable 64-bit mix (splitmix64): the same ring on every platform and Rust version,
/// which `std`'s hasher does not promise.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A task's size for first-fit-decreasing: the sum of its demands relative to the largest node.
fn size(req: &Res, largest: &Res) -> f64 {
    req.as_array()
        .iter()
        .zip(largest.as_array())
        .map(|(r, c)| if c > 0.0 { r / c } else { 0.0 })
        .sum()
}

impl Sim<'_> {
    /// The consistent-hash ring over every node ever added; nodes that are not up are
    /// skipped when placing, so a node leaving moves only its own share of the ring.
    pub(super) fn build_ring(&mut self) {
        if self.placement != Placement::ConsistentHash {
            return;
        }
        self.ring.clear();
        for i in 0..self.nodes.len() {
            for v in 0..self.opts.vnodes.max(1) {
                self.ring.push((mix(mix(i as u64) ^ v as u64), i));
            }
        }
        self.ring.sort_unstable();
    }

    pub(super) fn schedule(&mut self) {
        if self.placement == Placement::Ffd {
            return self.schedule_ffd();
        }
        while let Some(i) = self.waiting.peek() {
            let Some(node) = self.choose(i) else { break };
            self.waiting.pop();
            self.start(i, node);
        }
    }

    /// Takes up to `ffd_batch` tasks from the head, places them largest first on the first
    /// node that fits, and puts back (in their order) those that fit nowhere.
    fn schedule_ffd(&mut self) {
        let largest = self.cap.iter().fold(Res::default(), |m, c| Res {
            cpu: m.cpu.max(c.cpu),
            mem: m.mem.max(c.mem),
            gpu: m.gpu.max(c.gpu),
        });
        loop {
            let mut batch = Vec::new();
            while batch.len() < self.opts.ffd_batch.max(1) {
                match self.waiting.pop() {
                    Some(i) => batch.push(i),
                    None => break,
                }
            }
            if batch.is_empty() {
                return;
            }
            let mut order: Vec<usize> = (0..batch.len()).collect();
            order.sort_by(|&a, &b| {
                let (ta, tb) = (&self.tasks[batch[a]], &self.tasks[batch[b]]);
                size(&tb.req, &largest)
                    .total_cmp(&size(&ta.req, &largest))
                    .then(ta.id.cmp(&tb.id))
            });
            let mut placed = vec![false; batch.len()];
            for k in order {
                let i = batch[k];
                if let Some(node) = (0..self.nodes.len()).find(|&n| self.fits(i, n)) {
                    self.start(i, node);
                    placed[k] = true;
                }
            }
            let any = placed.iter().any(|p| *p);
            let full = batch.len() == self.opts.ffd_batch.max(1);
            // Put back what did not fit, at the front, in the order it was taken.
            let back: Vec<usize> = batch
                .iter()
                .zip(&placed)
                .filter(|(_, p)| !**p)
                .map(|(i, _)| *i)
                .collect();
            self.unpop(back);
            if !any || !full {
                return;
            }
        }
    }

    fn fits(&self, i: usize, n: usize) -> bool {
        self.up[n] && self.tasks[i].req.fits_in(&self.free[n])
    }

    /// Fullest resource of node `n`, as a fraction of its capacity.
    fn load(&self, n: usize) -> f64 {
        let (f, c) = (self.free[n].as_array(), self.cap[n].as_array());
        (0..3)
            .filter(|&r| c[r] > 0.0)
            .map(|r| 1.0 - f[r] / c[r])
            .fold(0.0, f64::max)
    }

    fn choose(&mut self, i: usize) -> Option<usize> {
        let nn = self.nodes.len();
        match self.placement {
            Placement::LeastLoaded => (0..nn)
                .filter(|&n| self.fits(i, n))
                .map(|n| (self.load(n), n))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                .map(|(_, n)| n),
            Placement::BestFit => {
                let req = self.tasks[i].req.as_array();
                (0..nn)
                    .filter(|&n| self.fits(i, n))
                    .map(|n| {
                        let (f, c) = (self.free[n].as_array(), self.cap[n].as_array());
                        let spare: f64 = (0..3)
                            .filter(|&r| c[r] > 0.0)
                            .map(|r| (f[r] - req[r]) / c[r])
                            .sum();
                        (spare, n)
                    })
                    .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                    .map(|(_, n)| n)
            }
            Placement::Ffd => (0..nn).find(|&n| self.fits(i, n)),
            Placement::RoundRobin => {
                let pick = (0..nn)
                    .map(|k| (self.rr_next + k) % nn)
                    .find(|&n| self.fits(i, n))?;
                self.rr_next = (pick + 1) % nn;
                Some(pick)
            }
            Placement::WeightedRoundRobin => {
                if !(0..nn).any(|n| self.fits(i, n)) {
                    return None;
                }
                // Only nodes taking tasks share the rotation; on a fixed cluster that is all.
                let mut total = 0.0;
                for ((c, node), &up) in self.wrr_current.iter_mut().zip(&self.nodes).zip(&self.up) {
                    if up {
                        *c += node.weight;
                        total += node.weight;
                    }
                }
                let pick = (0..nn).filter(|&n| self.fits(i, n)).max_by(|&a, &b| {
                    self.wrr_current[a]
                        .total_cmp(&self.wrr_current[b])
                        .then(b.cmp(&a))
                })?;
                self.wrr_current[pick] -= total;
                Some(pick)
            }
            Placement::ConsistentHash => {
                if !(0..nn).any(|n| self.fits(i, n)) {
                    return None;
                }
                let h = mix(self.tasks[i].id ^ 0x5bd1_e995);
                let start = self.ring.partition_point(|&(k, _)| k < h);
                (0..self.ring.len())
                    .map(|k| self.ring[(start + k) % self.ring.len()].1)
                    .find(|&n| self.fits(i, n))
            }
        }
    }
}
