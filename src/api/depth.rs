//! How deep a request body may nest arrays and objects. What the API
//! accepts crosses the cluster inside the nodes' envelope (`broker::wire`),
//! which adds levels of its own, and serde_json reads only so deep: the
//! API refuses what another node could not read, so a notification or an
//! event accepted on one node reaches every node.

use crate::broker::{ENVELOPE_DEPTH, MAX_DECODED_DEPTH};

/// Deepest nesting of a request body, its top-level object counting as 1.
pub const MAX_DEPTH: usize = 100;

// What the API accepts, in its envelope, must still be read by the other
// nodes (with room to spare for a level more of envelope one day).
const _: () = assert!(MAX_DEPTH + ENVELOPE_DEPTH < MAX_DECODED_DEPTH);

/// A body nested deeper than [`MAX_DEPTH`]; the API answers it as
/// `400 body_too_deep`.
#[derive(Debug)]
pub struct TooDeep;

/// Refuses a body nested deeper than [`MAX_DEPTH`], in one pass over its
/// bytes before it is parsed (no allocation). Brackets inside strings do
/// not count; on text that is not JSON the parser gives the answer.
pub fn check(body: &[u8]) -> Result<(), TooDeep> {
    if nested_deeper_than(body, MAX_DEPTH) {
        return Err(TooDeep);
    }
    Ok(())
}

fn nested_deeper_than(json: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in json {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiError;
    use axum::http::StatusCode;

    fn nested(levels: usize) -> String {
        format!("{}{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn counts_arrays_and_objects_but_not_brackets_in_strings() {
        assert!(!nested_deeper_than(nested(3).as_bytes(), 3));
        assert!(nested_deeper_than(nested(4).as_bytes(), 3));
        assert!(!nested_deeper_than(br#"{"a":[{"b":1}],"c":{}}"#, 3));
        assert!(nested_deeper_than(br#"{"a":[{"b":[]}]}"#, 3));
        let quoted = br#"{"a":"[[[[{{{{\"[[[[","b":["\\",[]]}"#;
        assert!(!nested_deeper_than(quoted, 3));
        assert!(nested_deeper_than(quoted, 2));
        assert!(check(nested(MAX_DEPTH).as_bytes()).is_ok());
        let refused = ApiError::from(check(nested(MAX_DEPTH + 1).as_bytes()).unwrap_err());
        assert_eq!(
            (refused.status, refused.code),
            (StatusCode::BAD_REQUEST, "body_too_deep")
        );
    }
}
