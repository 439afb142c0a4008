//! The integration tests: every module starts the real `crm-users` server (see `harness`) and
//! checks the REMP-compatible API, the CLI and restarts from the outside, over loopback HTTP
//! and process exit codes. Unit and router tests live in `host/`, not here.
//!
//! This file builds two test binaries: `it` with every server on sled, and `it_postgres` (the
//! folder `tests/it_postgres` is a link to this one) with every server on PostgreSQL.

mod harness;
mod mariadb;

mod account_guarantees;
mod accounts;
mod addresses;
mod admin_console;
mod auth;
mod backup;
mod cli;
mod crash;
mod email_validation;
mod groups;
mod hostile_input;
mod hostile_plugins;
mod me;
mod meta;
mod migrate;
mod openapi;
mod operations;
mod params;
mod plugins;
mod plugins_other_languages;
mod registration;
mod remp_import;
mod resource_groups;
mod resource_users;
mod restart;
mod roles;
mod signin;
mod storage_faults;
mod store_contract;
mod two_hosts;
