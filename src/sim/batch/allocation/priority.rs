//! Priority allocation: the waiting task with the highest priority goes first, strictly: when
//! it fits no node, nothing behind it starts (no backfilling), so a task is never overtaken by
//! a lower priority, at the price of capacity left idle while it waits. Low priorities can
//! starve; the report counts them. (The `priority` queue discipline ages tasks against
//! starvation; this policy does not, so the two show the trade.)

use super::key::Key;
use crate::sim::batch::tasks::Task;

/// Queue key: higher priority first, then submit time.
pub(super) fn key(t: &Task) -> Key {
    Key(-(t.priority as f64), t.submit)
}
