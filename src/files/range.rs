//! A download's `Range` header: one range of bytes (`bytes=a-b`, `a-`,
//! `-n`) or the whole file. Several ranges are answered with the whole
//! file, which RFC 9110 allows.

use std::ops::Range;

/// What a `Range` header asks of a file of some size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranged {
    /// No usable range: the whole file, 200.
    Whole,
    /// One satisfiable range, 206.
    Part(Range<u64>),
    /// A range the file cannot satisfy, 416.
    Unsatisfiable,
}

/// The range `header` asks of a file of `size` bytes.
pub fn parse_range(header: Option<&str>, size: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ranged::Whole;
    };
    if spec.contains(',') {
        return Ranged::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    match (first.is_empty(), last.is_empty()) {
        // `-n`: the last n bytes.
        (true, false) => match number(last) {
            Some(0) => Ranged::Unsatisfiable,
            Some(n) if size > 0 => Ranged::Part(size.saturating_sub(n)..size),
            Some(_) => Ranged::Unsatisfiable,
            None => Ranged::Whole,
        },
        (false, _) => {
            let Some(start) = number(first) else {
                return Ranged::Whole;
            };
            let end = if last.is_empty() {
                u64::MAX
            } else {
                match number(last) {
                    Some(end) if end >= start => end,
                    _ => return Ranged::Whole,
                }
            };
            if start >= size {
                Ranged::Unsatisfiable
            } else {
                Ranged::Part(start..end.min(size - 1) + 1)
            }
        }
        (true, true) => Ranged::Whole,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_range_is_a_part_and_past_the_end_is_unsatisfiable() {
        assert_eq!(parse_range(None, 10), Ranged::Whole);
        assert_eq!(parse_range(Some("bytes=0-3"), 10), Ranged::Part(0..4));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Ranged::Part(5..10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ranged::Part(7..10));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Ranged::Part(8..10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Ranged::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Ranged::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), Ranged::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), Ranged::Whole);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), Ranged::Whole);
    }
}
