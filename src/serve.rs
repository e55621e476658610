//! Herald's accept loop: serves every TCP connection with hyper's HTTP/1
//! server (with upgrades), in place of `axum::serve`.
//!
//! `axum::serve` uses hyper-util's `auto::Builder`, which wraps every
//! connection in a private `Rewind<...>` type, so after a websocket upgrade
//! `hyper::upgrade::Upgraded::downcast` cannot recover the `TcpStream`.
//! Here hyper gets the bare `TokioIo<TcpStream>`, so the patched Engine.IO
//! layer can downcast an upgraded connection to exactly that type and write
//! websocket frames straight to the socket. Herald speaks HTTP/1.1 only
//! (its TLS offers only `http/1.1`, and browsers never use h2c). Over TLS
//! the connection is a `TlsStream`, so websockets take the library's
//! tungstenite path instead of the direct one.
//!
//! The rest keeps `axum::serve`'s behaviour: the peer address as the
//! `ConnectInfo<SocketAddr>` extension of every request, hyper's default
//! HTTP/1 settings (no timer, so no header read timeout), the same handling
//! of accept errors, and the same graceful shutdown.

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use futures::future::Either;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::util::Oneshot;
use tower::{Service, ServiceExt};

/// Serves `app` on `listener` until `signal` resolves, then stops accepting,
/// asks every open connection to finish (the request in flight is answered,
/// then the connection closes) and waits for them. Upgraded (websocket)
/// connections are no longer hyper's and are not waited for.
///
/// With `tls`, every connection is a TLS handshake first (in its own task,
/// bounded by [`HANDSHAKE_LIMIT`]); a failed handshake closes it.
///
/// Never fails, as `axum::serve`: accept errors are logged and retried.
pub async fn serve<S>(
    listener: TcpListener,
    app: S,
    signal: impl Future<Output = ()>,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let http = http1::Builder::new();
    // Every connection task holds a receiver until it ends: a message asks
    // them to finish, and `closed` tells when they all have.
    let (stop, _) = watch::channel(());
    let mut signal = pin!(signal);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut signal => break,
        };
        tracing::trace!(%peer, "connection accepted");
        // Small frames go out at once (no Nagle delay behind an
        // unacknowledged one): a real-time server writes many small,
        // separate messages.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let service = PerConnection::new(app.clone(), peer);
        let (http, tls) = (http.clone(), tls.clone());
        let mut stopping = stop.subscribe();
        tokio::spawn(async move {
            let result = match tls {
                None => run(&http, tcp, service, &mut stopping).await,
                Some(tls) => match tokio::time::timeout(HANDSHAKE_LIMIT, tls.accept(tcp)).await {
                    Ok(Ok(stream)) => run(&http, stream, service, &mut stopping).await,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out");
                        return;
                    }
                },
            };
            if let Err(e) = result {
                tracing::trace!(%peer, error = %e, "connection ended with an error");
            }
            drop(stopping);
        });
    }
    drop(listener);
    tracing::trace!(
        connections = stop.receiver_count(),
        "not accepting; waiting for open connections to finish"
    );
    let _ = stop.send(());
    stop.closed().await;
    Ok(())
}

/// Longest a client may take over its TLS handshake.
pub const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// Serves one connection over `io` until it ends, or until a stop message
/// asks it to finish its request in flight and close.
async fn run<I, S>(
    http: &http1::Builder,
    io: I,
    service: PerConnection<S>,
    stopping: &mut watch::Receiver<()>,
) -> hyper::Result<()>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let conn = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = pin!(conn);
    tokio::select! {
        result = conn.as_mut() => result,
        _ = stopping.changed() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    }
}

/// The next connection. As `axum::serve`: a connection that failed before
/// it was accepted is skipped; any other error (out of file descriptors...)
/// is logged and accepting pauses for a second, as it would fail at once again.
async fn accept(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                tracing::error!(error = %e, "accept error");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// One connection's service: `app` with the peer address added to every
/// request.
///
/// hyper calls its service through `&self`, which is why hyper-util's
/// `TowerToHyperService` (and so `axum::serve`) clones the whole tower stack
/// for every request. An HTTP/1 connection has one request at a time, so
/// this one keeps its own copy of the stack, made once for the connection,
/// and calls it in place when it is ready (Herald's always is); only a stack
/// that is not ready at once is cloned and waited for.
struct PerConnection<S> {
    app: RefCell<S>,
    peer: SocketAddr,
}

impl<S> PerConnection<S> {
    fn new(app: S, peer: SocketAddr) -> Self {
        Self {
            app: RefCell::new(app),
            peer,
        }
    }
}

impl<S> hyper::service::Service<hyper::Request<Incoming>> for PerConnection<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, Oneshot<S, Request>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let mut app = self.app.borrow_mut();
        match app.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => Either::Left(app.call(req)),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Either::Right(app.clone().oneshot(req)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::Arc;

    use axum::http::{header, StatusCode};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::{mpsc, oneshot, Notify};

    /// Serves `app` on a free port; the server stops when the returned
    /// sender is used (or dropped).
    async fn start<S>(
        app: S,
    ) -> (
        SocketAddr,
        oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
    )
    where
        S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
        S::Future: Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            app,
            async {
                let _ = stop_rx.await;
            },
            None,
        ));
        (addr, stop_tx, server)
    }

    /// Reads until the end of a response head.
    async fn read_head(tcp: &mut TcpStream) -> String {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(tcp.read(&mut byte).await.unwrap(), 1, "connection closed");
            head.push(byte[0]);
        }
        String::from_utf8(head).unwrap()
    }

    #[tokio::test]
    async fn an_upgraded_connection_is_the_tcp_stream_and_requests_carry_the_peer() {
        let (found_tx, mut found_rx) = mpsc::unbounded_channel();
        let app = tower::service_fn(move |mut req: Request| {
            let found = found_tx.clone();
            async move {
                let peer = req
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| c.0);
                let upgrade = hyper::upgrade::on(&mut req);
                tokio::spawn(async move {
                    let upgraded = upgrade.await.unwrap();
                    let tcp = upgraded
                        .downcast::<TokioIo<TcpStream>>()
                        .ok()
                        .map(|parts| parts.io.inner().peer_addr().unwrap());
                    found.send((peer, tcp)).unwrap();
                });
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(StatusCode::SWITCHING_PROTOCOLS)
                        .header(header::CONNECTION, "upgrade")
                        .header(header::UPGRADE, "websocket")
                        .body(Body::empty())
                        .unwrap(),
                )
            }
        });
        let (addr, stop, server) = start(app).await;

        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .await
        .unwrap();
        assert!(read_head(&mut tcp).await.starts_with("HTTP/1.1 101"));
        let (peer, upgraded_peer) = found_rx.recv().await.unwrap();
        let client = tcp.local_addr().unwrap();
        assert_eq!(peer, Some(client));
        assert_eq!(upgraded_peer, Some(client), "not a TokioIo<TcpStream>");

        // The upgraded connection does not hold up the shutdown.
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_waits_for_the_request_in_flight() {
        let release = Arc::new(Notify::new());
        let (arrived_tx, mut arrived_rx) = mpsc::unbounded_channel();
        let app = {
            let release = release.clone();
            tower::service_fn(move |_: Request| {
                let release = release.clone();
                let arrived = arrived_tx.clone();
                async move {
                    arrived.send(()).unwrap();
                    release.notified().await;
                    Ok::<_, Infallible>(Response::new(Body::from("done")))
                }
            })
        };
        let (addr, stop, server) = start(app).await;

        let mut busy = TcpStream::connect(addr).await.unwrap();
        busy.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        arrived_rx.recv().await.unwrap();
        // An idle connection is closed at once.
        let mut idle = TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;

        stop.send(()).unwrap();
        assert_eq!(idle.read(&mut [0u8; 1]).await.unwrap(), 0);
        assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!server.is_finished(), "did not wait for the request");

        release.notify_one();
        let head = read_head(&mut busy).await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.to_ascii_lowercase().contains("connection: close"));
        server.await.unwrap().unwrap();
    }
}
