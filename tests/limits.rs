//! The server's limits against raw TCP clients, on real time with short
//! configured timeouts: headers that never finish, bodies that trickle in,
//! idle keep-alive connections, an open long-poll (never idle), a flood of
//! connections past `limits.max_connections` (health checks still answer),
//! and the per-user socket cap.

mod common;

use std::time::{Duration, Instant};

use common::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any close below may take: well past the configured timeouts,
/// so a pass never depends on a tight margin.
const BOUND: Duration = Duration::from_secs(10);

fn addr(s: &TestServer) -> String {
    s.base.trim_start_matches("http://").to_string()
}

/// Waits for the server to close `tcp`; returns what it sent before.
async fn closed_by_server(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(BOUND, tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open for {BOUND:?}"),
        }
    }
}

/// Sends one GET and reads its whole answer (a `Content-Length` body).
async fn request(tcp: &mut TcpStream, path: &str) -> String {
    send(tcp, "GET", path, "").await
}

/// Sends one request with `body` and reads its whole answer.
async fn send(tcp: &mut TcpStream, method: &str, path: &str, body: &str) -> String {
    let head = head(method, path, "text/plain", body.len());
    tcp.write_all(format!("{head}{body}").as_bytes())
        .await
        .unwrap();
    answer(tcp).await
}

/// A request head with the API key, for a body of `len` bytes.
fn head(method: &str, path: &str, content_type: &str, len: usize) -> String {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\n\r\n",
        common::API_KEY
    )
}

/// Reads one whole answer (a `Content-Length` body).
async fn answer(tcp: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(BOUND, tcp.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(n > 0, "closed before answering");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= len {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn headers_that_never_finish_are_cut_off_at_the_header_timeout() {
    let s = TestServer::start_with(|f| {
        f.http.header_timeout = Some("300ms".into());
        f.http.idle_timeout = Some("30s".into());
    })
    .await;
    let mut slow = TcpStream::connect(addr(&s)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(
        closed_by_server(&mut slow).await,
        "",
        "no answer to half a request"
    );
    assert!(
        started.elapsed() < BOUND,
        "closed by the header timeout, not the idle one"
    );
    // One that sends nothing at all goes the same way.
    let mut silent = TcpStream::connect(addr(&s)).await.unwrap();
    closed_by_server(&mut silent).await;
    // A prompt client is served.
    let mut prompt = TcpStream::connect(addr(&s)).await.unwrap();
    assert!(request(&mut prompt, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    s.stop().await;
}

#[tokio::test]
async fn a_body_that_trickles_in_is_answered_408_at_the_body_timeout() {
    let s = TestServer::start_with(|f| {
        f.http.body_timeout = Some("300ms".into());
        f.http.idle_timeout = Some("30s".into());
    })
    .await;
    let path = "/api/v1/users/u1/notifications";
    let body = r#"{"id":"trickled","title":"a body sent one byte every 50 ms"}"#;
    let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
    // A prompt body is served and keeps its keep-alive connection.
    let prompt = r#"{"id":"prompt","title":"at once"}"#;
    tcp.write_all(
        format!(
            "{}{prompt}",
            head("POST", path, "application/json", prompt.len())
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let served = answer(&mut tcp).await;
    assert!(served.starts_with("HTTP/1.1 202"), "{served}");
    // On the same connection, a body of 57 bytes at one byte every 50 ms
    // (about 2.9 s, ten body timeouts); the trickle stops at the answer.
    tcp.write_all(head("POST", path, "application/json", body.len()).as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let (mut read, mut write) = tcp.split();
    let mut bytes = body.bytes();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            n = read.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    bytes.by_ref().for_each(drop);
                }
            },
            _ = tick.tick() => if let Some(b) = bytes.next() {
                let _ = write.write_all(&[b]).await;
            },
        }
        assert!(
            started.elapsed() < BOUND,
            "the server kept the connection open for {BOUND:?}"
        );
    }
    let got = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(got.starts_with("http/1.1 408"), "{got}");
    assert!(got.contains("\"code\":\"body_timeout\""), "{got}");
    assert!(got.contains("connection: close"), "{got}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "cut off before the whole body was in: {:?}",
        started.elapsed()
    );
    // The 408 came before the handler ran: nothing was stored.
    let (status, _) = s.get("/api/v1/notifications/trickled").await;
    assert_eq!(status, 404);
    let (status, _) = s.get("/api/v1/notifications/prompt").await;
    assert_eq!(status, 200);
    s.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let s = TestServer::start_with(|f| {
        f.http.idle_timeout = Some("400ms".into());
    })
    .await;
    let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
    assert!(request(&mut tcp, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    // Kept alive: a second request on it is served.
    assert!(request(&mut tcp, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    assert_eq!(closed_by_server(&mut tcp).await, "");
    s.stop().await;
}

#[tokio::test]
async fn an_open_long_poll_is_not_idle() {
    // The poll is held until the next ping, ten idle timeouts later.
    let s = TestServer::start_with(|f| {
        f.http.idle_timeout = Some("200ms".into());
        f.socket.ping_interval = Some("2s".into());
    })
    .await;
    let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
    let open = request(&mut tcp, "/socket.io/?EIO=4&transport=polling").await;
    assert!(open.starts_with("HTTP/1.1 200"), "{open}");
    let sid = open
        .split("\"sid\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let poll_path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    // The first ping may be queued at once; answer each and poll again
    // until one poll was held to the next ping.
    let mut longest = Duration::ZERO;
    for _ in 0..3 {
        let started = Instant::now();
        let poll = request(&mut tcp, &poll_path).await;
        longest = longest.max(started.elapsed());
        assert!(poll.starts_with("HTTP/1.1 200"), "{poll}");
        assert!(poll.ends_with('2'), "the poll ended with a ping: {poll}");
        let pong = send(&mut tcp, "POST", &poll_path, "3").await;
        assert!(pong.starts_with("HTTP/1.1 200"), "{pong}");
    }
    assert!(
        longest >= Duration::from_millis(1500),
        "a poll was held open well past the idle timeout, on the same connection: {longest:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn past_max_connections_health_checks_answer_and_the_rest_is_refused() {
    const MAX: usize = 16;
    let s = TestServer::start_with(|f| {
        f.limits.max_connections = Some(MAX);
        f.http.header_timeout = Some("30s".into());
    })
    .await;
    // A flood of connections that send nothing.
    let mut flood = Vec::new();
    for _ in 0..MAX {
        flood.push(TcpStream::connect(addr(&s)).await.unwrap());
    }
    // Each is counted once accepted: a health check comes through.
    let mut probe = None;
    for _ in 0..50 {
        let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
        let answer = request(&mut tcp, "/api/v1/users").await;
        if answer.starts_with("HTTP/1.1 503") {
            assert!(answer.contains("too_many_connections"), "{answer}");
            probe = Some(tcp);
            break;
        }
        flood.push(tcp);
    }
    assert!(probe.is_some(), "the limit was never reached");
    for path in ["/healthz", "/readyz"] {
        let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
        let answer = request(&mut tcp, path).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        flood.push(tcp);
    }
    // Past the reserve: closed at once, before a byte is read.
    for _ in 0..herald::http::admission::HEALTH_RESERVE {
        flood.push(TcpStream::connect(addr(&s)).await.unwrap());
    }
    let mut refused = TcpStream::connect(addr(&s)).await.unwrap();
    let _ = refused
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n")
        .await;
    assert_eq!(closed_by_server(&mut refused).await, "");
    // The flood lets go: served again.
    drop(flood);
    drop(probe);
    let mut served = false;
    for _ in 0..100 {
        let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
        let answer = request(&mut tcp, "/api/v1/openapi.json").await;
        if answer.starts_with("HTTP/1.1 200") {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "still refusing after the flood closed");
    s.stop().await;
}

#[tokio::test]
async fn a_user_past_sockets_per_user_is_refused_until_one_closes() {
    const HOUR: i64 = 3_600_000;
    let s = TestServer::start_with(|f| f.limits.sockets_per_user = Some(2)).await;
    let (a, _) = s
        .connect_ok(&s.token("u1", "s1", "radiologist", HOUR))
        .await;
    let (_b, _) = s
        .connect_ok(&s.token("u1", "s2", "radiologist", HOUR))
        .await;
    assert_eq!(
        s.connect(&s.token("u1", "s3", "radiologist", HOUR))
            .await
            .err()
            .unwrap(),
        "Authentication failed"
    );
    // Another user is not affected.
    s.connect_ok(&s.token("u2", "s4", "radiologist", HOUR))
        .await;
    drop(a);
    let mut again = None;
    for _ in 0..100 {
        if let Ok(c) = s.connect(&s.token("u1", "s5", "radiologist", HOUR)).await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(again.is_some(), "a closed socket frees its place");
    s.stop().await;
}

#[tokio::test]
async fn simultaneous_polling_connects_of_one_user_stop_exactly_at_the_cap() {
    const CAP: usize = 20;
    let s = TestServer::start_with(|f| f.limits.sockets_per_user = Some(CAP)).await;
    let token = s.token("u1", "s1", "radiologist", 3_600_000);
    let (accepted, refusals) = common::polling_storm(&[&s], &token, 3 * CAP).await;
    assert_eq!(
        accepted, CAP,
        "accepted past the cap; refusals: {refusals:?}"
    );
    assert_eq!(refusals, vec!["Authentication failed".to_string()]);
    assert_eq!(s.get("/api/v1/users/u1").await.1["connections"], CAP);
    s.stop().await;
}

/// A complete GET head for `path` with `headers`, padded with an `X-Pad`
/// header to exactly `len` bytes when `len` is given.
fn get_head(path: &str, headers: &[(&str, String)], len: Option<usize>) -> String {
    let mut head = format!("GET {path} HTTP/1.1\r\nHost: herald\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(len) = len {
        let pad = len - head.len() - "X-Pad: \r\n\r\n".len();
        head.push_str(&format!("X-Pad: {}\r\n", "p".repeat(pad)));
    }
    head.push_str("\r\n");
    assert!(len.is_none_or(|l| head.len() == l));
    head
}

#[tokio::test]
async fn a_request_head_past_the_bound_gets_431_and_a_close() {
    use herald::http::head::MAX_HEAD_BYTES;
    let s = TestServer::start().await;
    // What a browser running socket.io-client sends at its largest: two
    // full cookies, a bearer token and the same token in the query.
    let jwt = format!(
        "eyJhbGciOiJIUzI1NiJ9.{}.{}",
        "e".repeat(1500),
        "s".repeat(43)
    );
    let real = get_head(
        &format!("/socket.io/?EIO=4&transport=polling&t=PxYz12&token={jwt}"),
        &[
            ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36".into()),
            ("Accept", "*/*".into()),
            ("Accept-Language", "fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7".into()),
            ("Accept-Encoding", "gzip, deflate, br, zstd".into()),
            ("Authorization", format!("Bearer {jwt}")),
            ("Cookie", format!("a={}; b={}", "c".repeat(4000), "d".repeat(4000))),
            ("Referer", "http://herald/dashboard".into()),
        ],
        None,
    );
    assert!(real.len() * 2 < MAX_HEAD_BYTES, "{} bytes", real.len());
    let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
    tcp.write_all(real.as_bytes()).await.unwrap();
    let served = answer(&mut tcp).await;
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    // A head of exactly the bound is served.
    let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
    tcp.write_all(get_head("/healthz", &[], Some(MAX_HEAD_BYTES)).as_bytes())
        .await
        .unwrap();
    let served = answer(&mut tcp).await;
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
    // 64 KiB of a head that never ends, trickled in 1 KiB pieces as the
    // attack did: 431, then the server closes.
    let tcp = TcpStream::connect(addr(&s)).await.unwrap();
    let (mut read, mut write) = tcp.into_split();
    let trickle = tokio::spawn(async move {
        write
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: herald\r\nX-Pad: ")
            .await
            .unwrap();
        for _ in 0..64 {
            if write.write_all(&[b'p'; 1024]).await.is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
        write
    });
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(BOUND, read.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the connection open for {BOUND:?}"),
        }
    }
    let _ = trickle.await;
    let got = String::from_utf8_lossy(&got);
    assert!(got.starts_with("HTTP/1.1 431"), "{got:?}");
    // The same 64 KiB sent complete at once is refused the same way.
    let mut tcp = TcpStream::connect(addr(&s)).await.unwrap();
    let _ = tcp
        .write_all(get_head("/healthz", &[], Some(64 * 1024)).as_bytes())
        .await;
    let got = closed_by_server(&mut tcp).await;
    assert!(got.starts_with("HTTP/1.1 431"), "{got:?}");
    s.stop().await;
}

#[tokio::test]
async fn a_body_past_the_value_budget_gets_413_and_changes_nothing() {
    use serde_json::json;
    let s = TestServer::start().await;
    // The attack's shape: one array of small elements, under 1 MB.
    let flood = json!({"id": "flood", "title": "t", "items": vec![0; 30_000]});
    let (status, body) = s.post("/api/v1/users/u1/notifications", flood).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "too_many_values", "{body}");
    let (status, _) = s.get("/api/v1/notifications/flood").await;
    assert_eq!(status, 404, "nothing was stored");
    let (status, body) = s
        .post(
            "/api/v1/users/u1/events",
            json!({"event": "e", "data": vec![0; 30_000]}),
        )
        .await;
    assert_eq!(status, 413, "{body}");
    // A large real notification (300 fields, nested three levels) is kept
    // exactly, and so is the largest broadcast audience.
    let fields: serde_json::Map<String, serde_json::Value> = (0..300)
        .map(|i| {
            let study = json!({"uid": format!("1.2.840.{i}"), "series": [{"n": i, "tags": ["a", 1.5, null, true]}]});
            (format!("field{i}"), study)
        })
        .collect();
    let mut real = json!({"id": "real", "title": "Study ready", "severity": "high"});
    real.as_object_mut().unwrap().extend(fields);
    let (status, body) = s.post("/api/v1/users/u1/notifications", real.clone()).await;
    assert_eq!(status, 202, "{body}");
    let (status, stored) = s.get("/api/v1/notifications/real").await;
    assert_eq!(status, 200);
    for (k, v) in real.as_object().unwrap() {
        assert_eq!(&stored["notification"][k], v, "{k}");
    }
    let users: Vec<String> = (0..10_000).map(|i| format!("u{i}")).collect();
    let (status, body) = s
        .post(
            "/api/v1/notifications",
            json!({"userIds": users, "notification": {"id": "wide", "title": "t"}}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn a_head_without_one_host_or_with_a_coding_past_chunked_is_refused() {
    let s = TestServer::start().await;
    let exchange = |raw: String| {
        let a = addr(&s);
        async move {
            let mut tcp = TcpStream::connect(a).await.unwrap();
            tcp.write_all(raw.as_bytes()).await.unwrap();
            closed_by_server(&mut tcp).await
        }
    };
    // RFC 9112 §3.2: exactly one Host on HTTP/1.1; HTTP/1.0 may omit it.
    let got = exchange("GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n".into()).await;
    assert!(got.starts_with("HTTP/1.1 400"), "{got}");
    assert!(got.contains("invalid_host"), "{got}");
    let two = "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n";
    let got = exchange(two.into()).await;
    assert!(got.starts_with("HTTP/1.1 400"), "{got}");
    let got = exchange("GET /healthz HTTP/1.0\r\n\r\n".into()).await;
    assert!(got.starts_with("HTTP/1.0 200"), "{got}");
    // RFC 9112 §6.1: chunked is the only transfer coding served; the
    // connection closes, the body unread, and nothing is stored.
    let chunked = |id: &str, coding: &str| {
        let body = format!(r#"{{"id":"{id}","title":"t"}}"#);
        format!(
            "POST /api/v1/users/u1/notifications HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: {coding}\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            common::API_KEY,
            body.len()
        )
    };
    let got = exchange(chunked("zipped", "gzip, chunked")).await;
    assert!(got.starts_with("HTTP/1.1 501"), "{got}");
    assert!(got.contains("unsupported_transfer_coding"), "{got}");
    let got = exchange(chunked("plain", "chunked")).await;
    assert!(got.starts_with("HTTP/1.1 202"), "{got}");
    assert_eq!(s.get("/api/v1/notifications/zipped").await.0, 404);
    assert_eq!(s.get("/api/v1/notifications/plain").await.0, 200);
    s.stop().await;
}
