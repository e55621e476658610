//! One simulated client over Engine.IO long-polling (no upgrade): a GET
//! connection that is always waiting for the server's next payload and a
//! second connection for POSTs (the CONNECT packet, pongs, acks). Payloads
//! are packets joined by the record separator 0x1e.

use std::sync::Arc;

use serde_json::Value;
use tokio::sync::OwnedSemaphorePermit;

use crate::board::Board;
use crate::http::HttpConn;
use crate::session::{Flow, Session};
use crate::target::Target;

const SEPARATOR: char = '\u{1e}';

pub async fn run(
    target: Arc<Target>,
    index: usize,
    mut session: Session,
    board: Arc<Board>,
    mut permit: Option<OwnedSemaphorePermit>,
) {
    let mut stop = board.stop_signal();
    let server = target.client_addr(index);
    let mut get = HttpConn::new(target.clone(), server, index);
    let mut post = HttpConn::new(target.clone(), server, index);
    let handshake = target.handshake_path("polling", &session.token);
    let open = match get.request("GET", &handshake, None, None).await {
        Ok(r) if r.status == 200 => r.body,
        Ok(r) => {
            return board.fail(format!(
                "polling handshake: HTTP {} {:.200}",
                r.status, r.body
            ))
        }
        Err(e) => return board.fail(format!("polling handshake: {e}")),
    };
    let sid = serde_json::from_str::<Value>(open.get(1..).unwrap_or(""))
        .ok()
        .and_then(|v| v.get("sid").and_then(Value::as_str).map(str::to_owned));
    let Some(sid) = sid else {
        return board.fail(format!("no sid in {open:.200}"));
    };
    let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
    let mut out = Vec::new();
    let mut flow = session.on_packet(&open, &mut out);
    while flow == Flow::Continue {
        if !out.is_empty() {
            let payload = out.join(&SEPARATOR.to_string());
            out.clear();
            match post
                .request(
                    "POST",
                    &path,
                    None,
                    Some(("text/plain;charset=UTF-8", &payload)),
                )
                .await
            {
                Ok(r) if r.status == 200 => {}
                Ok(r) => {
                    board.error(format!("polling POST: HTTP {} {:.200}", r.status, r.body));
                    break;
                }
                Err(e) => {
                    board.error(format!("polling POST: {e}"));
                    break;
                }
            }
        }
        let response = tokio::select! {
            _ = stop.changed() => break,
            r = get.request("GET", &path, None, None) => r,
        };
        let body = match response {
            Ok(r) if r.status == 200 => r.body,
            Ok(r) => {
                board.error(format!("polling GET: HTTP {} {:.200}", r.status, r.body));
                break;
            }
            Err(e) => {
                board.error(format!("polling GET: {e}"));
                break;
            }
        };
        for packet in body.split(SEPARATOR) {
            flow = session.on_packet(packet, &mut out);
            if flow == Flow::Close {
                break;
            }
        }
        if session.connected {
            permit.take();
        }
    }
    board.finished(session.connected);
}
