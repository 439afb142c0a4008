//! Fixture: an email validator that remembers, in its own memory, how many calls its instance
//! has served, and refuses every email after the first; `trap@...` makes it trap. Shows
//! whether the host reused an instance (warm) or made a new one (fresh).

use crm_users_guest::{EmailValidator, export_email_validator};
use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);

struct CallCounter;

impl EmailValidator for CallCounter {
    fn validate(email: String) -> Result<(), String> {
        if email.starts_with("trap@") {
            panic!("asked to trap");
        }
        match CALLS.fetch_add(1, Ordering::Relaxed) + 1 {
            1 => Ok(()),
            n => Err(format!("call {n} of this instance")),
        }
    }
}

export_email_validator!(CallCounter);
