//! Sending to one socket without losing what matters: an emit or a
//! disconnect that meets a full send buffer waits for it to drain (bounded
//! by a deadline) instead of failing silently.

use std::borrow::Cow;
use std::time::Duration;

use serde::Serialize;
use socketioxide::extract::SocketRef;
use socketioxide::{SendError, SocketError};

/// Why a reliable send gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Undelivered {
    /// The socket is gone.
    Closed,
    /// The buffer stayed full until the deadline.
    Stalled,
}

/// A full buffer means the client reads slower than we write: give it
/// time to drain a good part of the buffer before the next try, so the
/// Engine.IO heartbeat (which shares the buffer) finds room.
fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100 * (u64::from(attempt.min(4)) + 1))
}

/// Emits `event` with one argument `data`, retrying while the buffer is full.
pub async fn emit<T: Serialize + ?Sized>(
    socket: &SocketRef,
    event: &str,
    data: &T,
    patience: Duration,
) -> Result<(), Undelivered> {
    let start = tokio::time::Instant::now();
    let mut attempt = 0;
    loop {
        match socket.emit(event, &(data,)) {
            Ok(()) => {
                crate::observe::prometheus::server_event(event, 1);
                return Ok(());
            }
            Err(SendError::Socket(SocketError::InternalChannelFull))
                if start.elapsed() < patience =>
            {
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            Err(SendError::Socket(SocketError::InternalChannelFull)) => {
                return Err(Undelivered::Stalled)
            }
            Err(e) => {
                tracing::debug!(sid = %socket.id, event, error = %e, "emit failed");
                return Err(Undelivered::Closed);
            }
        }
    }
}

/// Sends a last event and then disconnects, without making the caller
/// wait on a slow socket: true when the event was handed over at once
/// (otherwise a background task keeps trying until `patience` runs out).
pub fn last_word(
    socket: SocketRef,
    event: Cow<'static, str>,
    payload: serde_json::Value,
    patience: Duration,
) -> bool {
    let now = socket.emit(&*event, &(&payload,));
    let handed = now.is_ok();
    if handed {
        crate::observe::prometheus::server_event(&event, 1);
    }
    let stalled = matches!(
        now,
        Err(SendError::Socket(SocketError::InternalChannelFull))
    );
    tokio::spawn(async move {
        if stalled {
            let _ = emit(&socket, &event, &payload, patience).await;
        }
        disconnect(socket, patience).await;
    });
    handed
}

/// Disconnects `socket` after everything queued before, retrying while the
/// buffer is full; closes the transport if it never drains.
pub async fn disconnect(socket: SocketRef, patience: Duration) {
    // Out of every room at once: a socket on its way out receives no more
    // broadcasts, even while its buffer drains.
    socket.leave_all();
    let start = tokio::time::Instant::now();
    let mut attempt = 0;
    loop {
        match socket.clone().disconnect() {
            Err(SocketError::InternalChannelFull) => {
                if start.elapsed() > patience && attempt % 20 == 0 {
                    tracing::warn!(sid = %socket.id, "send buffer still full; waiting to disconnect");
                }
                // socketioxide cannot drop a transport whose buffer is full;
                // keep trying: the buffer drains or the heartbeat ends it.
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
            _ => return,
        }
    }
}
