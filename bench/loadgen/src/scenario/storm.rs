//! `storm`: N JWT connects with a fixed number in flight; the server's CPU
//! per connect and the connect rate. A connect counts when its `connected`
//! event has arrived.

use serde_json::json;

use super::{Ctx, Outcome, Transport};
use crate::measure::Phase;

pub async fn run(ctx: &Ctx, conns: usize, inflight: usize) -> Outcome {
    let phase = Phase::start(&ctx.probe);
    ctx.connect(Transport::Websocket, 0, conns, inflight)
        .await?;
    let connect = phase.finish();
    ctx.disconnect_all().await;
    Ok(json!({
        "connects": conns,
        "connects_per_s": (conns as f64 / (connect.wall_ms / 1000.0)).round(),
        "connect": connect,
    }))
}
