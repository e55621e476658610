//! The name a file is offered under: the sender's last path component,
//! without control characters or quotes, so it can neither climb out of a
//! folder on the recipient's disk nor break the `Content-Disposition`
//! header it is sent in.

/// The longest name kept, in characters.
const MAX_NAME: usize = 255;

/// `name` made safe, or `None` when nothing usable is left (an empty name,
/// `.` or `..`). A name with a path (`../x.pdf`, `C:\x.pdf`) keeps its last
/// component. Leading dots and spaces go together, however they mix, so
/// that no name is hidden on the recipient's disk.
pub fn safe_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | ';' | ':' | '*' | '?' | '<' | '>' | '|'))
        .take(MAX_NAME)
        .collect();
    let cleaned = cleaned
        .trim_start_matches(|c: char| c == '.' || c.is_whitespace())
        .trim_end()
        .to_string();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// The ASCII fallback of a safe name for the `filename=` parameter (the
/// UTF-8 original travels in `filename*`).
pub fn ascii_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_keeps_its_last_component_and_nothing_unsafe_remains() {
        assert_eq!(safe_name("report.pdf").as_deref(), Some("report.pdf"));
        assert_eq!(safe_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(safe_name("C:\\x\\scan.png").as_deref(), Some("scan.png"));
        assert_eq!(safe_name("a\"b\r\n.pdf").as_deref(), Some("ab.pdf"));
        assert_eq!(safe_name(".hidden").as_deref(), Some("hidden"));
        // Dots and spaces mixed at the start: none is left (the `files`
        // fuzz target's property: a kept name never starts with a dot and
        // is itself when made safe again).
        assert_eq!(safe_name(". .hidden").as_deref(), Some("hidden"));
        assert_eq!(safe_name(" . . "), None);
        assert_eq!(safe_name(". ."), None);
        assert_eq!(safe_name(".."), None);
        assert_eq!(safe_name("dir/"), None);
        assert_eq!(safe_name(""), None);
        assert_eq!(ascii_name("bé.pdf"), "b_.pdf");
    }
}
