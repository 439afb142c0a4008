//! Write crm-users plugins in Rust, without knowing the WIT contract behind them.
//!
//! A plugin is a WebAssembly component built from a `cdylib` crate with
//! `cargo build --target wasm32-wasip2 --release`. It implements one of the traits below (one
//! per extension point), exports it with the matching macro, and ships next to a `plugin.toml`
//! manifest. The guide in this crate's README walks from `cargo new` to a loaded plugin.
//!
//! | trait | export macro | called when |
//! |---|---|---|
//! | [`Authenticator`] | [`export_authenticator!`] | a sign-in arrives, in priority order with the built-ins |
//! | [`SignInHandler`] | [`export_sign_in_handler!`] | after authentication, before the token is issued |
//! | [`AddressType`] | [`export_address_type!`] | addresses of the type are created, changed or listed |
//! | [`EmailValidator`] | [`export_email_validator!`] | wherever the email validator chain runs |
//! | [`EventListener`] | [`export_event_listener!`] | after every domain event, asynchronously |
//!
//! [`export_plugin!`] exports one type for several of them.
//!
//! Each call runs in a fresh instance with fuel, a deadline and a memory cap, so a plugin keeps
//! no state between calls except through [`host::kv`].
//!
//! # Example
//!
//! An email validator that rejects one domain:
//!
//! ```no_run
//! use crm_users_guest::{export_email_validator, EmailValidator};
//!
//! struct NoExampleOrg;
//!
//! impl EmailValidator for NoExampleOrg {
//!     fn validate(email: String) -> Result<(), String> {
//!         let domain = email.rsplit_once('@').map(|(_, domain)| domain.to_lowercase());
//!         if domain.as_deref() == Some("example.org") {
//!             return Err("example.org addresses are not accepted".into());
//!         }
//!         Ok(())
//!     }
//! }
//!
//! export_email_validator!(NoExampleOrg);
//! ```
//!
//! # Layout
//!
//! - `wit`: bindings generated from `wit/v0.1` (hidden).
//! - `types`: the values that cross the boundary, re-exported at the crate root.
//! - `convert`: mapping between those types and the bindings (private).
//! - [`host`]: logging, config, key-value store and user lookups offered by crm-users.
//! - [`http`]: a small blocking HTTP client for plugins granted outbound hosts.
//! - `worlds`: the traits, re-exported at the crate root, and the export macros.

#![deny(missing_docs)]

#[doc(hidden)]
pub mod wit;

mod convert;
pub mod host;
pub mod http;
mod types;
mod worlds;

pub use types::{
    Address, Credentials, Decision, Event, Failure, FailureKind, FieldError, HostError, LogLevel, MetaEntry, NewUser,
    Outcome, SignIn, TypeInfo, User, Verdict,
};
pub use worlds::{AddressType, Authenticator, EmailValidator, EventListener, SignInHandler};

/// Items the export macros name from the plugin's crate. Not API.
#[doc(hidden)]
pub mod __private {
    pub use crate::worlds::Glue;
}
