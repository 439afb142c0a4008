//! Applying one [`Change`] inside the batch's transaction: each kind of change with the same
//! checks and answers as the sled backend's `apply.rs`. A row that is read, changed and
//! written back is read `FOR UPDATE`, so a concurrent writer waits instead of being lost.

use super::import::{self, Sequences};
use super::{Tx, TxError, TxResult, db_id, id_from, record_of};
use crate::domain::{
    Error,
    address::{Address, AddressChangeRequest},
    attempt::{LoginAttempt, LoginStatus, PasswordChange, RegistrationAttempt},
    group::Group,
    meta::MetaEntry,
    now,
    role::{AdminRole, RoleId, role_name_key},
    token::{AccessToken, ApiToken, AutologinToken, ConnectedAccount, DeviceToken},
    user::{User, UserId, email_key},
};
use crate::store::{AccessTokenDraft, Applied, Change, Created};
use serde::de::DeserializeOwned;
use tokio_postgres::Row;
use tokio_postgres::types::{Json, ToSql};

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Run a statement; returns the rows it changed.
pub(super) async fn exec(tx: &Tx<'_>, sql: &str, params: Params<'_>) -> TxResult<u64> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&statement, params).await?)
}

pub(super) async fn row(tx: &Tx<'_>, sql: &str, params: Params<'_>) -> TxResult<Option<Row>> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query_opt(&statement, params).await?)
}

pub(super) async fn rows(tx: &Tx<'_>, sql: &str, params: Params<'_>) -> TxResult<Vec<Row>> {
    let statement = tx.prepare_cached(sql).await?;
    Ok(tx.query(&statement, params).await?)
}

/// The record (first column) of the row the query finds.
pub(super) async fn record<T: DeserializeOwned>(tx: &Tx<'_>, sql: &str, params: Params<'_>) -> TxResult<Option<T>> {
    Ok(row(tx, sql, params).await?.map(|row| record_of(&row)).transpose()?)
}

pub(super) fn abort<T>(e: Error) -> TxResult<T> {
    Err(TxError::Domain(e))
}

pub(super) fn email_taken() -> TxError {
    TxError::Domain(Error::Conflict { code: "email_taken", message: "Email is already taken".into() })
}

fn user_not_found(id: UserId) -> TxError {
    TxError::Domain(Error::NotFound(format!("User not found: {id}")))
}

pub(super) fn role_name_taken(name: &str) -> TxError {
    TxError::Domain(Error::Conflict {
        code: "role_name_taken",
        message: format!("A role named '{name}' exists already"),
    })
}

/// The next value of a sequence (see `schema::SEQUENCES`).
pub(super) async fn next_id(tx: &Tx<'_>, sequence: &str) -> TxResult<u64> {
    let row = row(tx, &format!("SELECT nextval('seq_{sequence}')"), &[]).await?;
    Ok(id_from(row.map_or(0, |row| row.get(0)))?)
}

/// The id of the user holding an email key.
pub(super) async fn user_with_email(tx: &Tx<'_>, email_k: &str) -> TxResult<Option<u64>> {
    match row(tx, "SELECT id FROM users WHERE email_key = $1", &[&email_k.as_bytes()]).await? {
        Some(row) => Ok(Some(id_from(row.get(0))?)),
        None => Ok(None),
    }
}

pub(super) async fn user_exists(tx: &Tx<'_>, id: UserId) -> TxResult<bool> {
    Ok(row(tx, "SELECT 1 FROM users WHERE id = $1", &[&db_id(id)?]).await?.is_some())
}

pub(super) async fn require_user(tx: &Tx<'_>, id: UserId) -> TxResult<()> {
    if user_exists(tx, id).await? { Ok(()) } else { Err(user_not_found(id)) }
}

/// Store the user under `user.id`, with the columns the database indexes. With `replace`, the
/// user stored there (which the caller read `FOR UPDATE`) is replaced; without, the id must be
/// free, and an insert racing another under the same id fails on its constraint and runs
/// again. A taken email fails on its constraint either way.
pub(super) async fn put_user(tx: &Tx<'_>, user: &User, replace: bool) -> TxResult<()> {
    let insert = "INSERT INTO users (id, uuid, email_key, active, deleted, record) VALUES ($1, $2, $3, $4, $5, $6)";
    let upsert = "INSERT INTO users (id, uuid, email_key, active, deleted, record) VALUES ($1, $2, $3, $4, $5, $6) \
                  ON CONFLICT (id) DO UPDATE SET uuid = EXCLUDED.uuid, email_key = EXCLUDED.email_key, \
                  active = EXCLUDED.active, deleted = EXCLUDED.deleted, record = EXCLUDED.record";
    let email_k = email_key(&user.email);
    let params: Params =
        &[&db_id(user.id)?, &user.uuid.as_bytes(), &email_k.as_bytes(), &user.active, &user.is_deleted(), &Json(user)];
    exec(tx, if replace { upsert } else { insert }, params).await?;
    Ok(())
}

/// Insert or replace a meta entry; a replaced entry keeps its `created_at`.
pub(super) async fn put_meta(tx: &Tx<'_>, user_id: UserId, key: &str, value: &str, is_public: bool) -> TxResult<()> {
    let id = db_id(user_id)?;
    let at = now();
    let old: Option<MetaEntry> =
        record(tx, "SELECT record FROM user_meta WHERE user_id = $1 AND key = $2 FOR UPDATE", &[&id, &key.as_bytes()])
            .await?;
    let entry = MetaEntry {
        user_id,
        key: key.to_owned(),
        value: value.to_owned(),
        is_public,
        created_at: old.map_or(at, |old| old.created_at),
        updated_at: at,
    };
    write_meta(tx, &entry).await
}

pub(super) async fn write_meta(tx: &Tx<'_>, entry: &MetaEntry) -> TxResult<()> {
    let sql = "INSERT INTO user_meta (user_id, key, value, is_public, record) VALUES ($1, $2, $3, $4, $5) \
               ON CONFLICT (user_id, key) DO UPDATE SET value = EXCLUDED.value, is_public = EXCLUDED.is_public, record = EXCLUDED.record";
    let params: Params =
        &[&db_id(entry.user_id)?, &entry.key.as_bytes(), &entry.value.as_bytes(), &entry.is_public, &Json(entry)];
    exec(tx, sql, params).await?;
    Ok(())
}

pub(super) async fn insert_access_token(tx: &Tx<'_>, d: &AccessTokenDraft) -> TxResult<AccessToken> {
    require_user(tx, d.user_id).await?;
    let token = d.into_token(next_id(tx, "access_tokens").await?, now());
    put_access_token(tx, &token).await?;
    Ok(token)
}

/// Insert or replace an access token by digest.
pub(super) async fn put_access_token(tx: &Tx<'_>, token: &AccessToken) -> TxResult<()> {
    let sql = "INSERT INTO access_tokens (digest, id, user_id, device_token_id, record) VALUES ($1, $2, $3, $4, $5) \
               ON CONFLICT (digest) DO UPDATE SET id = EXCLUDED.id, user_id = EXCLUDED.user_id, \
               device_token_id = EXCLUDED.device_token_id, record = EXCLUDED.record";
    let device = token.device_token_id.map(db_id).transpose()?;
    let params: Params = &[&&token.digest.0[..], &db_id(token.id)?, &db_id(token.user_id)?, &device, &Json(token)];
    exec(tx, sql, params).await?;
    Ok(())
}

/// Insert or replace a login attempt by id.
pub(super) async fn put_login_attempt(tx: &Tx<'_>, attempt: &LoginAttempt) -> TxResult<()> {
    let sql = "INSERT INTO login_attempts (id, ip, user_id, at, ok, wrong_password, record) VALUES ($1, $2, $3, $4, $5, $6, $7) \
               ON CONFLICT (id) DO UPDATE SET ip = EXCLUDED.ip, user_id = EXCLUDED.user_id, at = EXCLUDED.at, \
               ok = EXCLUDED.ok, wrong_password = EXCLUDED.wrong_password, record = EXCLUDED.record";
    let user = attempt.user_id.map(db_id).transpose()?;
    let wrong = attempt.user_id.is_some() && attempt.status == LoginStatus::WrongPass;
    let params: Params = &[
        &db_id(attempt.id)?,
        &attempt.ip.as_bytes(),
        &user,
        &attempt.created_at,
        &attempt.status.is_ok(),
        &wrong,
        &Json(attempt),
    ];
    exec(tx, sql, params).await?;
    Ok(())
}

/// Insert or replace an address by id.
pub(super) async fn put_address(tx: &Tx<'_>, address: &Address) -> TxResult<()> {
    let sql = "INSERT INTO addresses (id, user_id, kind, record) VALUES ($1, $2, $3, $4) \
               ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, kind = EXCLUDED.kind, record = EXCLUDED.record";
    let params: Params = &[&db_id(address.id)?, &db_id(address.user_id)?, &address.kind.as_bytes(), &Json(address)];
    exec(tx, sql, params).await?;
    Ok(())
}

/// Insert or replace an address change request by id.
pub(super) async fn put_change_request(tx: &Tx<'_>, request: &AddressChangeRequest) -> TxResult<()> {
    let sql = "INSERT INTO address_change_requests (id, user_id, record) VALUES ($1, $2, $3) \
               ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, record = EXCLUDED.record";
    exec(tx, sql, &[&db_id(request.id)?, &db_id(request.user_id)?, &Json(request)]).await?;
    Ok(())
}

/// Insert or replace a role by id; the name's owner is checked by the caller.
pub(super) async fn put_role(tx: &Tx<'_>, role: &AdminRole) -> TxResult<()> {
    let sql = "INSERT INTO roles (id, name_key, record) VALUES ($1, $2, $3) \
               ON CONFLICT (id) DO UPDATE SET name_key = EXCLUDED.name_key, record = EXCLUDED.record";
    exec(tx, sql, &[&db_id(role.id)?, &role_name_key(&role.name).as_bytes(), &Json(role)]).await?;
    Ok(())
}

/// The id of the role holding a name (any case).
pub(super) async fn role_with_name(tx: &Tx<'_>, name: &str) -> TxResult<Option<u64>> {
    match row(tx, "SELECT id FROM roles WHERE name_key = $1", &[&role_name_key(name).as_bytes()]).await? {
        Some(row) => Ok(Some(id_from(row.get(0))?)),
        None => Ok(None),
    }
}

/// Replace the roles assigned to a user. Fails with not found for an unknown user and
/// `unknown_role` for a missing role.
pub(super) async fn set_user_roles(tx: &Tx<'_>, user_id: UserId, roles: &[RoleId]) -> TxResult<()> {
    let id = db_id(user_id)?;
    // Two replacements of one user's roles take turns on the user's row.
    if row(tx, "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE", &[&id]).await?.is_none() {
        return Err(user_not_found(user_id));
    }
    let mut ids = roles.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let wanted = ids.iter().map(|r| db_id(*r)).collect::<Result<Vec<i64>, _>>()?;
    let found = rows(tx, "SELECT id FROM roles WHERE id = ANY($1) FOR KEY SHARE", &[&wanted]).await?;
    let found: Vec<i64> = found.iter().map(|row| row.get(0)).collect();
    if let Some(missing) = wanted.iter().find(|r| !found.contains(r)) {
        return abort(Error::invalid("unknown_role", "roles", format!("Role not found: {missing}")));
    }
    exec(tx, "DELETE FROM user_roles WHERE user_id = $1", &[&id]).await?;
    exec(tx, "INSERT INTO user_roles (user_id, role_id) SELECT $1, unnest($2::bigint[])", &[&id, &wanted]).await?;
    Ok(())
}

pub(super) async fn apply_change(
    tx: &Tx<'_>,
    change: &Change,
    applied: &mut Applied,
    sequences: &mut Sequences,
) -> TxResult<()> {
    match change {
        Change::PutUser(user) => {
            let id = db_id(user.id)?;
            let Some(old) = record::<User>(tx, "SELECT record FROM users WHERE id = $1 FOR UPDATE", &[&id]).await?
            else {
                return Err(user_not_found(user.id));
            };
            let new_k = email_key(&user.email);
            if email_key(&old.email) != new_k
                && let Some(owner) = user_with_email(tx, &new_k).await?
                && owner != user.id
            {
                return Err(email_taken());
            }
            put_user(tx, user, true).await?;
        }
        Change::PutMeta { user_id, key, value, is_public } => {
            require_user(tx, *user_id).await?;
            put_meta(tx, *user_id, key, value, *is_public).await?;
        }
        Change::DeleteMeta { user_id, key, value } => {
            let sql = "DELETE FROM user_meta WHERE user_id = $1 AND key = $2 AND ($3::bytea IS NULL OR value = $3)";
            let value = value.as_ref().map(|v| v.as_bytes());
            if exec(tx, sql, &[&db_id(*user_id)?, &key.as_bytes(), &value]).await? > 0 {
                applied.meta_deleted = true;
            }
        }
        Change::DeletePublicMeta { user_id } => {
            if exec(tx, "DELETE FROM user_meta WHERE user_id = $1 AND is_public", &[&db_id(*user_id)?]).await? > 0 {
                applied.meta_deleted = true;
            }
        }
        Change::InsertAccessToken(draft) => {
            let token = insert_access_token(tx, draft).await?;
            applied.created.push(Created::AccessToken(token));
        }
        Change::DeleteAccessToken(digest) => {
            let sql = "DELETE FROM access_tokens WHERE digest = $1 RETURNING record";
            if let Some(row) = row(tx, sql, &[&&digest.0[..]]).await? {
                applied.removed_access_tokens.push(record_of(&row)?);
            }
        }
        Change::PairAccessToken { access, device_token_id } => {
            let sql = "SELECT record FROM access_tokens WHERE digest = $1 FOR UPDATE";
            if let Some(mut token) = record::<AccessToken>(tx, sql, &[&&access.0[..]]).await? {
                token.device_token_id = *device_token_id;
                put_access_token(tx, &token).await?;
            }
        }
        Change::InsertDeviceToken { digest, device_id } => {
            let at = now();
            let device = DeviceToken {
                id: next_id(tx, "device_tokens").await?,
                digest: *digest,
                device_id: device_id.clone(),
                created_at: at,
                last_used_at: Some(at),
            };
            import::put_device_token(tx, &device).await?;
            applied.created.push(Created::DeviceToken(device));
        }
        Change::TouchDeviceToken { digest, at } => {
            let sql = "SELECT record FROM device_tokens WHERE digest = $1 FOR UPDATE";
            if let Some(mut device) = record::<DeviceToken>(tx, sql, &[&&digest.0[..]]).await? {
                device.last_used_at = Some(*at);
                exec(tx, "UPDATE device_tokens SET record = $2 WHERE digest = $1", &[&&digest.0[..], &Json(&device)])
                    .await?;
            }
        }
        Change::InsertLoginAttempt(d) => {
            let attempt = d.into_attempt(next_id(tx, "login_attempts").await?, now());
            put_login_attempt(tx, &attempt).await?;
            applied.created.push(Created::LoginAttempt(attempt));
        }
        Change::DeleteLoginAttemptsOf { user_id } => {
            exec(tx, "DELETE FROM login_attempts WHERE user_id = $1", &[&db_id(*user_id)?]).await?;
        }
        Change::InsertRegistrationAttempt { user_id, email, status, source, ip, user_agent } => {
            let row = RegistrationAttempt {
                id: next_id(tx, "registration_attempts").await?,
                user_id: *user_id,
                email: email.clone(),
                created_at: now(),
                status: *status,
                source: source.clone(),
                ip: ip.clone(),
                user_agent: user_agent.clone(),
            };
            import::put_registration_attempt(tx, &row).await?;
            applied.created.push(Created::Row(row.id));
        }
        Change::InsertPasswordChange { user_id, kind, from_hash, to_hash } => {
            let row = PasswordChange {
                id: next_id(tx, "password_changes").await?,
                user_id: *user_id,
                kind: *kind,
                created_at: now(),
                from_hash: from_hash.clone(),
                to_hash: to_hash.clone(),
            };
            import::put_password_change(tx, &row).await?;
            applied.created.push(Created::Row(row.id));
        }
        Change::InsertApiToken { digest, name, allowed_routes } => {
            let token = ApiToken {
                id: next_id(tx, "api_tokens").await?,
                digest: *digest,
                name: name.clone(),
                allowed_routes: allowed_routes.clone(),
                active: true,
                created_at: now(),
            };
            import::put_api_token(tx, &token).await?;
            applied.created.push(Created::ApiToken(token));
        }
        Change::SetApiTokenActive { id, active } => {
            let sql = "SELECT record FROM api_tokens WHERE id = $1 FOR UPDATE";
            let Some(mut token) = record::<ApiToken>(tx, sql, &[&db_id(*id)?]).await? else {
                return abort(Error::NotFound(format!("API token {id} not found")));
            };
            token.active = *active;
            import::put_api_token(tx, &token).await?;
        }
        Change::RememberIdempotencyKey { scope, key } => {
            import::put_idempotency_key(tx, scope, key, now()).await?;
        }
        Change::InsertAutologinToken { digest, user_id, email, valid_from, valid_to, max_count } => {
            require_user(tx, *user_id).await?;
            let token = AutologinToken {
                id: next_id(tx, "autologin_tokens").await?,
                digest: *digest,
                user_id: *user_id,
                email: email.clone(),
                created_at: now(),
                valid_from: *valid_from,
                valid_to: *valid_to,
                used_count: 0,
                max_count: *max_count,
            };
            import::put_autologin_token(tx, &token).await?;
        }
        Change::UseAutologinToken(digest) => {
            let sql = "SELECT record FROM autologin_tokens WHERE digest = $1 FOR UPDATE";
            let Some(mut token) = record::<AutologinToken>(tx, sql, &[&&digest.0[..]]).await? else {
                return abort(Error::NotFound("Invalid token".into()));
            };
            // Checked under the row lock, so two sign-ins racing for the last use (on any
            // hosts) cannot both win.
            if token.used_count >= token.max_count {
                return abort(Error::Conflict {
                    code: "token_count_expired",
                    message: "Token reached max users count".into(),
                });
            }
            token.used_count += 1;
            import::put_autologin_token(tx, &token).await?;
        }
        Change::DeleteAutologinTokensOf { user_id } => {
            exec(tx, "DELETE FROM autologin_tokens WHERE user_id = $1", &[&db_id(*user_id)?]).await?;
        }
        Change::DeleteAutologinToken(digest) => {
            exec(tx, "DELETE FROM autologin_tokens WHERE digest = $1", &[&&digest.0[..]]).await?;
        }
        Change::InsertConnectedAccount { user_id, kind, external_id, email } => {
            let sql = "SELECT 1 FROM connected_accounts WHERE kind = $1 AND external_id = $2";
            if row(tx, sql, &[&kind.as_bytes(), &external_id.as_bytes()]).await?.is_none() {
                require_user(tx, *user_id).await?;
                let account = ConnectedAccount {
                    id: next_id(tx, "connected_accounts").await?,
                    user_id: *user_id,
                    kind: kind.clone(),
                    external_id: external_id.clone(),
                    email: email.clone(),
                    created_at: now(),
                };
                import::put_connected_account(tx, &account).await?;
            }
        }
        Change::DeleteConnectedAccountsOf { user_id } => {
            exec(tx, "DELETE FROM connected_accounts WHERE user_id = $1", &[&db_id(*user_id)?]).await?;
        }
        Change::PutPluginKv { plugin, key, value } => import::put_plugin_kv(tx, plugin, key, value).await?,
        Change::DeletePluginKv { plugin, key } => {
            exec(tx, "DELETE FROM plugin_kv WHERE plugin = $1 AND key = $2", &[&plugin.as_bytes(), &key.as_bytes()])
                .await?;
        }
        Change::InsertAddressType(kind) => {
            if row(tx, "SELECT 1 FROM address_types WHERE key = $1", &[&kind.key.as_bytes()]).await?.is_some() {
                return abort(Error::Conflict {
                    code: "address_type_exists",
                    message: format!("Address type '{}' already exists", kind.key),
                });
            }
            import::put_address_type(tx, kind).await?;
        }
        Change::PutAddress(address) => {
            require_user(tx, address.user_id).await?;
            put_address(tx, address).await?;
        }
        Change::PutAddressChangeRequest { request, if_status } => {
            if let Some(expected) = if_status {
                let sql = "SELECT record FROM address_change_requests WHERE id = $1 FOR UPDATE";
                let current = record::<AddressChangeRequest>(tx, sql, &[&db_id(request.id)?]).await?;
                if current.map(|c| c.status) != Some(*expected) {
                    return abort(Error::Conflict {
                        code: "change_request_changed",
                        message: format!("Address change request {} was changed meanwhile", request.id),
                    });
                }
            }
            put_change_request(tx, request).await?;
        }
        Change::InsertGroup { name, sorting } => {
            let at = now();
            let group = Group {
                id: next_id(tx, "groups").await?,
                name: name.clone(),
                sorting: *sorting,
                created_at: at,
                updated_at: at,
            };
            import::put_group(tx, &group).await?;
            applied.created.push(Created::Group(group));
        }
        Change::AddToGroup { user_id, group_id } => {
            require_user(tx, *user_id).await?;
            // The key share lock keeps a concurrent delete of the group waiting until this
            // membership is in, and then ends it with the group.
            let group = db_id(*group_id)?;
            if row(tx, "SELECT 1 FROM groups WHERE id = $1 FOR KEY SHARE", &[&group]).await?.is_none() {
                return abort(Error::NotFound(format!("Group not found: {group_id}")));
            }
            let sql = "INSERT INTO memberships (user_id, group_id, since) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
            exec(tx, sql, &[&db_id(*user_id)?, &group, &now()]).await?;
        }
        Change::RemoveFromGroup { user_id, group_id } => {
            let sql = "DELETE FROM memberships WHERE user_id = $1 AND group_id = $2";
            exec(tx, sql, &[&db_id(*user_id)?, &db_id(*group_id)?]).await?;
        }
        Change::UpdateGroup { id, name, sorting } => {
            let sql = "SELECT record FROM groups WHERE id = $1 FOR UPDATE";
            let Some(old) = record::<Group>(tx, sql, &[&db_id(*id)?]).await? else {
                return abort(Error::NotFound(format!("Group not found: {id}")));
            };
            let group = Group { name: name.clone(), sorting: *sorting, updated_at: now(), ..old };
            import::put_group(tx, &group).await?;
        }
        Change::DeleteGroup(id) => {
            // Its memberships go with it (ON DELETE CASCADE).
            if exec(tx, "DELETE FROM groups WHERE id = $1", &[&db_id(*id)?]).await? == 0 {
                return abort(Error::NotFound(format!("Group not found: {id}")));
            }
        }
        Change::InsertRole { name, permissions } => {
            if role_with_name(tx, name).await?.is_some() {
                return Err(role_name_taken(name));
            }
            let at = now();
            let role = AdminRole {
                id: next_id(tx, "roles").await?,
                name: name.clone(),
                permissions: permissions.clone(),
                created_at: at,
                updated_at: at,
            };
            put_role(tx, &role).await?;
            applied.created.push(Created::Role(role));
        }
        Change::UpdateRole { id, name, permissions } => {
            let sql = "SELECT record FROM roles WHERE id = $1 FOR UPDATE";
            let Some(old) = record::<AdminRole>(tx, sql, &[&db_id(*id)?]).await? else {
                return abort(Error::NotFound(format!("Role not found: {id}")));
            };
            if role_name_key(&old.name) != role_name_key(name)
                && role_with_name(tx, name).await?.is_some_and(|owner| owner != *id)
            {
                return Err(role_name_taken(name));
            }
            let role = AdminRole { name: name.clone(), permissions: permissions.clone(), updated_at: now(), ..old };
            put_role(tx, &role).await?;
        }
        Change::DeleteRole(id) => {
            // Its assignments go with it (ON DELETE CASCADE).
            if exec(tx, "DELETE FROM roles WHERE id = $1", &[&db_id(*id)?]).await? == 0 {
                return abort(Error::NotFound(format!("Role not found: {id}")));
            }
        }
        Change::SetUserRoles { user_id, roles } => set_user_roles(tx, *user_id, roles).await?,
        Change::InsertUser(user) => {
            if user_exists(tx, user.id).await? {
                return abort(Error::Conflict { code: "user_exists", message: format!("User {} exists", user.id) });
            }
            if user_with_email(tx, &email_key(&user.email)).await?.is_some() {
                return Err(email_taken());
            }
            put_user(tx, user, false).await?;
            sequences.advance("users", user.id);
        }
        Change::Import(record) => import::import(tx, record, sequences).await?,
    }
    Ok(())
}
