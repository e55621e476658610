//! `idle`: connect N authenticated websockets in steps (e.g. 1k, 5k, 19k),
//! read the server's RSS after each step settles, then hold them all and
//! measure the server's CPU while nothing but pings and timers run.

use std::time::Duration;

use serde_json::json;

use super::{Ctx, Outcome, Transport};
use crate::board::Board;
use crate::measure::{server_rss_kib, Phase};

pub async fn run(
    ctx: &Ctx,
    steps: &[usize],
    inflight: usize,
    settle: Duration,
    hold: Duration,
) -> Outcome {
    let baseline_rss_kib = server_rss_kib(&ctx.probe.pids);
    let mut reports = Vec::new();
    let mut have = 0;
    for &want in steps {
        let phase = Phase::start(&ctx.probe);
        ctx.connect(Transport::Websocket, have, want, inflight)
            .await?;
        let connect = phase.finish();
        tokio::time::sleep(settle).await;
        let rss_kib = server_rss_kib(&ctx.probe.pids);
        reports.push(json!({ "conns": want, "rss_kib": rss_kib, "connect": connect }));
        have = want;
    }
    // The hold, and within it the quiet window before the next Engine.IO
    // ping arrives: there the server runs only its own timers.
    let pings_before = Board::get(&ctx.board.pings);
    let phase = Phase::start(&ctx.probe);
    let board = &ctx.board;
    board
        .wait_until(hold, || Board::get(&board.pings) > pings_before)
        .await;
    let quiet = phase.finish();
    let rest = hold.saturating_sub(Duration::from_secs_f64(quiet.wall_ms / 1000.0));
    tokio::time::sleep(rest).await;
    let hold_report = phase.finish();
    let pings = Board::get(&ctx.board.pings) - pings_before;
    let still = Board::get(&ctx.board.connected) - Board::get(&ctx.board.closed);
    ctx.disconnect_all().await;
    Ok(json!({
        "baseline_rss_kib": baseline_rss_kib,
        "steps": reports,
        "hold_s": hold.as_secs_f64(),
        "hold": hold_report,
        "pings_during_hold": pings,
        "quiet": quiet,
        "connected_after_hold": still,
    }))
}
