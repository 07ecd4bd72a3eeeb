//! Static partitioning: each of the run's tenants owns a fixed, equal share of every resource
//! it asks for at all (a resource only some tenants use, such as GPUs, is split among those)
//! and never uses more, even while the rest stands idle. That is what
//! fixed quotas per team do: predictable, and wasteful when one team is busy and another is
//! not. Tasks that do not fit their tenant's share would wait for ever, so they are refused up
//! front.

use crate::sim::batch::error::BatchError;
use crate::sim::batch::tasks::{Res, Task};

/// Each tenant's share of the cluster: per resource, `total` split equally among the tenants
/// with a task asking for it (zero for the others).
/// `tenant_of[i]` is task `i`'s tenant, of `tenants`.
pub(super) fn quotas(tasks: &[Task], tenant_of: &[usize], tenants: usize, total: &Res) -> Vec<Res> {
    let mut uses = vec![[false; 3]; tenants];
    for (t, &k) in tasks.iter().zip(tenant_of) {
        for (u, r) in uses[k].iter_mut().zip(t.req.as_array()) {
            *u |= r > 0.0;
        }
    }
    let total = total.as_array();
    let users: Vec<f64> = (0..3)
        .map(|r| uses.iter().filter(|u| u[r]).count().max(1) as f64)
        .collect();
    uses.iter()
        .map(|u| {
            let q = |r: usize| if u[r] { total[r] / users[r] } else { 0.0 };
            Res {
                cpu: q(0),
                mem: q(1),
                gpu: q(2),
            }
        })
        .collect()
}

/// Whether a tenant holding `held` may start a task asking `req` within its quota.
pub(super) fn within(held: &Res, req: &Res, quota: &Res) -> bool {
    held.plus(req).fits_in(quota)
}

/// Refuses a task larger than its tenant's share (`quotas`, from [`quotas`]).
pub(super) fn check(
    tasks: &[Task],
    tenant_of: &[usize],
    tenants: &[String],
    quotas: &[Res],
) -> Result<(), BatchError> {
    for (i, t) in tasks.iter().enumerate() {
        let q = quotas[tenant_of[i]];
        if !t.req.fits_in(&q) {
            return Err(BatchError::OverQuota {
                id: t.id,
                tenant: tenants[tenant_of[i]].clone(),
                share: format!("cpu {:.2}, mem {:.2}, gpu {:.2}", q.cpu, q.mem, q.gpu),
            });
        }
    }
    Ok(())
}
