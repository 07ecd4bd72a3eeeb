//! The waiting queues' order, shared by the engine and the policies that rank tasks.

use std::cmp::Ordering;

/// A queue key: (policy's rank, submit time); lower goes first. Inputs are checked finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Key(pub(super) f64, pub(super) f64);
impl Eq for Key {}
impl PartialOrd for Key {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Key {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(self.1.total_cmp(&o.1))
    }
}
