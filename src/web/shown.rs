//! What the dashboard gets of a field of a backend's notification body
//! (`type`, `severity`, `title`): any JSON a backend may send, as sent
//! when its text is short, else the start of its text and a note saying it
//! was cut. A backend may send a megabyte as a title; the picture lists 200
//! rows to every open dashboard, and a page shows a line of each.

use serde_json::{Map, Value};

/// Longest text of a field the dashboard gets whole, in UTF-16 code units
/// as the page counts them: a string's own text, any other value's JSON.
pub const FIELD_MAX: usize = 500;

/// `name` of `body` as the dashboard gets it: absent is `null`; a field
/// whose text is longer than [`FIELD_MAX`] becomes a string, its first
/// [`FIELD_MAX`] units (never half a character) and `… (cut: N characters
/// in all)`, N in the same units.
pub fn field(body: &Map<String, Value>, name: &str) -> Value {
    let Some(value) = body.get(name) else {
        return Value::Null;
    };
    let json;
    let text = match value {
        Value::String(s) => s.as_str(),
        other => {
            json = other.to_string();
            json.as_str()
        }
    };
    // A character is at most 2 units and 4 bytes: a text of at most
    // FIELD_MAX bytes fits, without counting.
    if text.len() <= FIELD_MAX {
        return value.clone();
    }
    let units: usize = text.chars().map(char::len_utf16).sum();
    if units <= FIELD_MAX {
        return value.clone();
    }
    let mut kept = 0;
    let start: String = text
        .chars()
        .take_while(|c| {
            kept += c.len_utf16();
            kept <= FIELD_MAX
        })
        .collect();
    Value::String(format!("{start}… (cut: {units} characters in all)"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        json!({ "title": v }).as_object().unwrap().clone()
    }

    #[test]
    fn any_short_json_comes_as_sent() {
        for v in [
            json!({ "toString": 0 }),
            json!([1, "two", { "three": 3 }]),
            json!(42),
            json!(null),
            json!(false),
            json!("<img src=x onerror=alert(1)>"),
            json!("é".repeat(FIELD_MAX)),
        ] {
            assert_eq!(field(&body(v.clone()), "title"), v);
        }
        assert_eq!(field(&body(json!(1)), "severity"), Value::Null);
    }

    #[test]
    fn a_long_field_is_cut_and_says_so() {
        let long = "W".repeat(10 * 1024);
        let cut = field(&body(json!(long)), "title");
        assert_eq!(
            cut,
            json!(format!(
                "{}… (cut: 10240 characters in all)",
                &long[..FIELD_MAX]
            ))
        );
        let array = json!(vec![1; 1000]);
        let text = field(&body(array.clone()), "title");
        let text = text.as_str().unwrap();
        assert!(text.starts_with("[1,1,1"), "{text}");
        assert!(text.ends_with(&format!(
            "(cut: {} characters in all)",
            array.to_string().len()
        )));
    }

    #[test]
    fn a_cut_never_splits_a_character() {
        // U+1F600 is two UTF-16 units: the 251st would straddle the limit.
        let smileys = "a".to_string() + &"😀".repeat(400);
        let cut = field(&body(json!(smileys)), "title");
        let start = cut.as_str().unwrap().split('…').next().unwrap();
        assert_eq!(
            start.chars().map(char::len_utf16).sum::<usize>(),
            FIELD_MAX - 1
        );
        assert!(cut
            .as_str()
            .unwrap()
            .contains("(cut: 801 characters in all)"));
    }
}
