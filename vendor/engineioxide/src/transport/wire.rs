//! Websocket framing (RFC 6455) for the direct websocket transport: server
//! frames out (unmasked, never fragmented) and client frames in (masked,
//! possibly fragmented), with the size limits of the engine's config.
//!
//! It holds no memory between messages: bytes are parsed where they were
//! read, and only a frame cut by the end of a read is kept.

use bytes::Bytes;
use tokio_tungstenite::tungstenite::{
    self,
    error::{CapacityError, ProtocolError},
};

const OP_CONTINUATION: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

/// The header of one server frame (final, unmasked): 2 to 10 bytes.
pub(crate) struct Header {
    bytes: [u8; 10],
    len: u8,
}

impl Header {
    pub(crate) fn new(opcode: u8, payload_len: usize) -> Self {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | opcode;
        let len = if payload_len < 126 {
            bytes[1] = payload_len as u8;
            2
        } else if let Ok(short) = u16::try_from(payload_len) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
            10
        };
        Self { bytes, len }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// Appends a whole server frame to `out`.
pub(crate) fn put_frame(out: &mut Vec<u8>, opcode: u8, parts: &[&[u8]]) {
    let len = parts.iter().map(|p| p.len()).sum();
    out.extend_from_slice(Header::new(opcode, len).as_slice());
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// A complete message from the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming {
    /// Valid UTF-8.
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Pong,
    Close,
}

/// The size limits of incoming messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub max_frame: usize,
    pub max_message: usize,
}

/// Reassembles client messages from the bytes read off the connection.
#[derive(Debug, Default)]
pub(crate) struct Reader {
    /// Bytes of a frame cut by the end of a read.
    held: Vec<u8>,
    /// A fragmented message being assembled: its opcode and payload so far.
    fragments: Option<Box<(u8, Vec<u8>)>>,
}

/// One parsed frame and how many input bytes it took.
struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
    consumed: usize,
}

impl Reader {
    /// Whether a partial frame or message is held.
    #[cfg(test)]
    pub(crate) fn is_idle(&self) -> bool {
        self.held.is_empty() && self.fragments.is_none()
    }

    /// Holds `bytes` (read ahead of a message being waited for) to be
    /// parsed by the next call of [`Reader::next`].
    pub(crate) fn hold(&mut self, bytes: &[u8]) {
        self.held.extend_from_slice(bytes);
    }

    /// The next complete message from the held bytes followed by `input`;
    /// advances `input` past what it takes. `None` when more bytes are
    /// needed (what is left of `input` is then held).
    pub(crate) fn next(
        &mut self,
        input: &mut &[u8],
        limits: Limits,
    ) -> Result<Option<Incoming>, tungstenite::Error> {
        loop {
            let frame = if self.held.is_empty() {
                let frame = parse(input, limits)?;
                match &frame {
                    Some(f) => *input = &input[f.consumed..],
                    None => {
                        self.held.extend_from_slice(input);
                        *input = &[];
                    }
                }
                frame
            } else {
                self.held.extend_from_slice(input);
                *input = &[];
                let frame = parse(&self.held, limits)?;
                if let Some(f) = &frame {
                    self.held.drain(..f.consumed);
                    if self.held.is_empty() {
                        // Gives the buffer back: an idle connection holds none.
                        self.held = Vec::new();
                    }
                }
                frame
            };
            let Some(frame) = frame else { return Ok(None) };
            if let Some(message) = self.assemble(frame, limits)? {
                return Ok(Some(message));
            }
        }
    }

    /// A message when `frame` completes one.
    fn assemble(
        &mut self,
        frame: Frame,
        limits: Limits,
    ) -> Result<Option<Incoming>, tungstenite::Error> {
        let Frame {
            fin,
            opcode,
            payload,
            ..
        } = frame;
        let (opcode, payload) = match opcode {
            OP_CLOSE => return Ok(Some(Incoming::Close)),
            OP_PING => return Ok(Some(Incoming::Ping(payload.into()))),
            OP_PONG => return Ok(Some(Incoming::Pong)),
            OP_TEXT | OP_BINARY if self.fragments.is_some() => {
                return Err(ProtocolError::ExpectedFragment(data_kind(opcode)).into());
            }
            OP_TEXT | OP_BINARY if !fin => {
                self.fragments = Some(Box::new((opcode, payload)));
                return Ok(None);
            }
            OP_TEXT | OP_BINARY => (opcode, payload),
            OP_CONTINUATION => {
                let Some(fragments) = self.fragments.as_mut() else {
                    return Err(ProtocolError::UnexpectedContinueFrame.into());
                };
                let size = fragments.1.len() + payload.len();
                if size > limits.max_message {
                    return Err(too_long(size, limits.max_message));
                }
                fragments.1.extend_from_slice(&payload);
                if !fin {
                    return Ok(None);
                }
                let (opcode, payload) = *self.fragments.take().expect("checked above");
                (opcode, payload)
            }
            other => return Err(ProtocolError::UnknownDataFrameType(other).into()),
        };
        if opcode == OP_BINARY {
            return Ok(Some(Incoming::Binary(payload.into())));
        }
        match String::from_utf8(payload) {
            Ok(text) => Ok(Some(Incoming::Text(text.into_bytes().into()))),
            Err(_) => Err(tungstenite::Error::Utf8(
                "invalid UTF-8 in a text message".into(),
            )),
        }
    }
}

/// The fuzzer's way in (Herald's `fuzz/`, feature `__fuzz`, never in a
/// server build): the messages a reader makes of `input` read in pieces of
/// `cut` bytes, as (kind, payload) with kind `t`ext, `b`inary, p`i`ng,
/// p`o`ng or `c`lose, and whether it stopped on a protocol error.
#[cfg(feature = "__fuzz")]
pub fn fuzz_read(
    input: &[u8],
    cut: usize,
    max_frame: usize,
    max_message: usize,
) -> (Vec<(u8, Vec<u8>)>, bool) {
    let limits = Limits {
        max_frame,
        max_message,
    };
    let mut reader = Reader::default();
    let mut out = Vec::new();
    for mut piece in input.chunks(cut.max(1)) {
        loop {
            match reader.next(&mut piece, limits) {
                Ok(Some(m)) => out.push(match m {
                    Incoming::Text(b) => (b't', b.to_vec()),
                    Incoming::Binary(b) => (b'b', b.to_vec()),
                    Incoming::Ping(b) => (b'i', b.to_vec()),
                    Incoming::Pong => (b'o', Vec::new()),
                    Incoming::Close => (b'c', Vec::new()),
                }),
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fn data_kind(opcode: u8) -> tungstenite::protocol::frame::coding::Data {
    use tungstenite::protocol::frame::coding::Data;
    if opcode == OP_TEXT {
        Data::Text
    } else {
        Data::Binary
    }
}

fn too_long(size: usize, max_size: usize) -> tungstenite::Error {
    CapacityError::MessageTooLong { size, max_size }.into()
}

/// Parses one client frame from the start of `buf`; `None` when `buf`
/// holds only part of it.
fn parse(buf: &[u8], limits: Limits) -> Result<Option<Frame>, tungstenite::Error> {
    let [b0, b1, ..] = *buf else { return Ok(None) };
    if b0 & 0x70 != 0 {
        return Err(ProtocolError::NonZeroReservedBits.into());
    }
    if b1 & 0x80 == 0 {
        return Err(ProtocolError::UnmaskedFrameFromClient.into());
    }
    let (fin, opcode) = (b0 & 0x80 != 0, b0 & 0x0F);
    let (len, mut at) = match b1 & 0x7F {
        126 => match buf.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    if opcode >= OP_CLOSE {
        if !fin {
            return Err(ProtocolError::FragmentedControlFrame.into());
        }
        if len > 125 {
            return Err(ProtocolError::ControlFrameTooBig.into());
        }
    }
    let max = limits.max_frame.min(limits.max_message);
    let len = match usize::try_from(len) {
        Ok(len) if len <= max => len,
        _ => return Err(too_long(usize::try_from(len).unwrap_or(usize::MAX), max)),
    };
    let Some(mask) = buf.get(at..at + 4) else {
        return Ok(None);
    };
    let mask = [mask[0], mask[1], mask[2], mask[3]];
    at += 4;
    // No `at + len`: with limits near `usize::MAX` it could overflow.
    let Some(masked) = buf.get(at..).and_then(|rest| rest.get(..len)) else {
        return Ok(None);
    };
    let payload = masked
        .iter()
        .zip(mask.iter().cycle())
        .map(|(b, m)| b ^ m)
        .collect();
    Ok(Some(Frame {
        fin,
        opcode,
        payload,
        consumed: at + len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_frame: 1000,
        max_message: 1500,
    };

    /// A client frame: masked with a fixed key.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n < 65536 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        out
    }

    fn all(reader: &mut Reader, mut input: &[u8]) -> Vec<Incoming> {
        let mut out = Vec::new();
        while let Some(m) = reader.next(&mut input, LIMITS).unwrap() {
            out.push(m);
        }
        assert!(input.is_empty());
        out
    }

    #[test]
    fn headers_use_the_shortest_length_encoding() {
        assert_eq!(Header::new(OP_TEXT, 5).as_slice(), &[0x81, 5]);
        assert_eq!(Header::new(OP_TEXT, 125).as_slice(), &[0x81, 125]);
        assert_eq!(Header::new(OP_BINARY, 126).as_slice(), &[0x82, 126, 0, 126]);
        assert_eq!(
            Header::new(OP_TEXT, 65536).as_slice(),
            &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
        let mut out = Vec::new();
        put_frame(&mut out, OP_TEXT, &[b"4", b"hi"]);
        assert_eq!(out, [0x81, 3, b'4', b'h', b'i']);
    }

    #[test]
    fn server_frames_read_back_with_tungstenite() {
        use tungstenite::protocol::frame::FrameHeader;
        for len in [0usize, 125, 126, 65535, 65536] {
            let mut out = Vec::new();
            put_frame(&mut out, OP_BINARY, &[&vec![7u8; len]]);
            let mut cursor = std::io::Cursor::new(out.as_slice());
            let (header, length) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
            assert!(header.is_final && header.mask.is_none());
            assert_eq!(length as usize, len);
            assert_eq!(out.len() - cursor.position() as usize, len);
        }
    }

    #[test]
    fn parses_messages_in_one_read_and_split_at_every_byte() {
        let mut bytes = client_frame(true, OP_TEXT, b"4hello");
        bytes.extend(client_frame(true, OP_BINARY, &[1, 2, 3]));
        bytes.extend(client_frame(true, OP_PING, b"p"));
        bytes.extend(client_frame(true, OP_TEXT, &[b'x'; 300]));
        let expected = vec![
            Incoming::Text(Bytes::from_static(b"4hello")),
            Incoming::Binary(Bytes::from_static(&[1, 2, 3])),
            Incoming::Ping(Bytes::from_static(b"p")),
            Incoming::Text(Bytes::from(vec![b'x'; 300])),
        ];
        assert_eq!(all(&mut Reader::default(), &bytes), expected);
        for cut in 1..bytes.len() {
            let mut reader = Reader::default();
            let mut got = all(&mut reader, &bytes[..cut]);
            got.extend(all(&mut reader, &bytes[cut..]));
            assert_eq!(got, expected, "cut at {cut}");
            assert!(reader.is_idle());
            assert_eq!(reader.held.capacity(), 0, "the buffer is given back");
        }
    }

    #[test]
    fn assembles_fragments_with_control_frames_between() {
        let mut bytes = client_frame(false, OP_TEXT, b"4he");
        bytes.extend(client_frame(true, OP_PONG, b""));
        bytes.extend(client_frame(false, OP_CONTINUATION, b"ll"));
        bytes.extend(client_frame(true, OP_CONTINUATION, b"o"));
        bytes.extend(client_frame(true, OP_CLOSE, &[3, 232]));
        let mut reader = Reader::default();
        assert_eq!(
            all(&mut reader, &bytes),
            vec![
                Incoming::Pong,
                Incoming::Text(Bytes::from_static(b"4hello")),
                Incoming::Close
            ]
        );
        assert!(reader.is_idle());
    }

    fn error(bytes: &[u8]) -> tungstenite::Error {
        let mut input = bytes;
        let mut reader = Reader::default();
        loop {
            match reader.next(&mut input, LIMITS) {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error"),
                Err(e) => return e,
            }
        }
    }

    #[test]
    fn refuses_what_the_protocol_forbids() {
        let mut unmasked = client_frame(true, OP_TEXT, b"4");
        unmasked[1] &= 0x7F;
        unmasked.truncate(2);
        unmasked.push(b'4');
        assert!(matches!(
            error(&unmasked),
            tungstenite::Error::Protocol(ProtocolError::UnmaskedFrameFromClient)
        ));
        let mut reserved = client_frame(true, OP_TEXT, b"4");
        reserved[0] |= 0x40;
        assert!(matches!(
            error(&reserved),
            tungstenite::Error::Protocol(ProtocolError::NonZeroReservedBits)
        ));
        assert!(matches!(
            error(&client_frame(false, OP_PING, b"")),
            tungstenite::Error::Protocol(ProtocolError::FragmentedControlFrame)
        ));
        assert!(matches!(
            error(&client_frame(true, OP_PING, &[0; 126])),
            tungstenite::Error::Protocol(ProtocolError::ControlFrameTooBig)
        ));
        assert!(matches!(
            error(&client_frame(true, OP_CONTINUATION, b"x")),
            tungstenite::Error::Protocol(ProtocolError::UnexpectedContinueFrame)
        ));
        let mut interleaved = client_frame(false, OP_TEXT, b"a");
        interleaved.extend(client_frame(true, OP_TEXT, b"b"));
        assert!(matches!(
            error(&interleaved),
            tungstenite::Error::Protocol(ProtocolError::ExpectedFragment(_))
        ));
        assert!(matches!(
            error(&client_frame(true, OP_TEXT, &[0xFF, 0xFE])),
            tungstenite::Error::Utf8(_)
        ));
        assert!(matches!(
            error(&client_frame(true, 0x3, b"")),
            tungstenite::Error::Protocol(ProtocolError::UnknownDataFrameType(3))
        ));
    }

    #[test]
    fn a_huge_length_under_unlimited_limits_waits_without_overflow() {
        let mut frame = vec![0x81, 0x80 | 127];
        frame.extend_from_slice(&u64::MAX.to_be_bytes());
        frame.extend_from_slice(&[1, 2, 3, 4, b'x']);
        let unlimited = Limits {
            max_frame: usize::MAX,
            max_message: usize::MAX,
        };
        let mut input = &frame[..];
        assert!(matches!(
            Reader::default().next(&mut input, unlimited),
            Ok(None)
        ));
    }

    #[test]
    fn refuses_frames_and_messages_over_the_limits_from_the_header_alone() {
        let big = client_frame(true, OP_TEXT, &[b'a'; 1001]);
        // Only the header has arrived: refused before the payload is read.
        assert!(matches!(
            error(&big[..8]),
            tungstenite::Error::Capacity(CapacityError::MessageTooLong { size: 1001, .. })
        ));
        let mut fragmented = client_frame(false, OP_TEXT, &[b'a'; 1000]);
        fragmented.extend(client_frame(true, OP_CONTINUATION, &[b'a'; 501]));
        assert!(matches!(
            error(&fragmented),
            tungstenite::Error::Capacity(CapacityError::MessageTooLong { size: 1501, .. })
        ));
    }
}
