//! Herald: a real-time notification and session-monitoring server speaking
//! Socket.IO. This file only assembles the parts from a [`Config`].

pub mod admission;
pub mod api;
pub mod audit;
pub mod auth;
pub mod authenticated;
pub mod backlog;
pub mod broker;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod deadlines;
pub mod escalation;
pub mod guard;
pub mod hub;
pub mod keepalive;
pub mod notification;
pub mod ops;
pub mod origin;
pub mod outbox;
pub mod presence;
pub mod prometheus;
pub mod protocol;
pub mod rate;
pub mod registry;
pub mod report;
pub mod requests;
pub mod routes;
pub mod serve;
pub mod server;
pub mod session;
pub mod socket;
pub mod sockets;
pub mod store;
pub mod throttle;
pub mod trail;
pub mod web;

pub use config::Config;
pub use server::{app, build_hub, start, start_with_clock, Built, Running, StartError};
