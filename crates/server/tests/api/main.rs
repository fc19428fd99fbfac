//! The HTTP API: routes through `oneshot` (no socket), then the connection loop on a real socket
//! with the junk that reaches a public port.

mod barriers;
mod broker_restart;
mod calibration;
mod cameras;
mod connections;
mod demo;
mod drivers;
mod errors;
mod events;
mod exposure;
mod garage;
mod helpers;
mod lots;
mod mail;
mod metrics;
mod missed_exits;
mod openapi;
mod outage;
mod overload;
mod reads;
mod refunds;
mod routes;
mod stripe;
mod stripe_webhooks;
mod throttle;
