//! The event loop behind [`super::run`]: per-tenant queues, non-pre-emptive runs, and one
//! scheduling pass per instant in which the policy picks the tenant whose task goes next.

use super::key::Key;
use super::{dynamic, fair, market, priority, static_share, Allocation};
use crate::sim::batch::queue::Placement;
use crate::sim::batch::tasks::{Node, Res, Task};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

/// (time, completion before arrival, task id, task index).
type Event = (Key, u8, u64, usize);

/// One allocation run.
pub(crate) struct AllocSim<'a> {
    pub(super) tasks: &'a [Task],
    pub(super) nodes: &'a [Node],
    pub(super) allocation: Allocation,
    pub(super) placement: Placement,
    /// Tenant names, sorted; `tenant_of[i]` indexes it.
    pub(super) tenants: Vec<String>,
    pub(super) tenant_of: Vec<usize>,
    /// The cluster's capacity.
    pub(super) total: Res,
    /// Static partitioning's share per tenant (empty under the other policies).
    pub(super) quotas: Vec<Res>,
    /// What each tenant's running tasks hold.
    pub(super) held: Vec<Res>,
    /// Per tenant: waiting tasks by (key, id, index).
    waiting: Vec<BTreeSet<(Key, u64, usize)>>,
    events: BinaryHeap<Reverse<Event>>,
    pub(super) now: f64,
    pub(super) free: Vec<Res>,
    pub(super) cap: Vec<Res>,
    /// Resource-time used per node.
    pub(super) busy: Vec<Res>,
    /// Resource-time used within the arrival period, all nodes.
    pub(super) busy_arrivals: Res,
    /// Resource-time used per tenant.
    pub(super) tenant_busy: Vec<Res>,
    pub(super) arrivals: (f64, f64),
    pub(super) start: Vec<f64>,
    pub(super) finish: Vec<f64>,
    pub(super) on_node: Vec<usize>,
    /// Under the market policy, the lowest bid started while other tasks were waiting (the
    /// clearing price).
    pub(super) clearing_bid: Option<f64>,
}

impl<'a> AllocSim<'a> {
    pub(super) fn new(
        tasks: &'a [Task],
        nodes: &'a [Node],
        allocation: Allocation,
        placement: Placement,
    ) -> Self {
        let names: BTreeSet<&str> = tasks.iter().map(|t| t.tenant.as_str()).collect();
        let tenants: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let tenant_of = tasks
            .iter()
            .map(|t| tenants.binary_search(&t.tenant).unwrap_or(0))
            .collect();
        let cap: Vec<Res> = nodes.iter().map(Node::capacity).collect();
        let total = cap.iter().fold(Res::default(), |a, c| a.plus(c));
        let events = tasks
            .iter()
            .enumerate()
            .map(|(i, t)| Reverse((Key(t.submit, 0.0), 1, t.id, i)))
            .collect();
        let n = tasks.len();
        let nt = tenants.len();
        AllocSim {
            tasks,
            nodes,
            allocation,
            placement,
            tenants,
            tenant_of,
            total,
            quotas: Vec::new(),
            held: vec![Res::default(); nt],
            waiting: vec![BTreeSet::new(); nt],
            events,
            now: 0.0,
            free: cap.clone(),
            busy: vec![Res::default(); cap.len()],
            cap,
            busy_arrivals: Res::default(),
            tenant_busy: vec![Res::default(); nt],
            arrivals: tasks
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
                    (a.min(t.submit), b.max(t.submit))
                }),
            start: vec![f64::NAN; n],
            finish: vec![f64::NAN; n],
            on_node: vec![usize::MAX; n],
            clearing_bid: None,
        }
    }

    fn key(&self, t: &Task) -> Key {
        match self.allocation {
            Allocation::Priority => priority::key(t),
            Allocation::Market => market::key(t),
            // Static and fair share choose between tenants; within one it is first come,
            // first served.
            Allocation::Dynamic | Allocation::Static | Allocation::Fair => dynamic::key(t),
        }
    }

    pub(super) fn run(&mut self) {
        while let Some(Reverse((Key(at, _), kind, _, i))) = self.events.pop() {
            self.now = at;
            self.handle(kind, i);
            while let Some(Reverse((Key(next, _), ..))) = self.events.peek() {
                if *next != self.now {
                    break;
                }
                let Some(Reverse((_, kind, _, i))) = self.events.pop() else {
                    break;
                };
                self.handle(kind, i);
            }
            self.schedule();
        }
    }

    fn handle(&mut self, kind: u8, i: usize) {
        let t = &self.tasks[i];
        if kind == 1 {
            let key = self.key(t);
            self.waiting[self.tenant_of[i]].insert((key, t.id, i));
            return;
        }
        let (node, ten) = (self.on_node[i], self.tenant_of[i]);
        let ran = self.now - self.start[i];
        self.free[node] = self.free[node].plus(&t.req);
        self.held[ten] = self.held[ten].minus(&t.req);
        self.busy[node] = self.busy[node].plus(&t.req.scaled(ran));
        self.tenant_busy[ten] = self.tenant_busy[ten].plus(&t.req.scaled(ran));
        let (lo, hi) = self.arrivals;
        let within = (self.now.min(hi) - self.start[i].max(lo)).max(0.0);
        self.busy_arrivals = self.busy_arrivals.plus(&t.req.scaled(within));
        self.finish[i] = self.now;
    }

    /// Tenants to try, in the policy's order, and whether only the first may be tried (strict
    /// order: a head that fits nowhere blocks everyone behind it).
    fn order(&self) -> (Vec<usize>, bool) {
        let mut ts: Vec<usize> = (0..self.tenants.len())
            .filter(|&k| !self.waiting[k].is_empty())
            .collect();
        let head = |k: usize| self.waiting[k].first().map(|h| (h.0, h.1));
        match self.allocation {
            Allocation::Dynamic | Allocation::Priority | Allocation::Market => {
                ts.sort_by_key(|&k| head(k));
                (ts, true)
            }
            Allocation::Static => {
                ts.sort_by_key(|&k| head(k));
                (ts, false)
            }
            Allocation::Fair => {
                ts.sort_by(|&a, &b| {
                    let share = |k: usize| fair::dominant_share(&self.held[k], &self.total);
                    share(a).total_cmp(&share(b)).then(head(a).cmp(&head(b)))
                });
                (ts, false)
            }
        }
    }

    fn schedule(&mut self) {
        'pass: loop {
            let (order, strict) = self.order();
            for k in order {
                let Some(&(_, _, i)) = self.waiting[k].first() else {
                    continue;
                };
                let req = self.tasks[i].req;
                let allowed = self.allocation != Allocation::Static
                    || static_share::within(&self.held[k], &req, &self.quotas[k]);
                if let Some(node) = allowed.then(|| self.choose(&req)).flatten() {
                    self.waiting[k].pop_first();
                    self.begin(i, k, node);
                    continue 'pass;
                }
                if strict {
                    break;
                }
            }
            break;
        }
    }

    fn begin(&mut self, i: usize, tenant: usize, node: usize) {
        let t = &self.tasks[i];
        self.free[node] = self.free[node].minus(&t.req);
        self.held[tenant] = self.held[tenant].plus(&t.req);
        self.start[i] = self.now;
        self.on_node[i] = node;
        if self.allocation == Allocation::Market && self.waiting.iter().any(|q| !q.is_empty()) {
            self.clearing_bid = Some(self.clearing_bid.map_or(t.bid, |b| b.min(t.bid)));
        }
        self.events
            .push(Reverse((Key(self.now + t.duration, 0.0), 0, t.id, i)));
    }

    /// The node for a task asking `req`, by the placement; `None` when none fits. No
    /// allocation per node: this runs for every node at every attempt.
    fn choose(&self, req: &Res) -> Option<usize> {
        let r = req.as_array();
        let fits = |n: usize| req.fits_in(&self.free[n]);
        // Per resource the node has, f(free, capacity, request), folded by `op`.
        let over = |n: usize, f: fn(f64, f64, f64) -> f64, op: fn(f64, f64) -> f64| {
            let (fr, c) = (self.free[n].as_array(), self.cap[n].as_array());
            (0..3)
                .filter(|&k| c[k] > 0.0)
                .fold(0.0, |a, k| op(a, f(fr[k], c[k], r[k])))
        };
        let best = |score: &dyn Fn(usize) -> f64| {
            (0..self.nodes.len())
                .filter(|&n| fits(n))
                .map(|n| (score(n), n))
                .min_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)))
                .map(|(_, n)| n)
        };
        match self.placement {
            Placement::BestFit => best(&|n| over(n, |f, c, r| (f - r) / c, |a, b| a + b)),
            Placement::LeastLoaded => best(&|n| over(n, |f, c, _| 1.0 - f / c, f64::max)),
            _ => (0..self.nodes.len()).find(|&n| fits(n)),
        }
    }
}
