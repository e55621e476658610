//! Measurement of a phase: wall time, the server's CPU (utime/stime from
//! /proc/PID/stat) and RSS (VmRSS from /proc/PID/status), summed over every
//! process of the server (the nodes of a cluster, each also reported on its
//! own), what a cluster's Redis did, and the generator's own CPU (getrusage),
//! flagged when it is above 80% of its core because the result then measures
//! the generator, not the server. Plus percentiles.

use std::net::SocketAddr;
use std::time::Instant;

use serde::Serialize;

use crate::redis_stats::{RedisMark, RedisReport};

/// What a phase watches: the server's processes and, for a cluster, its Redis.
pub struct Probe {
    pub pids: Vec<u32>,
    pub redis: Option<SocketAddr>,
}

#[derive(Clone, Copy, Default)]
struct Cpu {
    user_us: u64,
    sys_us: u64,
}

/// The server's CPU from /proc/PID/stat (all threads), in microseconds.
fn server_cpu(pid: u32) -> Cpu {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return Cpu::default();
    };
    // Fields after the parenthesised command: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick_us = 1_000_000 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
            * tick_us
    };
    Cpu {
        user_us: field(11),
        sys_us: field(12),
    }
}

/// The server's time on CPU in ns, summed over its live threads from
/// /proc/PID/task/*/schedstat: finer than the tick-based utime/stime, but
/// without the user/sys split and blind to threads that exited meanwhile.
fn server_sched_ns(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|s| {
            s.split_whitespace()
                .next()
                .and_then(|ns| ns.parse::<u64>().ok())
        })
        .sum()
}

/// The server's resident set size in KiB (0 when unknown), all its processes.
pub fn server_rss_kib(pids: &[u32]) -> u64 {
    pids.iter().map(|pid| process_rss_kib(*pid)).sum()
}

fn process_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn own_cpu() -> Cpu {
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Cpu {
        user_us: us(usage.ru_utime),
        sys_us: us(usage.ru_stime),
    }
}

pub struct Phase {
    pids: Vec<u32>,
    started: Instant,
    /// Each server process's CPU at the start, in `pids` order.
    server: Vec<(Cpu, u64)>,
    redis: Option<Result<RedisMark, String>>,
    own: Cpu,
}

/// One process of the server over a phase (a node of a cluster).
#[derive(Serialize, Clone)]
pub struct ProcessReport {
    pub pid: u32,
    pub user_us: u64,
    pub sys_us: u64,
    pub sched_us: f64,
}

#[derive(Serialize, Clone)]
pub struct PhaseReport {
    pub wall_ms: f64,
    pub server_user_us: u64,
    pub server_sys_us: u64,
    /// Server CPU (user + sys) in µs from schedstat, nanosecond-precise.
    pub server_sched_us: f64,
    pub server_rss_kib: u64,
    /// Each process on its own, when the server is several (a cluster).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<ProcessReport>,
    /// What the cluster's Redis did over the phase.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisReport>,
    /// Why the Redis figures are missing, when they are.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_error: Option<String>,
    pub gen_user_us: u64,
    pub gen_sys_us: u64,
    /// Generator CPU as % of one core over the phase.
    pub gen_cpu_pct: f64,
    /// True when the generator was above 80% of its core: the phase then
    /// measured the generator as much as the server.
    pub gen_saturated: bool,
}

impl Phase {
    pub fn start(probe: &Probe) -> Self {
        let server = probe
            .pids
            .iter()
            .map(|pid| (server_cpu(*pid), server_sched_ns(*pid)))
            .collect();
        Phase {
            pids: probe.pids.clone(),
            started: Instant::now(),
            server,
            redis: probe.redis.map(RedisMark::start),
            own: own_cpu(),
        }
    }

    pub fn finish(&self) -> PhaseReport {
        let wall = self.started.elapsed();
        let own = own_cpu();
        let processes: Vec<ProcessReport> = self
            .pids
            .iter()
            .zip(&self.server)
            .map(|(pid, (cpu, ns))| {
                let now = server_cpu(*pid);
                ProcessReport {
                    pid: *pid,
                    user_us: now.user_us.saturating_sub(cpu.user_us),
                    sys_us: now.sys_us.saturating_sub(cpu.sys_us),
                    sched_us: server_sched_ns(*pid).saturating_sub(*ns) as f64 / 1000.0,
                }
            })
            .collect();
        let (redis, redis_error) = match self.redis.as_ref().map(|m| m.as_ref()?.finish()) {
            Some(Ok(report)) => (Some(report), None),
            Some(Err(e)) => (None, Some(e)),
            None => (None, None),
        };
        let gen_user_us = own.user_us - self.own.user_us;
        let gen_sys_us = own.sys_us - self.own.sys_us;
        let gen_cpu_pct =
            (gen_user_us + gen_sys_us) as f64 / wall.as_micros().max(1) as f64 * 100.0;
        PhaseReport {
            wall_ms: wall.as_secs_f64() * 1000.0,
            server_user_us: processes.iter().map(|p| p.user_us).sum(),
            server_sys_us: processes.iter().map(|p| p.sys_us).sum(),
            server_sched_us: processes.iter().map(|p| p.sched_us).sum(),
            server_rss_kib: server_rss_kib(&self.pids),
            processes: if processes.len() > 1 {
                processes
            } else {
                Vec::new()
            },
            redis,
            redis_error,
            gen_user_us,
            gen_sys_us,
            gen_cpu_pct: (gen_cpu_pct * 10.0).round() / 10.0,
            gen_saturated: gen_cpu_pct > 80.0,
        }
    }
}

#[derive(Serialize, Default, Clone)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Percentiles (nearest rank) of nanosecond samples, reported in ms.
pub fn percentiles(samples: &[u64]) -> Percentiles {
    if samples.is_empty() {
        return Percentiles::default();
    }
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        (sorted[rank - 1] as f64 / 1e4).round() / 100.0
    };
    Percentiles {
        count: sorted.len(),
        p50_ms: at(0.50),
        p90_ms: at(0.90),
        p99_ms: at(0.99),
        max_ms: at(1.0),
    }
}
