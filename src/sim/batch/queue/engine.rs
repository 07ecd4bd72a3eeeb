//! The event loop behind [`super::run`] and [`super::run_elastic`]: the queue, the nodes,
//! the events and the rules of the module documentation. One [`Sim`] is one run.
//!
//! Here: the events and their order, the waiting queue of each discipline, and a task's life
//! (arrive, start, slice, pre-empt, complete). Where a task is placed is `placement`'s (the
//! scheduler pass and the strategies); nodes added and drained by a scaler, and what they
//! cost, are `elastic`'s.

mod elastic;
mod placement;

use super::{Discipline, NodeLife, NodePhase};
use super::{Placement, QueueOptions, Scaler};
use crate::sim::batch::tasks::{Node, Res, Task};
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

/// Totally ordered `f64` for event times and queue keys (inputs are checked finite).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Ord64(f64);
impl Eq for Ord64 {}
impl PartialOrd for Ord64 {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ord64 {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Complete,
    SliceEnd,
    Arrive,
    Boost,
    NodeUp,
    Plan,
}

type Event = (Ord64, Kind, u64, usize, u32);

/// The queue of waiting tasks (indices into the task list).
enum Waiting {
    Fifo(VecDeque<usize>),
    /// Min-heap on (key, submit, id).
    Keyed(BinaryHeap<Reverse<(Ord64, Ord64, u64, usize)>>),
    Levels(Vec<VecDeque<usize>>),
}

impl Waiting {
    fn len(&self) -> usize {
        match self {
            Waiting::Fifo(q) => q.len(),
            Waiting::Keyed(h) => h.len(),
            Waiting::Levels(l) => l.iter().map(VecDeque::len).sum(),
        }
    }

    fn peek(&self) -> Option<usize> {
        match self {
            Waiting::Fifo(q) => q.front().copied(),
            Waiting::Keyed(h) => h.peek().map(|r| r.0 .3),
            Waiting::Levels(l) => l.iter().find_map(|q| q.front().copied()),
        }
    }

    fn pop(&mut self) -> Option<usize> {
        match self {
            Waiting::Fifo(q) => q.pop_front(),
            Waiting::Keyed(h) => h.pop().map(|r| r.0 .3),
            Waiting::Levels(l) => l.iter_mut().find_map(VecDeque::pop_front),
        }
    }
}

/// One simulation.
pub(super) struct Sim<'a> {
    pub(super) tasks: &'a [Task],
    pub(super) nodes: Vec<Node>,
    /// Per node: taking tasks (ready and not draining). Always true on a fixed cluster.
    pub(super) up: Vec<bool>,
    pub(super) phase: Vec<NodePhase>,
    pub(super) life: Vec<NodeLife>,
    /// Tasks running per node.
    pub(super) on_count: Vec<usize>,
    /// Nodes present from the start.
    pub(super) initial: usize,
    /// Requested by tasks submitted and not finished.
    pub(super) outstanding: Res,
    pub(super) arrived_unfinished: usize,
    pub(super) scaler: Option<&'a mut dyn Scaler>,
    /// An elastic run that is still going at this time has gone wrong; see [`run_elastic`].
    pub(super) give_up_at: f64,
    pub(super) discipline: Discipline,
    pub(super) placement: Placement,
    pub(super) opts: QueueOptions,
    pub(super) now: f64,
    events: BinaryHeap<Reverse<Event>>,
    waiting: Waiting,
    pub(super) free: Vec<Res>,
    pub(super) cap: Vec<Res>,
    pub(super) busy: Vec<Res>,
    /// Resource-time used within the arrival period (first to last submit), summed over nodes:
    /// utilisation over the makespan also averages the drain tail after the last arrival.
    pub(super) busy_arrivals: Res,
    /// First and last submit time.
    pub(super) arrivals: (f64, f64),
    pub(super) remaining: Vec<f64>,
    pub(super) level: Vec<usize>,
    pub(super) epoch: Vec<u32>,
    pub(super) run_start: Vec<f64>,
    pub(super) slice: Vec<f64>,
    pub(super) on_node: Vec<usize>,
    pub(super) first_start: Vec<f64>,
    pub(super) finish: Vec<f64>,
    pub(super) unfinished: usize,
    pub(super) running: usize,
    pub(super) preemptions: usize,
    pub(super) rr_next: usize,
    pub(super) wrr_current: Vec<f64>,
    pub(super) ring: Vec<(u64, usize)>,
}

impl<'a> Sim<'a> {
    /// Puts the first planning event of an elastic run at `at`.
    pub(super) fn plan_at(&mut self, at: f64) {
        self.events.push(Reverse((Ord64(at), Kind::Plan, 0, 0, 0)));
    }

    pub(super) fn new(
        tasks: &'a [Task],
        nodes: Vec<Node>,
        discipline: Discipline,
        placement: Placement,
        opts: QueueOptions,
    ) -> Self {
        let n = tasks.len();
        let waiting = match discipline {
            Discipline::Fcfs | Discipline::Rr => Waiting::Fifo(VecDeque::new()),
            Discipline::Sjf | Discipline::Priority => Waiting::Keyed(BinaryHeap::new()),
            Discipline::Mlfq => Waiting::Levels(vec![VecDeque::new(); opts.mlfq_levels.max(1)]),
        };
        let mut events = BinaryHeap::with_capacity(n * 2);
        for (i, t) in tasks.iter().enumerate() {
            events.push(Reverse((Ord64(t.submit), Kind::Arrive, t.id, i, 0)));
        }
        if discipline == Discipline::Mlfq && opts.mlfq_boost > 0.0 && n > 0 {
            let first = tasks.iter().map(|t| t.submit).fold(f64::INFINITY, f64::min);
            events.push(Reverse((
                Ord64(first + opts.mlfq_boost),
                Kind::Boost,
                0,
                0,
                0,
            )));
        }
        let cap: Vec<Res> = nodes.iter().map(Node::capacity).collect();
        let nn = nodes.len();
        let life = nodes
            .iter()
            .map(|n| NodeLife {
                name: n.name.clone(),
                added: 0.0,
                ready: Some(0.0),
                drained: None,
                removed: None,
            })
            .collect();
        let mut sim = Sim {
            tasks,
            nodes,
            up: vec![true; nn],
            phase: vec![NodePhase::Ready; nn],
            life,
            on_count: vec![0; nn],
            initial: nn,
            outstanding: Res::default(),
            arrived_unfinished: 0,
            scaler: None,
            give_up_at: f64::INFINITY,
            discipline,
            placement,
            opts,
            now: 0.0,
            events,
            waiting,
            free: cap.clone(),
            cap,
            busy: vec![Res::default(); nn],
            busy_arrivals: Res::default(),
            arrivals: tasks
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
                    (a.min(t.submit), b.max(t.submit))
                }),
            remaining: tasks.iter().map(|t| t.duration).collect(),
            level: vec![0; n],
            epoch: vec![0; n],
            run_start: vec![f64::NAN; n],
            slice: vec![0.0; n],
            on_node: vec![usize::MAX; n],
            first_start: vec![f64::NAN; n],
            finish: vec![f64::NAN; n],
            unfinished: n,
            running: 0,
            preemptions: 0,
            rr_next: 0,
            wrr_current: vec![0.0; nn],
            ring: Vec::new(),
        };
        sim.build_ring();
        sim
    }

    pub(super) fn run(&mut self) {
        // Everything that happens at one instant is handled before the scheduler runs, so
        // tasks submitted together are placed together (which first-fit-decreasing needs).
        while let Some(Reverse(ev)) = self.events.pop() {
            self.now = ev.0 .0;
            self.handle(ev);
            while let Some(Reverse(next)) = self.events.peek() {
                if next.0 .0 != self.now {
                    break;
                }
                let Some(Reverse(next)) = self.events.pop() else {
                    break;
                };
                self.handle(next);
            }
            self.schedule();
        }
    }

    fn handle(&mut self, (_, kind, _, i, epoch): Event) {
        match kind {
            Kind::Arrive => {
                self.outstanding = self.outstanding.plus(&self.tasks[i].req);
                self.arrived_unfinished += 1;
                self.enqueue(i)
            }
            Kind::Complete | Kind::SliceEnd if epoch != self.epoch[i] => {}
            Kind::Complete => self.complete(i),
            Kind::SliceEnd => self.slice_end(i),
            Kind::Boost => self.boost(),
            Kind::NodeUp => self.node_up(i),
            Kind::Plan => self.plan(),
        }
    }

    fn enqueue(&mut self, i: usize) {
        match &mut self.waiting {
            Waiting::Fifo(q) => q.push_back(i),
            Waiting::Keyed(_) => self.insert_keyed(i),
            Waiting::Levels(l) => {
                let lv = self.level[i].min(l.len() - 1);
                l[lv].push_back(i);
            }
        }
    }

    fn quantum(&self, i: usize) -> f64 {
        match self.discipline {
            Discipline::Rr => self.opts.quantum,
            Discipline::Mlfq => self.opts.quantum * f64::powi(2.0, self.level[i] as i32),
            _ => f64::INFINITY,
        }
    }

    fn start(&mut self, i: usize, node: usize) {
        let req = self.tasks[i].req;
        self.free[node] = self.free[node].minus(&req);
        self.on_count[node] += 1;
        self.on_node[i] = node;
        self.run_start[i] = self.now;
        if self.first_start[i].is_nan() {
            self.first_start[i] = self.now;
        }
        self.running += 1;
        self.arm(i);
    }

    /// Schedules the end of the task's current slice (or its completion).
    fn arm(&mut self, i: usize) {
        self.epoch[i] += 1;
        let q = self.quantum(i);
        let id = self.tasks[i].id;
        if self.remaining[i] <= q {
            self.slice[i] = self.remaining[i];
            self.events.push(Reverse((
                Ord64(self.now + self.remaining[i]),
                Kind::Complete,
                id,
                i,
                self.epoch[i],
            )));
        } else {
            self.slice[i] = q;
            self.events.push(Reverse((
                Ord64(self.now + q),
                Kind::SliceEnd,
                id,
                i,
                self.epoch[i],
            )));
        }
    }

    /// Takes the task off its node, booking the resource-time it used.
    fn release(&mut self, i: usize) {
        let node = self.on_node[i];
        let req = self.tasks[i].req;
        let ran = self.now - self.run_start[i];
        self.free[node] = self.free[node].plus(&req);
        let b = &mut self.busy[node];
        b.cpu += req.cpu * ran;
        b.mem += req.mem * ran;
        b.gpu += req.gpu * ran;
        let (lo, hi) = self.arrivals;
        let within = (self.now.min(hi) - self.run_start[i].max(lo)).max(0.0);
        self.busy_arrivals = self.busy_arrivals.plus(&req.scaled(within));
        self.running -= 1;
        self.on_count[node] -= 1;
        if self.on_count[node] == 0 && self.phase[node] == NodePhase::Draining {
            self.remove_node(node);
        }
    }

    fn complete(&mut self, i: usize) {
        self.release(i);
        self.remaining[i] = 0.0;
        self.finish[i] = self.now;
        self.unfinished -= 1;
        self.arrived_unfinished -= 1;
        // Sums of fractions drift; an empty backlog is exactly empty.
        self.outstanding = if self.arrived_unfinished == 0 {
            Res::default()
        } else {
            self.outstanding.minus(&self.tasks[i].req)
        };
    }

    fn slice_end(&mut self, i: usize) {
        self.remaining[i] -= self.slice[i];
        if self.discipline == Discipline::Mlfq {
            self.level[i] = (self.level[i] + 1).min(self.opts.mlfq_levels.max(1) - 1);
        }
        if self.waiting.len() > 0 {
            // Book the slice and give the node up; the task queues again behind the others.
            self.release(i);
            self.preemptions += 1;
            self.enqueue(i);
        } else {
            self.arm(i);
        }
    }

    fn boost(&mut self) {
        if let Waiting::Levels(l) = &mut self.waiting {
            let mut all = VecDeque::new();
            for q in l.iter_mut() {
                all.append(q);
            }
            l[0] = all;
        }
        self.level.iter_mut().for_each(|lv| *lv = 0);
        if self.unfinished > 0 {
            self.events.push(Reverse((
                Ord64(self.now + self.opts.mlfq_boost),
                Kind::Boost,
                0,
                0,
                0,
            )));
        }
    }

    /// Returns tasks taken from the head back to it, keeping their order.
    fn unpop(&mut self, tasks: Vec<usize>) {
        match &mut self.waiting {
            Waiting::Fifo(q) => {
                for &i in tasks.iter().rev() {
                    q.push_front(i);
                }
            }
            Waiting::Levels(l) => {
                for &i in tasks.iter().rev() {
                    let lv = self.level[i].min(l.len() - 1);
                    l[lv].push_front(i);
                }
            }
            Waiting::Keyed(_) => {
                // Keys do not change while a task waits, so re-inserting restores the order.
                for i in tasks {
                    self.insert_keyed(i);
                }
            }
        }
    }

    fn insert_keyed(&mut self, i: usize) {
        let t = &self.tasks[i];
        let key = match self.discipline {
            Discipline::Sjf => self.remaining[i],
            // Effective priority p + a·(now − submit) ranks like p − a·submit at any instant
            // (these disciplines never pre-empt, so a task waits from its submit time), so the
            // key never needs updating while the task waits.
            _ => self.opts.aging * t.submit - t.priority as f64,
        };
        if let Waiting::Keyed(h) = &mut self.waiting {
            h.push(Reverse((Ord64(key), Ord64(t.submit), t.id, i)));
        }
    }
}
