//! What a scenario tells every websocket client to send: one order at a
//! time, which each client reads when it changes (the study-room scenario:
//! everyone joins at once, then everyone types at a steady rate, then
//! stops). The clients otherwise only answer what the server sends.

use std::time::Duration;

use serde_json::Value;

#[derive(Clone, Debug, Default)]
pub enum Order {
    /// Send nothing of one's own (the state before any order).
    #[default]
    Nothing,
    /// Emit `event` with `data` once, asking for an answer (counted on the
    /// board as an acknowledgement, refused or not).
    Once { event: &'static str, data: Value },
    /// Emit `event` with `data` every `every`, without asking for an
    /// answer, until the next order. Each client starts at its own point
    /// of the period, so the fleet's sends are spread evenly over it.
    Every {
        event: &'static str,
        data: Value,
        every: Duration,
    },
}

/// Where client `index` starts within a period: the fractional part of
/// `index` times the golden ratio, which spreads any number of clients
/// evenly without knowing how many there are.
pub fn offset(index: usize, every: Duration) -> Duration {
    let phase = (index as f64 * 0.618_033_988_749_895).fract();
    every.mul_f64(phase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_stay_inside_the_period_and_spread_the_fleet() {
        let every = Duration::from_millis(250);
        let offsets: Vec<Duration> = (0..200).map(|i| offset(i, every)).collect();
        assert!(offsets.iter().all(|o| *o < every));
        // Every tenth of the period gets between 15 and 25 of 200 clients.
        let mut tenths = [0usize; 10];
        for o in &offsets {
            tenths[(o.as_secs_f64() / every.as_secs_f64() * 10.0) as usize] += 1;
        }
        assert!(tenths.iter().all(|n| (15..=25).contains(n)), "{tenths:?}");
    }
}
