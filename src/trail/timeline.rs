//! A notification's timeline as the API shows it: one event per thing that
//! happened to it, read from its audit records. A record is one event,
//! except the two records that say several things at once: a delivery to
//! several sockets of a user (one record listing them) is one `delivered`
//! event per socket, and the acknowledgement that closed the notification
//! (one record saying so) is an `acknowledged` and a `closed` event, as
//! older trails stored them in two records. A reader cannot tell which
//! form the trail holds, and needs not.

use serde_json::{Map, Value};

use super::record::{CLOSED, SOCKETS};
use super::{Entry, Kind};

/// The events of `records` (one notification's, oldest first, sealed or
/// not), in order.
pub fn events(records: &[Entry]) -> Vec<Value> {
    let mut events = Vec::with_capacity(records.len() + 1);
    for r in records {
        let mut event = r.to_timeline_json();
        let Value::Object(fields) = &mut event else {
            unreachable!("a record is shown as an object")
        };
        let says = |key: &str| r.detail.as_ref().and_then(|d| d.get(key));
        match r.kind {
            Kind::Delivered if says(SOCKETS).is_some() => {
                let sockets = take_detail(fields, SOCKETS);
                for socket in sockets.iter().filter_map(Value::as_array).flatten() {
                    let mut one = fields.clone();
                    one.insert("socketId".into(), socket.clone());
                    events.push(Value::Object(one));
                }
                continue;
            }
            Kind::Acknowledged if says(CLOSED) == Some(&Value::Bool(true)) => {
                take_detail(fields, CLOSED);
                let closed = closed_event(fields);
                events.push(event);
                events.push(closed);
                continue;
            }
            _ => {}
        }
        events.push(event);
    }
    events
}

/// Takes `key` out of the event's detail, and the detail away when that
/// leaves it empty.
fn take_detail(fields: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let Some(Value::Object(detail)) = fields.get_mut("detail") else {
        return None;
    };
    let taken = detail.remove(key)?;
    if detail.is_empty() {
        fields.remove("detail");
    }
    Some(taken)
}

/// The `closed` event of a closing acknowledgement: its time and user, as
/// a `closed` record shows them.
fn closed_event(ack: &Map<String, Value>) -> Value {
    let mut closed = Map::new();
    if let Some(at) = ack.get("at") {
        closed.insert("at".into(), at.clone());
    }
    closed.insert("type".into(), Kind::Closed.as_str().into());
    if let Some(user) = ack.get("userId") {
        closed.insert("userId".into(), user.clone());
    }
    Value::Object(closed)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::trail::record;

    #[test]
    fn a_delivery_to_several_sockets_is_one_event_per_socket() {
        let sockets = ["s1".to_string(), "s2".to_string()];
        let records = vec![
            record::delivered("n", "u", 5, &sockets),
            record::delivered("n", "v", 6, &sockets[..1]),
        ];
        assert_eq!(records[0].socket_id, None, "one record, both sockets");
        assert_eq!(
            events(&records),
            vec![
                json!({"at": "1970-01-01T00:00:00.005Z", "type": "delivered", "userId": "u", "socketId": "s1"}),
                json!({"at": "1970-01-01T00:00:00.005Z", "type": "delivered", "userId": "u", "socketId": "s2"}),
                json!({"at": "1970-01-01T00:00:00.006Z", "type": "delivered", "userId": "v", "socketId": "s1"}),
            ]
        );
    }

    #[test]
    fn a_closing_acknowledgement_reads_as_the_two_records_it_replaces() {
        let merged = vec![record::acknowledged(
            "n",
            "u",
            7,
            Some("s1"),
            Some("10.0.0.7:5000"),
            true,
        )];
        // What a trail written before the merge holds for the same event.
        let separate = vec![
            record::acknowledged("n", "u", 7, Some("s1"), Some("10.0.0.7:5000"), false),
            Entry::new(Kind::Closed, 7).notification("n").user("u"),
        ];
        let expected = vec![
            json!({"at": "1970-01-01T00:00:00.007Z", "type": "acknowledged", "userId": "u",
                   "socketId": "s1", "detail": {"remote": "10.0.0.7:5000"}}),
            json!({"at": "1970-01-01T00:00:00.007Z", "type": "closed", "userId": "u"}),
        ];
        assert_eq!(events(&merged), expected);
        assert_eq!(events(&separate), expected);
        // Without a remote address the closing leaves no detail behind.
        let bare = vec![record::acknowledged("n", "u", 7, None, None, true)];
        assert_eq!(
            events(&bare),
            vec![
                json!({"at": "1970-01-01T00:00:00.007Z", "type": "acknowledged", "userId": "u"}),
                json!({"at": "1970-01-01T00:00:00.007Z", "type": "closed", "userId": "u"}),
            ]
        );
        // An acknowledgement that did not close stays one event.
        let later = vec![record::acknowledged("n", "v", 8, None, None, false)];
        assert_eq!(events(&later).len(), 1);
    }
}
