//! One simulated client over a websocket (`transport=websocket`, no polling
//! first): TCP from a 127.0.0.x source, the upgrade, then every text frame
//! goes through the shared `Session` until the scenario says stop.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::board::Board;
use crate::session::{Flow, Session};
use crate::target::Target;

/// Runs the client; `permit` (the storm's in-flight slot) is released as soon
/// as the socket has its `connected` event, or on failure.
pub async fn run(
    target: Arc<Target>,
    index: usize,
    mut session: Session,
    board: Arc<Board>,
    mut permit: Option<OwnedSemaphorePermit>,
) {
    let mut stop = board.stop_signal();
    let server = target.client_addr(index);
    let tcp = match target.connect(server, index).await {
        Ok(tcp) => tcp,
        Err(e) => return board.fail(format!("tcp connect: {e}")),
    };
    let url = format!(
        "ws://{}{}",
        server,
        target.handshake_path("websocket", &session.token)
    );
    // Small buffers: the generator holds up to 19k of these.
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let ws = match tokio_tungstenite::client_async_with_config(url, tcp, Some(config)).await {
        Ok((ws, _)) => ws,
        Err(e) => return board.fail(format!("websocket upgrade: {e}")),
    };
    let (mut sink, mut frames) = ws.split();
    let mut out = Vec::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            frame = frames.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => { board.error(format!("websocket read: {e}")); break; }
                };
                let flow = session.on_packet(text.as_str(), &mut out);
                for packet in out.drain(..) {
                    if let Err(e) = sink.send(Message::text(packet)).await {
                        board.error(format!("websocket write: {e}"));
                    }
                }
                if session.connected {
                    permit.take();
                }
                if flow == Flow::Close {
                    break;
                }
            }
        }
    }
    let _ = sink.close().await;
    board.finished(session.connected);
}
