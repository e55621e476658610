//! Whether Redis answers, as seen by the parts that only need to know
//! that (readiness, the Hub's choice of answers and timers) and not to
//! talk to Redis: a cheap clone of the link's own flag.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct Health(Arc<AtomicBool>);

impl Health {
    /// True while the subscription is up and commands succeed.
    pub fn is_up(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Records that Redis answers (`true`) or stopped answering; returns
    /// what it was before.
    pub(super) fn set(&self, up: bool) -> bool {
        self.0.swap(up, Ordering::SeqCst)
    }
}
