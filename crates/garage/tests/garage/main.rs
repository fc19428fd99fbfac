//! `valet-garage`'s integration tests, one binary: tariffs by example and by property, the session
//! state machine, gate decisions and matching by property, receipts.

mod gate_entry;
mod gate_exit;
mod helpers;
mod matching_properties;
mod receipts;
mod sessions;
mod tariff_examples;
mod tariff_properties;
