//! The websocket connection that a socket's packet buffer writes to
//! directly: frames are encoded and written by whichever thread sends them
//! (for a broadcast, the broadcasting thread), with one vectored write and
//! no wake-up of the connection's task. Bytes the kernel does not take at
//! once wait in [`Unsent`] (the only buffer, held only while they wait) and
//! go before anything else; the connection's task writes them when the
//! socket can take more.

use std::{
    io::{self, IoSlice},
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use bytes::Bytes;
use engineioxide_core::{Packet, PacketBuf, ProtocolVersion};
use tokio::net::TcpStream;

use super::wire::{self, Header};
use crate::queue::Direct;

/// Most bytes the connection's task encodes per flush before it looks at
/// the client's side again (a pong is read between rounds).
const FLUSH_ROUND_BYTES: usize = 64 * 1024;

/// Encoded bytes the kernel has not taken yet, and the answer to the
/// client's latest ping while they wait.
#[derive(Debug, Default)]
struct Unsent {
    bytes: Vec<u8>,
    /// How much of `bytes` is written: a large message is written from a
    /// cursor, not moved down after every write.
    written: usize,
    /// The payload of the latest ping not answered yet. Only the latest is
    /// answered (RFC 6455 5.5.3), so a client that pings without reading
    /// cannot make the server buffer pongs.
    pong: Option<Bytes>,
}

impl Unsent {
    fn is_empty(&self) -> bool {
        self.written == self.bytes.len() && self.pong.is_none()
    }

    /// Appends, after what waits, the bytes of a frame or several.
    fn buffer(&mut self) -> &mut Vec<u8> {
        if self.written == self.bytes.len() {
            self.bytes.clear();
            self.written = 0;
        }
        &mut self.bytes
    }
}

/// An open websocket over TCP, written from any thread.
#[derive(Debug)]
pub(crate) struct Wire {
    pub(crate) stream: TcpStream,
    protocol: ProtocolVersion,
    unsent: Mutex<Unsent>,
    /// A write failed: what follows is dropped, and the connection's task
    /// ends the session (`flush` reports the failure).
    failed: AtomicBool,
    /// The close frame is written: the connection may [`Wire::linger`].
    closed: AtomicBool,
}

impl Wire {
    pub(crate) fn new(stream: TcpStream, protocol: ProtocolVersion) -> Self {
        Self {
            stream,
            protocol,
            unsent: Mutex::new(Unsent::default()),
            failed: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        }
    }

    fn unsent(&self) -> MutexGuard<'_, Unsent> {
        // Every critical section leaves the buffer whole.
        self.unsent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame behind what waits unsent (the open packet, a
    /// handshake answer) and writes what it can now.
    pub(crate) fn put_frame(&self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut unsent = self.unsent();
        wire::put_frame(unsent.buffer(), opcode, &[payload]);
        self.write_unsent(&mut unsent).map(drop)
    }

    /// Queues packets behind what waits unsent, whatever waits, and writes
    /// what it can now.
    pub(crate) fn put_packets(&self, packets: PacketBuf) -> io::Result<()> {
        let mut unsent = self.unsent();
        encode(unsent.buffer(), self.protocol, packets);
        self.write_unsent(&mut unsent).map(drop)
    }

    /// Answers a ping: at once, or once what waits is written (a later ping
    /// replaces it).
    pub(crate) fn pong(&self, payload: Bytes) -> io::Result<()> {
        let mut unsent = self.unsent();
        unsent.pong = Some(payload);
        self.write_unsent(&mut unsent).map(drop)
    }

    /// Writes a close frame, the last frame (a pong that waits goes before
    /// it), and everything before it.
    pub(crate) async fn close(&self) -> io::Result<()> {
        {
            let mut unsent = self.unsent();
            if let Some(pong) = unsent.pong.take() {
                wire::put_frame(unsent.buffer(), wire::OP_PONG, &[&pong]);
            }
            wire::put_frame(unsent.buffer(), wire::OP_CLOSE, &[]);
            self.write_unsent(&mut unsent)?;
        }
        self.drain().await?;
        self.closed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Whether the close frame was written.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Writes until nothing waits unsent.
    pub(crate) async fn drain(&self) -> io::Result<()> {
        loop {
            if !self.write_unsent(&mut self.unsent())? {
                return Ok(());
            }
            self.stream.writable().await?;
        }
    }

    /// Ends the connection without a reset: shuts down the writing side
    /// (the client reads everything sent, then the end of the stream) and
    /// reads and drops what the client still sends until it closes its
    /// side. Closing with unread input would make the kernel answer with a
    /// reset, which can destroy what the client has not read yet: the last
    /// event, the close packet, the close frame. The caller bounds the wait,
    /// and runs it once the session is closed (it would otherwise delay the
    /// disconnect handlers).
    pub(crate) async fn linger(&self) {
        let _ = socket2::SockRef::from(&self.stream).shutdown(std::net::Shutdown::Write);
        let mut buf = [0u8; 1024];
        while self.stream.readable().await.is_ok() {
            match self.stream.try_read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }

    fn fail(&self, unsent: &mut Unsent, e: io::Error) -> io::Error {
        self.failed.store(true, Ordering::Relaxed);
        *unsent = Unsent::default();
        e
    }

    /// Whether bytes still wait unsent after writing what the kernel takes.
    fn write_unsent(&self, unsent: &mut Unsent) -> io::Result<bool> {
        if self.failed.load(Ordering::Relaxed) {
            *unsent = Unsent::default();
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        loop {
            if unsent.written == unsent.bytes.len() {
                let Some(pong) = unsent.pong.take() else {
                    break;
                };
                let buffer = unsent.buffer();
                wire::put_frame(buffer, wire::OP_PONG, &[&pong]);
            }
            match self.stream.try_write(&unsent.bytes[unsent.written..]) {
                Ok(0) => return Err(self.fail(unsent, io::ErrorKind::WriteZero.into())),
                Ok(n) => unsent.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.fail(unsent, e)),
            }
        }
        // Gives the buffer back: an idle connection holds none.
        *unsent = Unsent::default();
        Ok(false)
    }

    /// Writes one message packet without copying it: its header, the
    /// packet type and the payload in one vectored write. Returns whether
    /// part of it waits unsent (or the write failed: the task is woken to
    /// report it).
    fn write_message(&self, unsent: &mut Unsent, msg: &[u8]) -> bool {
        let header = Header::new(wire::OP_TEXT, msg.len() + 1);
        let parts = [header.as_slice(), b"4", msg];
        let slices = parts.map(IoSlice::new);
        let mut written = loop {
            match self.stream.try_write_vectored(&slices) {
                Ok(0) => {
                    self.fail(unsent, io::ErrorKind::WriteZero.into());
                    return true;
                }
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 0,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(unsent, e);
                    return true;
                }
            }
        };
        let buffer = unsent.buffer();
        for part in parts {
            let skip = written.min(part.len());
            buffer.extend_from_slice(&part[skip..]);
            written -= skip;
        }
        !unsent.is_empty()
    }
}

/// Appends the frames of `packets` (a Noop has none: it only ends a poll).
fn encode(out: &mut Vec<u8>, protocol: ProtocolVersion, packets: PacketBuf) {
    for packet in packets {
        match packet {
            Packet::Message(msg) => wire::put_frame(out, wire::OP_TEXT, &[b"4", msg.as_bytes()]),
            Packet::Binary(bin) | Packet::BinaryV3(bin) => {
                // v3 puts the packet type before binary data.
                let kind: &[u8] = if protocol == ProtocolVersion::V3 {
                    &[4]
                } else {
                    &[]
                };
                wire::put_frame(out, wire::OP_BINARY, &[kind, &bin]);
            }
            Packet::Noop => {}
            other => {
                let text = String::from(other);
                wire::put_frame(out, wire::OP_TEXT, &[text.as_bytes()]);
            }
        }
    }
}

impl Direct<PacketBuf> for Wire {
    fn offer(&self, packets: PacketBuf) -> Result<bool, PacketBuf> {
        let mut unsent = self.unsent();
        if !unsent.is_empty() {
            return Err(packets);
        }
        if self.failed.load(Ordering::Relaxed) {
            // Dropped; the task, already woken, ends the session.
            return Ok(false);
        }
        if let [Packet::Message(msg)] = packets.as_slice() {
            return Ok(self.write_message(&mut unsent, msg.as_bytes()));
        }
        encode(unsent.buffer(), self.protocol, packets);
        // A failure wakes the task too, so that it ends the session.
        Ok(self.write_unsent(&mut unsent).unwrap_or(true))
    }

    fn poll_unsent(&self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.failed.load(Ordering::Relaxed) {
            // `flush` reports it.
            return Poll::Ready(true);
        }
        if self.unsent().is_empty() {
            return Poll::Ready(false);
        }
        match self.stream.poll_write_ready(cx) {
            Poll::Ready(Err(_)) => {
                // The I/O driver is gone (runtime shutdown): a write would
                // only say "would block", forever.
                self.failed.store(true, Ordering::Relaxed);
                Poll::Ready(true)
            }
            ready => ready.map(|_| true),
        }
    }

    fn flush(&self, next: &mut dyn FnMut() -> Option<PacketBuf>) -> io::Result<()> {
        let mut unsent = self.unsent();
        if self.write_unsent(&mut unsent)? {
            return Ok(());
        }
        let buffer = unsent.buffer();
        while buffer.len() < FLUSH_ROUND_BYTES
            && let Some(packets) = next()
        {
            encode(buffer, self.protocol, packets);
        }
        self.write_unsent(&mut unsent).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;
    use tokio::io::AsyncReadExt;

    async fn pair() -> (Wire, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap());
        let (client, accepted) = tokio::join!(client, listener.accept());
        let wire = Wire::new(accepted.unwrap().0, ProtocolVersion::V4);
        (wire, client.unwrap())
    }

    fn message(text: &'static str) -> PacketBuf {
        smallvec![Packet::Message(text.into())]
    }

    #[tokio::test]
    async fn packets_are_written_at_once_and_queued_ones_are_flushed_together() {
        let (wire, mut client) = pair().await;
        assert_eq!(wire.offer(message("a")), Ok(false), "written at once");
        let mut queue = vec![message("b"), message("c")].into_iter();
        wire.flush(&mut || queue.next()).unwrap();
        let mut got = [0u8; 12];
        client.read_exact(&mut got).await.unwrap();
        let frame = |c| [0x81, 2, b'4', c];
        assert_eq!(got, [frame(b'a'), frame(b'b'), frame(b'c')].concat()[..]);
        assert_eq!(wire.unsent().bytes.capacity(), 0, "no buffer kept");
    }

    #[tokio::test]
    async fn pings_from_a_client_that_does_not_read_get_one_pending_pong() {
        let (wire, _client) = pair().await;
        let big: String = "x".repeat(8 << 20);
        assert_eq!(wire.offer(smallvec![Packet::Message(big.into())]), Ok(true));
        let waiting = {
            let unsent = wire.unsent();
            unsent.bytes.len() - unsent.written
        };
        for i in 0..100_000u32 {
            wire.pong(Bytes::from(i.to_be_bytes().to_vec())).unwrap();
        }
        let unsent = wire.unsent();
        assert!(
            unsent.bytes.len() - unsent.written <= waiting,
            "no pong buffered"
        );
        assert_eq!(unsent.pong.as_deref(), Some(&99_999u32.to_be_bytes()[..]));
    }

    #[tokio::test]
    async fn a_waiting_pong_goes_before_the_close_frame() {
        let (wire, mut client) = pair().await;
        let big: String = "x".repeat(8 << 20);
        assert_eq!(wire.offer(smallvec![Packet::Message(big.into())]), Ok(true));
        wire.pong(Bytes::from_static(b"pp")).unwrap();
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            client.read_to_end(&mut all).await.unwrap();
            all
        });
        wire.close().await.unwrap();
        assert!(wire.is_closed());
        wire.linger().await;
        drop(wire);
        let all = reader.await.unwrap();
        assert_eq!(&all[all.len() - 6..], &[0x8A, 2, b'p', b'p', 0x88, 0]);
    }

    #[tokio::test]
    async fn bytes_the_kernel_does_not_take_wait_and_go_first() {
        let (wire, mut client) = pair().await;
        let big: String = "x".repeat(8 << 20);
        let packets: PacketBuf = smallvec![Packet::Message(big.into())];
        assert_eq!(wire.offer(packets), Ok(true), "part of it waits unsent");
        let later = wire
            .offer(message("z"))
            .expect_err("given back, to be queued behind the unsent bytes");
        let total = 10 + 1 + (8 << 20) + 4;
        let reader = tokio::spawn(async move {
            let mut all = Vec::new();
            let mut buf = vec![0u8; 1 << 16];
            while all.len() < total {
                let n = client.read(&mut buf).await.unwrap();
                all.extend_from_slice(&buf[..n]);
            }
            all
        });
        let mut queue = vec![later].into_iter();
        while !wire.unsent().is_empty() || queue.len() > 0 {
            std::future::poll_fn(|cx| wire.poll_unsent(cx).map(drop)).await;
            wire.flush(&mut || queue.next()).unwrap();
        }
        let all = reader.await.unwrap();
        assert_eq!(&all[..2], &[0x81, 127]);
        assert!(all[11..11 + (8 << 20)].iter().all(|b| *b == b'x'));
        assert_eq!(&all[all.len() - 4..], &[0x81, 2, b'4', b'z']);
    }
}
