//! The one integration-test binary: every module starts the real `crm-users` server (see
//! `harness`) and checks the REMP-compatible API, the CLI and restarts from the outside, over
//! loopback HTTP and process exit codes. Unit and router tests live in `host/`, not here.

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
