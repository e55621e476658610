//! The websocket transport over a plain TCP connection, without a
//! websocket library in between: the socket's packet buffer writes frames
//! straight to the connection ([`Wire`]), and one task per connection reads
//! the client's frames ([`Reader`]), runs the heartbeat and flushes what the
//! kernel could not take at once.
//!
//! [`ws::new_req`](super::ws::new_req) takes this path when the upgraded
//! connection is a `TcpStream` served by hyper's HTTP/1 connection; any
//! other connection goes through tungstenite as before. Protocol and
//! behaviour are those of the tungstenite path (same handshakes, heartbeat,
//! closing flush and errors); what differs is where the work and the memory
//! go: no reader or writer buffer, and no task wake-up per sent packet.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{FutureExt as _, future::Either};
use http::request::Parts;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::future::FutureExt as _;

use engineioxide_core::{Packet, ProtocolVersion, Sid, Str, TransportType};

use super::direct::Wire;
use super::wire::{self, Incoming, Limits, Reader};
use super::ws::{
    Ending, Flow, abandon_upgrade, begin_upgrade, bounded, heartbeat_due, on_binary, on_text,
};
use crate::heartbeat::Heartbeat;
use crate::{
    DisconnectReason, Socket, engine::EngineIo, errors::Error, handler::EngineIoHandler,
    socket::InternalRx, transport::make_open_packet,
};

/// Most bytes read per turn before the task looks at its other work, so a
/// flooding client cannot starve its own outbound traffic.
const READ_ROUND_BYTES: usize = 64 * 1024;

/// Serves an upgraded websocket over `stream`; `early` holds bytes the
/// client sent right behind its upgrade request.
pub(crate) fn serve<H: EngineIoHandler>(
    engine: Arc<EngineIo<H>>,
    stream: TcpStream,
    early: Bytes,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> impl Future<Output = Result<(), Error>> + Send + 'static {
    let wire = Arc::new(Wire::new(stream, protocol));
    let mut reader = Reader::default();
    reader.hold(&early);
    open(engine, wire, reader, protocol, sid, req_data).then(|opened| match opened {
        Ok((engine, socket, wire, reader, beat)) => {
            let ending = Ending::new(&engine, &socket);
            let kept = wire.clone();
            let run = run(engine, socket, wire, reader, beat);
            // The session is closed (and `run`'s hold on the socket's buffer
            // released, which its disconnect waits for) before lingering.
            Either::Left(run.then(move |end| {
                ending.finish(end);
                async move {
                    if kept.is_closed() {
                        bounded(Box::pin(kept.linger())).await;
                    }
                    Ok(())
                }
            }))
        }
        Err(e) => Either::Right(std::future::ready(Err(e))),
    })
}

fn limits(config: &crate::config::EngineIoConfig) -> Limits {
    Limits {
        max_frame: config.ws_max_frame_size,
        max_message: config.ws_max_message_size,
    }
}

type Opened<H> = (
    Arc<EngineIo<H>>,
    Arc<Socket<<H as EngineIoHandler>::Data>>,
    Arc<Wire>,
    Reader,
    Option<Heartbeat>,
);

/// Opens a new session on the websocket, or upgrades a polling session.
///
/// An `async` block, not an `async fn` (see [`run`]), and each wait that
/// happens once is boxed: the connection's task is as large as the largest
/// of its phases, and this one would otherwise be the largest.
#[allow(clippy::manual_async_fn)] // on purpose: see above
fn open<H: EngineIoHandler>(
    engine: Arc<EngineIo<H>>,
    wire: Arc<Wire>,
    mut reader: Reader,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> impl Future<Output = Result<Opened<H>, Error>> {
    async move {
        let limits = limits(&engine.config);
        let Some(sid) = sid else {
            let socket = engine.create_session(protocol, TransportType::Websocket, req_data, false);
            let open = Packet::Open(make_open_packet(
                TransportType::Websocket,
                socket.id,
                &engine.config,
            ));
            let sent = async {
                wire.put_frame(wire::OP_TEXT, String::from(open).as_bytes())?;
                wire.drain().await
            };
            if let Err(e) = Box::pin(sent).await {
                engine.close_session(socket.id, DisconnectReason::TransportError);
                return Err(io_error(e));
            }
            if socket.protocol == ProtocolVersion::V4 {
                let (interval, timeout) = (engine.config.ping_interval, engine.config.ping_timeout);
                let beat = Heartbeat::new(interval, timeout, Instant::now());
                return Ok((engine, socket, wire, reader, Some(beat)));
            }
            socket
                .clone()
                .spawn_heartbeat(engine.config.ping_interval, engine.config.ping_timeout);
            return Ok((engine, socket, wire, reader, None));
        };
        let socket = match engine.get_socket(sid) {
            None => return Err(Error::UnknownSessionID(sid)),
            Some(socket) if socket.is_ws() => return Err(Error::MultipleWebsocketRequests),
            Some(socket) => socket,
        };
        // Boxed: it runs once, and would otherwise enlarge every connection's
        // task by its size.
        let handshake = upgrade_handshake(&socket, &wire, &mut reader, limits);
        let handshake = tokio::time::timeout(engine.config.upgrade_timeout, handshake);
        match Box::pin(handshake.with_cancellation_token(&socket.cancellation_token)).await {
            Some(Ok(Ok(()))) => {}
            Some(Ok(Err(e))) => return Err(abandon_upgrade(&socket, Some(e))),
            Some(Err(_)) => return Err(abandon_upgrade(&socket, None)),
            None => return Err(Error::Upgrade),
        }
        // An upgraded session keeps the heartbeat task its polling start spawned.
        Ok((engine, socket, wire, reader, None))
    }
}

/// The polling-to-websocket upgrade (see [`super::ws`] for the exchange).
async fn upgrade_handshake<D>(
    socket: &Arc<Socket<D>>,
    wire: &Wire,
    reader: &mut Reader,
    limits: Limits,
) -> Result<(), Error>
where
    D: Default + Send + Sync + 'static,
{
    begin_upgrade(socket)?;
    // Waits for a poll in progress to finish.
    let _lock = socket.internal_rx.lock().await;

    match Packet::parse(socket.protocol, next_text(wire, reader, limits).await?)? {
        Packet::PingUpgrade => {
            wire.put_frame(wire::OP_TEXT, String::from(Packet::PongUpgrade).as_bytes())
                .map_err(io_error)?;
            wire.drain().await.map_err(io_error)?;
        }
        p => return Err(Error::BadPacket(p)),
    }
    match Packet::parse(socket.protocol, next_text(wire, reader, limits).await?)? {
        Packet::Upgrade => {}
        p => return Err(Error::BadPacket(p)),
    }
    socket.upgrade_to_websocket();
    Ok(())
}

/// The next message of the handshake, which must be text.
async fn next_text(wire: &Wire, reader: &mut Reader, limits: Limits) -> Result<Str, Error> {
    loop {
        if let Some(message) = reader.next(&mut &[][..], limits)? {
            return match message {
                Incoming::Text(text) => Ok(text_str(text)),
                _ => Err(Error::Upgrade),
            };
        }
        wire.stream.readable().await.map_err(io_error)?;
        let mut buf = [0u8; 4096];
        match wire.stream.try_read(&mut buf) {
            Ok(0) => return Err(Error::Upgrade),
            Ok(n) => reader.hold(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(io_error(e)),
        }
    }
}

/// An I/O failure of the connection, as the tungstenite path reports it
/// (a transport error).
fn io_error(e: std::io::Error) -> Error {
    tokio_tungstenite::tungstenite::Error::Io(e).into()
}

fn text_str(text: Bytes) -> Str {
    // SAFETY: the reader hands out text only once it is checked UTF-8.
    unsafe { Str::from_bytes_unchecked(text) }
}

/// What woke the connection task.
enum Wake {
    Readable(std::io::Result<()>),
    /// Packets or unsent bytes to write (`true`), or the buffer is closed
    /// and empty (`false`).
    Outgoing(bool),
    Cancelled,
    Heartbeat,
}

/// Reads the client's messages and writes what waits, until the client
/// closes (`Some(Ok)`), the transport fails (`Some(Err)`) or the session is
/// cancelled (`None`). Then the buffered packets still go out, within the
/// closing limit, and the connection closes.
///
/// An `async` block, not an `async fn`: an `async fn` keeps its arguments
/// twice in its state (as received, and moved into the body), and this state
/// is most of the connection's task, whose tokio cell is a multiple of 128
/// bytes (768 here; `size_probe` in `ws.rs` prints the future's size).
#[allow(clippy::manual_async_fn)] // on purpose: see above
fn run<H: EngineIoHandler>(
    engine: Arc<EngineIo<H>>,
    socket: Arc<Socket<H::Data>>,
    wire: Arc<Wire>,
    mut reader: Reader,
    mut beat: Option<Heartbeat>,
) -> impl Future<Output = Option<Result<(), Error>>> {
    async move {
        // The arguments are used in place rather than through references or
        // copies of their own (the limits are recomputed per read).
        // A polling request that was in progress during the upgrade may still hold the lock.
        let mut internal_rx = socket
            .internal_rx
            .lock()
            .with_cancellation_token(&socket.cancellation_token)
            .await?;
        let InternalRx {
            buffered_rx,
            peeked_packet,
        } = &mut *internal_rx;
        let token = &socket.cancellation_token;
        // A packet the last poll took but could not fit goes first.
        if let Some(packets) = peeked_packet.take().map(|p| *p) {
            // A failure shows at the next read or write.
            let _ = wire.put_packets(packets);
        }
        let _detach = buffered_rx.detach_on_drop();
        buffered_rx.set_direct(Some(wire.clone()));
        let mut timer = std::pin::pin!(tokio::time::sleep_until(
            beat.as_ref().map_or_else(Instant::now, Heartbeat::deadline)
        ));

        // Messages that came with the handshake are handled first.
        // The error is boxed: it is rare, and held inline it would make the
        // task's state 64 bytes larger across every wait.
        let mut end =
            read(&engine, &socket, &wire, &mut reader, limits(&engine.config)).map_err(Box::new);
        let mut read_first = true;
        loop {
            match end {
                Ok(Read { pong, end: None }) => {
                    if pong {
                        match beat.as_mut() {
                            Some(b) => {
                                b.pong();
                                timer.as_mut().reset(b.deadline());
                            }
                            // A signal already stored means the client is already known to be alive.
                            None => socket.heartbeat.notify_one(),
                        }
                    }
                }
                Ok(Read {
                    end: Some(closed), ..
                }) => {
                    if closed == End::CloseFrame {
                        // Answers the client's close frame; nothing may follow it.
                        buffered_rx.set_direct(None);
                        bounded(Box::pin(close_frame(&wire))).await;
                    }
                    return Some(Ok(()));
                }
                Err(e) => {
                    close(buffered_rx, &wire).await;
                    return Some(Err(*e));
                }
            }
            // Reading and writing take turns (see the tungstenite path).
            let wake = if read_first {
                tokio::select! {
                    biased;
                    _ = token.cancelled() => Wake::Cancelled,
                    r = wire.stream.readable() => Wake::Readable(r),
                    () = &mut timer, if beat.is_some() => Wake::Heartbeat,
                    open = buffered_rx.ready() => Wake::Outgoing(open),
                }
            } else {
                tokio::select! {
                    biased;
                    _ = token.cancelled() => Wake::Cancelled,
                    () = &mut timer, if beat.is_some() => Wake::Heartbeat,
                    open = buffered_rx.ready() => Wake::Outgoing(open),
                    r = wire.stream.readable() => Wake::Readable(r),
                }
            };
            read_first = !matches!(wake, Wake::Readable(_));
            end = Ok(Read::default());
            match wake {
                Wake::Readable(Ok(())) => {
                    end = read(&engine, &socket, &wire, &mut reader, limits(&engine.config))
                        .map_err(Box::new)
                }
                Wake::Readable(Err(e)) => end = Err(Box::new(io_error(e))),
                Wake::Heartbeat => heartbeat_due(&socket, &mut beat, timer.as_mut()),
                Wake::Outgoing(true) => {
                    if let Err(e) = buffered_rx.flush_direct() {
                        end = Err(Box::new(io_error(e)));
                    }
                }
                Wake::Outgoing(false) => return None,
                Wake::Cancelled => {
                    close(buffered_rx, &wire).await;
                    return None;
                }
            }
        }
    }
}

/// Writes what was buffered (the buffer is closed first, so this ends),
/// then a close frame, within the closing limit.
async fn close(
    buffered_rx: &mut crate::queue::Receiver<engineioxide_core::PacketBuf>,
    wire: &Wire,
) {
    buffered_rx.close();
    let closing = Box::pin(async move {
        while buffered_rx.ready().await {
            if buffered_rx.flush_direct().is_err() {
                return;
            }
        }
        // A place reserved before the buffer closed may still be used:
        // nothing may follow the close frame.
        buffered_rx.set_direct(None);
        close_frame(wire).await;
    });
    bounded(closing).await;
}

/// Writes a close frame; the connection then ends without a reset
/// ([`Wire::linger`], once the session is closed).
async fn close_frame(wire: &Wire) {
    // A failure ends the connection all the same.
    let _ = wire.close().await;
}

/// How the client ended the connection.
#[derive(Debug, PartialEq, Eq)]
enum End {
    CloseFrame,
    Eof,
}

/// What one turn of reading found.
#[derive(Debug, Default)]
struct Read {
    /// A pong (or a v3 ping): the client is alive.
    pong: bool,
    end: Option<End>,
}

/// Reads what the connection has (at most [`READ_ROUND_BYTES`]) and hands
/// each complete message on. Messages held from earlier reads go first.
fn read<H: EngineIoHandler>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    wire: &Wire,
    reader: &mut Reader,
    limits: Limits,
) -> Result<Read, Error> {
    let mut read = Read::default();
    // Not zeroed: the kernel writes what is read, and only that is looked at.
    let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 4096];
    let mut input: &[u8] = &[];
    let mut total = 0;
    loop {
        // A handler may close the session: what follows is not handled.
        while !socket.cancellation_token.is_cancelled()
            && let Some(message) = reader.next(&mut input, limits)?
        {
            match handle(engine, socket, wire, message)? {
                Flow::Continue => {}
                Flow::Pong => read.pong = true,
                Flow::Closed => {
                    read.end = Some(End::CloseFrame);
                    return Ok(read);
                }
            }
        }
        if total >= READ_ROUND_BYTES || socket.cancellation_token.is_cancelled() {
            return Ok(read);
        }
        match wire.stream.try_read_buf(&mut &mut buf[..]) {
            Ok(0) => {
                read.end = Some(End::Eof);
                return Ok(read);
            }
            Ok(n) => {
                total += n;
                // SAFETY: `try_read_buf` initialised the first `n` bytes.
                input = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n) };
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(read),
            Err(e) => return Err(io_error(e)),
        }
    }
}

/// Handles one message from the client.
fn handle<H: EngineIoHandler>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    wire: &Wire,
    message: Incoming,
) -> Result<Flow, Error> {
    match message {
        Incoming::Text(text) => on_text(engine, socket, text_str(text)),
        Incoming::Binary(data) => Ok(on_binary(engine, socket, data)),
        Incoming::Ping(payload) => {
            // A write error shows on the next read or write.
            let _ = wire.pong(payload);
            Ok(Flow::Continue)
        }
        Incoming::Pong => Ok(Flow::Continue),
        Incoming::Close => {
            engine.close_session(socket.id, DisconnectReason::TransportClose);
            Ok(Flow::Closed)
        }
    }
}
