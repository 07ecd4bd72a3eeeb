//! The policy a pool allocates by, what each workload claims, and the running tally of what
//! has been granted that every policy fills.

pub use crate::plan::spec::Allocation;
use crate::plan::spec::Resources;

/// One workload's claim on a pool: what its planner wants, what it may never go below, what
/// one replica requests, and the keys the policies rank it by.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// Workload name (ties are broken by it, so an allocation is deterministic).
    pub name: String,
    /// Team it belongs to (its own name when it names none).
    pub team: String,
    /// Replicas it keeps whatever the policy (`min_replicas`, or fewer if it wants fewer).
    pub min: u32,
    /// Replicas its planner decided.
    pub want: u32,
    /// Resources one replica requests.
    pub request: Resources,
    /// Higher wins under `priority`.
    pub priority: i32,
    /// Its weight under `fair` (> 0).
    pub weight: f64,
    /// Its fraction of the pool under `static` (0..=1).
    pub share: f64,
    /// Value of one replica-hour under `market`.
    pub bid: f64,
}

impl Claim {
    /// A claim with neutral ranking keys: priority 0, weight 1, no share, no bid, its own team.
    pub fn new(name: &str, min: u32, want: u32, request: Resources) -> Self {
        Claim {
            name: name.to_string(),
            team: name.to_string(),
            min,
            want,
            request,
            priority: 0,
            weight: 1.0,
            share: 0.0,
            bid: 0.0,
        }
    }
}

/// Relative slack so that an exact fit fits despite rounding.
const EPS: f64 = 1e-9;

/// Share of `cap` that `used` takes of its scarcest resource (a resource the pool does not
/// offer is left out: nothing can be granted of it anyway).
pub(super) fn dominant(used: &Resources, cap: &Resources) -> f64 {
    let r = |u: f64, c: f64| if c > 0.0 { u / c } else { 0.0 };
    r(used.cpu, cap.cpu).max(r(used.memory, cap.memory))
}

/// Whether `used + add` stays within `cap` in every resource `add` asks for.
pub(super) fn within(used: &Resources, add: &Resources, cap: &Resources) -> bool {
    let ok = |u: f64, a: f64, c: f64| a <= 0.0 || u + a <= c * (1.0 + EPS) + EPS;
    ok(used.cpu, add.cpu, cap.cpu) && ok(used.memory, add.memory, cap.memory)
}

/// What has been granted so far against a capacity. Every policy starts from every claim's
/// minimum (granted even when the minimums alone exceed the capacity: `min_replicas` is a
/// promise the policies do not break) and adds replicas only where they fit.
pub(super) struct Fill<'c> {
    pub(super) claims: &'c [Claim],
    pub(super) cap: Resources,
    pub(super) used: Resources,
    pub(super) granted: Vec<u32>,
}

impl<'c> Fill<'c> {
    pub(super) fn new(claims: &'c [Claim], cap: Resources) -> Self {
        let mut used = Resources::default();
        let granted: Vec<u32> = claims
            .iter()
            .map(|c| {
                let n = c.min.min(c.want);
                used.add_scaled(&c.request, n as f64);
                n
            })
            .collect();
        Fill {
            claims,
            cap,
            used,
            granted,
        }
    }

    /// Whether claim `i` wants another replica and it fits.
    pub(super) fn can_take(&self, i: usize) -> bool {
        self.granted[i] < self.claims[i].want
            && within(&self.used, &self.claims[i].request, &self.cap)
    }

    /// How many more replicas claim `i` wants that fit, all at once.
    pub(super) fn room(&self, i: usize) -> u32 {
        let c = &self.claims[i];
        let mut n = c.want.saturating_sub(self.granted[i]);
        for (u, r, cap) in [
            (self.used.cpu, c.request.cpu, self.cap.cpu),
            (self.used.memory, c.request.memory, self.cap.memory),
        ] {
            if r > 0.0 {
                let fit = ((cap * (1.0 + EPS) + EPS - u) / r).floor().max(0.0);
                n = n.min(fit.min(u32::MAX as f64) as u32);
            }
        }
        n
    }

    /// Grants claim `i` `n` more replicas.
    pub(super) fn give(&mut self, i: usize, n: u32) {
        self.granted[i] += n;
        self.used.add_scaled(&self.claims[i].request, n as f64);
    }
}
