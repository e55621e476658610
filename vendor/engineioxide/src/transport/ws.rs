//! The ws transport module is responsible for handling websocket connections
//! The only public function is [`new_req`] which is used to upgrade a http request to a websocket connection
//!
//! Other functions are used internally to handle the websocket connection through tasks and channels
//! and to handle upgrade from polling to ws

use std::{
    pin::{Pin, pin},
    sync::Arc,
};

use bytes::Bytes;
use futures_util::{FutureExt as _, SinkExt, StreamExt, future::Either};
use http::{HeaderValue, Request, Response, StatusCode, request::Parts};
use smallvec::smallvec;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc::error::TrySendError;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        handshake::derive_accept_key,
        protocol::{Role, WebSocketConfig},
    },
};
use tokio_util::future::FutureExt as _;

use engineioxide_core::{Packet, PacketBuf, ProtocolVersion, Sid, Str, TransportType};

use crate::heartbeat::{Due, Heartbeat};
use crate::{
    DisconnectReason, Socket, body::ResponseBody, config::EngineIoConfig, engine::EngineIo,
    errors::Error, handler::EngineIoHandler, queue::Receiver, socket::InternalRx,
    transport::make_open_packet,
};

/// Create a response for websocket upgrade
fn ws_response<B>(ws_key: &HeaderValue) -> Response<ResponseBody<B>> {
    let derived = derive_accept_key(ws_key.as_bytes());
    let sec = derived.parse::<HeaderValue>().unwrap();
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::UPGRADE, HeaderValue::from_static("websocket"))
        .header(
            http::header::CONNECTION,
            HeaderValue::from_static("Upgrade"),
        )
        .header(http::header::SEC_WEBSOCKET_ACCEPT, sec)
        .body(ResponseBody::empty_response())
        .unwrap() // we are only using constants
}

/// Upgrade a websocket request to create a websocket connection.
///
/// If a sid is provided in the query it means that is is upgraded from an existing HTTP polling request.
/// In this case the http polling request is closed and the SID is kept for the websocket
pub fn new_req<R: Send + 'static, B, H: EngineIoHandler>(
    engine: Arc<EngineIo<H>>,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req: Request<R>,
) -> Result<Response<ResponseBody<B>>, Error> {
    let mut req = req;
    // Taken out: the key is only needed for this answer, and the parts a
    // session keeps for its life would otherwise hold it (and a header map
    // allocated for it alone, ~150 bytes).
    let ws_key = req
        .headers_mut()
        .remove(http::header::SEC_WEBSOCKET_KEY)
        .ok_or(Error::InvalidWebSocketKey)?;
    if req.headers().is_empty() {
        *req.headers_mut() = http::HeaderMap::new();
    }
    // The upgrade handle is taken out of the request, so the parts the
    // session keeps for its life do not hold a copy of it (and need no
    // clone).
    let on_upgrade = hyper::upgrade::on(&mut req);
    let (mut parts, _body) = req.into_parts();
    // A map emptied by taking the upgrade out still holds its allocation.
    if parts.extensions.is_empty() {
        parts.extensions = http::Extensions::new();
    }

    // Built from combinators rather than one `async` block: the request
    // parts and the upgrade are only needed until the websocket is open, and
    // an `async` block would keep them in the task for the connection's life.
    let task = on_upgrade.then(move |conn| match conn {
        // A TCP connection served by hyper's HTTP/1 connection: frames go
        // straight to it (see `ws_direct`).
        Ok(conn) => match conn.downcast::<hyper_util::rt::TokioIo<tokio::net::TcpStream>>() {
            Ok(up) => {
                let stream = up.io.into_inner();
                let done = super::ws_direct::serve(
                    engine.clone(),
                    stream,
                    up.read_buf,
                    protocol,
                    sid,
                    parts,
                );
                Either::Left(Either::Left(
                    done.map(move |res| ws_closed(&engine, sid, res)),
                ))
            }
            Err(conn) => {
                // Boxed: the direct path's task would otherwise be as large as this one.
                let conn = hyper_util::rt::TokioIo::new(conn);
                let done = Box::pin(on_init(engine.clone(), conn, protocol, sid, parts));
                Either::Left(Either::Right(
                    done.map(move |res| ws_closed(&engine, sid, res)),
                ))
            }
        },
        Err(_e) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws upgrade error: {}", _e);
            Either::Right(std::future::ready(()))
        }
    });
    tokio::spawn(task);

    Ok(ws_response(&ws_key))
}

/// Logs how a websocket ended, and closes an upgraded session whose
/// websocket failed. A failed or timed-out upgrade (`Error::Upgrade`) was
/// given up alone: its session goes on over polling (or is closing already).
fn ws_closed<H: EngineIoHandler>(engine: &EngineIo<H>, sid: Option<Sid>, res: Result<(), Error>) {
    match res {
        Ok(_) => {
            #[cfg(feature = "tracing")]
            tracing::debug!(?sid, "ws closed")
        }
        Err(Error::MultipleWebsocketRequests | Error::Upgrade) => {}
        Err(_e) => {
            #[cfg(feature = "tracing")]
            tracing::debug!(?sid, "ws closed with error: {_e}");
            if let Some(sid) = sid {
                engine.close_session(sid, DisconnectReason::TransportError);
            }
        }
    }
}

/// Handle a websocket connection upgrade
///
/// Sends an open packet if it is not an upgrade from a polling request
///
/// Read packets from the websocket and handle them, it will block until the connection is closed
pub fn on_init<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> impl Future<Output = Result<(), Error>> + Send + 'static
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Two phases chained with `then`, so the connection's long-lived state
    // does not also carry the opening's (the upgrade handshake, the request
    // parts): their sizes overlap instead of adding up.
    open(engine, conn, protocol, sid, req_data).then(|opened| match opened {
        Ok((engine, socket, ws, beat)) => {
            Either::Left(connection(engine, socket, ws, beat).map(Ok))
        }
        Err(e) => Either::Right(std::future::ready(Err(e))),
    })
}

/// An open websocket, its session, and the heartbeat its task runs (when
/// the session started on this websocket).
type Opened<H, S> = (
    Arc<EngineIo<H>>,
    Arc<Socket<<H as EngineIoHandler>::Data>>,
    WebSocketStream<S>,
    Option<Heartbeat>,
);

/// Opens the websocket of a new session, or upgrades an existing polling
/// session to it.
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", name = "init_websocket", skip(engine, conn, req_data))
)]
async fn open<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    conn: S,
    protocol: ProtocolVersion,
    sid: Option<Sid>,
    req_data: Parts,
) -> Result<Opened<H, S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws_config = WebSocketConfig::default()
        .read_buffer_size(engine.config.ws_read_buffer_size)
        .max_message_size(Some(engine.config.ws_max_message_size))
        .max_frame_size(Some(engine.config.ws_max_frame_size));

    let ws_init = move || WebSocketStream::from_raw_socket(conn, Role::Server, Some(ws_config));
    let (socket, ws) = if let Some(sid) = sid {
        match engine.get_socket(sid) {
            None => return Err(Error::UnknownSessionID(sid)),
            Some(socket) if socket.is_ws() => return Err(Error::MultipleWebsocketRequests),
            Some(socket) => {
                let mut ws = ws_init().await;

                let upgrade_fut = upgrade_handshake::<H, S>(&socket, &mut ws);
                match tokio::time::timeout(engine.config.upgrade_timeout, upgrade_fut)
                    .with_cancellation_token(&socket.cancellation_token)
                    .await
                {
                    Some(Ok(Ok(()))) => {}
                    Some(Ok(Err(e))) => return Err(abandon_upgrade(&socket, Some(e))),
                    Some(Err(_)) => return Err(abandon_upgrade(&socket, None)),
                    None => {
                        #[cfg(feature = "tracing")]
                        tracing::debug!(?sid, "socket is being closed");
                        return Err(Error::Upgrade);
                    }
                }
                (socket, ws)
            }
        }
    } else {
        let socket = engine.create_session(protocol, TransportType::Websocket, req_data, false);

        #[cfg(feature = "tracing")]
        tracing::debug!("new websocket connection");

        let mut ws = ws_init().await;
        if let Err(e) = init_handshake(socket.id, &mut ws, &engine.config).await {
            engine.close_session(socket.id, DisconnectReason::TransportError);
            return Err(e);
        }
        if socket.protocol == ProtocolVersion::V4 {
            // Runs in the websocket's own task (no heartbeat task).
            let (interval, timeout) = (engine.config.ping_interval, engine.config.ping_timeout);
            let beat = Heartbeat::new(interval, timeout, Instant::now());
            return Ok((engine, socket, ws, Some(beat)));
        }
        socket
            .clone()
            .spawn_heartbeat(engine.config.ping_interval, engine.config.ping_timeout);
        (socket, ws)
    };
    // An upgraded session keeps the heartbeat task its polling start spawned.
    Ok((engine, socket, ws, None))
}

/// What woke the connection task.
enum Wake {
    Incoming(Option<Result<Message, tungstenite::Error>>),
    /// Packets are buffered (`true`), or the buffer is closed (`false`).
    Outgoing(bool),
    Cancelled,
    Heartbeat,
}

/// What a message from the client asks of the connection task.
pub(super) enum Flow {
    Continue,
    /// A pong (or a v3 ping): the client is alive.
    Pong,
    /// The client closed the connection.
    Closed,
}

/// How long a closing session may take to hand its last packets (a close
/// packet, a final event) to a client that has stopped reading.
const CLOSING_FLUSH_LIMIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Drives an open websocket in one task (see [`run`]), then closes its
/// session.
///
/// One task per websocket instead of a reader and a writer over split
/// halves saves a task cell (~2.4 KiB) and the shared lock of the halves
/// per connection.
fn connection<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    socket: Arc<Socket<H::Data>>,
    ws: WebSocketStream<S>,
    beat: Option<Heartbeat>,
) -> impl Future<Output = ()> + Send + 'static
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // `run` takes the websocket directly (an `async` wrapper would hold it
    // twice in the task's state); the closure keeps two `Arc`s.
    let ending = Ending::new(&engine, &socket);
    run(engine, socket, ws, beat).map(move |end| ending.finish(end))
}

/// Closes the session when its websocket's task ends: as the task says
/// ([`Ending::finish`]), or, when the task is dropped before it could (a
/// panic), as a transport error. Without it a session whose heartbeat ran
/// in that task would stay open forever.
pub(super) struct Ending<H: EngineIoHandler> {
    engine: Arc<EngineIo<H>>,
    socket: Arc<Socket<H::Data>>,
    finished: bool,
}

impl<H: EngineIoHandler> Ending<H> {
    pub(super) fn new(engine: &Arc<EngineIo<H>>, socket: &Arc<Socket<H::Data>>) -> Self {
        Self {
            engine: engine.clone(),
            socket: socket.clone(),
            finished: false,
        }
    }

    /// `Some(Ok)` the client closed, `Some(Err)` the transport failed,
    /// `None` the session was already closing.
    pub(super) fn finish(mut self, end: Option<Result<(), Error>>) {
        self.finished = true;
        finish(&self.engine, &self.socket, end);
    }
}

impl<H: EngineIoHandler> Drop for Ending<H> {
    fn drop(&mut self) {
        if !self.finished {
            let err = Error::WsTransport(Box::new(tungstenite::Error::ConnectionClosed));
            finish(&self.engine, &self.socket, Some(Err(err)));
        }
    }
}

/// Closes the session as its websocket ended (see [`Ending::finish`]).
fn finish<H: EngineIoHandler>(
    engine: &EngineIo<H>,
    socket: &Socket<H::Data>,
    end: Option<Result<(), Error>>,
) {
    match end {
        Some(Err(ref e)) => {
            let reason =
                Option::<DisconnectReason>::from(e).unwrap_or(DisconnectReason::TransportError);

            #[cfg(feature = "tracing")]
            tracing::debug!("error when handling packet: {:?}", e);
            engine.close_session(socket.id, reason);
        }
        Some(Ok(())) => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = %socket.id, "ws transport was closed");
            engine.close_session(socket.id, DisconnectReason::TransportClose);
        }
        None => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = %socket.id, "socket is closing");
        }
    }
}

/// Packets from the client go to the handler, buffered packets go to the
/// client, until the client closes (`Some(Ok)`), the transport fails
/// (`Some(Err)`) or the session is cancelled (`None`). On cancellation the
/// packets already buffered (the close packet among them) are still
/// written, within [`CLOSING_FLUSH_LIMIT`].
async fn run<H: EngineIoHandler, S>(
    engine: Arc<EngineIo<H>>,
    socket: Arc<Socket<H::Data>>,
    mut ws: WebSocketStream<S>,
    mut beat: Option<Heartbeat>,
) -> Option<Result<(), Error>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (engine, socket) = (&engine, &socket);
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
    let mut timer = pin!(tokio::time::sleep_until(
        beat.as_ref().map_or_else(Instant::now, Heartbeat::deadline)
    ));
    // A packet the last poll took but could not fit goes first (boxed: it
    // happens once, on some upgrades).
    if let Some(packets) = peeked_packet.take().map(|p| *p) {
        let mut write = Box::pin(async {
            for item in packets {
                if let Some(msg) = to_message(socket.protocol, item) {
                    ws.feed(msg).await.ok();
                }
            }
            ws.flush().await.ok();
        });
        if !finish_unless_stuck(socket, write.as_mut(), &mut beat, timer.as_mut()).await {
            return None;
        }
    }

    let mut read_first = true;
    loop {
        // Reading and writing take turns: after a write the client's side is
        // polled first (a pong that has arrived is seen before the heartbeat
        // is judged), after a read the heartbeat and the buffer are. So a
        // client that is always sent something is still read, and one that
        // floods us is still written to (writes go in rounds, `write_all`).
        let wake = if read_first {
            tokio::select! {
                biased;
                _ = token.cancelled() => Wake::Cancelled,
                msg = ws.next() => Wake::Incoming(msg),
                () = &mut timer, if beat.is_some() => Wake::Heartbeat,
                open = buffered_rx.ready() => Wake::Outgoing(open),
            }
        } else {
            tokio::select! {
                biased;
                _ = token.cancelled() => Wake::Cancelled,
                () = &mut timer, if beat.is_some() => Wake::Heartbeat,
                open = buffered_rx.ready() => Wake::Outgoing(open),
                msg = ws.next() => Wake::Incoming(msg),
            }
        };
        read_first = !matches!(wake, Wake::Incoming(_));
        match wake {
            Wake::Heartbeat => heartbeat_due(socket, &mut beat, timer.as_mut()),
            Wake::Incoming(None) => return Some(Ok(())),
            Wake::Incoming(Some(msg)) => match handle_message(engine, socket, msg) {
                Ok(Flow::Continue) => {}
                Ok(Flow::Pong) => match beat.as_mut() {
                    Some(b) => {
                        b.pong();
                        timer.as_mut().reset(b.deadline());
                    }
                    // A signal already stored means the client is already known to be alive.
                    None => socket.heartbeat.notify_one(),
                },
                Ok(Flow::Closed) => {
                    // Answers the client's close frame (boxed: see below).
                    bounded(Box::pin(async {
                        ws.close(None).await.ok();
                    }))
                    .await;
                    return Some(Ok(()));
                }
                Err(e) => {
                    // What was buffered still goes out, then the websocket
                    // closes (boxed: see below).
                    buffered_rx.close();
                    let closing = Box::pin(async {
                        while buffered_rx.ready().now_or_never() == Some(true) {
                            write_all(socket, &mut ws, buffered_rx).await;
                        }
                        ws.close(None).await.ok();
                    });
                    bounded(closing).await;
                    return Some(Err(e));
                }
            },
            Wake::Outgoing(false) => return None,
            Wake::Outgoing(true) => {
                let write = pin!(write_all(socket, &mut ws, buffered_rx));
                if !finish_unless_stuck(socket, write, &mut beat, timer.as_mut()).await {
                    // Cut off mid-round after the session was cancelled:
                    // later packets would follow a gap. The client is not
                    // reading anyway.
                    return None;
                }
            }
            Wake::Cancelled => {
                #[cfg(feature = "tracing")]
                tracing::trace!(sid = %socket.id, "ws closing flush");
                // Boxed: it runs once, and would otherwise enlarge every
                // connection's task by its size.
                // The buffer is closed first, so the drain ends with what is
                // queued now (the engine closes it after this task anyway).
                buffered_rx.close();
                let closing = Box::pin(async move {
                    while buffered_rx.ready().now_or_never() == Some(true) {
                        write_all(socket, &mut ws, buffered_rx).await;
                    }
                    ws.close(None).await.ok();
                });
                bounded(closing).await;
                return None;
            }
        }
    }
}

/// Runs a write to its end; once the session is cancelled, the write gets
/// [`CLOSING_FLUSH_LIMIT`] more, so a client that stopped reading cannot
/// hold the task (and its socket) forever. Cancelling a write outright would
/// drop the packets it carries, the close packet among them.
///
/// The heartbeat keeps running meanwhile: a client that stops reading
/// blocks the write, misses its pong deadline and is closed, as with a
/// heartbeat task of its own.
///
/// The write is pinned by the caller (`pin!`), so the task's state holds it
/// once rather than once per move.
///
/// Returns whether the write finished (not cut off by the limit).
async fn finish_unless_stuck<D, F>(
    socket: &Socket<D>,
    mut write: Pin<&mut F>,
    beat: &mut Option<Heartbeat>,
    mut timer: Pin<&mut Sleep>,
) -> bool
where
    D: Default + Send + Sync + 'static,
    F: Future<Output = ()>,
{
    enum Step {
        Written,
        Cancelled,
        Heartbeat,
    }
    loop {
        let step = tokio::select! {
            biased;
            () = &mut write => Step::Written,
            () = socket.cancellation_token.cancelled() => Step::Cancelled,
            () = &mut timer, if beat.is_some() => Step::Heartbeat,
        };
        match step {
            Step::Written => return true,
            Step::Cancelled => return bounded(write).await,
            Step::Heartbeat => heartbeat_due(socket, beat, timer.as_mut()),
        }
    }
}

/// The heartbeat's deadline has passed: a ping to send, or a pong that did
/// not come, which closes the session as the heartbeat task does (a close
/// packet, then the session closes; the task flushes it when cancelled).
pub(super) fn heartbeat_due<D>(
    socket: &Socket<D>,
    beat: &mut Option<Heartbeat>,
    timer: Pin<&mut Sleep>,
) where
    D: Default + Send + Sync + 'static,
{
    let Some(b) = beat.as_mut() else { return };
    let alive = match b.due(Instant::now()) {
        Due::Ping => socket.internal_tx.try_send(smallvec![Packet::Ping]).is_ok(),
        Due::TimedOut => false,
    };
    if alive {
        timer.reset(b.deadline());
    } else {
        *beat = None;
        socket.close(DisconnectReason::HeartbeatTimeout);
    }
}

/// Waits at most [`CLOSING_FLUSH_LIMIT`] for `fut`. The timer is boxed:
/// closing happens once per connection, and a timer held in the task's
/// state would enlarge every idle connection by its size.
///
/// Returns whether `fut` finished in time.
pub(super) async fn bounded<F: Future<Output = ()>>(fut: F) -> bool {
    Box::pin(tokio::time::timeout(CLOSING_FLUSH_LIMIT, fut))
        .await
        .is_ok()
}

/// Most buffered packets, and bytes, written in one round before the task
/// looks at the client's side again: a pong is read between rounds, so a
/// round must not outlast the heartbeat's timeout on a slow link.
const WRITE_ROUND: usize = 64;
const WRITE_ROUND_BYTES: usize = 64 * 1024;

/// Writes the packets buffered now, at most [`WRITE_ROUND`] of them or
/// [`WRITE_ROUND_BYTES`], and flushes once.
async fn write_all<D, S>(
    socket: &Socket<D>,
    ws: &mut WebSocketStream<S>,
    buffered_rx: &mut Receiver<PacketBuf>,
) where
    D: Default + Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut round, mut bytes) = (0, 0);
    while round < WRITE_ROUND
        && bytes < WRITE_ROUND_BYTES
        && let Ok(packets) = buffered_rx.try_recv()
    {
        round += 1;
        // Written inline: a helper taking the packets would hold them twice
        // in this future's state (argument and iterator).
        for item in packets {
            let Some(msg) = to_message(socket.protocol, item) else {
                continue;
            };
            bytes += msg.len();
            if let Err(_e) = ws.feed(msg).await {
                #[cfg(feature = "tracing")]
                tracing::debug!("[sid={}] error sending packet: {}", socket.id, _e);
            }
        }
    }
    ws.flush().await.ok();
}

/// Handles one websocket message from the client.
fn handle_message<H: EngineIoHandler>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    msg: Result<Message, tungstenite::Error>,
) -> Result<Flow, Error> {
    match msg? {
        Message::Text(msg) => on_text(engine, socket, ws_bytes_to_str(msg)),
        Message::Binary(data) => Ok(on_binary(engine, socket, data)),
        Message::Close(_) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("websocket closed, closing session");
            engine.close_session(socket.id, DisconnectReason::TransportClose);
            Ok(Flow::Closed)
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!(sid = ?socket.id, "unexpected ws message");
            Ok(Flow::Continue)
        }
    }
}

/// Handles a text message from the client (an Engine.IO packet), on
/// either websocket path.
pub(super) fn on_text<H: EngineIoHandler>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    text: Str,
) -> Result<Flow, Error> {
    match Packet::parse(socket.protocol, text)? {
        Packet::Close => {
            #[cfg(feature = "tracing")]
            tracing::debug!("[sid={}] closing session", socket.id);
            engine.close_session(socket.id, DisconnectReason::TransportClose);
            Ok(Flow::Closed)
        }
        Packet::Pong | Packet::Ping => Ok(Flow::Pong),
        Packet::Message(msg) => {
            engine.handler.on_message(msg, socket.clone());
            Ok(Flow::Continue)
        }
        p => Err(Error::BadPacket(p)),
    }
}

/// Handles a binary message from the client, on either websocket path.
pub(super) fn on_binary<H: EngineIoHandler>(
    engine: &Arc<EngineIo<H>>,
    socket: &Arc<Socket<H::Data>>,
    mut data: Bytes,
) -> Flow {
    if socket.protocol == ProtocolVersion::V3 && !data.is_empty() {
        // The first byte is the message type, which we don't need.
        data = data.split_off(1);
    }
    engine.handler.on_binary(data, socket.clone());
    Flow::Continue
}

/// The first steps of an upgrade from polling, on either websocket path:
/// polls answer Noop from now on, and a last Noop ends a waiting poll (a
/// full buffer needs none: its packets already end it). The caller then
/// waits for a poll in progress by taking the socket's buffer lock.
pub(super) fn begin_upgrade<D>(socket: &Socket<D>) -> Result<(), Error>
where
    D: Default + Send + Sync + 'static,
{
    socket.start_upgrade();
    match socket.internal_tx.try_send(smallvec![Packet::Noop]) {
        Ok(()) | Err(TrySendError::Full(_)) => Ok(()),
        Err(TrySendError::Closed(_)) => Err(Error::Upgrade),
    }
}

/// An upgrade that failed (`cause`) or did not finish within the upgrade
/// timeout, on either websocket path: only the upgrade is given up, as the
/// Engine.IO reference server does. The session goes on over polling (polls
/// are answered again and the heartbeat resumes, so a client that has gone
/// is still reclaimed); the websocket is dropped, and [`ws_closed`] leaves
/// the session alone on the [`Error::Upgrade`] returned. Closing the
/// session instead made every client too slow to finish its upgrade lose
/// its session, and its next poll get `Session ID unknown`.
pub(super) fn abandon_upgrade<D>(socket: &Socket<D>, _cause: Option<Error>) -> Error
where
    D: Default + Send + Sync + 'static,
{
    #[cfg(feature = "tracing")]
    tracing::debug!(sid = ?socket.id, cause = ?_cause, "ws upgrade abandoned, the session stays on polling");
    socket.abandon_upgrade();
    Error::Upgrade
}

/// The websocket message of a packet; `None` for a Noop, which a server
/// may have queued for a polling request that the upgrade ended.
fn to_message(protocol: ProtocolVersion, item: Packet) -> Option<Message> {
    match item {
        Packet::Binary(bin) | Packet::BinaryV3(bin) => {
            if protocol == ProtocolVersion::V3 {
                // v3 protocol requires packet type as the first byte.
                // This requires a new buffer. This is OK as it is only for the V3 protocol.
                let mut buff = Vec::with_capacity(bin.len() + 1);
                buff.push(0x04);
                buff.extend(bin);
                Some(Message::Binary(buff.into()))
            } else {
                Some(Message::Binary(bin))
            }
        }
        Packet::Noop => None,
        item => {
            let packet = String::from(item);
            Some(Message::Text(packet.into()))
        }
    }
}

/// Send a Engine.IO [`OpenPacket`] to initiate a websocket connection
async fn init_handshake<S>(
    sid: Sid,
    ws: &mut WebSocketStream<S>,
    config: &EngineIoConfig,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let packet = Packet::Open(make_open_packet(TransportType::Websocket, sid, config));
    let packet: String = packet.into();
    ws.send(Message::Text(packet.into())).await?;
    Ok(())
}

/// Upgrade a session from a polling request to a websocket request.
///
/// Before upgrading the session the server should send a NOOP packet to any pending polling request.
///
/// ## Handshake :
/// ```text
/// CLIENT                                                 SERVER
///│                                                      │
///│   GET /engine.io/?EIO=4&transport=websocket&sid=...  │
///│ ───────────────────────────────────────────────────► │
///│  ◄─────────────────────────────────────────────────┘ │
///│            HTTP 101 (WebSocket handshake)            │
///│                                                      │
///│            -----  WebSocket frames -----             │
///│  ─────────────────────────────────────────────────►  │
///│                         2probe                       │ (ping packet)
///│  ◄─────────────────────────────────────────────────  │
///│                         3probe                       │ (pong packet)
///│  ─────────────────────────────────────────────────►  │
///│                         5                            │ (upgrade packet)
///│                                                      │
///│            -----  WebSocket frames -----             │
/// ```
#[cfg_attr(
    feature = "tracing",
    tracing::instrument(level = "trace", skip(socket, ws))
)]
async fn upgrade_handshake<H: EngineIoHandler, S>(
    socket: &Arc<Socket<H::Data>>,
    ws: &mut WebSocketStream<S>,
) -> Result<(), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    #[cfg(feature = "tracing")]
    tracing::debug!("starting websocket connection upgrade");

    begin_upgrade(socket)?;

    // wait for any current polling connection to finish by waiting for the socket to be unlocked
    // All other polling connection will be immediately closed with a NOOP packet.
    let _lock = socket.internal_rx.lock().await;

    // Fetch the next packet from the ws stream, it should be a PingUpgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        _ => Err(Error::Upgrade)?,
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::PingUpgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("received first ping upgrade");
            // Respond with a PongUpgrade packet
            ws.send(Message::Text(String::from(Packet::PongUpgrade).into()))
                .await?;
        }
        p => Err(Error::BadPacket(p))?,
    };

    // Fetch the next packet from the ws stream, it should be an Upgrade packet
    let msg = match ws.next().await {
        Some(Ok(Message::Text(d))) => d,
        Some(Ok(Message::Close(_))) => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws stream closed before upgrade");
            Err(Error::Upgrade)?
        }
        _ => {
            #[cfg(feature = "tracing")]
            tracing::debug!("unexpected ws message before upgrade");
            Err(Error::Upgrade)?
        }
    };
    match Packet::parse(socket.protocol, ws_bytes_to_str(msg))? {
        Packet::Upgrade => {
            #[cfg(feature = "tracing")]
            tracing::debug!("ws upgraded successfully")
        }
        p => Err(Error::BadPacket(p))?,
    };

    socket.upgrade_to_websocket();
    Ok(())
}

fn ws_bytes_to_str(bytes: tungstenite::Utf8Bytes) -> Str {
    // SAFETY: the bytes are guaranteed to be valid UTF-8 by the tungstenite parser
    unsafe { Str::from_bytes_unchecked(bytes.into()) }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::StreamExt;
    use http::Request;
    use tokio::io::DuplexStream;

    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(1);

    #[derive(Debug)]
    struct StubHandler;
    impl EngineIoHandler for StubHandler {
        type Data = ();
        fn on_connect(self: Arc<Self>, _: Arc<Socket<()>>) {}
        fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
        fn on_message(self: &Arc<Self>, _: Str, _: Arc<Socket<()>>) {}
        fn on_binary(self: &Arc<Self>, _: Bytes, _: Arc<Socket<()>>) {}
    }

    fn socket() -> Arc<Socket<()>> {
        Arc::new(Socket::new(
            ProtocolVersion::V4,
            TransportType::Websocket,
            &EngineIoConfig::default(),
            Request::<()>::default().into_parts().0,
            Box::new(|_, _| ()),
            false,
        ))
    }

    async fn ws_pair() -> (WebSocketStream<DuplexStream>, WebSocketStream<DuplexStream>) {
        let (server, client) = tokio::io::duplex(1024);
        (
            WebSocketStream::from_raw_socket(server, Role::Server, None).await,
            WebSocketStream::from_raw_socket(client, Role::Client, None).await,
        )
    }

    fn engine() -> Arc<EngineIo<StubHandler>> {
        Arc::new(EngineIo::new(
            Arc::new(StubHandler),
            EngineIoConfig::default(),
        ))
    }

    fn spawn_connection(
        socket: &Arc<Socket<()>>,
        server: WebSocketStream<DuplexStream>,
    ) -> tokio::task::JoinHandle<Option<Result<(), Error>>> {
        let socket = socket.clone();
        tokio::spawn(run(engine(), socket, server, None))
    }

    /// A polling request can still hold the lock at the end of an upgrade.
    #[tokio::test]
    async fn writer_waits_for_the_lock_of_a_polling_request() {
        let socket = socket();
        let (server, mut client) = ws_pair().await;

        let polling = socket.internal_rx.lock().await;
        let writer = spawn_connection(&socket, server);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!writer.is_finished(), "the writer should wait for the lock");

        drop(polling);
        socket.emit(Str::from("hello")).unwrap();
        let msg = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .expect("the writer should send the packet")
            .unwrap()
            .unwrap();
        assert_eq!(msg, Message::text("4hello"));
    }

    #[tokio::test]
    async fn writer_waiting_for_the_lock_stops_with_the_session() {
        let socket = socket();
        let (server, _client) = ws_pair().await;

        let _polling = socket.internal_rx.lock().await;
        let writer = spawn_connection(&socket, server);
        tokio::time::sleep(Duration::from_millis(20)).await;

        socket.cancellation_token.cancel();
        tokio::time::timeout(TIMEOUT, writer)
            .await
            .expect("the writer should stop")
            .unwrap();
    }

    /// Packets buffered before the session is cancelled (a last event, the
    /// close packet) still reach the client, then the websocket closes.
    #[tokio::test]
    async fn a_cancelled_session_writes_what_it_buffered_then_closes() {
        let socket = socket();
        let (server, mut client) = ws_pair().await;

        let conn = spawn_connection(&socket, server);
        tokio::time::sleep(Duration::from_millis(20)).await;
        socket.emit(Str::from("last")).unwrap();
        socket.cancellation_token.cancel();
        let mut got = Vec::new();
        while let Ok(Some(Ok(msg))) = tokio::time::timeout(TIMEOUT, client.next()).await {
            got.push(msg);
        }
        assert_eq!(got.first(), Some(&Message::text("4last")));
        assert!(matches!(got.last(), Some(Message::Close(_))));
        assert!(
            tokio::time::timeout(TIMEOUT, conn)
                .await
                .unwrap()
                .unwrap()
                .is_none()
        );
    }

    /// A session that started on its websocket runs its heartbeat in the
    /// same task: a ping at once, another after a pong and the interval, and
    /// a close packet when a ping goes unanswered. (Real time, short
    /// intervals; the schedule itself is tested in `heartbeat.rs`.)
    #[tokio::test]
    async fn the_connection_task_runs_the_heartbeat() {
        let socket = socket();
        let (server, mut client) = ws_pair().await;
        let period = Duration::from_millis(30);
        let beat = Heartbeat::new(period, period, Instant::now());
        let conn = tokio::spawn(run(engine(), socket.clone(), server, Some(beat)));

        async fn next(client: &mut WebSocketStream<DuplexStream>) -> Message {
            tokio::time::timeout(TIMEOUT, client.next())
                .await
                .expect("a packet in time")
                .unwrap()
                .unwrap()
        }
        assert_eq!(next(&mut client).await, Message::text("2"));
        client.send(Message::text("3")).await.unwrap();
        assert_eq!(next(&mut client).await, Message::text("2"));
        // No pong this time: the heartbeat closes the session.
        assert_eq!(next(&mut client).await, Message::text("1"));

        socket.cancellation_token.cancel();
        assert!(
            tokio::time::timeout(TIMEOUT, conn)
                .await
                .unwrap()
                .unwrap()
                .is_none()
        );
    }

    /// A client that stops reading blocks the writes; its heartbeat still
    /// runs and closes the session when the pong does not come.
    #[tokio::test]
    async fn the_heartbeat_closes_a_client_that_stopped_reading() {
        let closed = Arc::new(std::sync::Mutex::new(None));
        let reason = closed.clone();
        let socket = Arc::new(Socket::new(
            ProtocolVersion::V4,
            TransportType::Websocket,
            &EngineIoConfig::default(),
            Request::<()>::default().into_parts().0,
            Box::new(move |_, r| *reason.lock().unwrap() = Some(r)),
            false,
        ));
        let (server, _client) = ws_pair().await; // the client never reads
        let period = Duration::from_millis(30);
        let beat = Heartbeat::new(period, period, Instant::now());
        tokio::spawn(run(engine(), socket.clone(), server, Some(beat)));
        for _ in 0..100 {
            socket.emit(Str::from("x".repeat(200))).ok();
        }
        let deadline = Instant::now() + TIMEOUT;
        while closed.lock().unwrap().is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            *closed.lock().unwrap(),
            Some(DisconnectReason::HeartbeatTimeout)
        );
    }

    /// Reading and writing take turns: a client that floods the server
    /// with messages still receives what is sent to it.
    #[tokio::test]
    async fn a_flooding_client_is_still_written_to() {
        let socket = socket();
        let (server, client) = ws_pair().await;
        let (mut tx, mut rx) = client.split();
        let conn = spawn_connection(&socket, server);
        let flood =
            tokio::spawn(async move { while tx.send(Message::text("4flood")).await.is_ok() {} });
        tokio::time::sleep(Duration::from_millis(20)).await;
        socket.emit(Str::from("hello")).unwrap();
        let msg = tokio::time::timeout(TIMEOUT, rx.next())
            .await
            .expect("the packet arrives while the client floods")
            .unwrap()
            .unwrap();
        assert_eq!(msg, Message::text("4hello"));
        flood.abort();
        conn.abort();
    }

    /// One task both reads and writes: a pong from the client reaches the
    /// heartbeat while packets flow the other way.
    #[tokio::test]
    async fn reads_and_writes_in_one_task() {
        let socket = socket();
        let (server, mut client) = ws_pair().await;
        let conn = spawn_connection(&socket, server);

        socket.emit(Str::from("one")).unwrap();
        client.send(Message::text("3")).await.unwrap();
        socket.emit(Str::from("two")).unwrap();
        for want in ["4one", "4two"] {
            let msg = tokio::time::timeout(TIMEOUT, client.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            assert_eq!(msg, Message::text(want));
        }
        tokio::time::timeout(TIMEOUT, socket.heartbeat.notified())
            .await
            .expect("the pong should reach the heartbeat");

        client.close(None).await.unwrap();
        let end = tokio::time::timeout(TIMEOUT, conn).await.unwrap().unwrap();
        assert!(matches!(end, Some(Ok(()))));
    }
}
/// Prints the sizes that make up a websocket connection's task:
/// `cargo test --release --features __test_harness --lib size_probe -- --ignored --nocapture`
#[cfg(test)]
mod size_probe {
    use super::*;
    #[test]
    #[ignore = "a diagnostic that prints sizes; it asserts nothing"]
    fn future_sizes() {
        #[derive(Debug)]
        struct H;
        impl EngineIoHandler for H {
            type Data = ();
            fn on_connect(self: Arc<Self>, _: Arc<Socket<()>>) {}
            fn on_disconnect(&self, _: Arc<Socket<()>>, _: DisconnectReason) {}
            fn on_message(self: &Arc<Self>, _: Str, _: Arc<Socket<()>>) {}
            fn on_binary(self: &Arc<Self>, _: bytes::Bytes, _: Arc<Socket<()>>) {}
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let engine = Arc::new(EngineIo::new(Arc::new(H), EngineIoConfig::default()));
            let (a, _b) = tokio::io::duplex(64);
            let parts = http::Request::<()>::default().into_parts().0;
            let f = on_init(engine.clone(), a, ProtocolVersion::V4, None, parts.clone());
            println!("on_init future: {}", std::mem::size_of_val(&f));
            let (a, _b) = tokio::io::duplex(64);
            let ws = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
            println!("WebSocketStream: {}", std::mem::size_of_val(&ws));
            let s = engine.create_session(
                ProtocolVersion::V4,
                TransportType::Websocket,
                parts.clone(),
                false,
            );
            let c = run(engine.clone(), s.clone(), ws, None);
            println!("run future: {}", std::mem::size_of_val(&c));
            drop(c);
            let (a, _b) = tokio::io::duplex(64);
            let ws = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
            let c = connection(engine.clone(), s.clone(), ws, None);
            println!("connection future: {}", std::mem::size_of_val(&c));
            let (a, _b) = tokio::io::duplex(64);
            let mut ws = WebSocketStream::from_raw_socket(a, Role::Server, None).await;
            let u = upgrade_handshake::<H, _>(&s, &mut ws);
            println!("upgrade future: {}", std::mem::size_of_val(&u));
            drop(u);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let tcp = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let d = super::super::ws_direct::serve(
                engine.clone(),
                tcp,
                bytes::Bytes::new(),
                ProtocolVersion::V4,
                None,
                parts.clone(),
            );
            println!(
                "direct websocket task future: {}",
                std::mem::size_of_val(&d)
            );
            println!("Socket: {}", std::mem::size_of::<Socket<()>>());
            let mut rx = s.internal_rx.lock().await;
            let InternalRx { buffered_rx, .. } = &mut *rx;
            {
                let w = write_all(&s, &mut ws, buffered_rx);
                println!("write_all: {}", std::mem::size_of_val(&w));
            }
            {
                let f = pin!(write_all(&s, &mut ws, buffered_rx));
                let mut beat = None;
                let timer = pin!(tokio::time::sleep(std::time::Duration::from_secs(1)));
                let w = finish_unless_stuck(&s, f, &mut beat, timer);
                println!("finish_unless_stuck: {}", std::mem::size_of_val(&w));
            }
            println!(
                "cancelled: {}",
                std::mem::size_of_val(&s.cancellation_token.cancelled())
            );
            println!("recv: {}", std::mem::size_of_val(&buffered_rx.recv()));
            println!(
                "feed: {}",
                std::mem::size_of_val(&ws.feed(Message::text("x")))
            );
            println!("flush: {}", std::mem::size_of_val(&ws.flush()));
            println!("PacketBuf: {}", std::mem::size_of::<PacketBuf>());
            println!("Sleep: {}", std::mem::size_of::<tokio::time::Sleep>());
            println!("Heartbeat: {}", std::mem::size_of::<Heartbeat>());
            println!("Wake: {}", std::mem::size_of::<Wake>());
            println!("Error: {}", std::mem::size_of::<crate::errors::Error>());
            println!(
                "Reader: {}",
                std::mem::size_of::<super::super::wire::Reader>()
            );
            println!(
                "buffer ready: {}",
                std::mem::size_of_val(&buffered_rx.ready())
            );
        });
    }
}
