//! The PostgreSQL backend, for several hosts behind one database. It implements the same
//! [`Store`] trait as sled; `schema.rs` holds the tables and their migrations (applied on
//! open), `apply.rs` writes each kind of change, `import.rs` writes imported records under
//! their ids, `export.rs` reads every record back out in the order sled's export has.
//!
//! Writes run in one transaction per batch (READ COMMITTED). A change that must not race
//! reads its row `FOR UPDATE` first; uniqueness (emails, role names, ids) is the database's
//! constraints. A batch that trips a constraint, a deadlock or a serialization failure is
//! run again from the start, where the change's own checks see the row that won and answer
//! as sled does (`email_taken`, `role_name_taken`, not found); only a conflict that persists
//! past [`MAX_TRIES`] becomes a storage failure. A connection the database closed (a restart,
//! a failover) is replaced: reads, and writes that had not reached their commit, run again on
//! a fresh one; a commit whose answer was lost is a storage failure (503), never repeated.
//!
//! What one sled host keeps to itself is shared here: sequences are PostgreSQL sequences
//! (an id is never handed out twice; a rolled-back insert leaves a gap, as MySQL's
//! auto-increment does), login attempts (the rate limits), idempotency keys, autologin use
//! counts and plugin key-value data are rows, and [`Store::lock_account`] is an advisory lock,
//! so the hourly cap on password guesses holds across hosts.

use super::{AccessTokenDraft, AccountLock, Applied, Batch, IdSequence, Imported, Store, UserScan};
use crate::domain::{
    Error, Result, Timestamp,
    address::{Address, AddressChangeRequest, AddressId, AddressType, ChangeRequestId},
    attempt::{AttemptMark, LoginAttempt, PasswordChange},
    group::{Group, GroupId},
    meta::MetaEntry,
    now,
    role::{AdminRole, RoleId},
    secret::TokenDigest,
    token::{AccessToken, ApiToken, AutologinToken, ConnectedAccount, DeviceToken},
    user::{NewUser, User, UserId, email_key},
};
use anyhow::Context;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::{NoTls, Row};

mod apply;
mod export;
mod import;
mod schema;

/// Connections a host keeps to the database for queries unless the config says otherwise, and
/// as many again at most for the per-account locks of sign-ins: enough for the request workers
/// and the password-hashing threads of a small host; three hosts stay under PostgreSQL's
/// default `max_connections` (100).
pub const DEFAULT_POOL_SIZE: usize = 16;
/// How long a request waits for a free connection before it is answered 503.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Runs of one batch before a conflict that keeps coming back is a storage failure. A retry
/// follows a lost race, and the checks of the second run see the winner, so two are the
/// usual most.
const MAX_TRIES: usize = 5;

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];
pub(super) type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// The PostgreSQL-backed store.
pub struct PostgresStore {
    pool: Pool,
    /// Connections that hold per-account locks while a password is checked ([`Store::lock_account`]):
    /// a pool of their own, so that a storm of sign-ins waiting for the hashing threads never
    /// takes the connections every other request needs.
    lock_pool: Pool,
    /// The database as `host:port/db`, never with a password.
    name: String,
    /// The first key of this store's per-account advisory locks (two-key form). Advisory locks
    /// belong to the database, not a schema: two stores in schemas of one database must not
    /// make each other's sign-ins wait.
    lock_space: i32,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("database", &self.name).finish_non_exhaustive()
    }
}

/// Where to find the database and how many connections to keep.
#[derive(Clone)]
pub struct PostgresOptions {
    pub url: String,
    pub pool_size: usize,
}

/// The URL may hold a password: it never reaches a log line through `{:?}`.
impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("database", &self.describe())
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl PostgresOptions {
    /// Parse and check a `postgres://` URL (or libpq key=value string) without connecting.
    pub fn parse_url(url: &str) -> anyhow::Result<tokio_postgres::Config> {
        let config: tokio_postgres::Config = url.parse().map_err(|e| {
            anyhow::anyhow!("database_url is not a PostgreSQL connection URL ({e}); e.g. postgres://crm:secret@db.internal:5432/crm_users")
        })?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            anyhow::bail!(
                "database_url asks for sslmode=require; this build connects without TLS: reach the database over a private network or a local TLS tunnel"
            );
        }
        Ok(config)
    }

    /// `user@host:port/db`, never the password.
    pub fn describe(&self) -> String {
        match Self::parse_url(&self.url) {
            Ok(config) => describe(&config),
            Err(_) => "(an unreadable database_url)".into(),
        }
    }
}

/// `user@host:port/db` of a connection config, for messages (never the password).
fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
    format!("{}@{host}:{port}/{db}", config.get_user().unwrap_or("(default user)"))
}

impl PostgresStore {
    /// Connect, apply the schema's migrations and start the pool. Refuses a database whose
    /// schema a newer build wrote, and says where it could not connect.
    pub async fn open(options: &PostgresOptions) -> anyhow::Result<Self> {
        let mut config = PostgresOptions::parse_url(&options.url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("crm-users");
        }
        let name = describe(&config);
        let (mut client, connection) =
            config.connect(NoTls).await.with_context(|| format!("cannot connect to PostgreSQL at {name}"))?;
        let driver = tokio::spawn(connection);
        schema::migrate(&mut client).await.with_context(|| format!("cannot prepare the database {name}"))?;
        let current: String = client.query_one("SELECT current_schema()", &[]).await?.get(0);
        let lock_space = lock_space_of(&current);
        drop(client);
        let _ = driver.await;
        let pool = |config: tokio_postgres::Config| {
            let manager =
                Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
            Pool::builder(manager)
                .max_size(options.pool_size.max(1))
                .wait_timeout(Some(POOL_WAIT))
                .create_timeout(Some(CONNECT_TIMEOUT))
                .runtime(Runtime::Tokio1)
                .build()
                .context("cannot build the connection pool")
        };
        Ok(PostgresStore { pool: pool(config.clone())?, lock_pool: pool(config)?, name, lock_space })
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::Storage(anyhow::anyhow!("no connection to the database {}: {e}", self.name)))
    }

    async fn rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>> {
        let mut tries = 0;
        loop {
            tries += 1;
            let client = self.client().await?;
            let rows = match client.prepare_cached(sql).await {
                Ok(statement) => client.query(&statement, params).await,
                Err(e) => Err(e),
            };
            match rows {
                // A connection the database closed (a restart, a failover, an idle timeout) is
                // dropped from the pool; a read is safe to run again on a fresh one.
                Err(e) if e.is_closed() && tries < 2 => {
                    tracing::warn!(error = %e, "a database connection was closed; reading again")
                }
                other => return other.map_err(db),
            }
        }
    }

    async fn row(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>> {
        let mut rows = self.rows(sql, params).await?;
        if rows.len() > 1 {
            return Err(Error::Storage(anyhow::anyhow!("a query for one row found {}", rows.len())));
        }
        Ok(rows.pop())
    }

    /// The `record` (first column) of the row the query finds.
    async fn record<T: DeserializeOwned>(&self, sql: &str, params: Params<'_>) -> Result<Option<T>> {
        self.row(sql, params).await?.map(|row| record_of(&row)).transpose()
    }

    /// The `record` (first column) of every row, in the query's order.
    async fn records<T: DeserializeOwned>(&self, sql: &str, params: Params<'_>) -> Result<Vec<T>> {
        self.rows(sql, params).await?.iter().map(record_of).collect()
    }

    /// The first column of every row as an id.
    async fn ids(&self, sql: &str, params: Params<'_>) -> Result<Vec<u64>> {
        self.rows(sql, params).await?.iter().map(|row| id_from(row.get(0))).collect()
    }

    /// Run `body` over `data` in a transaction, again from the start after a lost race (see
    /// the module doc), and commit. (The data is an argument rather than a capture so that the
    /// body's future may borrow it for as long as it borrows the transaction.)
    async fn write<D, A>(
        &self,
        data: &D,
        body: impl for<'a> Fn(&'a Tx<'a>, &'a D) -> BoxFuture<'a, TxResult<A>> + Send + Sync,
    ) -> Result<A>
    where
        D: Sync + ?Sized,
        A: Send,
    {
        let mut tries = 0;
        loop {
            tries += 1;
            let mut client = self.client().await?;
            let tx = match client.transaction().await {
                Ok(tx) => tx,
                Err(e) if e.is_closed() && tries < MAX_TRIES => continue,
                Err(e) => return Err(db(e)),
            };
            let outcome = match body(&tx, data).await {
                Ok(value) => match tx.commit().await {
                    Ok(()) => Ok(value),
                    // Whether a commit the connection lost went through is unknown: never
                    // run it again.
                    Err(e) if e.is_closed() => return Err(db(e)),
                    Err(e) => Err(TxError::Db(e)),
                },
                Err(e) => Err(e),
            };
            match outcome {
                Ok(value) => return Ok(value),
                // Before its commit, a transaction on a closed connection was rolled back by
                // the server: running it again on a fresh connection is safe.
                Err(TxError::Db(e)) if tries < MAX_TRIES && (is_lost_race(&e) || e.is_closed()) => {
                    tracing::debug!(error = %e, tries, "a write lost a race or its connection; running it again");
                }
                Err(e) => return Err(e.into_error()),
            }
        }
    }

    /// Write every record `next` yields in one transaction: all of them or, on any failure,
    /// none. For filling an empty database (`crm-users import`, `crm-users migrate`).
    pub async fn import_all(
        &self,
        next: &mut (dyn FnMut() -> anyhow::Result<Option<Imported>> + Send),
        progress: &(dyn Fn(u64) + Sync),
    ) -> anyhow::Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(db)?;
        let mut advanced = import::Sequences::default();
        let mut records = 0u64;
        while let Some(record) = next()? {
            import::import(&tx, &record, &mut advanced)
                .await
                .map_err(TxError::into_error)
                .with_context(|| format!("record {} was refused", records + 1))?;
            records += 1;
            if records.is_multiple_of(1000) {
                progress(records);
            }
        }
        advanced.apply(&tx).await.map_err(TxError::into_error)?;
        tx.commit().await.map_err(db).context("cannot commit the import")?;
        progress(records);
        Ok(records)
    }
}

/// Why a transaction body stopped: the domain's answer, or a database error that may be a
/// lost race worth running again.
#[derive(Debug)]
pub(super) enum TxError {
    Domain(Error),
    Db(tokio_postgres::Error),
}

impl From<Error> for TxError {
    fn from(e: Error) -> Self {
        TxError::Domain(e)
    }
}

impl From<tokio_postgres::Error> for TxError {
    fn from(e: tokio_postgres::Error) -> Self {
        TxError::Db(e)
    }
}

impl TxError {
    fn into_error(self) -> Error {
        match self {
            TxError::Domain(e) => e,
            TxError::Db(e) => db(e),
        }
    }
}

pub(super) type TxResult<T> = std::result::Result<T, TxError>;

/// Whether running the transaction again may succeed: a constraint that a concurrent writer's
/// row tripped (the checks of the next run see that row), a deadlock, a serialization failure.
fn is_lost_race(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|code| {
        [
            SqlState::UNIQUE_VIOLATION,
            SqlState::FOREIGN_KEY_VIOLATION,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::T_R_SERIALIZATION_FAILURE,
        ]
        .contains(code)
    })
}

/// A database error as the domain's storage failure (answered 503; the cause is logged).
pub(super) fn db(e: tokio_postgres::Error) -> Error {
    Error::Storage(anyhow::Error::new(e).context("PostgreSQL"))
}

/// An id as the database stores it. Ids past `i64::MAX` cannot be stored.
pub(super) fn db_id(id: u64) -> Result<i64> {
    i64::try_from(id).map_err(|_| Error::invalid("id_out_of_range", "id", format!("id {id} is larger than 2^63 - 1")))
}

/// An id the database returned.
pub(super) fn id_from(id: i64) -> Result<u64> {
    u64::try_from(id).map_err(|_| Error::Storage(anyhow::anyhow!("corrupt id {id}")))
}

/// The `record` column (always the first) of a row.
pub(super) fn record_of<T: DeserializeOwned>(row: &Row) -> Result<T> {
    row.try_get::<_, Json<T>>(0).map(|json| json.0).map_err(|e| Error::Storage(anyhow::anyhow!("corrupt record: {e}")))
}

/// `bytea` key columns hold UTF-8 text; see `schema.rs`.
pub(super) fn text_of(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Deep pages pass over rows with OFFSET; a larger skip than this is capped (no listing has
/// that many rows to show).
const MAX_OFFSET: i64 = i64::MAX / 2;

fn limit_of(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The SQL filter of a user scan; each combination is its own statement, so the planner can
/// use the partial index of the default listing.
fn scan_filter(scan: &UserScan) -> &'static str {
    match (scan.include_inactive, scan.include_deleted) {
        (false, false) => "active AND NOT deleted",
        (true, false) => "NOT deleted",
        (false, true) => "active",
        (true, true) => "true",
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_user(
        &self,
        new: NewUser,
        meta: Vec<(String, String, bool)>,
        token: Option<AccessTokenDraft>,
    ) -> Result<(User, Option<AccessToken>)> {
        let email_k = email_key(&new.email);
        let uuid = uuid::Uuid::new_v4().to_string();
        let data = (new, meta, token, email_k, uuid);
        self.write(&data, |tx, (new, meta, token, email_k, uuid)| {
            Box::pin(async move {
                if apply::user_with_email(tx, email_k).await?.is_some() {
                    return Err(apply::email_taken());
                }
                let id = apply::next_id(tx, "users").await?;
                let user = new.clone().into_user(id, uuid.clone(), now());
                apply::put_user(tx, &user, false).await?;
                for (key, value, public) in meta {
                    apply::put_meta(tx, id, key, value, *public).await?;
                }
                let token = match token {
                    Some(draft) => {
                        Some(apply::insert_access_token(tx, &AccessTokenDraft { user_id: id, ..draft.clone() }).await?)
                    }
                    None => None,
                };
                Ok((user, token))
            })
        })
        .await
    }

    async fn apply(&self, batch: Batch) -> Result<Applied> {
        if batch.is_empty() {
            return Ok(Applied::default());
        }
        self.write(&batch, |tx, batch| {
            Box::pin(async move {
                let mut applied = Applied::default();
                let mut advanced = import::Sequences::default();
                for change in &batch.0 {
                    apply::apply_change(tx, change, &mut applied, &mut advanced).await?;
                }
                advanced.apply(tx).await?;
                Ok(applied)
            })
        })
        .await
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        let Ok(id) = db_id(id) else { return Ok(None) };
        self.record("SELECT record FROM users WHERE id = $1", &[&id]).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        self.record("SELECT record FROM users WHERE email_key = $1", &[&email_key(email).as_bytes()]).await
    }

    async fn scan_users(&self, scan: &UserScan, skip: usize, limit: usize) -> Result<Vec<User>> {
        let after = match scan.after {
            Some(after) => db_id(after).unwrap_or(i64::MAX),
            None => 0,
        };
        let sql =
            format!("SELECT record FROM users WHERE id > $1 AND {} ORDER BY id OFFSET $2 LIMIT $3", scan_filter(scan));
        let skip = limit_of(skip).min(MAX_OFFSET);
        self.records(&sql, &[&after, &skip, &limit_of(limit)]).await
    }

    async fn count_users(&self, scan: &UserScan) -> Result<u64> {
        let sql = format!("SELECT count(*) FROM users WHERE {}", scan_filter(scan));
        let row = self.row(&sql, &[]).await?.ok_or_else(|| Error::Storage(anyhow::anyhow!("count gave no row")))?;
        id_from(row.get(0))
    }

    async fn user_meta(&self, user_id: UserId) -> Result<Vec<MetaEntry>> {
        let Ok(user_id) = db_id(user_id) else { return Ok(Vec::new()) };
        self.records("SELECT record FROM user_meta WHERE user_id = $1 ORDER BY key", &[&user_id]).await
    }

    async fn meta_entry(&self, user_id: UserId, key: &str) -> Result<Option<MetaEntry>> {
        let Ok(user_id) = db_id(user_id) else { return Ok(None) };
        self.record("SELECT record FROM user_meta WHERE user_id = $1 AND key = $2", &[&user_id, &key.as_bytes()]).await
    }

    async fn users_with_meta(&self, key: &str, value: Option<&str>) -> Result<Vec<(UserId, String)>> {
        let rows = match value {
            Some(value) => {
                let sql = "SELECT user_id, value FROM user_meta WHERE key = $1 AND md5(value) = md5($2::bytea) AND value = $2 ORDER BY user_id";
                self.rows(sql, &[&key.as_bytes(), &value.as_bytes()]).await?
            }
            None => {
                // sled's index order: by value (shorter first), then user.
                let sql =
                    "SELECT user_id, value FROM user_meta WHERE key = $1 ORDER BY octet_length(value), value, user_id";
                self.rows(sql, &[&key.as_bytes()]).await?
            }
        };
        rows.iter().map(|row| Ok((id_from(row.get(0))?, text_of(row.get(1))))).collect()
    }

    async fn access_token(&self, digest: &TokenDigest) -> Result<Option<AccessToken>> {
        self.record("SELECT record FROM access_tokens WHERE digest = $1", &[&&digest.0[..]]).await
    }

    async fn access_tokens_of_user(&self, user_id: UserId) -> Result<Vec<AccessToken>> {
        let Ok(user_id) = db_id(user_id) else { return Ok(Vec::new()) };
        self.records("SELECT record FROM access_tokens WHERE user_id = $1 ORDER BY id", &[&user_id]).await
    }

    async fn access_tokens_of_device(&self, device_token_id: u64) -> Result<Vec<AccessToken>> {
        let Ok(device) = db_id(device_token_id) else { return Ok(Vec::new()) };
        self.records("SELECT record FROM access_tokens WHERE device_token_id = $1 ORDER BY id", &[&device]).await
    }

    async fn device_token(&self, digest: &TokenDigest) -> Result<Option<DeviceToken>> {
        self.record("SELECT record FROM device_tokens WHERE digest = $1", &[&&digest.0[..]]).await
    }

    async fn recent_attempts_by_ip(&self, ip: &str, n: usize) -> Result<Vec<AttemptMark>> {
        let sql = "SELECT at, ok FROM login_attempts WHERE ip = $1 ORDER BY id DESC LIMIT $2";
        let rows = self.rows(sql, &[&ip.as_bytes(), &limit_of(n)]).await?;
        Ok(rows.iter().map(|row| AttemptMark { at: row.get(0), ok: row.get(1) }).collect())
    }

    async fn recent_attempts_by_user(&self, user_id: UserId, n: usize) -> Result<Vec<AttemptMark>> {
        let Ok(user_id) = db_id(user_id) else { return Ok(Vec::new()) };
        let sql = "SELECT at, ok FROM login_attempts WHERE user_id = $1 ORDER BY id DESC LIMIT $2";
        let rows = self.rows(sql, &[&user_id, &limit_of(n)]).await?;
        Ok(rows.iter().map(|row| AttemptMark { at: row.get(0), ok: row.get(1) }).collect())
    }

    async fn wrong_passwords_since(&self, user_id: UserId, since: Timestamp, cap: usize) -> Result<usize> {
        let Ok(user_id) = db_id(user_id) else { return Ok(0) };
        let sql = "SELECT count(*) FROM (SELECT 1 FROM login_attempts WHERE wrong_password AND user_id = $1 AND at >= $2 LIMIT $3) AS capped";
        let row = self.row(sql, &[&user_id, &since, &limit_of(cap)]).await?;
        Ok(row.map_or(0, |row| row.get::<_, i64>(0) as usize))
    }

    async fn login_attempts_of_user(&self, user_id: UserId, limit: usize) -> Result<Vec<LoginAttempt>> {
        let Ok(user_id) = db_id(user_id) else { return Ok(Vec::new()) };
        let sql = "SELECT record FROM login_attempts WHERE user_id = $1 ORDER BY id DESC LIMIT $2";
        self.records(sql, &[&user_id, &limit_of(limit)]).await
    }

    async fn api_token(&self, digest: &TokenDigest) -> Result<Option<ApiToken>> {
        self.record("SELECT record FROM api_tokens WHERE digest = $1", &[&&digest.0[..]]).await
    }

    async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        self.records("SELECT record FROM api_tokens ORDER BY id", &[]).await
    }

    async fn idempotency_key_seen(&self, scope: &str, key: &str) -> Result<bool> {
        let sql = "SELECT 1 FROM idempotency_keys WHERE scope = $1 AND key = $2";
        Ok(self.row(sql, &[&scope.as_bytes(), &key.as_bytes()]).await?.is_some())
    }

    async fn autologin_token(&self, digest: &TokenDigest) -> Result<Option<AutologinToken>> {
        self.record("SELECT record FROM autologin_tokens WHERE digest = $1", &[&&digest.0[..]]).await
    }

    async fn autologin_tokens_of_user(&self, user_id: UserId) -> Result<Vec<AutologinToken>> {
        let Ok(user_id) = db_id(user_id) else { return Ok(Vec::new()) };
        self.records("SELECT record FROM autologin_tokens WHERE user_id = $1 ORDER BY id", &[&user_id]).await
    }

    async fn connected_account(&self, kind: &str, external_id: &str) -> Result<Option<ConnectedAccount>> {
        let sql = "SELECT record FROM connected_accounts WHERE kind = $1 AND external_id = $2";
        self.record(sql, &[&kind.as_bytes(), &external_id.as_bytes()]).await
    }

    async fn connected_accounts_of_user(&self, user_id: UserId) -> Result<Vec<ConnectedAccount>> {
        let Ok(user_id) = db_id(user_id) else { return Ok(Vec::new()) };
        self.records("SELECT record FROM connected_accounts WHERE user_id = $1 ORDER BY id", &[&user_id]).await
    }

    async fn plugin_kv(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>> {
        let sql = "SELECT value FROM plugin_kv WHERE plugin = $1 AND key = $2";
        Ok(self.row(sql, &[&plugin.as_bytes(), &key.as_bytes()]).await?.map(|row| row.get(0)))
    }

    async fn server_secret(&self, name: &str) -> Result<[u8; 32]> {
        let select = "SELECT key FROM server_secrets WHERE name = $1";
        if let Some(row) = self.row(select, &[&name.as_bytes()]).await? {
            return secret_of(name, row.get(0));
        }
        // Hosts racing on first use agree on one secret: only the first insert wins.
        let fresh = crate::domain::secret::new_key()?;
        let insert = "INSERT INTO server_secrets (name, key) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
        self.rows(insert, &[&name.as_bytes(), &&fresh[..]]).await?;
        let row = self
            .row(select, &[&name.as_bytes()])
            .await?
            .ok_or_else(|| Error::Storage(anyhow::anyhow!("secret {name} vanished")))?;
        secret_of(name, row.get(0))
    }

    async fn flush(&self) -> Result<()> {
        // A commit is durable when it returns (synchronous_commit); nothing waits here.
        Ok(())
    }

    async fn lock_account(&self, user_id: UserId) -> Result<AccountLock> {
        let client = self.lock_pool.get().await.map_err(|e| {
            Error::Busy(format!("too many sign-ins waiting for a database lock at once ({e}); try again shortly"))
        })?;
        let key = user_id as i32; // wraps: two accounts 2^32 ids apart share a lock, harmlessly
        let statement = client.prepare_cached("SELECT pg_advisory_lock($1, $2)").await.map_err(db)?;
        client.execute(&statement, &[&self.lock_space, &key]).await.map_err(db)?;
        Ok(AccountLock::held(HeldAdvisoryLock { client: Some(client), space: self.lock_space, key }))
    }

    async fn reserve_id(&self, sequence: IdSequence) -> Result<u64> {
        let name = match sequence {
            IdSequence::Address => "addresses",
            IdSequence::AddressChangeRequest => "address_change_requests",
        };
        let row = self.row(&format!("SELECT nextval('seq_{name}')"), &[]).await?;
        id_from(row.map_or(0, |row| row.get(0)))
    }

    async fn stored_address_types(&self) -> Result<Vec<AddressType>> {
        self.records("SELECT record FROM address_types ORDER BY key", &[]).await
    }

    async fn address(&self, id: AddressId) -> Result<Option<Address>> {
        let Ok(id) = db_id(id) else { return Ok(None) };
        self.record("SELECT record FROM addresses WHERE id = $1", &[&id]).await
    }

    async fn addresses_of_user(&self, user_id: UserId, kind: Option<&str>) -> Result<Vec<Address>> {
        let Ok(user_id) = db_id(user_id) else { return Ok(Vec::new()) };
        match kind {
            Some(kind) => {
                let sql = "SELECT record FROM addresses WHERE user_id = $1 AND kind = $2 ORDER BY id";
                self.records(sql, &[&user_id, &kind.as_bytes()]).await
            }
            None => self.records("SELECT record FROM addresses WHERE user_id = $1 ORDER BY id", &[&user_id]).await,
        }
    }

    async fn address_change_request(&self, id: ChangeRequestId) -> Result<Option<AddressChangeRequest>> {
        let Ok(id) = db_id(id) else { return Ok(None) };
        self.record("SELECT record FROM address_change_requests WHERE id = $1", &[&id]).await
    }

    async fn group(&self, id: GroupId) -> Result<Option<Group>> {
        let Ok(id) = db_id(id) else { return Ok(None) };
        self.record("SELECT record FROM groups WHERE id = $1", &[&id]).await
    }

    async fn groups(&self) -> Result<Vec<Group>> {
        self.records("SELECT record FROM groups ORDER BY id", &[]).await
    }

    async fn groups_of_user(&self, user_id: UserId) -> Result<Vec<GroupId>> {
        let Ok(user_id) = db_id(user_id) else { return Ok(Vec::new()) };
        self.ids("SELECT group_id FROM memberships WHERE user_id = $1 ORDER BY group_id", &[&user_id]).await
    }

    async fn users_in_group(&self, group_id: GroupId) -> Result<Vec<UserId>> {
        let Ok(group_id) = db_id(group_id) else { return Ok(Vec::new()) };
        self.ids("SELECT user_id FROM memberships WHERE group_id = $1 ORDER BY user_id", &[&group_id]).await
    }

    async fn role(&self, id: RoleId) -> Result<Option<AdminRole>> {
        let Ok(id) = db_id(id) else { return Ok(None) };
        self.record("SELECT record FROM roles WHERE id = $1", &[&id]).await
    }

    async fn roles(&self) -> Result<Vec<AdminRole>> {
        self.records("SELECT record FROM roles ORDER BY id", &[]).await
    }

    async fn roles_of_user(&self, user_id: UserId) -> Result<Vec<RoleId>> {
        let Ok(user_id) = db_id(user_id) else { return Ok(Vec::new()) };
        self.ids("SELECT role_id FROM user_roles WHERE user_id = $1 ORDER BY role_id", &[&user_id]).await
    }

    async fn users_with_role(&self, role_id: RoleId) -> Result<Vec<UserId>> {
        let Ok(role_id) = db_id(role_id) else { return Ok(Vec::new()) };
        self.ids("SELECT user_id FROM user_roles WHERE role_id = $1 ORDER BY user_id", &[&role_id]).await
    }

    async fn password_changes_of_user(&self, user_id: UserId, limit: usize) -> Result<Vec<PasswordChange>> {
        let Ok(user_id) = db_id(user_id) else { return Ok(Vec::new()) };
        let sql = "SELECT record FROM password_changes WHERE user_id = $1 ORDER BY id DESC LIMIT $2";
        self.records(sql, &[&user_id, &limit_of(limit)]).await
    }

    async fn address_change_requests_of_user(&self, user_id: UserId) -> Result<Vec<AddressChangeRequest>> {
        let Ok(user_id) = db_id(user_id) else { return Ok(Vec::new()) };
        self.records("SELECT record FROM address_change_requests WHERE user_id = $1 ORDER BY id DESC", &[&user_id])
            .await
    }

    async fn device_token_by_id(&self, id: u64) -> Result<Option<DeviceToken>> {
        let Ok(id) = db_id(id) else { return Ok(None) };
        self.record("SELECT record FROM device_tokens WHERE id = $1", &[&id]).await
    }

    async fn size_on_disk(&self) -> Result<u64> {
        // The tables of this schema with their indexes and TOAST, sequences included.
        let sql = "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class c \
                   JOIN pg_namespace n ON n.oid = c.relnamespace \
                   WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'S')";
        let row = self.row(sql, &[]).await?;
        id_from(row.map_or(0, |row| row.get(0)))
    }

    async fn export(&self, sink: &mut (dyn FnMut(Imported) -> Result<()> + Send)) -> Result<()> {
        // One snapshot: hosts may go on writing while a backup of a database is taken.
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        export::export_all(&tx, sink).await?;
        tx.commit().await.map_err(db)
    }
}

/// The advisory-lock key space of the store in `schema`: the first four bytes of a digest of
/// its name.
fn lock_space_of(schema: &str) -> i32 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("crm-users account locks in {schema}").as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

fn secret_of(name: &str, bytes: Vec<u8>) -> Result<[u8; 32]> {
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| Error::Storage(anyhow::anyhow!("corrupt secret {name}")))
}

/// A session-level advisory lock and the connection that holds it. Dropping it unlocks on a
/// task of its own and returns the connection to the pool; should that fail, the connection
/// is closed instead, which releases the lock on the server.
struct HeldAdvisoryLock {
    client: Option<deadpool_postgres::Object>,
    space: i32,
    key: i32,
}

impl Drop for HeldAdvisoryLock {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else { return };
        let (space, key) = (self.space, self.key);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            drop(deadpool_postgres::Object::take(client));
            return;
        };
        runtime.spawn(async move {
            let unlocked = client.execute("SELECT pg_advisory_unlock($1, $2)", &[&space, &key]).await;
            if unlocked.is_err() {
                drop(deadpool_postgres::Object::take(client));
            }
        });
    }
}
