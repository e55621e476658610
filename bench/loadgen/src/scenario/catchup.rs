//! `seed` and `catchup`: what a reconnect after a failover costs. `seed`
//! stores `--pending` notifications for each of `--users` users while none
//! is connected; `catchup` then connects them all (`--inflight` at once)
//! and waits until every socket has had its notifications again in its
//! catch-up and acknowledged them: the server's CPU per reconnect with
//! its catch-up, the part of a failover each surviving node pays.

use serde_json::json;

use super::notify::send;
use super::{Ctx, Outcome, Transport};
use crate::board::Board;
use crate::measure::Phase;

/// API connections `seed` sends from.
const SEED_CONNECTIONS: usize = 8;

pub async fn seed(ctx: &Ctx, users: usize, pending: usize) -> Outcome {
    let count = users * pending;
    let (accepted, accept_s) = send(ctx, users, count, SEED_CONNECTIONS, 0.0).await?;
    Ok(json!({
        "users": users,
        "pending": pending,
        "accepted": accepted,
        "accepted_per_s": (accepted as f64 / accept_s).round(),
    }))
}

pub async fn run(ctx: &Ctx, users: usize, pending: usize, inflight: usize) -> Outcome {
    let count = users * pending;
    let phase = Phase::start(&ctx.probe);
    ctx.connect(Transport::Websocket, 0, users, inflight)
        .await?;
    ctx.wait_for(&ctx.board.notifications, count, "caught-up notifications")
        .await?;
    ctx.wait_for(&ctx.board.acks_ok, count, "acknowledgements")
        .await?;
    let report = phase.finish();
    ctx.disconnect_all().await;
    Ok(json!({
        "users": users,
        "pending": pending,
        "reconnects_per_s": (users as f64 / (report.wall_ms / 1000.0)).round(),
        "delivered": Board::get(&ctx.board.notifications),
        "acked": Board::get(&ctx.board.acks_ok),
        "catchup": report,
    }))
}
