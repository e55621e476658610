//! herald-loadgen: a load generator for Herald and its Node.js reference that
//! speaks raw Engine.IO v4 / Socket.IO v5 text frames (websocket and
//! long-polling). One subcommand per scenario; each prints one JSON object on
//! stdout and exits non-zero when the scenario could not run. Runs on one
//! thread, so pin it to one core (`taskset -c 0`).

mod board;
mod clock;
mod http;
mod measure;
mod order;
mod polling;
mod redis_stats;
mod scenario;
mod session;
mod target;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use scenario::{Ctx, Transport};

#[derive(Parser)]
#[command(about = "Raw Engine.IO/Socket.IO load generator for Herald benchmarks")]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Args)]
struct Common {
    /// Server address for the backend API (loopback only).
    #[arg(long, global = true, default_value = "127.0.0.1:8001")]
    addr: SocketAddr,
    /// Addresses the clients connect to, round robin (comma-separated;
    /// default: `--addr`). Other nodes of a cluster than `--addr`'s measure
    /// cross-node delivery.
    #[arg(long, global = true, value_delimiter = ',')]
    client_addrs: Vec<SocketAddr>,
    /// API key for the backend API.
    #[arg(
        long,
        global = true,
        env = "BENCH_API_KEY",
        default_value = "bench-api-key"
    )]
    api_key: String,
    /// HS256 secret the server verifies JWTs with.
    #[arg(
        long,
        global = true,
        env = "BENCH_JWT_SECRET",
        default_value = "bench-jwt-secret"
    )]
    jwt_secret: String,
    /// Server process ids, for their CPU (/proc/PID/stat) and RSS
    /// (comma-separated: the nodes of a cluster, summed and each reported).
    #[arg(long, global = true, value_delimiter = ',')]
    server_pid: Vec<u32>,
    /// The cluster's Redis (a private one: its statistics are reset at the
    /// start of every phase), for the commands and CPU of each phase.
    #[arg(long, global = true)]
    redis_addr: Option<SocketAddr>,
    /// Number of 127.0.0.x source addresses to spread client sockets over.
    #[arg(long, global = true, default_value_t = 8)]
    sources: usize,
    /// Connections allowed in flight while connecting.
    #[arg(long, global = true, default_value_t = 200)]
    inflight: usize,
    /// Limit on every wait, in seconds.
    #[arg(long, global = true, default_value_t = 120)]
    timeout: u64,
    /// Send the JWT only in the CONNECT packet's `auth`, as socket.io-client's
    /// `auth` option does; by default it also goes in the handshake's query,
    /// which the server keeps for the connection's life.
    #[arg(long, global = true)]
    no_query_token: bool,
}

#[derive(Subcommand)]
enum Scenario {
    /// Connect N websockets (comma-separated steps), report RSS, hold them.
    Idle {
        #[arg(long, value_delimiter = ',', default_value = "1000")]
        conns: Vec<usize>,
        /// Seconds to let the server settle before reading RSS.
        #[arg(long, default_value_t = 2.0)]
        settle: f64,
        /// Seconds to hold all connections while measuring idle CPU.
        #[arg(long, default_value_t = 10.0)]
        hold: f64,
    },
    /// JWT connection storm with `--inflight` connects in flight.
    Storm {
        #[arg(long, default_value_t = 1000)]
        conns: usize,
    },
    /// Role-room fan-out to N websockets, round by round, then a burst.
    Fanout {
        #[arg(long, default_value_t = 1000)]
        conns: usize,
        #[arg(long, default_value_t = 20)]
        rounds: usize,
    },
    /// Durable targeted notifications through the API; clients acknowledge.
    Notify {
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 10000)]
        count: usize,
        /// API connections sending at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Notifications per second (0 = as fast as the API accepts).
        #[arg(long, default_value_t = 0.0)]
        rate: f64,
    },
    /// Stores `--pending` notifications for each of `--users` users, none
    /// of them connected (the set-up of `catchup`).
    Seed {
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 3)]
        pending: usize,
    },
    /// Connects the users `seed` stored for; each catches up and
    /// acknowledges: the cost of a reconnect after a failover.
    Catchup {
        #[arg(long, default_value_t = 1000)]
        users: usize,
        #[arg(long, default_value_t = 3)]
        pending: usize,
    },
    /// A study room of N where everyone types: the join storm, typing at a
    /// steady rate, then role and room broadcasts to the same sockets.
    Room {
        #[arg(long, default_value_t = 200)]
        members: usize,
        /// Seconds of typing.
        #[arg(long, default_value_t = 20.0)]
        seconds: f64,
        /// Milliseconds between two `typing` of one socket.
        #[arg(long, default_value_t = 250)]
        every_ms: u64,
        /// Broadcasts of each kind in the baseline.
        #[arg(long, default_value_t = 200)]
        rounds: usize,
        /// The server's `rooms.presence_window`, in milliseconds.
        #[arg(long, default_value_t = 500)]
        presence_window_ms: u64,
    },
    /// Role-room fan-out to N long-polling clients.
    Polling {
        #[arg(long, default_value_t = 1000)]
        conns: usize,
        #[arg(long, default_value_t = 20)]
        rounds: usize,
    },
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let (name, outcome) = runtime.block_on(run(cli));
    let (ok, mut report) = match outcome {
        Ok(report) => (true, report),
        Err(error) => (false, json!({ "error": error })),
    };
    if let Value::Object(map) = &mut report {
        map.insert("scenario".into(), json!(name));
        map.insert("ok".into(), json!(ok));
    }
    println!("{report}");
    // Skip tearing down thousands of sockets one by one.
    std::process::exit(if ok { 0 } else { 1 });
}

async fn run(cli: Cli) -> (&'static str, scenario::Outcome) {
    let c = cli.common;
    if let Some(redis) = c.redis_addr.filter(|a| !a.ip().is_loopback()) {
        return (
            "setup",
            Err(format!("{redis} is not a loopback address; refusing")),
        );
    }
    let target = match target::Target::new(
        c.addr,
        c.client_addrs,
        c.api_key,
        &c.jwt_secret,
        c.sources,
        !c.no_query_token,
    ) {
        Ok(t) => Arc::new(t),
        Err(e) => return ("setup", Err(e)),
    };
    clock::now_ns();
    let rounds = match cli.scenario {
        Scenario::Fanout { rounds, .. } => 2 * rounds,
        Scenario::Polling { rounds, .. } => rounds,
        Scenario::Room { rounds, .. } => 2 * rounds,
        _ => 0,
    };
    let ctx = Ctx {
        target,
        board: Arc::new(board::Board::new(rounds)),
        probe: measure::Probe {
            pids: c.server_pid,
            redis: c.redis_addr,
        },
        timeout: Duration::from_secs(c.timeout),
    };
    match cli.scenario {
        Scenario::Idle {
            conns,
            settle,
            hold,
        } => {
            let (settle, hold) = (
                Duration::from_secs_f64(settle),
                Duration::from_secs_f64(hold),
            );
            (
                "idle",
                scenario::idle::run(&ctx, &conns, c.inflight, settle, hold).await,
            )
        }
        Scenario::Storm { conns } => ("storm", scenario::storm::run(&ctx, conns, c.inflight).await),
        Scenario::Fanout { conns, rounds } => (
            "fanout",
            scenario::fanout::run(&ctx, Transport::Websocket, conns, rounds, c.inflight, true)
                .await,
        ),
        Scenario::Notify {
            users,
            count,
            concurrency,
            rate,
        } => (
            "notify",
            scenario::notify::run(&ctx, users, count, concurrency, rate, c.inflight).await,
        ),
        Scenario::Seed { users, pending } => {
            ("seed", scenario::catchup::seed(&ctx, users, pending).await)
        }
        Scenario::Catchup { users, pending } => (
            "catchup",
            scenario::catchup::run(&ctx, users, pending, c.inflight).await,
        ),
        Scenario::Room {
            members,
            seconds,
            every_ms,
            rounds,
            presence_window_ms,
        } => {
            let sizes = scenario::room::Sizes {
                members,
                seconds,
                every: Duration::from_millis(every_ms.max(1)),
                rounds,
                window: Duration::from_millis(presence_window_ms.max(1)),
            };
            ("room", scenario::room::run(&ctx, &sizes, c.inflight).await)
        }
        Scenario::Polling { conns, rounds } => (
            "polling",
            scenario::fanout::run(&ctx, Transport::Polling, conns, rounds, c.inflight, false).await,
        ),
    }
}
