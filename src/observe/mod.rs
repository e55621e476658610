//! What Herald tells its operators: the Prometheus metrics, the security
//! log, and the throttle that keeps a flood of refusals from flooding the
//! log.

pub mod log_output;
pub mod prometheus;
pub mod security_log;
pub mod throttle;
