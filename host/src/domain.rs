//! Domain types and rules: users, tokens, meta, groups, admin roles, login attempts, addresses, events and the
//! error type.
//! Nothing here knows about HTTP, storage layouts or plugins.

pub mod address;
pub mod attempt;
pub mod email;
pub mod error;
pub mod event;
pub mod group;
pub mod meta;
pub mod role;
pub mod secret;
pub mod token;
pub mod user;

pub use error::{Error, Result};

/// Timestamps are UTC instants; the API layer renders them in the configured timezone.
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// The current instant.
pub fn now() -> Timestamp {
    chrono::Utc::now()
}
