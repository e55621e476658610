//! The websocket connection that a socket's packet buffer writes to
//! directly: frames are encoded and written by whichever thread sends them
//! (for a broadcast, the broadcasting thread), with one vectored write and
//! no wake-up of the connection's task. Bytes the kernel does not take at
//! once wait in `unsent` (the only buffer, held only while they wait) and
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

use engineioxide_core::{Packet, PacketBuf, ProtocolVersion};
use tokio::net::TcpStream;

use super::wire::{self, Header};
use crate::queue::Direct;

/// Most bytes the connection's task encodes per flush before it looks at
/// the client's side again (a pong is read between rounds).
const FLUSH_ROUND_BYTES: usize = 64 * 1024;

/// An open websocket over TCP, written from any thread.
#[derive(Debug)]
pub(crate) struct Wire {
    pub(crate) stream: TcpStream,
    protocol: ProtocolVersion,
    /// Encoded bytes the kernel has not taken yet.
    unsent: Mutex<Vec<u8>>,
    /// A write failed: what follows is dropped (the reading side sees the
    /// failure and closes the session).
    failed: AtomicBool,
}

impl Wire {
    pub(crate) fn new(stream: TcpStream, protocol: ProtocolVersion) -> Self {
        Self {
            stream,
            protocol,
            unsent: Mutex::new(Vec::new()),
            failed: AtomicBool::new(false),
        }
    }

    fn unsent(&self) -> MutexGuard<'_, Vec<u8>> {
        // Every critical section leaves the buffer whole.
        self.unsent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a frame behind what waits unsent (a control frame, the open
    /// packet, a handshake answer) and writes what it can now.
    pub(crate) fn put_frame(&self, opcode: u8, payload: &[u8]) -> io::Result<()> {
        let mut unsent = self.unsent();
        wire::put_frame(&mut unsent, opcode, &[payload]);
        self.write_unsent(&mut unsent).map(drop)
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

    /// Whether bytes still wait unsent after writing what the kernel takes.
    fn write_unsent(&self, unsent: &mut Vec<u8>) -> io::Result<bool> {
        if self.failed.load(Ordering::Relaxed) {
            *unsent = Vec::new();
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        while !unsent.is_empty() {
            match self.stream.try_write(unsent) {
                Ok(n) => drop(unsent.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
                Err(e) => {
                    self.failed.store(true, Ordering::Relaxed);
                    *unsent = Vec::new();
                    return Err(e);
                }
            }
        }
        // Gives the buffer back: an idle connection holds none.
        *unsent = Vec::new();
        Ok(false)
    }

    /// Writes one message packet without copying it: its header, the
    /// packet type and the payload in one vectored write. Returns whether
    /// part of it waits unsent.
    fn write_message(&self, unsent: &mut Vec<u8>, msg: &[u8]) -> bool {
        let header = Header::new(wire::OP_TEXT, msg.len() + 1);
        let parts = [header.as_slice(), b"4", msg];
        let slices = parts.map(IoSlice::new);
        let mut written = match self.stream.try_write_vectored(&slices) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(_) => {
                self.failed.store(true, Ordering::Relaxed);
                return false;
            }
        };
        for part in parts {
            let skip = written.min(part.len());
            unsent.extend_from_slice(&part[skip..]);
            written -= skip;
        }
        !unsent.is_empty()
    }
}

/// Appends the frames of `packets` (a Noop has none: it only ends a poll).
fn encode(unsent: &mut Vec<u8>, protocol: ProtocolVersion, packets: PacketBuf) {
    for packet in packets {
        match packet {
            Packet::Message(msg) => wire::put_frame(unsent, wire::OP_TEXT, &[b"4", msg.as_bytes()]),
            Packet::Binary(bin) | Packet::BinaryV3(bin) => {
                // v3 puts the packet type before binary data.
                let kind: &[u8] = if protocol == ProtocolVersion::V3 {
                    &[4]
                } else {
                    &[]
                };
                wire::put_frame(unsent, wire::OP_BINARY, &[kind, &bin]);
            }
            Packet::Noop => {}
            other => {
                let text = String::from(other);
                wire::put_frame(unsent, wire::OP_TEXT, &[text.as_bytes()]);
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
            return Ok(false);
        }
        if let [Packet::Message(msg)] = packets.as_slice() {
            return Ok(self.write_message(&mut unsent, msg.as_bytes()));
        }
        encode(&mut unsent, self.protocol, packets);
        Ok(self.write_unsent(&mut unsent).unwrap_or(false))
    }

    fn poll_unsent(&self, cx: &mut Context<'_>) -> Poll<bool> {
        if self.unsent().is_empty() {
            return Poll::Ready(false);
        }
        // An error is reported by the write that follows.
        self.stream.poll_write_ready(cx).map(|_| true)
    }

    fn flush(&self, next: &mut dyn FnMut() -> Option<PacketBuf>) -> io::Result<()> {
        let mut unsent = self.unsent();
        if self.write_unsent(&mut unsent)? {
            return Ok(());
        }
        while unsent.len() < FLUSH_ROUND_BYTES
            && let Some(packets) = next()
        {
            encode(&mut unsent, self.protocol, packets);
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
        assert_eq!(wire.unsent().capacity(), 0, "no buffer kept");
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
