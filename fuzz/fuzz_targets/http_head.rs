//! Request heads on a real hyper connection with Herald's bounds (over an
//! in-memory pipe): any bytes never panic nor hang; every answer is an
//! HTTP/1.1 status line; a request served has a head within
//! `MAX_HEAD_BYTES`, exactly one `Host` on HTTP/1.1 and no transfer coding
//! but `chunked`; nothing is served on a connection after a refusal.
//!
//! The first byte pads the head with a header of that many 256-byte units
//! (up to 64 KiB), so both sides of the head bound are explored.
#![no_main]

use std::cell::Cell;
use std::convert::Infallible;
use std::rc::Rc;

use axum::body::Body;
use axum::http::{header, Response, Version};
use herald::http::head::{builder, refusal, MAX_HEAD_BYTES};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The bytes sent: the input with its padding header after its first line.
fn stream(data: &[u8]) -> Vec<u8> {
    let Some((&units, rest)) = data.split_first() else {
        return Vec::new();
    };
    let mut out = Vec::with_capacity(rest.len() + units as usize * 256 + 16);
    match rest.iter().position(|&b| b == b'\n') {
        Some(i) if units > 0 => {
            out.extend_from_slice(&rest[..=i]);
            out.extend_from_slice(b"X-Pad: ");
            out.resize(out.len() + units as usize * 256, b'p');
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&rest[i + 1..]);
        }
        _ => out.extend_from_slice(rest),
    }
    out
}

/// What a served request must satisfy, checked apart from `refusal`.
fn check_served(req: &hyper::Request<Incoming>) {
    let mut size = req.uri().to_string().len();
    for (name, value) in req.headers() {
        size += name.as_str().len() + value.len();
    }
    assert!(size <= MAX_HEAD_BYTES, "served a head of {size} bytes");
    let hosts = req.headers().get_all(header::HOST).iter().count();
    if req.version() == Version::HTTP_11 {
        assert_eq!(hosts, 1, "served an HTTP/1.1 request with {hosts} Host");
    }
    for te in req.headers().get_all(header::TRANSFER_ENCODING) {
        let te = String::from_utf8_lossy(te.as_bytes()).to_ascii_lowercase();
        assert!(
            te.split(',').all(|c| c.trim() == "chunked"),
            "served transfer coding {te:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let input = stream(data);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async move {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let refused = Rc::new(Cell::new(false));
        let svc = {
            let refused = refused.clone();
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                assert!(!refused.get(), "served a request after a refusal");
                let answer = match refusal(&req) {
                    Some(r) => {
                        refused.set(true);
                        r
                    }
                    None => {
                        check_served(&req);
                        Response::new(Body::from("ok"))
                    }
                };
                std::future::ready(Ok::<_, Infallible>(answer))
            })
        };
        let conn = builder().serve_connection(TokioIo::new(server), svc);
        let talk = async {
            let _ = client.write_all(&input).await;
            let _ = client.shutdown().await;
            let mut out = Vec::new();
            let _ = client.read_to_end(&mut out).await;
            out
        };
        let (_, out) = tokio::join!(conn, talk);
        // Every answer starts with a status line.
        for answer in out
            .split(|&b| b == b'\n')
            .filter(|l| l.starts_with(b"HTTP/"))
        {
            assert!(
                answer.starts_with(b"HTTP/1.1 ") || answer.starts_with(b"HTTP/1.0 "),
                "answer {:?}",
                String::from_utf8_lossy(answer)
            );
        }
        if !out.is_empty() {
            assert!(
                out.starts_with(b"HTTP/1."),
                "{:?}",
                String::from_utf8_lossy(&out)
            );
        }
    });
});
