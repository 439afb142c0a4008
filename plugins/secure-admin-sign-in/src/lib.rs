//! Sign-in handler that keeps admin accounts behind Google sign-in: REMP's
//! `SecureAccessSignInEventHandler` with `admin_secure_login_check` on. An admin may sign in only
//! through the `google` authenticator and only when their user meta `secure_login_allowed` is
//! set to a truthy value; everyone else is allowed. Reading the meta needs `users:read`.

use crm_users_guest::{Decision, SignIn, SignInHandler, export_sign_in_handler, host};

/// Shown to an admin whose sign-in is refused.
const REASON: &str = "Admins must sign in with Google and be allowed secure login";

/// The authenticator admins must use.
const REQUIRED_METHOD: &str = "google";

/// The user meta key that allows an admin to sign in at all.
const ALLOWED_META_KEY: &str = "secure_login_allowed";

struct SecureAdminSignIn;

impl SignInHandler for SecureAdminSignIn {
    fn on_sign_in(event: SignIn) -> Decision {
        if !event.user.is_admin() {
            return Decision::allow();
        }
        if event.method != REQUIRED_METHOD {
            return Decision::deny(REASON);
        }
        match host::users::meta_value(event.user.id, ALLOWED_META_KEY) {
            Ok(value) if value.as_deref().is_some_and(is_truthy) => Decision::allow(),
            Ok(_) => Decision::deny(REASON),
            // Not knowing whether an admin is allowed means they are not: this plugin exists to
            // lock admin accounts down, so it must not fail open.
            Err(error) => {
                host::error(format!("cannot read meta of user {}: {error}", event.user.id));
                Decision::deny(REASON)
            }
        }
    }
}

export_sign_in_handler!(SecureAdminSignIn);

/// PHP's truthiness for a string, as REMP reads the meta value: anything but `""` and `"0"`.
fn is_truthy(value: &str) -> bool {
    !value.is_empty() && value != "0"
}

#[cfg(test)]
mod tests {
    use super::is_truthy;

    #[test]
    fn only_empty_and_zero_are_falsy() {
        assert!(is_truthy("1"));
        assert!(is_truthy("yes"));
        assert!(is_truthy("false"));
        assert!(!is_truthy(""));
        assert!(!is_truthy("0"));
    }
}
