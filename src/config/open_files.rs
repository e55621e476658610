//! The process's open-file limit, which bounds how many clients one node can
//! hold (every socket and HTTP connection is an open file): raised to its
//! hard ceiling at start, and the default of `limits.max_connections`.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The cap used when the limit cannot be read (or is unlimited).
const UNKNOWN_LIMIT_CAP: usize = 10_000;

/// Files kept for what is not a client: the store's files and pools, the
/// Redis link, webhook calls, logs, and the listener. A tenth of the limit,
/// at least 64 and at most 1,024.
fn reserve(limit: u64) -> u64 {
    (limit / 10).clamp(64, 1_024)
}

/// The smallest cap configuration accepts (see `limits.rs`).
pub const MIN_MAX_CONNECTIONS: usize = 16;

/// Raises the soft open-file limit to the hard one, as a server that holds
/// one file per client should (the soft limit is often 1,024 while the hard
/// one allows far more). Best effort: a refusal leaves the limit as it was.
pub fn raise_to_hard() {
    let limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum {
        if limit.current.is_some_and(|soft| soft < hard) {
            let _ = setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(hard),
                    maximum: Some(hard),
                },
            );
        }
    }
}

/// The soft open-file limit now in force; `None` when unlimited.
pub fn current() -> Option<u64> {
    getrlimit(Resource::Nofile).current
}

/// `limits.max_connections` when it is not set: the open-file limit less
/// its reserve, so the cap refuses a client before the kernel would (an
/// accept failing with "too many open files" answers no one).
pub fn default_max_connections(soft_limit: Option<u64>) -> usize {
    match soft_limit {
        Some(limit) => {
            let usable = limit.saturating_sub(reserve(limit));
            usize::try_from(usable)
                .unwrap_or(usize::MAX)
                .max(MIN_MAX_CONNECTIONS)
        }
        None => UNKNOWN_LIMIT_CAP,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_is_the_limit_less_a_bounded_reserve() {
        assert_eq!(default_max_connections(Some(1_024)), 1_024 - 102);
        assert_eq!(default_max_connections(Some(20_000)), 20_000 - 1_024);
        assert_eq!(default_max_connections(Some(65_536)), 65_536 - 1_024);
        assert_eq!(default_max_connections(Some(256)), 256 - 64);
    }

    #[test]
    fn a_tiny_or_unknown_limit_still_gives_a_valid_cap() {
        assert_eq!(default_max_connections(Some(20)), MIN_MAX_CONNECTIONS);
        assert_eq!(default_max_connections(None), UNKNOWN_LIMIT_CAP);
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let before = current();
        raise_to_hard();
        let after = current();
        match (before, after) {
            (Some(b), Some(a)) => assert!(a >= b, "{b} -> {a}"),
            (Some(b), None) => panic!("{b} -> unlimited is not a raise to hard"),
            (None, after) => assert_eq!(after, None),
        }
    }
}
