//! The Socket.IO face of Herald: builds the socketioxide layer with the
//! contract's engine settings and wires the connect path and client events
//! to the Hub.

pub mod call_payload;
mod connect;
mod dispatch;
mod events;
mod lane;
mod owned_request;
pub mod payload;
mod reply;

use std::sync::Arc;

use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use socketioxide::SocketIo;

pub use owned_request::own_request;
pub use reply::ClientError;

use crate::hub::Hub;

/// Builds the Socket.IO layer and hands the server handle to the hub.
pub fn layer(hub: Arc<Hub>) -> SocketIoLayer {
    let c = &hub.config().socket;
    let (layer, io) = SocketIo::builder()
        .ping_interval(c.ping_interval)
        .ping_timeout(c.ping_timeout)
        .max_payload(c.max_payload)
        .ws_max_message_size(c.max_payload as usize)
        .ws_max_frame_size(c.max_payload as usize)
        .max_buffer_size(c.max_buffer_size)
        .with_state(hub.clone())
        .build_layer();
    io.ns("/", connect::on_connect.with(connect::authenticate));
    hub.attach_io(io);
    layer
}
