//! Hostile fixture (E17): an authenticator, address type and email validator whose answers are
//! huge: `validate-email` rejects with a `size_mb` MiB reason, `authenticate` refuses with a
//! `size_mb` MiB message, `user-info` returns that much text, address `validate` rejects with
//! `errors` field errors and `format` returns `size_mb` MiB. `describe` answers normally
//! (type `huge`). With `print_mb` above 0 every call instead writes that many MiB to stdout and to
//! stderr, ignoring write errors, and then answers harmlessly (accepts, skips, formats `ok`).
//! The host must refuse what it cannot use, keep its log bounded and stay up.

use crm_users_guest::{
    Address, AddressType, Authenticator, Credentials, EmailValidator, Failure, FieldError, Outcome, TypeInfo, User,
    export_address_type, export_authenticator, export_email_validator, host,
};
use std::io::Write;

fn number(key: &str, default: usize) -> usize {
    host::config(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn huge() -> String {
    "x".repeat(number("size_mb", 100) << 20)
}

/// With `print_mb` set, flood stdout and stderr and say so.
fn printed() -> bool {
    let mb = number("print_mb", 0);
    if mb == 0 {
        return false;
    }
    let line = [b'y'; 1023];
    for _ in 0..(mb << 10) {
        let _ = std::io::stdout().write_all(&line).and_then(|()| std::io::stdout().write_all(b"\n"));
        let _ = std::io::stderr().write_all(&line).and_then(|()| std::io::stderr().write_all(b"\n"));
    }
    true
}

struct HugeOutput;

impl EmailValidator for HugeOutput {
    fn validate(_email: String) -> Result<(), String> {
        if printed() {
            return Ok(());
        }
        Err(huge())
    }
}

impl Authenticator for HugeOutput {
    fn authenticate(_credentials: Credentials) -> Result<Outcome, Failure> {
        if printed() {
            return Ok(Outcome::Skip);
        }
        Err(Failure::other(huge()))
    }

    fn user_info(_user: User) -> Option<String> {
        if printed() {
            return None;
        }
        Some(huge())
    }
}

impl AddressType for HugeOutput {
    fn describe() -> TypeInfo {
        TypeInfo::new("huge", "Huge address")
    }

    fn validate(address: Address) -> Result<Address, Vec<FieldError>> {
        if printed() {
            return Ok(address);
        }
        Err((0..number("errors", 1_000_000)).map(|i| FieldError::new("city", format!("error {i}"))).collect())
    }

    fn format(_address: Address) -> String {
        if printed() {
            return "ok".to_owned();
        }
        huge()
    }
}

export_authenticator!(HugeOutput);
export_address_type!(HugeOutput);
export_email_validator!(HugeOutput);
