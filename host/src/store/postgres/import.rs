//! Writing [`Imported`] records: each under the id (or digest) it had where it came from,
//! replacing what is stored there, with the same checks as the sled backend's `import.rs`
//! (another user's email or uuid, another token under the id, a missing user). The id
//! sequences move past the imported ids once per transaction, not once per record.

use super::apply::{
    abort, exec, put_access_token, put_address, put_change_request, put_login_attempt, put_role, put_user, record,
    require_user, role_name_taken, row, set_user_roles, user_with_email, write_meta,
};
use super::schema::SEQUENCES;
use super::{Tx, TxError, TxResult, db_id, id_from};
use crate::domain::{
    Error, Timestamp,
    address::AddressType,
    attempt::{PasswordChange, RegistrationAttempt},
    group::Group,
    token::{ApiToken, AutologinToken, ConnectedAccount, DeviceToken},
    user::{User, email_key},
};
use crate::store::Imported;
use std::collections::BTreeMap;
use tokio_postgres::types::Json;

/// The highest id each sequence must move past by the end of a transaction.
#[derive(Debug, Default)]
pub(super) struct Sequences(BTreeMap<&'static str, u64>);

impl Sequences {
    pub(super) fn advance(&mut self, sequence: &'static str, id: u64) {
        let last = self.0.entry(sequence).or_default();
        *last = (*last).max(id);
    }

    /// Move each sequence so that its next id is above the highest recorded; never back.
    ///
    /// `setval` is not transactional and may race a concurrent `nextval`: in the instant
    /// between reading `last_value` and setting it, other hosts would have to take ids past
    /// the one imported. Ids are unique by constraint, so a repeated id then fails that
    /// insert, which runs again with the next id; nothing is overwritten.
    pub(super) async fn apply(&self, tx: &Tx<'_>) -> TxResult<()> {
        for (name, last) in &self.0 {
            let last = db_id(*last)?;
            if last < 1 {
                continue;
            }
            let sql = format!("SELECT setval('seq_{name}', $1) FROM seq_{name} WHERE NOT is_called OR last_value < $1");
            row(tx, &sql, &[&last]).await?;
        }
        Ok(())
    }
}

fn taken(code: &'static str, message: String) -> TxError {
    TxError::Domain(Error::Conflict { code, message })
}

pub(super) async fn put_device_token(tx: &Tx<'_>, device: &DeviceToken) -> TxResult<()> {
    let sql = "INSERT INTO device_tokens (digest, id, record) VALUES ($1, $2, $3) \
               ON CONFLICT (digest) DO UPDATE SET id = EXCLUDED.id, record = EXCLUDED.record";
    exec(tx, sql, &[&&device.digest.0[..], &db_id(device.id)?, &Json(device)]).await?;
    Ok(())
}

pub(super) async fn put_api_token(tx: &Tx<'_>, token: &ApiToken) -> TxResult<()> {
    let sql = "INSERT INTO api_tokens (digest, id, record) VALUES ($1, $2, $3) \
               ON CONFLICT (digest) DO UPDATE SET id = EXCLUDED.id, record = EXCLUDED.record";
    exec(tx, sql, &[&&token.digest.0[..], &db_id(token.id)?, &Json(token)]).await?;
    Ok(())
}

pub(super) async fn put_autologin_token(tx: &Tx<'_>, token: &AutologinToken) -> TxResult<()> {
    let sql = "INSERT INTO autologin_tokens (digest, id, user_id, record) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (digest) DO UPDATE SET id = EXCLUDED.id, user_id = EXCLUDED.user_id, record = EXCLUDED.record";
    exec(tx, sql, &[&&token.digest.0[..], &db_id(token.id)?, &db_id(token.user_id)?, &Json(token)]).await?;
    Ok(())
}

pub(super) async fn put_connected_account(tx: &Tx<'_>, account: &ConnectedAccount) -> TxResult<()> {
    let sql = "INSERT INTO connected_accounts (kind, external_id, id, user_id, record) VALUES ($1, $2, $3, $4, $5) \
               ON CONFLICT (kind, external_id) DO UPDATE SET id = EXCLUDED.id, user_id = EXCLUDED.user_id, record = EXCLUDED.record";
    let params: &[&(dyn tokio_postgres::types::ToSql + Sync)] = &[
        &account.kind.as_bytes(),
        &account.external_id.as_bytes(),
        &db_id(account.id)?,
        &db_id(account.user_id)?,
        &Json(account),
    ];
    exec(tx, sql, params).await?;
    Ok(())
}

pub(super) async fn put_registration_attempt(tx: &Tx<'_>, row: &RegistrationAttempt) -> TxResult<()> {
    let sql = "INSERT INTO registration_attempts (id, record) VALUES ($1, $2) \
               ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record";
    exec(tx, sql, &[&db_id(row.id)?, &Json(row)]).await?;
    Ok(())
}

pub(super) async fn put_password_change(tx: &Tx<'_>, row: &PasswordChange) -> TxResult<()> {
    let sql = "INSERT INTO password_changes (id, user_id, record) VALUES ($1, $2, $3) \
               ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, record = EXCLUDED.record";
    exec(tx, sql, &[&db_id(row.id)?, &db_id(row.user_id)?, &Json(row)]).await?;
    Ok(())
}

pub(super) async fn put_idempotency_key(tx: &Tx<'_>, scope: &str, key: &str, at: Timestamp) -> TxResult<()> {
    let sql = "INSERT INTO idempotency_keys (scope, key, at) VALUES ($1, $2, $3) \
               ON CONFLICT (scope, key) DO UPDATE SET at = EXCLUDED.at";
    exec(tx, sql, &[&scope.as_bytes(), &key.as_bytes(), &at]).await?;
    Ok(())
}

pub(super) async fn put_plugin_kv(tx: &Tx<'_>, plugin: &str, key: &str, value: &[u8]) -> TxResult<()> {
    let sql = "INSERT INTO plugin_kv (plugin, key, value) VALUES ($1, $2, $3) \
               ON CONFLICT (plugin, key) DO UPDATE SET value = EXCLUDED.value";
    exec(tx, sql, &[&plugin.as_bytes(), &key.as_bytes(), &value]).await?;
    Ok(())
}

pub(super) async fn put_address_type(tx: &Tx<'_>, kind: &AddressType) -> TxResult<()> {
    let sql = "INSERT INTO address_types (key, record) VALUES ($1, $2) \
               ON CONFLICT (key) DO UPDATE SET record = EXCLUDED.record";
    exec(tx, sql, &[&kind.key.as_bytes(), &Json(kind)]).await?;
    Ok(())
}

pub(super) async fn put_group(tx: &Tx<'_>, group: &Group) -> TxResult<()> {
    let sql = "INSERT INTO groups (id, record) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record";
    exec(tx, sql, &[&db_id(group.id)?, &Json(group)]).await?;
    Ok(())
}

/// The sequence an `Imported::Sequence` names, as listed in the schema.
fn known_sequence(name: &str) -> TxResult<&'static str> {
    SEQUENCES.iter().copied().find(|s| *s == name).ok_or_else(|| {
        TxError::Domain(Error::invalid("unknown_sequence", "name", format!("no sequence named '{name}' is kept")))
    })
}

/// An id held under `digest`'s neighbour: the id belongs to a record with another digest.
async fn id_held_by_other(tx: &Tx<'_>, table: &str, id: u64, digest: &[u8; 32]) -> TxResult<bool> {
    let sql = format!("SELECT 1 FROM {table} WHERE id = $1 AND digest <> $2");
    Ok(row(tx, &sql, &[&db_id(id)?, &&digest[..]]).await?.is_some())
}

pub(super) async fn import(tx: &Tx<'_>, record: &Imported, sequences: &mut Sequences) -> TxResult<()> {
    match record {
        Imported::User(user) => {
            import_user(tx, user).await?;
            sequences.advance("users", user.id);
        }
        Imported::Meta(entry) => {
            require_user(tx, entry.user_id).await?;
            write_meta(tx, entry).await?;
        }
        Imported::AccessToken(token) => {
            require_user(tx, token.user_id).await?;
            put_access_token(tx, token).await?;
            sequences.advance("access_tokens", token.id);
        }
        Imported::DeviceToken(device) => {
            if id_held_by_other(tx, "device_tokens", device.id, &device.digest.0).await? {
                return Err(taken("device_token_exists", format!("device token {} here is another token", device.id)));
            }
            put_device_token(tx, device).await?;
            sequences.advance("device_tokens", device.id);
        }
        Imported::AutologinToken(token) => {
            require_user(tx, token.user_id).await?;
            put_autologin_token(tx, token).await?;
            sequences.advance("autologin_tokens", token.id);
        }
        Imported::ConnectedAccount(account) => {
            require_user(tx, account.user_id).await?;
            put_connected_account(tx, account).await?;
            sequences.advance("connected_accounts", account.id);
        }
        Imported::LoginAttempt(attempt) => {
            put_login_attempt(tx, attempt).await?;
            sequences.advance("login_attempts", attempt.id);
        }
        Imported::PasswordChange(row) => {
            put_password_change(tx, row).await?;
            sequences.advance("password_changes", row.id);
        }
        Imported::ApiToken(token) => {
            if id_held_by_other(tx, "api_tokens", token.id, &token.digest.0).await? {
                return Err(taken("api_token_exists", format!("API token {} here is another token", token.id)));
            }
            put_api_token(tx, token).await?;
            sequences.advance("api_tokens", token.id);
        }
        Imported::Group(group) => {
            put_group(tx, group).await?;
            sequences.advance("groups", group.id);
        }
        Imported::Membership { user_id, group_id, since } => {
            require_user(tx, *user_id).await?;
            let group = db_id(*group_id)?;
            if row(tx, "SELECT 1 FROM groups WHERE id = $1 FOR KEY SHARE", &[&group]).await?.is_none() {
                return abort(Error::NotFound(format!("Group not found: {group_id}")));
            }
            let sql = "INSERT INTO memberships (user_id, group_id, since) VALUES ($1, $2, $3) \
                       ON CONFLICT (user_id, group_id) DO UPDATE SET since = EXCLUDED.since";
            exec(tx, sql, &[&db_id(*user_id)?, &group, since]).await?;
        }
        Imported::AddressType(kind) => put_address_type(tx, kind).await?,
        Imported::Address(address) => {
            require_user(tx, address.user_id).await?;
            put_address(tx, address).await?;
            sequences.advance("addresses", address.id);
        }
        Imported::AddressChangeRequest(request) => {
            put_change_request(tx, request).await?;
            sequences.advance("address_change_requests", request.id);
        }
        Imported::Role(role) => {
            if let Some(owner) = super::apply::role_with_name(tx, &role.name).await?
                && owner != role.id
            {
                return Err(role_name_taken(&role.name));
            }
            put_role(tx, role).await?;
            sequences.advance("roles", role.id);
        }
        Imported::UserRoles { user_id, roles } => set_user_roles(tx, *user_id, roles).await?,
        Imported::RegistrationAttempt(row) => {
            put_registration_attempt(tx, row).await?;
            sequences.advance("registration_attempts", row.id);
        }
        Imported::PluginKv { plugin, key, value } => put_plugin_kv(tx, plugin, key, value).await?,
        Imported::ServerSecret { name, key } => {
            let sql = "INSERT INTO server_secrets (name, key) VALUES ($1, $2) \
                       ON CONFLICT (name) DO UPDATE SET key = EXCLUDED.key";
            exec(tx, sql, &[&name.as_bytes(), &&key[..]]).await?;
        }
        Imported::IdempotencyKey { scope, key, at } => put_idempotency_key(tx, scope, key, *at).await?,
        Imported::Sequence { name, last } => sequences.advance(known_sequence(name)?, *last),
    }
    Ok(())
}

/// A user under its own id: inserted, or replacing the one stored there when it is the same
/// person (same uuid); another user's email or uuid is refused.
async fn import_user(tx: &Tx<'_>, user: &User) -> TxResult<()> {
    if let Some(owner) = user_with_email(tx, &email_key(&user.email)).await?
        && owner != user.id
    {
        return Err(taken("email_taken", format!("email {} belongs to user {owner} already", user.email)));
    }
    if let Some(owner) = row(tx, "SELECT id FROM users WHERE uuid = $1", &[&user.uuid.as_bytes()]).await? {
        let owner = id_from(owner.get(0))?;
        if owner != user.id {
            return Err(taken("uuid_taken", format!("uuid {} belongs to user {owner} already", user.uuid)));
        }
    }
    let old: Option<User> =
        record(tx, "SELECT record FROM users WHERE id = $1 FOR UPDATE", &[&db_id(user.id)?]).await?;
    match old {
        Some(old) if old.uuid != user.uuid => {
            // The same person keeps the same uuid; another uuid under this id is a user made
            // here, which an import must not overwrite.
            Err(taken("user_exists", format!("user {} here is someone else (uuid {})", user.id, old.uuid)))
        }
        Some(_) => put_user(tx, user, true).await,
        None => put_user(tx, user, false).await,
    }
}
