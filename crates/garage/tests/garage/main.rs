//! `valet-garage`'s integration tests, one binary: tariffs by example and by property, the session
//! state machine, gate decisions, receipts.

mod gate_entry;
mod gate_exit;
mod helpers;
mod receipts;
mod sessions;
mod tariff_examples;
mod tariff_properties;
