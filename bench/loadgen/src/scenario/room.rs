//! `room`: a study room of N where everyone types. N websockets (tokens
//! opening `study:*`, all in role `bench`) connect, then:
//!
//! 1. the join storm: all N send `join_room` at once, and every socket must
//!    hear a `room_presence` listing the N members. Herald sends a room's
//!    sockets one frame per presence window, so the frames each socket has
//!    per window stay at one or under (O(members) frames in all), where a
//!    frame per join would be N(N+1)/2;
//! 2. typing: every socket sends `typing { room, isTyping: true }` at a
//!    steady rate, spread over the period, for a number of seconds. Herald
//!    relays at most one a second per user and room, so each socket hears
//!    the other N-1 users about once a second each; reported: the frames per
//!    socket per second and the server's CPU per typing frame delivered
//!    (the inputs the throttle holds back included). Then everyone stops
//!    (`isTyping: false`, told to the room when each user's second ends);
//! 3. the baseline, on the same sockets and server: role broadcasts and
//!    events to the room from the API, back to back (the `fanout`
//!    scenario's burst), and the server's CPU per delivery of each. The
//!    typing delivery's CPU over the role broadcast's is the ratio to read.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use serde_json::{json, Value};

use super::{Api, Ctx, Outcome, Transport};
use crate::board::Board;
use crate::clock::now_ns;
use crate::measure::{Phase, PhaseReport};
use crate::order::Order;

/// The room everyone is in: a study, as a viewer names it.
const ROOM: &str = "study:1.2.840.113619.2.5";

pub struct Sizes {
    pub members: usize,
    pub seconds: f64,
    /// How often each socket sends `typing`.
    pub every: Duration,
    /// Broadcasts of each kind in the baseline.
    pub rounds: usize,
    /// The server's `rooms.presence_window`.
    pub window: Duration,
}

pub async fn run(ctx: &Ctx, sizes: &Sizes, inflight: usize) -> Outcome {
    let n = sizes.members;
    if n < 2 {
        return Err("a room where everyone types needs --members 2 or more".into());
    }
    let phase = Phase::start(&ctx.probe);
    ctx.connect_opening(Transport::Websocket, 0, n, inflight, &["study:*"])
        .await?;
    let connect = phase.finish();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let join = join_storm(ctx, sizes).await?;
    let typing = typing(ctx, sizes).await?;
    let mut api = ctx.api();
    let role = burst(ctx, sizes, Via::Role, 0, &mut api).await?;
    let room = burst(ctx, sizes, Via::Room, sizes.rounds, &mut api).await?;
    ctx.disconnect_all().await;

    let sched = |v: &Value| v["cpu_per_delivery"]["sched_us"].as_f64();
    let ratio = sched(&typing)
        .zip(sched(&role))
        .map(|(t, r)| t / r.max(1e-9));
    Ok(json!({
        "members": n,
        "room": ROOM,
        "connect": connect,
        "join": join,
        "typing": typing,
        "role_burst": role,
        "room_burst": room,
        "typing_over_role_cpu_per_delivery": ratio,
    }))
}

/// Everyone joins at once; every socket must hear the full room.
async fn join_storm(ctx: &Ctx, sizes: &Sizes) -> Outcome {
    let (n, board) = (sizes.members, &ctx.board);
    let frames = &board.room;
    frames.want_members.store(n, Relaxed);
    let acks_before = Board::get(&board.acks_ok);
    let phase = Phase::start(&ctx.probe);
    let sent = now_ns();
    board.order(Order::Once {
        event: "join_room",
        data: json!({ "room": ROOM }),
    });
    ctx.wait_for(&board.acks_ok, acks_before + n, "join answers")
        .await?;
    ctx.wait_for(&frames.presence_full, n, "a room_presence of every member")
        .await?;
    let report = phase.finish();
    // A join whose change came just after a window read the members opens
    // one more window: wait it out so that its frames are counted too.
    tokio::time::sleep(sizes.window + Duration::from_millis(300)).await;
    let total = Board::get(&frames.presence);
    let most = Board::get(&frames.presence_most);
    let span_ns = frames.presence_last_ns.load(Relaxed).saturating_sub(sent);
    let window_ns = sizes.window.as_nanos().max(1) as u64;
    let windows = span_ns.div_ceil(window_ns).max(1);
    Ok(json!({
        "joins": n,
        "refused": Board::get(&board.acks_refused),
        "presence_frames": total,
        "frames_if_one_per_join": n * (n + 1) / 2,
        "per_socket_mean": total as f64 / n as f64,
        "per_socket_max": most,
        "span_ms": span_ns as f64 / 1e6,
        "window_ms": sizes.window.as_secs_f64() * 1000.0,
        "windows": windows,
        "per_socket_per_window_max": most as f64 / windows as f64,
        "phase": report,
    }))
}

/// Everyone types for `sizes.seconds`, then stops.
async fn typing(ctx: &Ctx, sizes: &Sizes) -> Outcome {
    let (n, board) = (sizes.members, &ctx.board);
    let frames = &board.room;
    let (true_before, presence_before) = (
        frames.typing_true.load(Relaxed),
        Board::get(&frames.presence),
    );
    let emitted_before = Board::get(&board.emitted);
    let phase = Phase::start(&ctx.probe);
    board.order(Order::Every {
        event: "typing",
        data: json!({ "room": ROOM, "isTyping": true }),
        every: sizes.every,
    });
    tokio::time::sleep(Duration::from_secs_f64(sizes.seconds)).await;
    board.order(Order::Nothing);
    // The relays of the last inputs still on their way.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let report = phase.finish();
    let delivered = frames.typing_true.load(Relaxed) - true_before;
    let inputs = Board::get(&board.emitted) - emitted_before;
    let wall_s = report.wall_ms / 1000.0;
    // A refresh inside the throttle is held back, so a user is relayed on
    // their first input at least a second after the last relay: at best
    // every whole number of periods from a second, one period later when
    // that input arrives a hair early by the server's clock.
    let every_ms = sizes.every.as_millis().max(1) as u64;
    let relay_ms = 1000u64.div_ceil(every_ms) * every_ms;
    let most = (n - 1) as f64 * 1000.0 / relay_ms as f64;
    let stopped = stop_typing(ctx, n).await?;
    Ok(json!({
        "seconds": sizes.seconds,
        "every_ms": every_ms,
        "inputs": inputs,
        "delivered": delivered,
        "per_socket_per_s": delivered as f64 / n as f64 / wall_s,
        "most_per_socket_per_s": most,
        "presence_frames_meanwhile": Board::get(&frames.presence) - presence_before,
        "inputs_per_s": inputs as f64 / wall_s,
        "cpu_per_delivery": per_unit(&report, delivered),
        "cpu_per_input": per_unit(&report, inputs),
        "stop": stopped,
        "phase": report,
    }))
}

/// Everyone sends `isTyping: false`; waits until each socket heard every
/// other user stop. Each `false` is due when its user's second ends, so
/// all should be told within about a second; a `true` told after the
/// stop, or a `false` told only when the last `true` went stale (5 s),
/// shows the room kept a user typing who had stopped.
async fn stop_typing(ctx: &Ctx, n: usize) -> Outcome {
    let board = &ctx.board;
    let frames = &board.room;
    let false_before = Board::get(&frames.typing_false);
    let true_before = frames.typing_true.load(Relaxed);
    let (acks_before, refused_before) =
        (Board::get(&board.acks_ok), Board::get(&board.acks_refused));
    let sent = now_ns();
    board.order(Order::Once {
        event: "typing",
        data: json!({ "room": ROOM, "isTyping": false }),
    });
    let want = false_before + n * (n - 1);
    let within = Duration::from_millis(1_500);
    board
        .wait_until(within, || Board::get(&frames.typing_false) >= want)
        .await;
    let told_within = Board::get(&frames.typing_false) - false_before;
    ctx.wait_for(&board.acks_ok, acks_before + n, "typing answers")
        .await?;
    ctx.wait_for(&frames.typing_false, want, "typing stopped")
        .await?;
    Ok(json!({
        "want_false": n * (n - 1),
        "told_false": Board::get(&frames.typing_false) - false_before,
        "told_false_within_1500ms": told_within,
        "told_true_after_stop": frames.typing_true.load(Relaxed) - true_before,
        "refused": Board::get(&board.acks_refused) - refused_before,
        "all_told_ms": (now_ns() - sent) as f64 / 1e6,
    }))
}

/// Where a baseline broadcast goes: to the role every socket is in, or to
/// the study room through the API.
#[derive(Clone, Copy)]
enum Via {
    Role,
    Room,
}

/// `sizes.rounds` broadcasts back to back from the API (rounds `first..`),
/// then waits until every socket has each; the server's CPU per delivery.
async fn burst(ctx: &Ctx, sizes: &Sizes, via: Via, first: usize, api: &mut Api) -> Outcome {
    let n = sizes.members;
    let phase = Phase::start(&ctx.probe);
    let mut reached = 0;
    for r in first..first + sizes.rounds {
        reached += match via {
            Via::Role => api.role_event("bench", r, now_ns()).await?,
            Via::Room => api.room_event(ROOM, r, now_ns()).await?,
        };
    }
    for r in first..first + sizes.rounds {
        let round = &ctx.board.rounds[r];
        ctx.wait_for(&round.received, n, &format!("broadcast {r}"))
            .await?;
    }
    let report = phase.finish();
    let deliveries = n * sizes.rounds;
    Ok(json!({
        "events": sizes.rounds,
        "deliveries": deliveries,
        "delivered_to": reached,
        "deliveries_per_s": (deliveries as f64 / (report.wall_ms / 1000.0)).round(),
        "cpu_per_delivery": per_unit(&report, deliveries),
        "phase": report,
    }))
}

/// The server's CPU per unit of work over a phase, in µs: user and sys
/// from the tick-based counters, total from schedstat.
fn per_unit(phase: &PhaseReport, units: usize) -> Value {
    let units = units.max(1) as f64;
    json!({
        "user_us": phase.server_user_us as f64 / units,
        "sys_us": phase.server_sys_us as f64 / units,
        "sched_us": phase.server_sched_us / units,
    })
}
