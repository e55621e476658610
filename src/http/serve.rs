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
//! HTTP/1 settings but a bounded request head (`head.rs`), the same
//! handling of accept errors, and the same graceful shutdown. Added: each
//! connection's admission (`admission.rs`: `limits.max_connections`, with a
//! reserve for the health checks) and its header and idle timeouts
//! (`keepalive.rs`).

use std::cell::RefCell;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use futures::future::{BoxFuture, FutureExt};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tower::{Service, ServiceExt};

use crate::http::admission::{Admission, Admit};
use crate::http::keepalive::Activity;

/// How each connection is admitted and when an idle one is closed.
#[derive(Clone)]
pub struct Policy {
    pub admission: Admission,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

/// How long a connection closed for idleness may take to finish what it
/// was writing before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

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
    policy: Policy,
    signal: impl Future<Output = ()>,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let http = crate::http::head::builder();
    // Every connection task holds a receiver until it ends: a message asks
    // them to finish, and `closed` tells when they all have.
    let (stop, _) = watch::channel(());
    let mut signal = pin!(signal);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = accept(&listener) => accepted,
            () = &mut signal => break,
        };
        let (ticket, health_only) = match policy.admission.admit(peer) {
            Admit::Serve(t) => (t, false),
            Admit::HealthOnly(t) => (t, true),
            Admit::Refuse => {
                drop(tcp);
                continue;
            }
        };
        tracing::trace!(%peer, "connection accepted");
        // Small frames go out at once (no Nagle delay behind an
        // unacknowledged one): a real-time server writes many small,
        // separate messages.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let activity = Arc::new(Activity::new());
        let service = PerConnection::new(app.clone(), peer, activity.clone(), health_only);
        let (http, tls) = (http.clone(), tls.clone());
        let timeouts = Timeouts {
            header: policy.header_timeout,
            idle: policy.idle_timeout,
        };
        let mut stopping = stop.subscribe();
        tokio::spawn(async move {
            let watched = Watch {
                stopping: &mut stopping,
                activity: &activity,
                timeouts,
                peer,
            };
            let result = match tls {
                None => run(&http, tcp, service, watched).await,
                Some(tls) => match tokio::time::timeout(HANDSHAKE_LIMIT, tls.accept(tcp)).await {
                    Ok(Ok(stream)) => run(&http, stream, service, watched).await,
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
            drop(ticket);
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

/// A connection's header and idle timeouts.
#[derive(Clone, Copy)]
struct Timeouts {
    header: Duration,
    idle: Duration,
}

/// What a connection's task watches besides the connection: the stop
/// message, its requests in flight and its timeouts.
struct Watch<'a> {
    stopping: &'a mut watch::Receiver<()>,
    activity: &'a Activity,
    timeouts: Timeouts,
    peer: SocketAddr,
}

/// Serves one connection over `io` until it ends, until a stop message
/// asks it to finish its request in flight and close, or until it has sent
/// no complete request head within the header timeout or been idle (no
/// request in flight) for the idle timeout.
async fn run<I, S>(
    http: &http1::Builder,
    io: I,
    service: PerConnection<S>,
    watched: Watch<'_>,
) -> hyper::Result<()>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let Watch {
        stopping,
        activity,
        timeouts,
        peer,
    } = watched;
    let conn = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut conn = pin!(conn);
    loop {
        // While a request is in flight there is no deadline; look again
        // after an idle period (the request may end first).
        let deadline = activity
            .deadline(timeouts.header, timeouts.idle)
            .unwrap_or_else(|| tokio::time::Instant::now() + timeouts.idle);
        tokio::select! {
            result = conn.as_mut() => return result,
            _ = stopping.changed() => {
                conn.as_mut().graceful_shutdown();
                return conn.await;
            }
            () = activity.changed() => {}
            () = tokio::time::sleep_until(deadline) => {
                if activity
                    .deadline(timeouts.header, timeouts.idle)
                    .is_some_and(|d| d <= tokio::time::Instant::now())
                {
                    tracing::debug!(%peer, "closing an idle connection");
                    conn.as_mut().graceful_shutdown();
                    return tokio::time::timeout(CLOSE_GRACE, conn.as_mut())
                        .await
                        .unwrap_or(Ok(()));
                }
            }
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
///
/// Each request is marked in flight on the connection's [`Activity`] until
/// its answer is ready, so an open long-poll keeps its connection from
/// counting as idle. A request whose head Herald does not serve (no `Host`,
/// a transfer coding other than chunked: `head.rs`) is answered at once. A
/// connection admitted above the limit answers only the health checks.
struct PerConnection<S> {
    app: RefCell<S>,
    peer: SocketAddr,
    activity: Arc<Activity>,
    health_only: bool,
}

impl<S> PerConnection<S> {
    fn new(app: S, peer: SocketAddr, activity: Arc<Activity>, health_only: bool) -> Self {
        Self {
            app: RefCell::new(app),
            peer,
            activity,
            health_only,
        }
    }
}

/// The paths a connection above `limits.max_connections` may still ask for.
fn is_health_check(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// The answer to anything else on such a connection.
fn too_many_connections() -> Response {
    let body = r#"{"error":{"code":"too_many_connections","message":"the server has too many open connections; try again later"}}"#;
    Response::builder()
        .status(http::StatusCode::SERVICE_UNAVAILABLE)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONNECTION, "close")
        .header(http::header::RETRY_AFTER, "1")
        .body(Body::from(body))
        .expect("a static response")
}

/// A request's answer is ready: it is no longer in flight.
fn done<T>(answer: T, busy: crate::http::keepalive::Busy) -> T {
    drop(busy);
    answer
}

impl<S> hyper::service::Service<hyper::Request<Incoming>> for PerConnection<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        if let Some(refusal) = crate::http::head::refusal(&req) {
            return futures::future::ready(Ok(refusal)).boxed();
        }
        if self.health_only && !is_health_check(req.uri().path()) {
            return futures::future::ready(Ok(too_many_connections())).boxed();
        }
        let busy = self.activity.begin();
        let mut req = req.map(Body::new);
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let mut app = self.app.borrow_mut();
        match app.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => app.call(req).map(move |r| done(r, busy)).boxed(),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => app.clone().oneshot(req).map(move |r| done(r, busy)).boxed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let policy = Policy {
            admission: Admission::new(
                1_000,
                Arc::new(|| 0),
                Arc::new(crate::clock::ManualClock::new(0)),
            ),
            header_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
        };
        let server = tokio::spawn(serve(
            listener,
            app,
            policy,
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
