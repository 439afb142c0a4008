//! `cargo fuzz run authorization`: see `crm_users::hostile_input::authorization` for the input layout and invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crm_users::hostile_input::authorization(data));
