//! Hostile fixture: an email validator that recurses until the stack runs out. The host must
//! survive the stack-overflow trap.

use std::hint::black_box;

use crm_users_guest::{EmailValidator, export_email_validator};

struct DeepRecursion;

impl EmailValidator for DeepRecursion {
    fn validate(email: String) -> Result<(), String> {
        Err(format!("{email}: depth {}", recurse(0)))
    }
}

export_email_validator!(DeepRecursion);

/// Recurses forever in practice. `black_box` hides the exit condition and wraps the result,
/// so the optimizer can neither prove the recursion infinite nor turn it into a loop, and each
/// frame keeps a buffer alive so the stack really grows.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if black_box(depth) == u64::MAX {
        return frame[0];
    }
    black_box(recurse(black_box(depth + 1))) + frame[31]
}
