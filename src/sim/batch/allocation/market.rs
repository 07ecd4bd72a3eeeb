//! Market allocation: each task carries a bid (what running it is worth to its tenant) and
//! scarce capacity goes to the highest bids: the waiting task with the highest bid goes first,
//! strictly (as [`super::priority`]), so a run's start order among waiting tasks is the bids
//! sorted. The bids paid are reported as the clearing price: the lowest bid admitted while
//! others were waiting.

use super::key::Key;
use crate::sim::batch::tasks::Task;

/// Queue key: higher bid first, then submit time.
pub(super) fn key(t: &Task) -> Key {
    Key(-t.bid, t.submit)
}
