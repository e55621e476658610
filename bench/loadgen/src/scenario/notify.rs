//! `notify`: N users, one socket each; M targeted notifications through
//! `POST /api/v1/users/{id}/notifications` from a few keep-alive API
//! connections (optionally paced), each carrying its send time `t`. Clients
//! acknowledge every notification. Reports accepted/s, delivery latency and
//! the server's CPU over the whole send-deliver-acknowledge phase.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Ctx, Outcome, Transport};
use crate::clock::now_ns;
use crate::measure::{percentiles, Phase};

pub async fn run(
    ctx: &Ctx,
    users: usize,
    count: usize,
    concurrency: usize,
    rate: f64,
    inflight: usize,
) -> Outcome {
    let phase = Phase::start(&ctx.probe);
    ctx.connect(Transport::Websocket, 0, users, inflight)
        .await?;
    let connect = phase.finish();
    tokio::time::sleep(Duration::from_secs(1)).await;

    ctx.board.latencies.lock().unwrap().clear();
    let phase = Phase::start(&ctx.probe);
    let (accepted, accept_s) = send(ctx, users, count, concurrency, rate).await?;
    ctx.wait_for(&ctx.board.notifications, count, "deliveries")
        .await?;
    ctx.wait_for(&ctx.board.acks_ok, count, "acknowledgements")
        .await?;
    let report = phase.finish();
    let latency = percentiles(&ctx.board.latencies.lock().unwrap());
    ctx.disconnect_all().await;
    Ok(json!({
        "users": users,
        "count": count,
        "concurrency": concurrency,
        "rate": rate,
        "accepted": accepted,
        "accepted_per_s": (accepted as f64 / accept_s).round(),
        "delivered": crate::board::Board::get(&ctx.board.notifications),
        "acked": crate::board::Board::get(&ctx.board.acks_ok),
        "delivery_latency": latency,
        "connect": connect,
        "notify": report,
    }))
}

/// Sends `count` notifications, to `u{i % users}`, from `concurrency` API
/// connections (paced at `rate` a second unless 0), each carrying its send
/// time `t`; answers how many were accepted and the seconds it took, or
/// the first refusal.
pub async fn send(
    ctx: &Ctx,
    users: usize,
    count: usize,
    concurrency: usize,
    rate: f64,
) -> Result<(usize, f64), String> {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (next, accepted, first_error) = (next.clone(), accepted.clone(), first_error.clone());
        let mut api = ctx.api();
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= count {
                    break;
                }
                if rate > 0.0 {
                    tokio::time::sleep_until(
                        (started + Duration::from_secs_f64(i as f64 / rate)).into(),
                    )
                    .await;
                }
                let body = json!({
                    "id": format!("bench-{i}"), "type": "critical_finding", "severity": "critical",
                    "title": "Benchmark finding", "message": "Urgent review required",
                    "patientId": format!("patient-{i}"), "t": now_ns(),
                });
                match api
                    .post(
                        &format!("/api/v1/users/u{}/notifications", i % users),
                        &body,
                    )
                    .await
                {
                    Ok(_) => {
                        accepted.fetch_add(1, Relaxed);
                    }
                    Err(e) => {
                        first_error.lock().unwrap().get_or_insert(e);
                    }
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let accept_s = started.elapsed().as_secs_f64();
    let accepted = accepted.load(Relaxed);
    if let Some(e) = first_error.lock().unwrap().clone() {
        return Err(format!(
            "{} of {count} refused; first: {e}",
            count - accepted
        ));
    }
    Ok((accepted, accept_s))
}
