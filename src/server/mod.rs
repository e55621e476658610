//! The top of Herald: builds the Hub from the configuration, assembles the
//! HTTP application around it, starts it with its background tasks and
//! stops it; in a cluster, rejoins after Redis comes back.

mod app;
mod build;
pub mod rejoin;
mod start;

pub use app::app;
pub use build::{build_hub, Built};
pub use start::{start, start_with_clock, Running, StartError};
