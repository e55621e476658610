//! Room names and who may enter by token: a study room is named by the
//! contract's rule (1 to 128 characters of `A-Z a-z 0-9 . _ : -`, so a
//! DICOM study UID fits after `study:`), and a token's `rooms` claim
//! lists patterns such as `"study:*"` or `"*"` that open rooms without a
//! backend grant.

/// Longest room name.
pub const MAX_ROOM_LEN: usize = 128;

/// Whether `room` is a valid room name.
pub fn valid_room(room: &str) -> bool {
    !room.is_empty()
        && room.len() <= MAX_ROOM_LEN
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// Whether one `rooms` claim pattern opens `room`: an exact name, or a
/// prefix followed by a single trailing `*` (`"*"` opens every room). A
/// `*` anywhere else is taken literally, so never matches a valid name.
pub fn pattern_matches(pattern: &str, room: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => room.starts_with(prefix),
        None => pattern == room,
    }
}

/// Whether any of a token's `patterns` opens `room`.
pub fn token_opens(patterns: &[Box<str>], room: &str) -> bool {
    patterns.iter().any(|p| pattern_matches(p, room))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract_rule() {
        assert!(valid_room("study:1.2.840.113619"));
        assert!(valid_room("tumour-board_2026"));
        assert!(valid_room(&"a".repeat(MAX_ROOM_LEN)));
        for bad in ["", " ", "study 1", "study/1", "ü", "a*", "a\0b"] {
            assert!(!valid_room(bad), "{bad:?}");
        }
        assert!(!valid_room(&"a".repeat(MAX_ROOM_LEN + 1)));
    }

    #[test]
    fn patterns_match_exactly_or_by_prefix() {
        assert!(pattern_matches("*", "study:1"));
        assert!(pattern_matches("study:*", "study:1.2"));
        assert!(!pattern_matches("study:*", "board:1"));
        assert!(pattern_matches("board:7", "board:7"));
        assert!(!pattern_matches("board:7", "board:70"));
        assert!(!pattern_matches("", "x"));
        let claim: Vec<Box<str>> = vec!["board:7".into(), "study:*".into()];
        assert!(token_opens(&claim, "study:9"));
        assert!(!token_opens(&claim, "board:8"));
        assert!(!token_opens(&[], "study:9"));
    }
}
