//! The HTTP API: routes through `oneshot` (no socket), then the connection loop on a real socket
//! with the junk that reaches a public port.

mod connections;
mod drivers;
mod events;
mod garage;
mod helpers;
mod lots;
mod routes;
mod stripe;
