//! `fanout` and `polling`: N clients in one role room; each round sends one
//! event to the room through the API and waits until every client has it
//! (fan-out time = last receipt - send). Then, for websockets, a `burst` of
//! the same number of events back to back: deliveries per second.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::json;

use super::{Ctx, Outcome, Transport};
use crate::clock::now_ns;
use crate::measure::{percentiles, Phase};

pub async fn run(
    ctx: &Ctx,
    transport: Transport,
    conns: usize,
    rounds: usize,
    inflight: usize,
    burst: bool,
) -> Outcome {
    let phase = Phase::start(&ctx.probe);
    ctx.connect(transport, 0, conns, inflight).await?;
    let connect = phase.finish();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut api = ctx.api();

    ctx.board.latencies.lock().unwrap().clear();
    let phase = Phase::start(&ctx.probe);
    let mut fanout_ns = Vec::with_capacity(rounds);
    let mut delivered_to = Vec::with_capacity(rounds);
    for r in 0..rounds {
        let sent = now_ns();
        delivered_to.push(api.role_event("bench", r, sent).await?);
        let round = &ctx.board.rounds[r];
        ctx.wait_for(&round.received, conns, &format!("round {r}"))
            .await?;
        fanout_ns.push(round.last_ns.load(Relaxed) - sent);
    }
    let rounds_report = phase.finish();
    let latency = percentiles(&ctx.board.latencies.lock().unwrap());

    let burst_report = if burst {
        let phase = Phase::start(&ctx.probe);
        let first_sent = now_ns();
        for r in rounds..2 * rounds {
            api.role_event("bench", r, now_ns()).await?;
        }
        for r in rounds..2 * rounds {
            ctx.wait_for(
                &ctx.board.rounds[r].received,
                conns,
                &format!("burst event {r}"),
            )
            .await?;
        }
        let report = phase.finish();
        let last = ctx.board.rounds[rounds..]
            .iter()
            .map(|r| r.last_ns.load(Relaxed))
            .max()
            .unwrap_or(first_sent);
        let span_s = (last - first_sent) as f64 / 1e9;
        let deliveries = conns * rounds;
        json!({
            "events": rounds,
            "deliveries": deliveries,
            "span_ms": span_s * 1000.0,
            "deliveries_per_s": (deliveries as f64 / span_s).round(),
            "phase": report,
        })
    } else {
        serde_json::Value::Null
    };
    ctx.disconnect_all().await;
    Ok(json!({
        "transport": if transport == Transport::Polling { "polling" } else { "websocket" },
        "conns": conns,
        "rounds": rounds,
        "deliveries": conns * rounds,
        "delivered_to": delivered_to,
        "connect": connect,
        "fanout": percentiles(&fanout_ns),
        "fanout_rounds_ms": fanout_ns.iter().map(|n| (*n as f64 / 1e4).round() / 100.0).collect::<Vec<_>>(),
        "delivery_latency": latency,
        "rounds_phase": rounds_report,
        "burst": burst_report,
    }))
}
