//! Study rooms (contract section 14): room names and the token's patterns,
//! members folded from sockets, the `room_presence` windows, and typing
//! indicators. The Hub joins these to the socket table, the store's
//! grants and the broker.

mod members;
mod name;
mod typing;
mod window;

pub use members::{members, view as members_view, Member, Seat};
pub use name::{pattern_matches, token_opens, valid_room, MAX_ROOM_LEN};
pub use typing::{Told, Typing, STALE_MS, THROTTLE_MS};
pub use window::PresenceWindows;
