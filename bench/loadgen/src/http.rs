//! A minimal HTTP/1.1 client over one keep-alive connection: enough for the
//! backend API calls and Engine.IO long-polling (Content-Length or chunked
//! bodies). It reconnects once when a reused connection turns out closed.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::target::Target;

pub struct HttpConn {
    target: Arc<Target>,
    /// The server this connection talks to.
    peer: SocketAddr,
    source_index: usize,
    stream: Option<BufReader<TcpStream>>,
    /// The last bodiless request's head, reused while the request repeats
    /// (a long-poll GET): the generator must cost far less than the server.
    cached_head: Option<(String, String, String)>,
}

pub struct Response {
    pub status: u16,
    pub body: String,
}

type Result<T> = std::result::Result<T, String>;

impl HttpConn {
    /// A connection to `peer`, from the `source_index`-th source address.
    pub fn new(target: Arc<Target>, peer: SocketAddr, source_index: usize) -> Self {
        HttpConn {
            target,
            peer,
            source_index,
            stream: None,
            cached_head: None,
        }
    }

    /// Sends one request; `body` is sent as `content_type` when given.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<(&str, &str)>,
    ) -> Result<Response> {
        let reused = self.stream.is_some();
        match self.try_request(method, path, auth, body).await {
            Ok(r) => Ok(r),
            Err(_) if reused => {
                self.stream = None;
                self.try_request(method, path, auth, body).await
            }
            Err(e) => Err(e),
        }
    }

    async fn try_request(
        &mut self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<(&str, &str)>,
    ) -> Result<Response> {
        if self.stream.is_none() {
            let tcp = self
                .target
                .connect(self.peer, self.source_index)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            self.stream = Some(BufReader::with_capacity(4096, tcp));
        }
        let repeated = body.is_none()
            && auth.is_none()
            && self
                .cached_head
                .as_ref()
                .is_some_and(|(m, p, _)| m == method && p == path);
        if !repeated {
            let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.peer);
            if let Some(key) = auth {
                head.push_str(&format!("Authorization: Bearer {key}\r\n"));
            }
            let (content_type, text) = body.unwrap_or(("", ""));
            if body.is_some() {
                head.push_str(&format!(
                    "Content-Type: {content_type}\r\nContent-Length: {}\r\n",
                    text.len()
                ));
            }
            head.push_str("\r\n");
            head.push_str(text);
            self.cached_head = Some((method.to_owned(), path.to_owned(), head));
        }
        let head = &self.cached_head.as_ref().expect("set above").2;
        let stream = self.stream.as_mut().expect("connected above");
        let result = async {
            stream
                .get_mut()
                .write_all(head.as_bytes())
                .await
                .map_err(|e| format!("write: {e}"))?;
            read_response(stream).await
        }
        .await;
        match result {
            Ok((response, keep_alive)) => {
                if !keep_alive {
                    self.stream = None;
                }
                Ok(response)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }
}

/// Reads one line into `line` (cleared first), without its line end.
async fn read_line<'a>(stream: &mut BufReader<TcpStream>, line: &'a mut String) -> Result<&'a str> {
    line.clear();
    let n = stream
        .read_line(line)
        .await
        .map_err(|e| format!("read: {e}"))?;
    if n == 0 {
        return Err("connection closed".into());
    }
    Ok(line.trim_end())
}

/// Whether `haystack` contains `needle` (lowercase), ignoring ASCII case.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

async fn read_response(stream: &mut BufReader<TcpStream>) -> Result<(Response, bool)> {
    let mut line = String::with_capacity(128);
    let status_line = read_line(stream, &mut line).await?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {status_line}"))?;
    let (mut length, mut chunked, mut keep_alive) = (None, false, true);
    loop {
        let header = read_line(stream, &mut line).await?;
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = contains_ignore_case(value, "chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = !contains_ignore_case(value, "close");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let size_line = read_line(stream, &mut line).await?;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| format!("bad chunk size: {size_line}"))?;
            let start = body.len();
            body.resize(start + size, 0);
            stream
                .read_exact(&mut body[start..])
                .await
                .map_err(|e| format!("read: {e}"))?;
            if let Err(e) = read_line(stream, &mut line).await {
                if size != 0 {
                    return Err(e);
                }
            }
            if size == 0 {
                break;
            }
        }
    } else if let Some(length) = length {
        body.resize(length, 0);
        stream
            .read_exact(&mut body)
            .await
            .map_err(|e| format!("read: {e}"))?;
    }
    let body = String::from_utf8(body).map_err(|_| "non-UTF-8 body".to_owned())?;
    Ok((Response { status, body }, keep_alive))
}
