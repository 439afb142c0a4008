//! The PostgreSQL schema and its migrations, applied in order on open under an advisory lock,
//! so hosts starting together migrate once.
//!
//! Every table keeps the record as the domain type's JSON (`record json`) beside the columns
//! the database must index, constrain or order by. Those key columns that hold strings a
//! client sent are `bytea` (the UTF-8 bytes): PostgreSQL's `text` and `jsonb` cannot hold
//! NUL, which the API accepts, and `bytea` orders as bytes do, which keeps an export's order
//! the same as sled's. `record` is `json`, not `jsonb`, for the same reason.
//!
//! A released migration is never edited; a change is a new entry in [`MIGRATIONS`].

use anyhow::Context;

/// Sequences, by the names `Imported::Sequence` carries: each is `seq_<name>` in the database.
/// The last id handed out is what an export reports.
pub(super) const SEQUENCES: &[&str] = &[
    "access_tokens",
    "address_change_requests",
    "addresses",
    "api_tokens",
    "autologin_tokens",
    "connected_accounts",
    "device_tokens",
    "groups",
    "login_attempts",
    "password_changes",
    "registration_attempts",
    "roles",
    "users",
];

/// The schema's versions, oldest first; version N is `MIGRATIONS[N - 1]`.
pub(super) const MIGRATIONS: &[&str] = &[
    // Version 1: every record kind of schema version 2 of the sled store.
    r#"
CREATE SEQUENCE seq_access_tokens;
CREATE SEQUENCE seq_address_change_requests;
CREATE SEQUENCE seq_addresses;
CREATE SEQUENCE seq_api_tokens;
CREATE SEQUENCE seq_autologin_tokens;
CREATE SEQUENCE seq_connected_accounts;
CREATE SEQUENCE seq_device_tokens;
CREATE SEQUENCE seq_groups;
CREATE SEQUENCE seq_login_attempts;
CREATE SEQUENCE seq_password_changes;
CREATE SEQUENCE seq_registration_attempts;
CREATE SEQUENCE seq_roles;
CREATE SEQUENCE seq_users;

CREATE TABLE server_secrets (
    name bytea PRIMARY KEY,
    key bytea NOT NULL CHECK (octet_length(key) = 32)
);

CREATE TABLE users (
    id bigint PRIMARY KEY,
    uuid bytea NOT NULL CONSTRAINT users_uuid_unique UNIQUE,
    email_key bytea NOT NULL CONSTRAINT users_email_unique UNIQUE,
    active boolean NOT NULL,
    deleted boolean NOT NULL,
    record json NOT NULL
);
-- The default listing (active, not deleted) and its count read only this index.
CREATE INDEX users_listed ON users (id) WHERE active AND NOT deleted;

CREATE TABLE user_meta (
    user_id bigint NOT NULL REFERENCES users (id),
    key bytea NOT NULL,
    value bytea NOT NULL,
    is_public boolean NOT NULL,
    record json NOT NULL,
    PRIMARY KEY (user_id, key)
);
-- Values are up to 64 KiB, more than a btree entry holds: the index keeps their digest.
CREATE INDEX user_meta_by_value ON user_meta (key, md5(value), user_id);

CREATE TABLE access_tokens (
    digest bytea PRIMARY KEY,
    id bigint NOT NULL CONSTRAINT access_tokens_id_unique UNIQUE,
    user_id bigint NOT NULL REFERENCES users (id),
    device_token_id bigint,
    record json NOT NULL
);
CREATE INDEX access_tokens_by_user ON access_tokens (user_id, id);
CREATE INDEX access_tokens_by_device ON access_tokens (device_token_id, id) WHERE device_token_id IS NOT NULL;

CREATE TABLE device_tokens (
    digest bytea PRIMARY KEY,
    id bigint NOT NULL CONSTRAINT device_tokens_id_unique UNIQUE,
    record json NOT NULL
);

CREATE TABLE login_attempts (
    id bigint PRIMARY KEY,
    ip bytea NOT NULL,
    user_id bigint,
    at timestamptz NOT NULL,
    ok boolean NOT NULL,
    wrong_password boolean NOT NULL,
    record json NOT NULL
);
CREATE INDEX login_attempts_by_ip ON login_attempts (ip, id);
CREATE INDEX login_attempts_by_user ON login_attempts (user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX login_attempts_wrong_password ON login_attempts (user_id, at) WHERE wrong_password;

CREATE TABLE registration_attempts (
    id bigint PRIMARY KEY,
    record json NOT NULL
);

CREATE TABLE password_changes (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL,
    record json NOT NULL
);
CREATE INDEX password_changes_by_user ON password_changes (user_id, id);

CREATE TABLE api_tokens (
    digest bytea PRIMARY KEY,
    id bigint NOT NULL CONSTRAINT api_tokens_id_unique UNIQUE,
    record json NOT NULL
);

CREATE TABLE idempotency_keys (
    scope bytea NOT NULL,
    key bytea NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (scope, key)
);

CREATE TABLE plugin_kv (
    plugin bytea NOT NULL,
    key bytea NOT NULL,
    value bytea NOT NULL,
    PRIMARY KEY (plugin, key)
);

CREATE TABLE autologin_tokens (
    digest bytea PRIMARY KEY,
    id bigint NOT NULL CONSTRAINT autologin_tokens_id_unique UNIQUE,
    user_id bigint NOT NULL REFERENCES users (id),
    record json NOT NULL
);
CREATE INDEX autologin_tokens_by_user ON autologin_tokens (user_id, id);

CREATE TABLE connected_accounts (
    kind bytea NOT NULL,
    external_id bytea NOT NULL,
    id bigint NOT NULL CONSTRAINT connected_accounts_id_unique UNIQUE,
    user_id bigint NOT NULL REFERENCES users (id),
    record json NOT NULL,
    PRIMARY KEY (kind, external_id)
);
CREATE INDEX connected_accounts_by_user ON connected_accounts (user_id, id);

CREATE TABLE address_types (
    key bytea PRIMARY KEY,
    record json NOT NULL
);

CREATE TABLE addresses (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    kind bytea NOT NULL,
    record json NOT NULL
);
CREATE INDEX addresses_by_user ON addresses (user_id, id);
CREATE INDEX addresses_by_user_and_type ON addresses (user_id, kind, id);

CREATE TABLE address_change_requests (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL,
    record json NOT NULL
);
CREATE INDEX address_change_requests_by_user ON address_change_requests (user_id, id);

CREATE TABLE groups (
    id bigint PRIMARY KEY,
    record json NOT NULL
);

-- Deleting a group ends its memberships in the same statement; adding one takes a key
-- share lock on the group, so it cannot slip past a delete.
CREATE TABLE memberships (
    user_id bigint NOT NULL REFERENCES users (id),
    group_id bigint NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    since timestamptz NOT NULL,
    PRIMARY KEY (user_id, group_id)
);
CREATE INDEX memberships_by_group ON memberships (group_id, user_id);

CREATE TABLE roles (
    id bigint PRIMARY KEY,
    name_key bytea NOT NULL CONSTRAINT roles_name_unique UNIQUE,
    record json NOT NULL
);

CREATE TABLE user_roles (
    user_id bigint NOT NULL REFERENCES users (id),
    role_id bigint NOT NULL REFERENCES roles (id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, role_id)
);
CREATE INDEX user_roles_by_role ON user_roles (role_id, user_id);
"#,
];

/// The table that records the schema's version: one row.
const VERSION_TABLE: &str = "crm_users_schema";

/// A fixed key for the advisory lock that serializes migrations across hosts.
const MIGRATION_LOCK: i64 = 0x63726d5f75736572; // "crm_user"

/// The schema version this build writes.
pub(super) fn current_version() -> i32 {
    MIGRATIONS.len() as i32
}

/// Bring the schema in the connection's current schema up to [`current_version`]. Refuses a
/// database written by a newer build. Creates the first schema named in `search_path` when it
/// does not exist yet (a URL with `options=-csearch_path=NAME` names a fresh one).
pub(super) async fn migrate(client: &mut tokio_postgres::Client) -> anyhow::Result<()> {
    ensure_current_schema(client).await?;
    let tx = client.transaction().await.context("cannot start the migration")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    let exists: bool = tx.query_one(&format!("SELECT to_regclass('{VERSION_TABLE}') IS NOT NULL"), &[]).await?.get(0);
    let found: Option<i32> = if exists {
        tx.query_opt(&format!("SELECT version FROM {VERSION_TABLE}"), &[]).await?.map(|row| row.get(0))
    } else {
        tx.batch_execute(&format!("CREATE TABLE {VERSION_TABLE} (version integer NOT NULL)")).await?;
        None
    };
    let version = found.unwrap_or(0);
    if version > current_version() {
        anyhow::bail!(
            "the database holds schema version {version}; this build reads version {}: run the build that wrote it, or move the data over with `crm-users export` there and `crm-users import` here",
            current_version()
        );
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        tx.batch_execute(sql).await.with_context(|| format!("schema migration {} failed", index + 1))?;
    }
    if found.is_none() {
        tx.execute(&format!("INSERT INTO {VERSION_TABLE} (version) VALUES ($1)"), &[&current_version()]).await?;
    } else if version < current_version() {
        tx.execute(&format!("UPDATE {VERSION_TABLE} SET version = $1"), &[&current_version()]).await?;
    }
    tx.commit().await.context("cannot commit the schema migration")?;
    Ok(())
}

/// When `search_path` names no existing schema, create the first one it names.
async fn ensure_current_schema(client: &tokio_postgres::Client) -> anyhow::Result<()> {
    let current: Option<String> = client.query_one("SELECT current_schema()", &[]).await?.get(0);
    if current.is_some() {
        return Ok(());
    }
    let path: String = client.query_one("SELECT current_setting('search_path')", &[]).await?.get(0);
    let first = path
        .split(',')
        .map(|s| s.trim().trim_matches('"'))
        .find(|s| !s.is_empty() && *s != "$user")
        .ok_or_else(|| anyhow::anyhow!("search_path '{path}' names no schema to keep the tables in"))?;
    let quoted = format!("\"{}\"", first.replace('"', "\"\""));
    client
        .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {quoted}"))
        .await
        .with_context(|| format!("the schema {quoted} of search_path does not exist and cannot be created"))?;
    Ok(())
}
