//! The content types Herald accepts and the first bytes each must begin
//! with: a declared type alone is the sender's word, and a viewer opening a
//! "PDF" that is an HTML page or an executable is what this stops.

/// How many leading bytes are enough to recognise every known type
/// (DICOM's "DICM" ends at byte 132).
pub const SNIFF_LEN: usize = 132;

/// A known content type's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    Pdf,
    Png,
    Jpeg,
    /// A DICOM Part 10 file: 128 bytes of preamble, then "DICM".
    Dicom,
}

impl Signature {
    /// The signature of a content type (parameters after `;` ignored).
    pub fn of(content_type: &str) -> Option<Signature> {
        let essence = content_type.split(';').next()?.trim().to_ascii_lowercase();
        match essence.as_str() {
            "application/pdf" => Some(Signature::Pdf),
            "image/png" => Some(Signature::Png),
            "image/jpeg" => Some(Signature::Jpeg),
            "application/dicom" => Some(Signature::Dicom),
            _ => None,
        }
    }

    /// Whether `head` (the file's first bytes, up to [`SNIFF_LEN`]) begins
    /// as this type must.
    pub fn matches(self, head: &[u8]) -> bool {
        match self {
            Signature::Pdf => head.starts_with(b"%PDF-"),
            Signature::Png => head.starts_with(b"\x89PNG\r\n\x1a\n"),
            Signature::Jpeg => head.starts_with(&[0xFF, 0xD8, 0xFF]),
            Signature::Dicom => head.len() >= 132 && &head[128..132] == b"DICM",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_type_is_recognised_by_its_first_bytes_only() {
        assert_eq!(Signature::of("application/PDF"), Some(Signature::Pdf));
        assert_eq!(Signature::of("image/png; x=1"), Some(Signature::Png));
        assert_eq!(Signature::of("text/html"), None);
        assert!(Signature::Pdf.matches(b"%PDF-1.7\n"));
        assert!(!Signature::Pdf.matches(b"<html>"));
        assert!(Signature::Png.matches(b"\x89PNG\r\n\x1a\n...."));
        assert!(Signature::Jpeg.matches(&[0xFF, 0xD8, 0xFF, 0xE0]));
        let mut dicom = vec![0u8; 128];
        dicom.extend_from_slice(b"DICM");
        assert!(Signature::Dicom.matches(&dicom));
        assert!(!Signature::Dicom.matches(&dicom[..131]), "too short");
        assert!(!Signature::Dicom.matches(&[0u8; 132]));
    }
}
