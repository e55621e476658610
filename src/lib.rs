//! Herald: a real-time notification and session-monitoring server speaking
//! Socket.IO, for clinical systems. This file declares the modules and
//! re-exports what `main.rs` and the tests start Herald with; the server
//! is assembled in [`server`].
//!
//! # Layout
//!
//! Data flows down. Each top-level module belongs to one layer and uses
//! only its own layer and the layers below it, with no cycle between
//! modules; `scripts/layers.py` checks this in CI.
//!
//! | layer | module | its job |
//! |---|---|---|
//! | server | [`server`] | Builds the Hub from the configuration (SQLite or PostgreSQL, one node or a Redis cluster), assembles the HTTP application, starts and stops it; the cluster's rejoin after a Redis outage. |
//! | transport | [`http`] | The accept loop, connection admission and keep-alive, the origin check, the request observer, endpoints as data, and the operations endpoints (`/healthz`, `/readyz`, `/metrics`). |
//! | | [`api`] | The backend's HTTP API: one module per resource, behind the API key. |
//! | | [`web`] | The pages for people: the operators' dashboard and the try-it page. |
//! | | [`socketio`] | The Socket.IO side: the connect middleware and handler, the client events, replies. |
//! | Hub | [`hub`] | The façade: every method of the old service (send, broadcast, acknowledge, sessions, presence), the one type the transports call. |
//! | engines | [`escalation`] | The clinical closed loop's escalation: policies, the engine that claims, fires and completes steps, the webhook. |
//! | | [`broker`] | Delivery to rooms (user, role, everyone) on this node or across the cluster. |
//! | | [`registry`] | Who is connected: this node's or the cluster's socket index. |
//! | | [`presence`] | Online/offline changes and who is told of them. |
//! | | [`session`] | Session clocks: inactivity warnings and expiry, on one node or shared in Redis. |
//! | | [`store`] | Durable state, one folder per engine (SQLite, PostgreSQL): inbox, escalation steps, audit trail, session records, read models. |
//! | | [`report`] | The acknowledgement report over a period. |
//! | | [`rooms`] | Study rooms: names and token patterns, members, the `room_presence` windows, typing indicators. |
//! | | [`calls`] | Calls (WebRTC signalling): which sockets here are in which call, the news nodes exchange, ICE servers and TURN credentials. |
//! | | [`witness`] | Signed checkpoints of the audit chain's head, made on an interval and handed to the outside witnesses (a file, a webhook). |
//! | connections | [`connections`] | This node's sockets: their state, the socket table, the send path and the per-socket event budget. |
//! | infrastructure | [`cluster`] | The Redis link, key names, scripts and leases. |
//! | | [`trail`] | The audit trail's records and hash chain, export and verification. |
//! | | [`auth`] | JWT verification and signing, with the configured algorithm and key. |
//! | | [`config`] | Configuration: file, environment, validation, secrets, TLS. |
//! | leaves | [`observe`] | Metrics, the security log, log throttling. |
//! | | [`clock`] | The injectable clock and the wire's time format. |
//! | | [`deadlines`] | One deadline per key, ordered by time. |
//! | | [`notification`] | The notification model and recipient states. |
//! | | [`protocol`] | The Socket.IO event names Herald emits and accepts. |
//! | | [`files`] | Shared files: their description, type signatures, safe names, download ranges. |

#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod broker;
pub mod calls;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod connections;
pub mod deadlines;
pub mod escalation;
pub mod files;
pub mod http;
pub mod hub;
pub mod notification;
pub mod observe;
pub mod presence;
pub mod protocol;
pub mod registry;
pub mod report;
pub mod rooms;
pub mod server;
pub mod session;
pub mod socketio;
pub mod store;
pub mod trail;
pub mod web;
pub mod witness;

pub use config::Config;
pub use server::{app, build_hub, start, start_with_clock, Built, Running, StartError};
