//! `cargo fuzz run id_token`: see `crm_users::hostile_input::id_token` for the input layout and invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crm_users::hostile_input::id_token(data));
