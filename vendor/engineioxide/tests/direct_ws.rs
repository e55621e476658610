//! The websocket transport over a real TCP connection served by hyper's
//! HTTP/1 connection, where frames are written straight to the socket
//! (Herald's patch, `src/transport/ws_direct.rs`): order, backpressure,
//! control frames, limits, closing and the upgrade from polling.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use bytes::Bytes;
use engineioxide::{
    DisconnectReason, Socket, Str, config::EngineIoConfig, handler::EngineIoHandler,
    service::EngineIoService,
};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_tungstenite::{
    WebSocketStream, client_async,
    tungstenite::{Message, protocol::frame::coding::CloseCode},
};

const TIMEOUT: Duration = Duration::from_secs(5);

/// Echoes every message; "flood N" answers with N numbered 4 KiB messages;
/// "panic" panics.
#[derive(Debug)]
struct Echo {
    disconnects: mpsc::UnboundedSender<DisconnectReason>,
    sockets: mpsc::UnboundedSender<Arc<Socket<()>>>,
}

impl EngineIoHandler for Echo {
    type Data = ();
    fn on_connect(self: Arc<Self>, socket: Arc<Socket<()>>) {
        self.sockets.send(socket).ok();
    }
    fn on_disconnect(&self, _: Arc<Socket<()>>, reason: DisconnectReason) {
        self.disconnects.send(reason).ok();
    }
    fn on_message(self: &Arc<Self>, msg: Str, socket: Arc<Socket<()>>) {
        assert_ne!(msg.as_str(), "panic", "a handler that panics");
        if let Some(n) = msg.as_str().strip_prefix("flood ") {
            let pad = "x".repeat(4096);
            for i in 0..n.parse::<usize>().unwrap() {
                socket.emit(format!("{i} {pad}")).unwrap();
            }
        } else {
            socket.emit(msg).unwrap();
        }
    }
    fn on_binary(self: &Arc<Self>, data: Bytes, socket: Arc<Socket<()>>) {
        socket.emit_binary(data).unwrap();
    }
}

struct Server {
    addr: SocketAddr,
    disconnects: mpsc::UnboundedReceiver<DisconnectReason>,
    sockets: mpsc::UnboundedReceiver<Arc<Socket<()>>>,
}

async fn server(config: EngineIoConfig) -> Server {
    let (disconnects_tx, disconnects) = mpsc::unbounded_channel();
    let (sockets_tx, sockets) = mpsc::unbounded_channel();
    let handler = Arc::new(Echo {
        disconnects: disconnects_tx,
        sockets: sockets_tx,
    });
    let svc = EngineIoService::with_config(handler, config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), svc.clone())
                .with_upgrades();
            tokio::spawn(conn);
        }
    });
    Server {
        addr,
        disconnects,
        sockets,
    }
}

type Client = WebSocketStream<TcpStream>;

async fn connect(addr: SocketAddr, query: &str) -> Client {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let url = format!("ws://{addr}/engine.io/?EIO=4&transport=websocket{query}");
    client_async(url, tcp).await.unwrap().0
}

/// The next text message that is not a ping.
async fn next_text(client: &mut Client) -> String {
    loop {
        let msg = tokio::time::timeout(TIMEOUT, client.next())
            .await
            .expect("a message in time")
            .expect("the stream is open")
            .unwrap();
        match msg {
            Message::Text(t) if t.as_str() == "2" => continue,
            Message::Text(t) => return t.to_string(),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn opens_and_echoes_in_order() {
    // The echoes of one read are buffered together: room for all of them.
    let srv = server(EngineIoConfig::builder().max_buffer_size(1000).build()).await;
    let mut client = connect(srv.addr, "").await;
    assert!(next_text(&mut client).await.starts_with("0{\"sid\":"));
    for i in 0..300 {
        client.send(Message::text(format!("4m{i}"))).await.unwrap();
    }
    for i in 0..300 {
        assert_eq!(next_text(&mut client).await, format!("4m{i}"));
    }
    client.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let echoed = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap();
    assert_eq!(echoed.unwrap().unwrap(), Message::binary(vec![1u8, 2, 3]));
}

#[tokio::test]
async fn the_session_keeps_neither_the_websocket_key_nor_the_upgrade_handle() {
    let mut srv = server(EngineIoConfig::default()).await;
    let mut client = connect(srv.addr, "").await;
    assert!(next_text(&mut client).await.starts_with("0{\"sid\":"));
    let socket = tokio::time::timeout(TIMEOUT, srv.sockets.recv())
        .await
        .unwrap()
        .unwrap();
    let parts = &socket.req_parts;
    assert!(parts.headers.get(http::header::SEC_WEBSOCKET_KEY).is_none());
    assert!(parts.headers.get(http::header::HOST).is_some());
    assert!(parts.extensions.is_empty());
}

#[tokio::test]
async fn a_client_that_reads_late_gets_everything_in_order() {
    let config = EngineIoConfig::builder().max_buffer_size(5000).build();
    let srv = server(config).await;
    let mut client = connect(srv.addr, "").await;
    next_text(&mut client).await;
    // ~8 MiB: far more than the socket buffers take while nobody reads.
    client.send(Message::text("4flood 2000")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.send(Message::text("4after")).await.unwrap();
    for i in 0..2000 {
        let text = next_text(&mut client).await;
        let n = text[1..].split(' ').next().unwrap();
        assert_eq!(n, i.to_string(), "message {i} in order");
        assert_eq!(text.len(), 1 + n.len() + 1 + 4096);
    }
    assert_eq!(next_text(&mut client).await, "4after");
}

#[tokio::test]
async fn answers_pings_and_a_close_frame() {
    let mut srv = server(EngineIoConfig::default()).await;
    let mut client = connect(srv.addr, "").await;
    next_text(&mut client).await;
    client
        .send(Message::Ping(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(TIMEOUT, client.next()).await.unwrap() {
            Some(Ok(Message::Pong(p))) => {
                assert_eq!(p.as_ref(), b"hi");
                break;
            }
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    client.close(None).await.unwrap();
    let reason = tokio::time::timeout(TIMEOUT, srv.disconnects.recv()).await;
    assert_eq!(reason.unwrap(), Some(DisconnectReason::TransportClose));
    // The server answers the close frame, then the connection ends.
    while let Some(msg) = tokio::time::timeout(TIMEOUT, client.next()).await.unwrap() {
        if msg.is_err() {
            break;
        }
    }
}

#[tokio::test]
async fn an_oversized_message_ends_the_session_as_a_transport_error() {
    let config = EngineIoConfig::builder().ws_max_message_size(1000).build();
    let mut srv = server(config).await;
    let mut client = connect(srv.addr, "").await;
    next_text(&mut client).await;
    client
        .send(Message::text(format!("4{}", "a".repeat(2000))))
        .await
        .unwrap();
    let reason = tokio::time::timeout(TIMEOUT, srv.disconnects.recv()).await;
    assert_eq!(reason.unwrap(), Some(DisconnectReason::TransportError));
}

#[tokio::test]
async fn a_server_close_sends_the_close_packet_then_a_close_frame() {
    let mut srv = server(EngineIoConfig::default()).await;
    let mut client = connect(srv.addr, "").await;
    next_text(&mut client).await;
    let socket = srv.sockets.recv().await.unwrap();
    socket.close(DisconnectReason::ClosingServer);
    assert_eq!(next_text(&mut client).await, "1");
    match tokio::time::timeout(TIMEOUT, client.next()).await.unwrap() {
        Some(Ok(Message::Close(frame))) => {
            assert!(frame.is_none_or(|f| f.code == CloseCode::Normal))
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// One polling request over a raw HTTP/1.1 connection: the whole response.
async fn polling(addr: SocketAddr, method: &str, query: &str, body: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} /engine.io/?EIO=4&transport=polling{query} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut response = String::new();
    tokio::time::timeout(TIMEOUT, tcp.read_to_string(&mut response))
        .await
        .expect("a polling answer in time")
        .unwrap();
    response
}

/// A polling handshake over a raw HTTP/1.1 request: the session id.
async fn polling_sid(addr: SocketAddr) -> String {
    let response = polling(addr, "GET", "", "").await;
    let at = response.find("\"sid\":\"").unwrap() + 7;
    response[at..at + response[at..].find('"').unwrap()].to_string()
}

#[tokio::test]
async fn upgrades_a_polling_session_with_messages_right_behind_the_upgrade() {
    let srv = server(EngineIoConfig::default()).await;
    let sid = polling_sid(srv.addr).await;
    let mut client = connect(srv.addr, &format!("&sid={sid}")).await;
    client.send(Message::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut client).await, "3probe");
    // The upgrade and a message in one write.
    client.feed(Message::text("5")).await.unwrap();
    client.feed(Message::text("4first")).await.unwrap();
    client.flush().await.unwrap();
    let text = next_text(&mut client).await;
    // A Noop may have been queued for a poll that was not waiting.
    let text = if text == "6" {
        next_text(&mut client).await
    } else {
        text
    };
    assert_eq!(text, "4first");
}

#[tokio::test]
async fn an_upgrade_that_times_out_leaves_the_session_on_polling() {
    let mut srv = server(
        EngineIoConfig::builder()
            .upgrade_timeout(Duration::from_millis(200))
            .build(),
    )
    .await;
    let sid = polling_sid(srv.addr).await;
    // A client too slow to finish its upgrade: the probe, and no upgrade packet.
    let mut client = connect(srv.addr, &format!("&sid={sid}")).await;
    client.send(Message::text("2probe")).await.unwrap();
    assert_eq!(next_text(&mut client).await, "3probe");
    // The websocket is closed at the upgrade timeout...
    let closed = tokio::time::timeout(TIMEOUT, client.next())
        .await
        .expect("the abandoned websocket was not closed");
    assert!(!matches!(closed, Some(Ok(Message::Text(_)))), "{closed:?}");
    // ...and the session goes on over polling, where the upstream code
    // closed it (its next poll got `400 Session ID unknown`).
    let query = format!("&sid={sid}");
    let posted = polling(srv.addr, "POST", &query, "4still here").await;
    assert!(posted.starts_with("HTTP/1.1 200"), "{posted}");
    let mut polled = String::new();
    for _ in 0..10 {
        polled = polling(srv.addr, "GET", &query, "").await;
        assert!(polled.starts_with("HTTP/1.1 200"), "{polled}");
        if polled.contains("still here") {
            break;
        }
    }
    assert!(polled.ends_with("4still here"), "{polled}");
    assert!(
        srv.disconnects.try_recv().is_err(),
        "the session was closed"
    );
}

#[tokio::test]
async fn a_task_that_panics_still_closes_its_session() {
    let mut srv = server(EngineIoConfig::default()).await;
    let mut client = connect(srv.addr, "").await;
    next_text(&mut client).await;
    client.send(Message::text("4panic")).await.unwrap();
    // The heartbeat ran in the task that died: without the close on drop,
    // the session would stay open forever.
    let reason = tokio::time::timeout(TIMEOUT, srv.disconnects.recv()).await;
    assert_eq!(reason.unwrap(), Some(DisconnectReason::TransportError));
}

#[tokio::test]
async fn a_server_close_with_unread_input_still_delivers_everything_sent() {
    let mut srv = server(EngineIoConfig::builder().max_buffer_size(1000).build()).await;
    // A small receive window: what the server sends waits in its kernel.
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let tcp = tcp.connect(srv.addr).await.unwrap();
    let url = format!("ws://{}/engine.io/?EIO=4&transport=websocket", srv.addr);
    let mut client = client_async(url, tcp).await.unwrap().0;
    next_text(&mut client).await;
    let socket = srv.sockets.recv().await.unwrap();
    let pad = "y".repeat(4096);
    for i in 0..100 {
        socket.emit(format!("{i} {pad}")).unwrap();
    }
    socket.close(DisconnectReason::ClosingServer);
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Input the closing server never reads: closing the connection with it
    // unread would reset it and drop what is still on its way.
    client.send(Message::text("4late")).await.unwrap();
    for i in 0..100 {
        let text = next_text(&mut client).await;
        assert!(text.starts_with(&format!("4{i} ")), "message {i}");
    }
    assert_eq!(next_text(&mut client).await, "1");
    match tokio::time::timeout(TIMEOUT, client.next()).await.unwrap() {
        Some(Ok(Message::Close(_))) => {}
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn the_disconnect_does_not_wait_for_a_client_that_never_closes() {
    let mut srv = server(EngineIoConfig::default()).await;
    // A raw client: it never answers the close frame nor closes its side.
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let req = format!(
        "GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n\
         Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: {key}\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let socket = srv.sockets.recv().await.unwrap();
    let started = std::time::Instant::now();
    socket.close(DisconnectReason::ClosingServer);
    let reason = tokio::time::timeout(TIMEOUT, srv.disconnects.recv()).await;
    assert_eq!(reason.unwrap(), Some(DisconnectReason::ClosingServer));
    // The connection lingers up to a second for the client's end; the
    // disconnect is not held up by it.
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}
