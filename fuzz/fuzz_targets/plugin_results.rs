//! `cargo fuzz run plugin_results`: see `crm_users::hostile_input::plugin_results` for the input layout and invariants.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| crm_users::hostile_input::plugin_results(data));
