//! What a cluster's Redis did during a phase: the commands it ran (`INFO
//! commandstats`, zeroed by `CONFIG RESETSTAT` when the phase starts) and
//! its own CPU (`used_cpu_user`/`used_cpu_sys` of `INFO cpu`, which RESETSTAT
//! leaves alone, so taken as a difference). The Redis must be the
//! benchmark's private one: RESETSTAT wipes the statistics of every client.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde::Serialize;

/// One command's share of a phase.
#[derive(Serialize, Clone, Default)]
pub struct CommandStat {
    pub calls: u64,
    /// Time Redis spent executing them, µs (its own measure).
    pub usec: u64,
}

#[derive(Serialize, Clone, Default)]
pub struct RedisReport {
    /// Every command the nodes sent (commands run inside a Lua script are
    /// counted too, under their own names, as Redis counts them).
    pub commands: BTreeMap<String, CommandStat>,
    pub calls: u64,
    pub usec: u64,
    /// Redis's own process CPU over the phase, µs.
    pub cpu_user_us: u64,
    pub cpu_sys_us: u64,
}

/// The start of a phase: the CPU Redis had used by then.
pub struct RedisMark {
    addr: SocketAddr,
    cpu_user_us: u64,
    cpu_sys_us: u64,
}

/// Our own calls, left out of the counts.
const OURS: [&str; 2] = ["config|resetstat", "info"];

impl RedisMark {
    /// Reads Redis's CPU, then zeroes its command statistics.
    pub fn start(addr: SocketAddr) -> Result<Self, String> {
        let info = command(addr, &["INFO", "cpu"])?;
        let (cpu_user_us, cpu_sys_us) = cpu(&info);
        command(addr, &["CONFIG", "RESETSTAT"])?;
        Ok(RedisMark {
            addr,
            cpu_user_us,
            cpu_sys_us,
        })
    }

    pub fn finish(&self) -> Result<RedisReport, String> {
        let info = command(self.addr, &["INFO", "cpu", "commandstats"])?;
        let (user, sys) = cpu(&info);
        let mut report = RedisReport {
            cpu_user_us: user.saturating_sub(self.cpu_user_us),
            cpu_sys_us: sys.saturating_sub(self.cpu_sys_us),
            ..RedisReport::default()
        };
        for line in info.lines() {
            let Some((name, fields)) = line
                .strip_prefix("cmdstat_")
                .and_then(|l| l.split_once(':'))
            else {
                continue;
            };
            if OURS.contains(&name) {
                continue;
            }
            let field = |key: &str| {
                fields
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let stat = CommandStat {
                calls: field("calls"),
                usec: field("usec"),
            };
            report.calls += stat.calls;
            report.usec += stat.usec;
            report.commands.insert(name.to_owned(), stat);
        }
        Ok(report)
    }
}

/// `used_cpu_user` and `used_cpu_sys` (seconds, as decimals) in µs.
fn cpu(info: &str) -> (u64, u64) {
    let seconds = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .map_or(0, |s| (s * 1e6) as u64)
    };
    (seconds("used_cpu_user"), seconds("used_cpu_sys"))
}

/// Sends one command (RESP array of bulk strings) on a fresh connection and
/// returns its reply: a simple string or a bulk string's text.
fn command(addr: SocketAddr, args: &[&str]) -> Result<String, String> {
    let fail = |e: std::io::Error| format!("redis {addr} {}: {e}", args.join(" "));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(fail)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(fail)?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    (&stream).write_all(request.as_bytes()).map_err(fail)?;
    let mut reader = BufReader::new(&stream);
    let mut head = String::new();
    reader.read_line(&mut head).map_err(fail)?;
    let head = head.trim_end();
    match head.as_bytes().first() {
        Some(b'+') => Ok(head[1..].to_owned()),
        Some(b'$') => {
            let len: usize = head[1..]
                .parse()
                .map_err(|_| format!("redis {addr}: bad reply {head:.80}"))?;
            let mut body = vec![0; len + 2];
            reader.read_exact(&mut body).map_err(fail)?;
            body.truncate(len);
            String::from_utf8(body).map_err(|_| format!("redis {addr}: non-UTF-8 reply"))
        }
        _ => Err(format!("redis {addr} {}: {head:.200}", args.join(" "))),
    }
}
