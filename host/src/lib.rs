//! crm-users: a users service that speaks the REMP CRM users API, stores data in embedded sled
//! (or in PostgreSQL, shared by several hosts), and is extended at run time by WebAssembly
//! plugins.
//!
//! # Layout
//!
//! Dependencies point left: each module uses only the ones before it.
//!
//! - [`metrics`]: process-wide counters and the Prometheus text format (no dependencies).
//! - [`domain`]: types and rules (users, tokens, meta, groups, admin roles, attempts, addresses
//!   and countries, events, errors). No I/O.
//! - [`store`]: persistence behind the [`store::Store`] trait; [`store::sled`] is the default,
//!   [`store::postgres`] the backend several hosts share;
//!   [`store::backup`] writes and reads any store's records as JSON lines (backups, migrations).
//! - [`plugins`]: the wasmtime runtime, manifests, limits and typed calls into plugins.
//! - [`service`]: use cases (register, sign in, tokens, account changes, addresses and address
//!   types, groups, roles and permission checks, the users directory), the event bus and the
//!   password-hashing pool.
//! - [`api`]: HTTP: REMP's routes in [`api::remp`], the resource API under `/api/` (users,
//!   me and profile, tokens, groups, roles, plugins, address types, change requests, autologin
//!   tokens, a user's records in [`api::user_records`]) authorized in [`api::authz`], the
//!   OpenAPI document in [`api::openapi`], parameter parsing, error mapping; request logs,
//!   request ids and `/metrics` in [`api::observe`]; the admin console in [`api::admin`].
//! - [`import`]: bringing another system's data into the store (`import remp`: a REMP CRM
//!   database over MySQL), through the [`store::Store`] trait.
//! - [`config`]: the TOML config, validated into [`config::Config`].
//! - [`server`]: `run(listener, app, shutdown)`.
//! - [`cli`]: the `crm-users` command line and the composition root that wires it all.
//! - [`hostile_input`]: fuzzing entry points for the parsers that read untrusted bytes.

pub mod api;
pub mod cli;
pub mod config;
pub mod domain;
pub mod hostile_input;
pub mod import;
pub mod metrics;
pub mod plugins;
pub mod server;
pub mod service;
pub mod store;
