//! On-demand allocation: one queue for everyone, first come, first served. Whoever asks first
//! gets capacity first, however much they already hold, which is what a shared cluster without
//! a policy does.

use super::key::Key;
use crate::sim::batch::tasks::Task;

/// Queue key: submit time (then id, added by the engine).
pub(super) fn key(t: &Task) -> Key {
    Key(0.0, t.submit)
}
