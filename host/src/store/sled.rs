//! The embedded sled backend. This module alone knows the key layout (`keys.rs` encodes it;
//! `apply.rs` writes each kind of change with its indexes):
//!
//! | tree | key | value |
//! |---|---|---|
//! | `users` | id (u64 BE) | User JSON |
//! | `users_by_email` | lowercased email | id |
//! | `users_by_uuid` | uuid | id |
//! | `user_counts` | id / 256 (u64 BE) | users of that id block by class (4 × u32 BE) |
//! | `meta` | user id ++ key | MetaEntry JSON |
//! | `meta_by_key` | len-prefixed key ++ len-prefixed value ++ user id | empty |
//! | `access_tokens` | digest | AccessToken JSON |
//! | `access_by_user` | user id ++ token id | digest |
//! | `access_by_device` | device token id ++ token id | digest |
//! | `device_tokens` | digest | DeviceToken JSON |
//! | `device_by_id` | id | digest |
//! | `login_attempts` | id | LoginAttempt JSON |
//! | `attempts_by_ip` | len-prefixed ip ++ attempt id | mark (ms BE ++ ok byte) |
//! | `attempts_by_user` | user id ++ attempt id | mark |
//! | `wrong_pass_by_user` | user id ++ ms ++ attempt id | empty |
//! | `registration_attempts`, `password_changes` | id | JSON |
//! | `api_tokens` | digest | ApiToken JSON; `api_tokens_by_id`: id → digest |
//! | `idempotency` | scope NUL key | ms |
//! | `plugin_kv` | len-prefixed plugin name ++ key | bytes |
//! | `addresses` | id | Address JSON |
//! | `addresses_by_user` | user id ++ address id | empty |
//! | `addresses_by_user_type` | user id ++ len-prefixed type ++ address id | empty |
//! | `address_change_requests` | id | AddressChangeRequest JSON |
//! | `address_types` | type key | AddressType JSON |
//! | `groups` | id | Group JSON |
//! | `user_groups` | user id ++ group id | membership start (ms BE) |
//! | `group_users` | group id ++ user id | empty |
//! | `roles` | id | AdminRole JSON |
//! | `roles_by_name` | lowercased name | id |
//! | `user_roles` | user id | JSON list of role ids, ascending |
//! | `role_users` | role id ++ user id | empty |
//! | `system` | `schema_version`, `seq/<kind>`, `secret/<name>` | bytes |
//!
//! Imported records (`import.rs`) keep their ids and move `seq/<kind>` past them; `export.rs`
//! reads every record back out for backups; `check.rs` walks every
//! tree and index for `crm-users check`; `recover.rs` reopens the store after a storage fault.
//!
//! Every write runs in one sled transaction over all trees and is durable before `apply`
//! returns; concurrent writers share flushes (group commit, `commit.rs`).
//!
//! Deleting a group or role removes the memberships read just before the transaction. A
//! membership added between that read and the commit cannot be added after it (adding checks
//! that the group or role exists inside its own transaction), so one sweep after the commit
//! leaves no dangling membership.

use super::{AccessTokenDraft, Applied, Batch, Change, Created, IdSequence, SCHEMA_VERSION, Store, UserScan};
use crate::domain::{
    Error, Result, Timestamp,
    address::{Address, AddressChangeRequest, AddressId, AddressType, ChangeRequestId},
    attempt::{AttemptMark, LoginAttempt, PasswordChange, RegistrationAttempt},
    group::{Group, GroupId},
    meta::MetaEntry,
    now,
    role::{AdminRole, RoleId, role_name_key},
    secret::TokenDigest,
    token::{AccessToken, ApiToken, AutologinToken, ConnectedAccount, DeviceToken},
    user::{NewUser, User, UserId, email_key},
};
use async_trait::async_trait;
use serde::{Serialize, de::DeserializeOwned};
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use std::path::Path;

mod apply;
mod check;
mod commit;
mod export;
mod import;
mod keys;
mod recover;

pub use check::CheckReport;
pub use commit::CommitMode;
pub use recover::RecoveringStore;

use apply::*;
use keys::*;

/// sled's page cache. The default (1 GiB) is more than a users service on a small host should
/// take; hot data (tokens, users) fits easily in this.
const CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// Declares the trees once: their names (in the order they are passed to transactions) and
/// a struct of named handles to them, plain or transactional. Add a tree by adding its name.
macro_rules! trees {
    ($($name:ident),* $(,)?) => {
        const TREES: &[&str] = &[$(stringify!($name)),*];

        /// Named handles to the trees.
        struct Trees<T> {
            $($name: T,)*
        }

        impl<T: Clone> Trees<T> {
            /// From handles in `TREES` order.
            fn from_slice(handles: &[T]) -> Self {
                let mut next = handles.iter().cloned();
                Trees { $($name: next.next().expect("one handle per tree"),)* }
            }
        }
    };
}

trees!(
    users,
    users_by_email,
    users_by_uuid,
    user_counts,
    meta,
    meta_by_key,
    access_tokens,
    access_by_user,
    access_by_device,
    device_tokens,
    device_by_id,
    login_attempts,
    attempts_by_ip,
    attempts_by_user,
    wrong_pass_by_user,
    registration_attempts,
    password_changes,
    api_tokens,
    api_tokens_by_id,
    idempotency,
    addresses,
    addresses_by_user,
    addresses_by_user_type,
    address_change_requests,
    address_types,
    plugin_kv,
    autologin_tokens,
    autologin_by_user,
    connected_accounts,
    connected_by_user,
    groups,
    user_groups,
    group_users,
    roles,
    roles_by_name,
    user_roles,
    role_users,
    system,
);

/// The sled-backed store.
pub struct SledStore {
    db: sled::Db,
    all: Vec<sled::Tree>,
    t: Trees<sled::Tree>,
    commit: commit::GroupCommit,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

impl SledStore {
    /// Open (or create) the store in `dir` with group commit. Refuses a store of another
    /// schema version, and a folder that sled cannot read, with a message that says so.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        Self::open_with(dir, CommitMode::Group)
    }

    /// [`SledStore::open`] with a chosen way of making writes durable.
    pub fn open_with(dir: &Path, mode: CommitMode) -> anyhow::Result<Self> {
        use anyhow::Context;
        // sled's log file: present once a store was made here. A store that had one and opens
        // without a schema version lost everything to damage (sled's recovery drops a log it
        // cannot read as a torn write), and must not pass for a new one.
        let existed = dir.join("db").is_file();
        let db = open_sled(dir)?;
        let all = TREES
            .iter()
            .map(|name| db.open_tree(name))
            .collect::<std::result::Result<Vec<_>, _>>()
            .with_context(|| format!("cannot open the store's trees in {}; {RESTORE_HINT}", dir.display()))?;
        let t = Trees::from_slice(&all);
        match t.system.get("schema_version")? {
            None => {
                // A new store, or one from before the version key existed: a folder holding
                // users but no version is not ours to guess about.
                if !t.users.is_empty() {
                    anyhow::bail!("{} holds data without a schema version; refusing to open it", dir.display());
                }
                if existed {
                    anyhow::bail!(
                        "cannot open the store in {}: sled found no readable data in its log; {RESTORE_HINT}",
                        dir.display()
                    );
                }
                t.system.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
                db.flush()?;
            }
            Some(v) => {
                let version = <[u8; 4]>::try_from(v.as_ref()).map(u32::from_be_bytes).map_err(|_| {
                    anyhow::anyhow!("the schema version in {} is corrupt; {RESTORE_HINT}", dir.display())
                })?;
                if version == 1 {
                    migrate_to_user_counts(&t).context("cannot upgrade the store to schema version 2")?;
                    db.flush()?;
                } else if version != SCHEMA_VERSION {
                    anyhow::bail!(
                        "{} holds schema version {version}; this build reads version {SCHEMA_VERSION}: run the build that wrote it, or move the data over with `crm-users export` there and `crm-users import` here",
                        dir.display()
                    );
                }
            }
        }
        let commit = commit::GroupCommit::start(db.clone(), &dir.join("db"), mode)
            .context("cannot start the group-commit thread")?;
        Ok(SledStore { db, all, t, commit })
    }

    async fn durable(&self) -> Result<()> {
        self.commit.durable().await
    }

    /// Run `f` in one transaction over every tree, then flush.
    async fn write<A>(&self, f: impl Fn(&Trees<TransactionalTree>) -> TxResult<A>) -> Result<A> {
        self.commit
            .commit(|| match self.all.as_slice().transaction(|view| f(&Trees::from_slice(view))) {
                Ok(v) => Ok(v),
                Err(TransactionError::Abort(e)) => Err(e),
                Err(TransactionError::Storage(e)) => Err(Error::storage(e)),
            })
            .await
    }

    fn get_json<T: DeserializeOwned>(tree: &sled::Tree, key: &[u8]) -> Result<Option<T>> {
        match tree.get(key).map_err(Error::storage)? {
            Some(v) => Ok(Some(from_json(&v)?)),
            None => Ok(None),
        }
    }

    /// Users with ids in `ids` that match `scan`, in id order: the first `skip` passed over,
    /// the rest added to `out` until it holds `limit`.
    fn collect_users(
        &self,
        scan: &UserScan,
        ids: std::ops::Range<u64>,
        skip: &mut u64,
        limit: usize,
        out: &mut Vec<User>,
    ) -> Result<()> {
        for item in self.t.users.range(be(ids.start)..be(ids.end)) {
            if out.len() >= limit {
                break;
            }
            let (_, raw) = item.map_err(Error::storage)?;
            let user: User = from_json(&raw)?;
            if !matches_scan(&user, scan) {
                continue;
            }
            if *skip > 0 {
                *skip -= 1;
            } else {
                out.push(user);
            }
        }
        Ok(())
    }

    /// Records pointed to by digests in an index, in index order.
    fn tokens_by_index(&self, index: &sled::Tree, prefix: &[u8]) -> Result<Vec<AccessToken>> {
        let mut out = Vec::new();
        for item in index.scan_prefix(prefix) {
            let (_, digest) = item.map_err(Error::storage)?;
            if let Some(t) = Self::get_json::<AccessToken>(&self.t.access_tokens, &digest)? {
                out.push(t);
            }
        }
        Ok(out)
    }
}

/// What to do when a store folder cannot be read.
const RESTORE_HINT: &str = "the folder is damaged or is not a crm-users store; move it aside and restore the data from a backup made with `crm-users export` (`crm-users import --input BACKUP.jsonl` into an empty data folder)";

/// Open sled in `dir`. Damage sled reports as an error or, in some places, as a panic; either
/// becomes one message that names the folder and the way out.
fn open_sled(dir: &Path) -> anyhow::Result<sled::Db> {
    if dir.exists() && !dir.is_dir() {
        anyhow::bail!("the store {} is not a folder; {RESTORE_HINT}", dir.display());
    }
    let config = sled::Config::new().path(dir).cache_capacity(CACHE_BYTES);
    // The default hook would print the panic with a backtrace hint; the message below says it
    // all. Opens in parallel (tests) take turns, so the default hook is always put back.
    static QUIET: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let turn = QUIET.lock().unwrap_or_else(|e| e.into_inner());
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| config.open()));
    std::panic::set_hook(hook);
    drop(turn);
    match opened {
        Ok(Ok(db)) => Ok(db),
        Ok(Err(e)) => anyhow::bail!("cannot open the store in {}: {e}; {RESTORE_HINT}", dir.display()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unreadable data".into());
            anyhow::bail!("cannot open the store in {}: sled failed reading it ({what}); {RESTORE_HINT}", dir.display())
        }
    }
}

/// Schema 1 to 2: count the stored users per id block (`user_counts`), then mark the store as
/// version 2. Safe to repeat if interrupted: the counts are rebuilt from scratch.
fn migrate_to_user_counts(t: &Trees<sled::Tree>) -> anyhow::Result<()> {
    let mut blocks = std::collections::BTreeMap::<u64, BlockCounts>::new();
    for item in t.users.iter() {
        let (_, raw) = item?;
        let user: User = from_json(&raw)?;
        blocks.entry(user.id / COUNT_BLOCK).or_default()[user_class(&user)] += 1;
    }
    t.user_counts.clear()?;
    for (block, counts) in blocks {
        t.user_counts.insert(be(block), &counts_bytes(&counts))?;
    }
    t.system.insert("schema_version", &SCHEMA_VERSION.to_be_bytes())?;
    Ok(())
}

/// Keys the transaction must delete that only a range scan can find; sled transactions cannot
/// scan, so they are gathered just before the transaction starts.
#[derive(Default)]
struct Prefetched {
    public_meta: Vec<MetaEntry>,
    attempts: Vec<LoginAttempt>,
    autologin: Vec<AutologinToken>,
    connected: Vec<ConnectedAccount>,
    group_members: Vec<(GroupId, Vec<UserId>)>,
    role_holders: Vec<(RoleId, Vec<UserId>)>,
}

#[async_trait]
impl Store for SledStore {
    async fn create_user(
        &self,
        new: NewUser,
        meta: Vec<(String, String, bool)>,
        token: Option<AccessTokenDraft>,
    ) -> Result<(User, Option<AccessToken>)> {
        let email_k = email_key(&new.email);
        let uuid = uuid::Uuid::new_v4().to_string();
        self.write(|t| {
            if t.users_by_email.get(email_k.as_bytes())?.is_some() {
                return abort(Error::Conflict { code: "email_taken", message: "Email is already taken".into() });
            }
            let id = next_id(&t.system, "users")?;
            let user = new.clone().into_user(id, uuid.clone(), now());
            count_user(t, None, &user)?;
            t.users.insert(&be(id), to_json(&user)?)?;
            t.users_by_email.insert(email_k.as_bytes(), &be(id))?;
            t.users_by_uuid.insert(user.uuid.as_bytes(), &be(id))?;
            for (key, value, public) in &meta {
                put_meta(t, id, key, value, *public)?;
            }
            let token = match &token {
                Some(draft) => Some(insert_access_token(t, &AccessTokenDraft { user_id: id, ..draft.clone() })?),
                None => None,
            };
            Ok((user, token))
        })
        .await
    }

    async fn apply(&self, batch: Batch) -> Result<Applied> {
        if batch.is_empty() {
            return Ok(Applied::default());
        }
        let mut pre = Prefetched::default();
        for change in &batch.0 {
            match change {
                Change::DeletePublicMeta { user_id } => {
                    pre.public_meta.extend(self.user_meta(*user_id).await?.into_iter().filter(|m| m.is_public));
                }
                Change::DeleteLoginAttemptsOf { user_id } => {
                    pre.attempts.extend(self.login_attempts_of_user(*user_id, usize::MAX).await?);
                }
                Change::DeleteAutologinTokensOf { user_id } => {
                    pre.autologin.extend(self.autologin_tokens_of_user(*user_id).await?);
                }
                Change::DeleteConnectedAccountsOf { user_id } => {
                    pre.connected.extend(self.connected_accounts_of_user(*user_id).await?);
                }
                Change::DeleteGroup(id) => pre.group_members.push((*id, self.users_in_group(*id).await?)),
                Change::DeleteRole(id) => pre.role_holders.push((*id, self.users_with_role(*id).await?)),
                _ => {}
            }
        }
        let applied = self
            .write(|t| {
                let mut applied = Applied::default();
                for change in &batch.0 {
                    apply_change(t, change, &pre, &mut applied)?;
                }
                Ok(applied)
            })
            .await?;
        self.sweep_deleted(&pre).await?;
        Ok(applied)
    }

    async fn user(&self, id: UserId) -> Result<Option<User>> {
        Self::get_json(&self.t.users, &be(id))
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        match self.t.users_by_email.get(email_key(email).as_bytes()).map_err(Error::storage)? {
            Some(id) => self.user(id_of(&id)?).await,
            None => Ok(None),
        }
    }

    async fn scan_users(&self, scan: &UserScan, skip: usize, limit: usize) -> Result<Vec<User>> {
        let mut from = scan.after.map_or(0, |a| a.saturating_add(1));
        let mut skip = skip as u64;
        let mut out = Vec::new();
        if skip > 0 {
            // The rest of `from`'s block one by one, then whole blocks by their counts.
            let next_block = from.div_ceil(COUNT_BLOCK);
            self.collect_users(scan, from..next_block.saturating_mul(COUNT_BLOCK), &mut skip, limit, &mut out)?;
            from = next_block.saturating_mul(COUNT_BLOCK);
            for item in self.t.user_counts.range(be(next_block)..) {
                if skip == 0 {
                    break;
                }
                let (key, counts) = item.map_err(Error::storage)?;
                let (block, n) = (id_of(&key)?, matching(&counts_of(&counts)?, scan));
                if n > skip {
                    from = block.saturating_mul(COUNT_BLOCK);
                    break;
                }
                skip -= n;
                from = block.saturating_add(1).saturating_mul(COUNT_BLOCK);
            }
        }
        self.collect_users(scan, from..u64::MAX, &mut skip, limit, &mut out)?;
        Ok(out)
    }

    async fn count_users(&self, scan: &UserScan) -> Result<u64> {
        let mut n = 0;
        for item in self.t.user_counts.iter() {
            let (_, counts) = item.map_err(Error::storage)?;
            n += matching(&counts_of(&counts)?, scan);
        }
        Ok(n)
    }

    async fn user_meta(&self, user_id: UserId) -> Result<Vec<MetaEntry>> {
        self.t.meta.scan_prefix(be(user_id)).map(|item| from_json(&item.map_err(Error::storage)?.1)).collect()
    }

    async fn meta_entry(&self, user_id: UserId, key: &str) -> Result<Option<MetaEntry>> {
        Self::get_json(&self.t.meta, &meta_key(user_id, key))
    }

    async fn users_with_meta(&self, key: &str, value: Option<&str>) -> Result<Vec<(UserId, String)>> {
        let prefix = match value {
            Some(v) => concat(&[&lp(key), &lp(v)]),
            None => lp(key),
        };
        let mut out = Vec::new();
        for item in self.t.meta_by_key.scan_prefix(&prefix) {
            let (k, _) = item.map_err(Error::storage)?;
            let user_id = tail_id(&k)?;
            let rest = &k[4 + key.len()..k.len() - 8];
            let value = rest.get(4..).map(|v| String::from_utf8_lossy(v).into_owned()).unwrap_or_default();
            out.push((user_id, value));
        }
        Ok(out)
    }

    async fn access_token(&self, digest: &TokenDigest) -> Result<Option<AccessToken>> {
        Self::get_json(&self.t.access_tokens, &digest.0)
    }

    async fn access_tokens_of_user(&self, user_id: UserId) -> Result<Vec<AccessToken>> {
        self.tokens_by_index(&self.t.access_by_user, &be(user_id))
    }

    async fn access_tokens_of_device(&self, device_token_id: u64) -> Result<Vec<AccessToken>> {
        self.tokens_by_index(&self.t.access_by_device, &be(device_token_id))
    }

    async fn device_token(&self, digest: &TokenDigest) -> Result<Option<DeviceToken>> {
        Self::get_json(&self.t.device_tokens, &digest.0)
    }

    async fn recent_attempts_by_ip(&self, ip: &str, n: usize) -> Result<Vec<AttemptMark>> {
        recent_marks(&self.t.attempts_by_ip, &lp(ip), n)
    }

    async fn recent_attempts_by_user(&self, user_id: UserId, n: usize) -> Result<Vec<AttemptMark>> {
        recent_marks(&self.t.attempts_by_user, &be(user_id), n)
    }

    async fn wrong_passwords_since(&self, user_id: UserId, since: Timestamp, cap: usize) -> Result<usize> {
        let start = concat(&[&be(user_id), &millis_key(since)]);
        let end = concat(&[&be(user_id), &[0xff; 16]]);
        Ok(self.t.wrong_pass_by_user.range(start..end).take(cap).count())
    }

    async fn login_attempts_of_user(&self, user_id: UserId, limit: usize) -> Result<Vec<LoginAttempt>> {
        let mut out = Vec::new();
        for item in self.t.attempts_by_user.scan_prefix(be(user_id)).rev().take(limit) {
            let (k, _) = item.map_err(Error::storage)?;
            if let Some(a) = Self::get_json(&self.t.login_attempts, &be(tail_id(&k)?))? {
                out.push(a);
            }
        }
        Ok(out)
    }

    async fn api_token(&self, digest: &TokenDigest) -> Result<Option<ApiToken>> {
        Self::get_json(&self.t.api_tokens, &digest.0)
    }

    async fn api_tokens(&self) -> Result<Vec<ApiToken>> {
        let mut out = Vec::new();
        for item in self.t.api_tokens_by_id.iter() {
            let (_, digest) = item.map_err(Error::storage)?;
            if let Some(t) = Self::get_json(&self.t.api_tokens, &digest)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn idempotency_key_seen(&self, scope: &str, key: &str) -> Result<bool> {
        self.t.idempotency.contains_key(concat(&[scope.as_bytes(), &[0], key.as_bytes()])).map_err(Error::storage)
    }

    async fn autologin_token(&self, digest: &TokenDigest) -> Result<Option<AutologinToken>> {
        Self::get_json(&self.t.autologin_tokens, &digest.0)
    }

    async fn autologin_tokens_of_user(&self, user_id: UserId) -> Result<Vec<AutologinToken>> {
        let mut out = Vec::new();
        for item in self.t.autologin_by_user.scan_prefix(be(user_id)) {
            let (_, digest) = item.map_err(Error::storage)?;
            if let Some(t) = Self::get_json(&self.t.autologin_tokens, &digest)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn connected_account(&self, kind: &str, external_id: &str) -> Result<Option<ConnectedAccount>> {
        Self::get_json(&self.t.connected_accounts, &concat(&[&lp(kind), external_id.as_bytes()]))
    }

    async fn connected_accounts_of_user(&self, user_id: UserId) -> Result<Vec<ConnectedAccount>> {
        let mut out = Vec::new();
        for item in self.t.connected_by_user.scan_prefix(be(user_id)) {
            let (_, key) = item.map_err(Error::storage)?;
            if let Some(a) = Self::get_json(&self.t.connected_accounts, &key)? {
                out.push(a);
            }
        }
        Ok(out)
    }

    async fn plugin_kv(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.t.plugin_kv.get(concat(&[&lp(plugin), key.as_bytes()])).map_err(Error::storage)?.map(|v| v.to_vec()))
    }

    async fn server_secret(&self, name: &str) -> Result<[u8; 32]> {
        let key = format!("secret/{name}");
        if let Some(secret) = self.stored_secret(name)? {
            return Ok(secret);
        }
        let fresh = crate::domain::secret::new_key()?;
        // Two first uses racing must agree on one secret: only the first insert wins.
        let _ = self
            .t
            .system
            .compare_and_swap(key.as_bytes(), None as Option<&[u8]>, Some(&fresh[..]))
            .map_err(Error::storage)?;
        self.durable().await?;
        let v = self
            .t
            .system
            .get(key.as_bytes())
            .map_err(Error::storage)?
            .ok_or_else(|| Error::Storage(anyhow::anyhow!("secret {name} vanished")))?;
        <[u8; 32]>::try_from(v.as_ref()).map_err(|_| Error::Storage(anyhow::anyhow!("corrupt secret {name}")))
    }

    async fn flush(&self) -> Result<()> {
        self.durable().await
    }

    async fn reserve_id(&self, sequence: IdSequence) -> Result<u64> {
        // Not flushed on its own: the batch that writes a record under the id flushes the
        // sequence with it, and an id whose record never got written may be handed out again.
        let name = sequence_name(sequence);
        match self.t.system.transaction(|system| next_id(system, name)) {
            Ok(id) => Ok(id),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(Error::storage(e)),
        }
    }

    async fn stored_address_types(&self) -> Result<Vec<AddressType>> {
        self.t.address_types.iter().map(|item| from_json(&item.map_err(Error::storage)?.1)).collect()
    }

    async fn address(&self, id: AddressId) -> Result<Option<Address>> {
        Self::get_json(&self.t.addresses, &be(id))
    }

    async fn addresses_of_user(&self, user_id: UserId, kind: Option<&str>) -> Result<Vec<Address>> {
        let (index, prefix) = match kind {
            Some(kind) => (&self.t.addresses_by_user_type, concat(&[&be(user_id), &lp(kind)])),
            None => (&self.t.addresses_by_user, be(user_id).to_vec()),
        };
        let mut out = Vec::new();
        for item in index.scan_prefix(prefix) {
            let (k, _) = item.map_err(Error::storage)?;
            if let Some(a) = self.address(tail_id(&k)?).await? {
                out.push(a);
            }
        }
        Ok(out)
    }

    async fn address_change_request(&self, id: ChangeRequestId) -> Result<Option<AddressChangeRequest>> {
        Self::get_json(&self.t.address_change_requests, &be(id))
    }
    async fn group(&self, id: GroupId) -> Result<Option<Group>> {
        Self::get_json(&self.t.groups, &be(id))
    }

    async fn groups(&self) -> Result<Vec<Group>> {
        self.t.groups.iter().map(|item| from_json(&item.map_err(Error::storage)?.1)).collect()
    }

    async fn groups_of_user(&self, user_id: UserId) -> Result<Vec<GroupId>> {
        self.t.user_groups.scan_prefix(be(user_id)).map(|item| tail_id(&item.map_err(Error::storage)?.0)).collect()
    }

    async fn users_in_group(&self, group_id: GroupId) -> Result<Vec<UserId>> {
        self.t.group_users.scan_prefix(be(group_id)).map(|item| tail_id(&item.map_err(Error::storage)?.0)).collect()
    }

    async fn role(&self, id: RoleId) -> Result<Option<AdminRole>> {
        Self::get_json(&self.t.roles, &be(id))
    }

    async fn roles(&self) -> Result<Vec<AdminRole>> {
        self.t.roles.iter().map(|item| from_json(&item.map_err(Error::storage)?.1)).collect()
    }

    async fn roles_of_user(&self, user_id: UserId) -> Result<Vec<RoleId>> {
        Ok(Self::get_json(&self.t.user_roles, &be(user_id))?.unwrap_or_default())
    }

    async fn users_with_role(&self, role_id: RoleId) -> Result<Vec<UserId>> {
        self.t.role_users.scan_prefix(be(role_id)).map(|item| tail_id(&item.map_err(Error::storage)?.0)).collect()
    }

    async fn password_changes_of_user(&self, user_id: UserId, limit: usize) -> Result<Vec<PasswordChange>> {
        let mut out = Vec::new();
        for item in self.t.password_changes.iter().rev() {
            let (_, raw) = item.map_err(Error::storage)?;
            let row: PasswordChange = from_json(&raw)?;
            if row.user_id == user_id {
                out.push(row);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    async fn address_change_requests_of_user(&self, user_id: UserId) -> Result<Vec<AddressChangeRequest>> {
        let mut out = Vec::new();
        for item in self.t.address_change_requests.iter().rev() {
            let (_, raw) = item.map_err(Error::storage)?;
            let row: AddressChangeRequest = from_json(&raw)?;
            if row.user_id == user_id {
                out.push(row);
            }
        }
        Ok(out)
    }

    async fn device_token_by_id(&self, id: u64) -> Result<Option<DeviceToken>> {
        match self.t.device_by_id.get(be(id)).map_err(Error::storage)? {
            Some(digest) => Self::get_json(&self.t.device_tokens, &digest),
            None => Ok(None),
        }
    }

    async fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(Error::storage)
    }

    async fn export(&self, sink: &mut (dyn FnMut(crate::store::Imported) -> Result<()> + Send)) -> Result<()> {
        self.export_all(sink)
    }
}

impl SledStore {
    /// The server secret `name` if one was made.
    pub fn stored_secret(&self, name: &str) -> Result<Option<[u8; 32]>> {
        match self.t.system.get(format!("secret/{name}").as_bytes()).map_err(Error::storage)? {
            Some(v) => <[u8; 32]>::try_from(v.as_ref())
                .map(Some)
                .map_err(|_| Error::Storage(anyhow::anyhow!("corrupt secret {name}"))),
            None => Ok(None),
        }
    }

    /// Remove memberships of deleted groups and roles that were added after `pre` was read
    /// (see the module doc); nothing to do in the usual case.
    async fn sweep_deleted(&self, pre: &Prefetched) -> Result<()> {
        let mut late = Prefetched::default();
        for (group_id, _) in &pre.group_members {
            let left = self.users_in_group(*group_id).await?;
            if !left.is_empty() {
                late.group_members.push((*group_id, left));
            }
        }
        for (role_id, _) in &pre.role_holders {
            let left = self.users_with_role(*role_id).await?;
            if !left.is_empty() {
                late.role_holders.push((*role_id, left));
            }
        }
        if late.group_members.is_empty() && late.role_holders.is_empty() {
            return Ok(());
        }
        self.write(|t| {
            for (group_id, members) in &late.group_members {
                remove_group_members(t, *group_id, members)?;
            }
            for (role_id, holders) in &late.role_holders {
                unassign_role(t, *role_id, holders)?;
            }
            Ok(())
        })
        .await
    }
}

fn matches_scan(user: &User, scan: &UserScan) -> bool {
    (scan.include_deleted || !user.is_deleted()) && (scan.include_inactive || user.active)
}

fn recent_marks(index: &sled::Tree, prefix: &[u8], n: usize) -> Result<Vec<AttemptMark>> {
    index.scan_prefix(prefix).rev().take(n).map(|item| mark_of(&item.map_err(Error::storage)?.1)).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::user::Role;

    /// A user to create in store tests (shared with the other sled test modules).
    pub(crate) fn new_user(email: &str) -> NewUser {
        NewUser {
            email: email.into(),
            password_hash: "x".into(),
            first_name: None,
            last_name: None,
            role: Role::User,
            active: true,
            source: "test".into(),
            referer: None,
            registration_channel: "crm".into(),
            locale: "en_US".into(),
            ext_id: None,
            note: None,
        }
    }

    #[tokio::test]
    async fn email_index_is_case_insensitive_and_follows_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (mut a, _) = store.create_user(new_user("A@example.com"), vec![], None).await.unwrap();
        let err = store.create_user(new_user("a@EXAMPLE.com"), vec![], None).await.unwrap_err();
        assert_eq!(err.code(), "email_taken");
        a.email = "b@example.com".into();
        store.apply(Batch(vec![Change::PutUser(Box::new(a.clone()))])).await.unwrap();
        assert!(store.user_by_email("a@example.com").await.unwrap().is_none());
        assert_eq!(store.user_by_email("B@example.com").await.unwrap().unwrap().id, a.id);
        // The freed address can be taken again.
        store.create_user(new_user("a@example.com"), vec![], None).await.unwrap();
    }

    #[tokio::test]
    async fn failed_batch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (a, _) = store.create_user(new_user("a@example.com"), vec![], None).await.unwrap();
        let (b, _) = store.create_user(new_user("b@example.com"), vec![], None).await.unwrap();
        let mut taken = b.clone();
        taken.email = a.email.clone();
        let batch = Batch(vec![
            Change::PutMeta { user_id: b.id, key: "k".into(), value: "v".into(), is_public: true },
            Change::PutUser(Box::new(taken)),
        ]);
        assert_eq!(store.apply(batch).await.unwrap_err().code(), "email_taken");
        assert!(store.meta_entry(b.id, "k").await.unwrap().is_none());
        assert!(store.users_with_meta("k", None).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn meta_index_tracks_value_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (a, _) =
            store.create_user(new_user("a@example.com"), vec![("k".into(), "1".into(), false)], None).await.unwrap();
        store
            .apply(Batch(vec![Change::PutMeta { user_id: a.id, key: "k".into(), value: "2".into(), is_public: false }]))
            .await
            .unwrap();
        assert!(store.users_with_meta("k", Some("1")).await.unwrap().is_empty());
        assert_eq!(store.users_with_meta("k", Some("2")).await.unwrap(), vec![(a.id, "2".to_string())]);
        assert_eq!(store.users_with_meta("k", None).await.unwrap(), vec![(a.id, "2".to_string())]);
    }

    fn address(id: u64, user_id: UserId, kind: &str) -> Address {
        let at = now();
        Address {
            id,
            user_id,
            kind: kind.into(),
            is_default: false,
            title: None,
            fields: Default::default(),
            created_at: at,
            updated_at: at,
            deleted_at: None,
        }
    }

    #[tokio::test]
    async fn address_indexes_follow_type_changes_and_a_stale_decision_writes_nothing() {
        use crate::domain::address::ChangeRequestStatus;
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (u, _) = store.create_user(new_user("a@example.com"), vec![], None).await.unwrap();
        let id = store.reserve_id(IdSequence::Address).await.unwrap();
        assert_eq!(store.reserve_id(IdSequence::Address).await.unwrap(), id + 1, "reserved ids are not reused");
        store.apply(Batch(vec![Change::PutAddress(Box::new(address(id, u.id, "print")))])).await.unwrap();
        store.apply(Batch(vec![Change::PutAddress(Box::new(address(id, u.id, "invoice")))])).await.unwrap();
        assert!(store.addresses_of_user(u.id, Some("print")).await.unwrap().is_empty());
        assert_eq!(store.addresses_of_user(u.id, Some("invoice")).await.unwrap().len(), 1);
        assert_eq!(store.addresses_of_user(u.id, None).await.unwrap().len(), 1);

        let at = now();
        let request = AddressChangeRequest {
            id: 1,
            user_id: u.id,
            kind: "invoice".into(),
            address_id: None,
            status: ChangeRequestStatus::Accepted,
            fields: Default::default(),
            old: Default::default(),
            created_at: at,
            updated_at: at,
        };
        // The request was never `new`: the batch fails and its address is not written either.
        let batch = Batch(vec![
            Change::PutAddressChangeRequest { request: Box::new(request), if_status: Some(ChangeRequestStatus::New) },
            Change::PutAddress(Box::new(address(id + 1, u.id, "invoice"))),
        ]);
        assert_eq!(store.apply(batch).await.unwrap_err().code(), "change_request_changed");
        assert!(store.address(id + 1).await.unwrap().is_none());
        assert_eq!(store.addresses_of_user(u.id, None).await.unwrap().len(), 1);
        let orphan = Change::PutAddress(Box::new(address(id + 2, u.id + 100, "invoice")));
        assert_eq!(store.apply(Batch(vec![orphan])).await.unwrap_err().code(), "not_found");
    }

    #[tokio::test]
    async fn memberships_are_indexed_both_ways_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (a, _) = store.create_user(new_user("a@example.com"), vec![], None).await.unwrap();
        let applied =
            store.apply(Batch(vec![Change::InsertGroup { name: "Premium".into(), sorting: 10 }])).await.unwrap();
        let g = applied.group().unwrap().clone();
        assert_eq!(store.group(g.id).await.unwrap(), Some(g.clone()));
        let add = || Batch(vec![Change::AddToGroup { user_id: a.id, group_id: g.id }]);
        store.apply(add()).await.unwrap();
        store.apply(add()).await.unwrap();
        assert_eq!(store.groups_of_user(a.id).await.unwrap(), vec![g.id]);
        assert_eq!(store.users_in_group(g.id).await.unwrap(), vec![a.id]);
        let missing = Batch(vec![Change::AddToGroup { user_id: a.id, group_id: g.id + 1 }]);
        assert_eq!(store.apply(missing).await.unwrap_err().code(), "not_found");
        let remove = || Batch(vec![Change::RemoveFromGroup { user_id: a.id, group_id: g.id }]);
        store.apply(remove()).await.unwrap();
        store.apply(remove()).await.unwrap();
        assert!(store.groups_of_user(a.id).await.unwrap().is_empty());
        assert!(store.users_in_group(g.id).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn deleting_a_group_or_role_removes_its_memberships_in_both_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let (a, _) = store.create_user(new_user("a@example.com"), vec![], None).await.unwrap();
        let g = store.apply(Batch(vec![Change::InsertGroup { name: "G".into(), sorting: 1 }])).await.unwrap();
        let g = g.group().unwrap().id;
        store.apply(Batch(vec![Change::AddToGroup { user_id: a.id, group_id: g }])).await.unwrap();
        store.apply(Batch(vec![Change::DeleteGroup(g)])).await.unwrap();
        assert!(store.groups_of_user(a.id).await.unwrap().is_empty());
        assert!(store.users_in_group(g).await.unwrap().is_empty());
        assert_eq!(store.apply(Batch(vec![Change::DeleteGroup(g)])).await.unwrap_err().code(), "not_found");

        let insert = |name: &str| Change::InsertRole { name: name.into(), permissions: vec!["*".into()] };
        let r1 = store.apply(Batch(vec![insert("Editors")])).await.unwrap().role().unwrap().id;
        let r2 = store.apply(Batch(vec![insert("Viewers")])).await.unwrap().role().unwrap().id;
        assert_eq!(store.apply(Batch(vec![insert("editors")])).await.unwrap_err().code(), "role_name_taken");
        store.apply(Batch(vec![Change::SetUserRoles { user_id: a.id, roles: vec![r2, r1, r2] }])).await.unwrap();
        assert_eq!(store.roles_of_user(a.id).await.unwrap(), vec![r1, r2]);
        let unknown = Batch(vec![Change::SetUserRoles { user_id: a.id, roles: vec![r1 + 10] }]);
        assert_eq!(store.apply(unknown).await.unwrap_err().code(), "unknown_role");
        store.apply(Batch(vec![Change::DeleteRole(r1)])).await.unwrap();
        assert_eq!(store.roles_of_user(a.id).await.unwrap(), vec![r2]);
        assert!(store.users_with_role(r1).await.unwrap().is_empty());
        // The deleted role's name is free again.
        store.apply(Batch(vec![insert("EDITORS")])).await.unwrap();
    }

    /// 700 users over three count blocks, some disabled, some deleted.
    async fn mixed_users(store: &SledStore) -> Vec<User> {
        let mut all = Vec::new();
        for i in 0..700 {
            let (mut user, _) = store.create_user(new_user(&format!("u{i}@example.com")), vec![], None).await.unwrap();
            if i % 7 == 3 || i % 11 == 5 {
                user.active = i % 7 != 3;
                user.deleted_at = (i % 11 == 5).then(now);
                store.apply(Batch(vec![Change::PutUser(Box::new(user.clone()))])).await.unwrap();
            }
            all.push(user);
        }
        all
    }

    async fn check_scans(store: &SledStore, all: &[User]) {
        for (include_inactive, include_deleted) in [(false, false), (true, false), (true, true), (false, true)] {
            let scan = UserScan { after: None, include_inactive, include_deleted };
            let expected: Vec<u64> = all.iter().filter(|u| matches_scan(u, &scan)).map(|u| u.id).collect();
            assert_eq!(store.count_users(&scan).await.unwrap(), expected.len() as u64);
            for skip in [0, 1, 200, 255, 256, 300, 511, 600, expected.len() - 1, expected.len(), 5000] {
                let got: Vec<u64> = store.scan_users(&scan, skip, 50).await.unwrap().iter().map(|u| u.id).collect();
                let want: Vec<u64> = expected.iter().copied().skip(skip).take(50).collect();
                assert_eq!(got, want, "skip {skip} in {scan:?}");
            }
            for after in [1, 100, 255, 256, 257, 650] {
                let scan = UserScan { after: Some(after), ..scan };
                let want: Vec<u64> = expected.iter().copied().filter(|id| *id > after).skip(260).take(20).collect();
                let got: Vec<u64> = store.scan_users(&scan, 260, 20).await.unwrap().iter().map(|u| u.id).collect();
                assert_eq!(got, want, "after {after} skip 260 in {scan:?}");
            }
        }
    }

    #[tokio::test]
    async fn counts_and_deep_pages_follow_every_change_of_a_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let all = mixed_users(&store).await;
        check_scans(&store, &all).await;
    }

    #[tokio::test]
    async fn a_version_1_store_gets_its_user_counts_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let all = {
            let store = SledStore::open(dir.path()).unwrap();
            let all = mixed_users(&store).await;
            store.t.user_counts.clear().unwrap();
            store.t.system.insert("schema_version", &1u32.to_be_bytes()).unwrap();
            store.flush().await.unwrap();
            all
        };
        let store = SledStore::open(dir.path()).unwrap();
        check_scans(&store, &all).await;
    }

    #[tokio::test]
    async fn refuses_a_store_of_another_schema_version() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = SledStore::open(dir.path()).unwrap();
            store.t.system.insert("schema_version", &99u32.to_be_bytes()).unwrap();
            store.flush().await.unwrap();
        }
        let err = SledStore::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("schema version 99"), "{err}");
    }
}
