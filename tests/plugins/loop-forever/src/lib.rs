//! Hostile fixture: an email validator that never returns. The host must stop it with its
//! fuel or wall-clock limit and apply the failure policy.

use crm_users_guest::{EmailValidator, export_email_validator};

struct LoopForever;

impl EmailValidator for LoopForever {
    #[allow(clippy::empty_loop)]
    fn validate(_email: String) -> Result<(), String> {
        loop {}
    }
}

export_email_validator!(LoopForever);
