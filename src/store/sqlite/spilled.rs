//! Delivery marks that found the SQLite writer's queue full. Nobody waits
//! for a mark, so it is not worth a task of its own; it is not dropped
//! either (a 10,000-recipient broadcast would leave delivered recipients
//! reading `pending`): it is set aside here and joins the writer's next
//! batch. The writer is told with a nudge sent after the mark was set
//! aside; if the nudge finds the queue full too, the writer has writes
//! queued after the mark and takes the marks with its next batch anyway.

use parking_lot::Mutex;

use super::writer::Write;
use crate::clock::Millis;
use crate::trail::Entry;

/// Audit records of deliveries are queued like the marks and set aside alike.
#[derive(Default)]
pub struct Spilled(Mutex<Vec<Write>>);

impl Spilled {
    pub fn push(&self, id: String, user: String, at: Millis, record: Option<Entry>) {
        self.0.lock().push(Write::Delivered {
            id,
            user,
            at,
            record,
        });
    }

    pub fn push_record(&self, entry: Entry) {
        self.0.lock().push(Write::Record { entry });
    }

    /// Every write set aside, in the order they came, for the batch being
    /// gathered.
    pub fn take(&self) -> Vec<Write> {
        std::mem::take(&mut *self.0.lock())
    }
}
