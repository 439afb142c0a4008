//! Fixture: a sign-in handler that denies every sign-in, with the reason from its `reason`
//! config.

use crm_users_guest::{Decision, SignIn, SignInHandler, export_sign_in_handler, host};

/// The reason when the manifest sets none.
const DEFAULT_REASON: &str = "denied by policy";

struct DenyAll;

impl SignInHandler for DenyAll {
    fn on_sign_in(_event: SignIn) -> Decision {
        Decision::deny(host::config("reason").unwrap_or_else(|| DEFAULT_REASON.to_owned()))
    }
}

export_sign_in_handler!(DenyAll);
