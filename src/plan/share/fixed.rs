//! `static`: each team's fixed fraction of the pool, and what a team leaves unused shared out
//! among the teams that want more.

use super::drf::{groups, progressive, Group};
use super::policy::Fill;
use crate::plan::spec::Resources;

/// Two rounds. First each team fills its own share (the sum of its workloads' `share`, of
/// every resource of the pool), its workloads in turn. Then whatever is still free —
/// unused shares, and the rounding left by replicas that did not fit a share exactly — is
/// filled progressively in proportion to the shares (weighted DRF with the shares as weights),
/// teams without a share last. Redistribution is the choice here because capacity a team
/// does not use helps nobody by staying idle; a team that wants its share back gets it at
/// the next cycle, since each cycle starts from the shares again.
pub(super) fn allocate(fill: &mut Fill) {
    let mut groups: Vec<Group> = groups(fill).into_values().collect();
    for g in &mut groups {
        let share: f64 = g.members.iter().map(|&i| fill.claims[i].share).sum();
        g.weight = if share > 0.0 { share } else { 1.0 };
        g.tier = u8::from(share <= 0.0);
        g.limit = Some(Resources::new(
            fill.cap.cpu * share,
            fill.cap.memory * share,
        ));
    }
    progressive(fill, &mut groups);
    for g in &mut groups {
        g.limit = None;
    }
    progressive(fill, &mut groups);
}
