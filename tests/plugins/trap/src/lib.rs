//! Hostile fixture: an email validator that panics, which traps the call. The host must
//! report it as a plugin failure (with the panic message in its log) and stay up.

use crm_users_guest::{EmailValidator, export_email_validator};

/// The panic message the host's tests look for.
pub const MESSAGE: &str = "trap fixture: validate always panics";

struct Trap;

impl EmailValidator for Trap {
    fn validate(_email: String) -> Result<(), String> {
        panic!("{MESSAGE}");
    }
}

export_email_validator!(Trap);
