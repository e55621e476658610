//! Who is in a room: its seats (one per socket, wherever it is connected)
//! folded into members, one per user, so a radiologist with the study open
//! in two tabs is one member with two connections, present since the first.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::clock::{rfc3339, Millis};

/// One socket in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub user_id: String,
    /// When this socket joined the room.
    pub since: Millis,
}

/// One user in a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    /// When the user's earliest socket still in the room joined it.
    pub since: Millis,
    /// The user's sockets in the room.
    pub connections: usize,
}

impl Member {
    /// The item of `members` in `room_presence`, the join answer and the API.
    pub fn view(&self) -> Value {
        json!({
            "userId": self.user_id,
            "since": rfc3339(self.since),
            "connections": self.connections,
        })
    }
}

/// The members `seats` make, ordered by user id (every node and every
/// answer lists them the same way).
pub fn members(seats: impl IntoIterator<Item = Seat>) -> Vec<Member> {
    let mut by_user: BTreeMap<String, Member> = BTreeMap::new();
    for seat in seats {
        by_user
            .entry(seat.user_id.clone())
            .and_modify(|m| {
                m.since = m.since.min(seat.since);
                m.connections += 1;
            })
            .or_insert(Member {
                user_id: seat.user_id,
                since: seat.since,
                connections: 1,
            });
    }
    by_user.into_values().collect()
}

/// The `members` array of an answer.
pub fn view(members: &[Member]) -> Value {
    Value::Array(members.iter().map(Member::view).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(user: &str, since: Millis) -> Seat {
        Seat {
            user_id: user.into(),
            since,
        }
    }

    #[test]
    fn two_tabs_are_one_member_present_since_the_first() {
        let m = members([seat("u2", 30), seat("u1", 20), seat("u2", 10)]);
        assert_eq!(
            m,
            [
                Member {
                    user_id: "u1".into(),
                    since: 20,
                    connections: 1
                },
                Member {
                    user_id: "u2".into(),
                    since: 10,
                    connections: 2
                },
            ]
        );
        assert_eq!(view(&m)[1]["connections"], 2);
        assert_eq!(view(&m)[0]["since"], "1970-01-01T00:00:00.020Z");
        assert!(members([]).is_empty());
    }
}
