//! One simulated client over a websocket (`transport=websocket`, no polling
//! first): TCP from a 127.0.0.x source, the upgrade, then every text frame
//! goes through the shared `Session`, and the client emits what the
//! scenario orders (once, or at a steady rate), until the scenario says stop.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use futures_util::{Sink, SinkExt, StreamExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use crate::board::Board;
use crate::order::{offset, Order};
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
    let mut orders = board.orders();
    // The packet of an `Order::Every`, and when it is next due.
    let mut repeat: Option<(String, Interval)> = None;
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
            Ok(()) = orders.changed() => {
                let order = orders.borrow_and_update().clone();
                repeat = None;
                match order {
                    Order::Nothing => {}
                    Order::Once { event, data } => {
                        out.push(session.emit(event, &data, true));
                        board.emitted.fetch_add(1, Relaxed);
                    }
                    Order::Every { event, data, every } => {
                        let packet = session.emit(event, &data, false);
                        let first = Instant::now() + offset(index, every);
                        let mut ticks = tokio::time::interval_at(first, every);
                        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                        repeat = Some((packet, ticks));
                    }
                }
                flush(&mut sink, &mut out, &board).await;
            }
            packet = due(&mut repeat) => {
                out.push(packet);
                board.emitted.fetch_add(1, Relaxed);
                flush(&mut sink, &mut out, &board).await;
            }
            frame = frames.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => { board.error(format!("websocket read: {e}")); break; }
                };
                let flow = session.on_packet(text.as_str(), &mut out);
                flush(&mut sink, &mut out, &board).await;
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

/// Sends the packets in `out`, in order.
async fn flush<S>(sink: &mut S, out: &mut Vec<String>, board: &Board)
where
    S: Sink<Message> + Unpin,
    S::Error: std::fmt::Display,
{
    for packet in out.drain(..) {
        if let Err(e) = sink.send(Message::text(packet)).await {
            board.error(format!("websocket write: {e}"));
        }
    }
}

/// The repeated packet when its next tick comes; never without one.
async fn due(repeat: &mut Option<(String, Interval)>) -> String {
    match repeat {
        Some((packet, ticks)) => {
            ticks.tick().await;
            packet.clone()
        }
        None => std::future::pending().await,
    }
}
