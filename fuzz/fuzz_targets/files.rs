//! The pure parts of shared files, on any bytes: the content types and
//! the first bytes that must match them, the name a file is offered
//! under, and a download's `Range` header. The first 8 bytes are a file
//! size; the rest is the text (content type, name, header) and the head.
//! What must hold: a type is recognised whatever its case and parameters,
//! and by its first `SNIFF_LEN` bytes alone; a kept name has no path,
//! nothing that breaks `Content-Disposition`, no leading dot, is at most
//! 255 characters and stays itself when made safe again, and its ASCII
//! form is one character per character; a range is inside the file.
#![no_main]

use herald::files::{ascii_name, parse_range, safe_name, Ranged, Signature, SNIFF_LEN};
use libfuzzer_sys::fuzz_target;

const KINDS: [Signature; 4] = [
    Signature::Pdf,
    Signature::Png,
    Signature::Jpeg,
    Signature::Dicom,
];

fuzz_target!(|data: &[u8]| {
    let Some((size, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let size = u64::from_le_bytes(*size);
    let text = String::from_utf8_lossy(rest);

    // Content types: the essence before `;`, in any ASCII case.
    let of = Signature::of(&text);
    assert_eq!(of, Signature::of(&text.to_ascii_uppercase()));
    if !text.contains(';') {
        assert_eq!(of, Signature::of(&format!("{text}; charset=x")));
    }
    // Sniffing reads the first SNIFF_LEN bytes, no more.
    for kind in KINDS {
        let head = &rest[..rest.len().min(SNIFF_LEN)];
        assert_eq!(kind.matches(rest), kind.matches(head), "{kind:?}");
    }

    // The name a file is offered under.
    if let Some(name) = safe_name(&text) {
        assert!(!name.is_empty() && name.chars().count() <= 255);
        assert!(
            !name.contains(['/', '\\', '"', ';', ':', '*', '?', '<', '>', '|']),
            "{name:?} from {text:?}"
        );
        assert!(!name.chars().any(char::is_control), "{name:?}");
        assert!(
            !name.starts_with('.') && name != "..",
            "{name:?} from {text:?}"
        );
        assert_eq!(name.trim(), name, "{name:?} from {text:?}");
        assert_eq!(
            safe_name(&name).as_deref(),
            Some(name.as_str()),
            "from {text:?}"
        );
        let ascii = ascii_name(&name);
        assert_eq!(ascii.chars().count(), name.chars().count());
        assert!(ascii.bytes().all(|b| b.is_ascii_graphic() || b == b' ') && !ascii.contains('"'));
    }

    // A download's range, as the header came and after `bytes=`.
    for header in [text.to_string(), format!("bytes={text}")] {
        match parse_range(Some(&header), size) {
            Ranged::Part(r) => assert!(
                r.start < r.end && r.end <= size,
                "{header:?} of {size}: {r:?}"
            ),
            Ranged::Unsatisfiable => assert!(header.trim().starts_with("bytes=")),
            Ranged::Whole => {}
        }
    }
});
