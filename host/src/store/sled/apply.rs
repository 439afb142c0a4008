//! Applying one [`Change`] inside the write transaction: every record kind's write, with its
//! secondary indexes, in one place.

use super::keys::*;
use super::*;

pub(super) fn insert_access_token(t: &Trees<TransactionalTree>, d: &AccessTokenDraft) -> TxResult<AccessToken> {
    let token = d.into_token(next_id(&t.system, "access_tokens")?, now());
    t.access_tokens.insert(&token.digest.0, to_json(&token)?)?;
    t.access_by_user.insert(concat(&[&be(token.user_id), &be(token.id)]), &token.digest.0)?;
    if let Some(device) = token.device_token_id {
        t.access_by_device.insert(concat(&[&be(device), &be(token.id)]), &token.digest.0)?;
    }
    Ok(token)
}

pub(super) fn put_meta(
    t: &Trees<TransactionalTree>,
    user_id: UserId,
    key: &str,
    value: &str,
    is_public: bool,
) -> TxResult<()> {
    let k = meta_key(user_id, key);
    let at = now();
    let created_at = match t.meta.get(&k)? {
        Some(old) => {
            let old: MetaEntry = tx_from_json(&old)?;
            t.meta_by_key.remove(meta_index_key(key, &old.value, user_id))?;
            old.created_at
        }
        None => at,
    };
    let entry =
        MetaEntry { user_id, key: key.to_owned(), value: value.to_owned(), is_public, created_at, updated_at: at };
    t.meta.insert(k, to_json(&entry)?)?;
    t.meta_by_key.insert(meta_index_key(key, value, user_id), &[])?;
    Ok(())
}

pub(super) fn delete_meta(t: &Trees<TransactionalTree>, entry: &MetaEntry) -> TxResult<()> {
    t.meta.remove(meta_key(entry.user_id, &entry.key))?;
    t.meta_by_key.remove(meta_index_key(&entry.key, &entry.value, entry.user_id))?;
    Ok(())
}

pub(super) fn remove_access_token(t: &Trees<TransactionalTree>, digest: &TokenDigest) -> TxResult<Option<AccessToken>> {
    let Some(raw) = t.access_tokens.remove(&digest.0)? else {
        return Ok(None);
    };
    let token: AccessToken = tx_from_json(&raw)?;
    t.access_by_user.remove(concat(&[&be(token.user_id), &be(token.id)]))?;
    if let Some(device) = token.device_token_id {
        t.access_by_device.remove(concat(&[&be(device), &be(token.id)]))?;
    }
    Ok(Some(token))
}

pub(super) fn remove_group_members(
    t: &Trees<TransactionalTree>,
    group_id: GroupId,
    members: &[UserId],
) -> TxResult<()> {
    for user_id in members {
        t.user_groups.remove(concat(&[&be(*user_id), &be(group_id)]))?;
        t.group_users.remove(concat(&[&be(group_id), &be(*user_id)]))?;
    }
    Ok(())
}

pub(super) fn user_role_ids(t: &Trees<TransactionalTree>, user_id: UserId) -> TxResult<Vec<RoleId>> {
    match t.user_roles.get(be(user_id))? {
        Some(v) => tx_from_json(&v),
        None => Ok(Vec::new()),
    }
}

/// Store a login attempt with its by-IP, by-user and wrong-password index entries.
pub(super) fn put_login_attempt(t: &Trees<TransactionalTree>, attempt: &LoginAttempt) -> TxResult<()> {
    let mark = mark_bytes(attempt.created_at, attempt.status.is_ok());
    t.login_attempts.insert(&be(attempt.id), to_json(attempt)?)?;
    t.attempts_by_ip.insert(concat(&[&lp(&attempt.ip), &be(attempt.id)]), &mark)?;
    if let Some(user) = attempt.user_id {
        t.attempts_by_user.insert(concat(&[&be(user), &be(attempt.id)]), &mark)?;
        if attempt.status == crate::domain::attempt::LoginStatus::WrongPass {
            t.wrong_pass_by_user.insert(concat(&[&be(user), &millis_key(attempt.created_at), &be(attempt.id)]), &[])?;
        }
    }
    Ok(())
}

/// Insert or replace an address with its by-user and by-user-and-type index entries.
pub(super) fn put_address(t: &Trees<TransactionalTree>, address: &Address) -> TxResult<()> {
    if let Some(old) = t.addresses.get(be(address.id))? {
        let old: Address = tx_from_json(&old)?;
        t.addresses_by_user.remove(concat(&[&be(old.user_id), &be(old.id)]))?;
        t.addresses_by_user_type.remove(address_type_index_key(old.user_id, &old.kind, old.id))?;
    }
    t.addresses.insert(&be(address.id), to_json(address)?)?;
    t.addresses_by_user.insert(concat(&[&be(address.user_id), &be(address.id)]), &[])?;
    t.addresses_by_user_type.insert(address_type_index_key(address.user_id, &address.kind, address.id), &[])?;
    Ok(())
}

pub(super) fn put_user_role_ids(t: &Trees<TransactionalTree>, user_id: UserId, ids: &[RoleId]) -> TxResult<()> {
    if ids.is_empty() {
        t.user_roles.remove(&be(user_id))?;
    } else {
        t.user_roles.insert(&be(user_id), to_json(&ids)?)?;
    }
    Ok(())
}

/// Replace the roles assigned to a user, both indexes following. Fails with not found for an
/// unknown user and `unknown_role` for a missing role.
pub(super) fn set_user_roles(t: &Trees<TransactionalTree>, user_id: UserId, roles: &[RoleId]) -> TxResult<()> {
    if t.users.get(be(user_id))?.is_none() {
        return abort(Error::NotFound(format!("User not found: {user_id}")));
    }
    let mut ids = roles.to_vec();
    ids.sort_unstable();
    ids.dedup();
    for id in &ids {
        if t.roles.get(be(*id))?.is_none() {
            return abort(Error::invalid("unknown_role", "roles", format!("Role not found: {id}")));
        }
    }
    for old in user_role_ids(t, user_id)? {
        t.role_users.remove(concat(&[&be(old), &be(user_id)]))?;
    }
    for id in &ids {
        t.role_users.insert(concat(&[&be(*id), &be(user_id)]), &[])?;
    }
    put_user_role_ids(t, user_id, &ids)
}

pub(super) fn unassign_role(t: &Trees<TransactionalTree>, role_id: RoleId, holders: &[UserId]) -> TxResult<()> {
    for user_id in holders {
        let mut ids = user_role_ids(t, *user_id)?;
        ids.retain(|id| *id != role_id);
        put_user_role_ids(t, *user_id, &ids)?;
        t.role_users.remove(concat(&[&be(role_id), &be(*user_id)]))?;
    }
    Ok(())
}

pub(super) fn role_name_taken(name: &str) -> Error {
    Error::Conflict { code: "role_name_taken", message: format!("A role named '{name}' exists already") }
}

pub(super) fn apply_change(
    t: &Trees<TransactionalTree>,
    change: &Change,
    pre: &Prefetched,
    applied: &mut Applied,
) -> TxResult<()> {
    match change {
        Change::PutUser(user) => {
            let Some(old) = t.users.get(be(user.id))? else {
                return abort(Error::NotFound(format!("User not found: {}", user.id)));
            };
            let old: User = tx_from_json(&old)?;
            let (old_k, new_k) = (email_key(&old.email), email_key(&user.email));
            if old_k != new_k {
                if let Some(owner) = t.users_by_email.get(new_k.as_bytes())?
                    && owner.as_ref() != be(user.id)
                {
                    return abort(Error::Conflict { code: "email_taken", message: "Email is already taken".into() });
                }
                t.users_by_email.remove(old_k.as_bytes())?;
                t.users_by_email.insert(new_k.as_bytes(), &be(user.id))?;
            }
            count_user(t, Some(&old), user)?;
            t.users.insert(&be(user.id), to_json(user.as_ref())?)?;
        }
        Change::PutMeta { user_id, key, value, is_public } => {
            if t.users.get(be(*user_id))?.is_none() {
                return abort(Error::NotFound(format!("User not found: {user_id}")));
            }
            put_meta(t, *user_id, key, value, *is_public)?;
        }
        Change::DeleteMeta { user_id, key, value } => {
            if let Some(raw) = t.meta.get(meta_key(*user_id, key))? {
                let entry: MetaEntry = tx_from_json(&raw)?;
                if value.as_ref().is_none_or(|v| *v == entry.value) {
                    delete_meta(t, &entry)?;
                    applied.meta_deleted = true;
                }
            }
        }
        Change::DeletePublicMeta { user_id } => {
            for entry in pre.public_meta.iter().filter(|m| m.user_id == *user_id) {
                delete_meta(t, entry)?;
                applied.meta_deleted = true;
            }
        }
        Change::InsertAccessToken(draft) => {
            let token = insert_access_token(t, draft)?;
            applied.created.push(Created::AccessToken(token));
        }
        Change::DeleteAccessToken(digest) => {
            if let Some(token) = remove_access_token(t, digest)? {
                applied.removed_access_tokens.push(token);
            }
        }
        Change::PairAccessToken { access, device_token_id } => {
            let Some(raw) = t.access_tokens.get(access.0)? else {
                return Ok(());
            };
            let mut token: AccessToken = tx_from_json(&raw)?;
            if let Some(old) = token.device_token_id {
                t.access_by_device.remove(concat(&[&be(old), &be(token.id)]))?;
            }
            token.device_token_id = *device_token_id;
            if let Some(device) = device_token_id {
                t.access_by_device.insert(concat(&[&be(*device), &be(token.id)]), &token.digest.0)?;
            }
            t.access_tokens.insert(&token.digest.0, to_json(&token)?)?;
        }
        Change::InsertDeviceToken { digest, device_id } => {
            let at = now();
            let device = DeviceToken {
                id: next_id(&t.system, "device_tokens")?,
                digest: *digest,
                device_id: device_id.clone(),
                created_at: at,
                last_used_at: Some(at),
            };
            t.device_tokens.insert(&digest.0, to_json(&device)?)?;
            t.device_by_id.insert(&be(device.id), &digest.0)?;
            applied.created.push(Created::DeviceToken(device));
        }
        Change::TouchDeviceToken { digest, at } => {
            if let Some(raw) = t.device_tokens.get(digest.0)? {
                let mut device: DeviceToken = tx_from_json(&raw)?;
                device.last_used_at = Some(*at);
                t.device_tokens.insert(&digest.0, to_json(&device)?)?;
            }
        }
        Change::InsertLoginAttempt(d) => {
            let attempt = d.into_attempt(next_id(&t.system, "login_attempts")?, now());
            put_login_attempt(t, &attempt)?;
            applied.created.push(Created::LoginAttempt(attempt));
        }
        Change::DeleteLoginAttemptsOf { user_id } => {
            for a in pre.attempts.iter().filter(|a| a.user_id == Some(*user_id)) {
                t.login_attempts.remove(&be(a.id))?;
                t.attempts_by_ip.remove(concat(&[&lp(&a.ip), &be(a.id)]))?;
                t.attempts_by_user.remove(concat(&[&be(*user_id), &be(a.id)]))?;
                t.wrong_pass_by_user.remove(concat(&[&be(*user_id), &millis_key(a.created_at), &be(a.id)]))?;
            }
        }
        Change::InsertRegistrationAttempt { user_id, email, status, source, ip, user_agent } => {
            let row = RegistrationAttempt {
                id: next_id(&t.system, "registration_attempts")?,
                user_id: *user_id,
                email: email.clone(),
                created_at: now(),
                status: *status,
                source: source.clone(),
                ip: ip.clone(),
                user_agent: user_agent.clone(),
            };
            t.registration_attempts.insert(&be(row.id), to_json(&row)?)?;
            applied.created.push(Created::Row(row.id));
        }
        Change::InsertPasswordChange { user_id, kind, from_hash, to_hash } => {
            let row = PasswordChange {
                id: next_id(&t.system, "password_changes")?,
                user_id: *user_id,
                kind: *kind,
                created_at: now(),
                from_hash: from_hash.clone(),
                to_hash: to_hash.clone(),
            };
            t.password_changes.insert(&be(row.id), to_json(&row)?)?;
            applied.created.push(Created::Row(row.id));
        }
        Change::InsertApiToken { digest, name, allowed_routes } => {
            let token = ApiToken {
                id: next_id(&t.system, "api_tokens")?,
                digest: *digest,
                name: name.clone(),
                allowed_routes: allowed_routes.clone(),
                active: true,
                created_at: now(),
            };
            t.api_tokens.insert(&digest.0, to_json(&token)?)?;
            t.api_tokens_by_id.insert(&be(token.id), &digest.0)?;
            applied.created.push(Created::ApiToken(token));
        }
        Change::SetApiTokenActive { id, active } => {
            let Some(digest) = t.api_tokens_by_id.get(be(*id))? else {
                return abort(Error::NotFound(format!("API token {id} not found")));
            };
            if let Some(raw) = t.api_tokens.get(&digest)? {
                let mut token: ApiToken = tx_from_json(&raw)?;
                token.active = *active;
                t.api_tokens.insert(&digest, to_json(&token)?)?;
            }
        }
        Change::InsertAutologinToken { digest, user_id, email, valid_from, valid_to, max_count } => {
            let token = AutologinToken {
                id: next_id(&t.system, "autologin_tokens")?,
                digest: *digest,
                user_id: *user_id,
                email: email.clone(),
                created_at: now(),
                valid_from: *valid_from,
                valid_to: *valid_to,
                used_count: 0,
                max_count: *max_count,
            };
            t.autologin_tokens.insert(&digest.0, to_json(&token)?)?;
            t.autologin_by_user.insert(concat(&[&be(*user_id), &be(token.id)]), &digest.0)?;
        }
        Change::UseAutologinToken(digest) => {
            let Some(raw) = t.autologin_tokens.get(digest.0)? else {
                return abort(Error::NotFound("Invalid token".into()));
            };
            let mut token: AutologinToken = tx_from_json(&raw)?;
            // Checked inside the transaction, so two sign-ins racing for the last use cannot
            // both win.
            if token.used_count >= token.max_count {
                return abort(Error::Conflict {
                    code: "token_count_expired",
                    message: "Token reached max users count".into(),
                });
            }
            token.used_count += 1;
            t.autologin_tokens.insert(&digest.0, to_json(&token)?)?;
        }
        Change::DeleteAutologinToken(digest) => {
            if let Some(raw) = t.autologin_tokens.remove(&digest.0)? {
                let token: AutologinToken = tx_from_json(&raw)?;
                t.autologin_by_user.remove(concat(&[&be(token.user_id), &be(token.id)]))?;
            }
        }
        Change::DeleteAutologinTokensOf { user_id } => {
            for token in pre.autologin.iter().filter(|a| a.user_id == *user_id) {
                t.autologin_tokens.remove(&token.digest.0)?;
                t.autologin_by_user.remove(concat(&[&be(*user_id), &be(token.id)]))?;
            }
        }
        Change::InsertConnectedAccount { user_id, kind, external_id, email } => {
            let key = concat(&[&lp(kind), external_id.as_bytes()]);
            if t.connected_accounts.get(&key)?.is_none() {
                let account = ConnectedAccount {
                    id: next_id(&t.system, "connected_accounts")?,
                    user_id: *user_id,
                    kind: kind.clone(),
                    external_id: external_id.clone(),
                    email: email.clone(),
                    created_at: now(),
                };
                t.connected_accounts.insert(key.as_slice(), to_json(&account)?)?;
                t.connected_by_user.insert(concat(&[&be(*user_id), &be(account.id)]), key)?;
            }
        }
        Change::DeleteConnectedAccountsOf { user_id } => {
            for account in pre.connected.iter().filter(|a| a.user_id == *user_id) {
                t.connected_accounts.remove(concat(&[&lp(&account.kind), account.external_id.as_bytes()]))?;
                t.connected_by_user.remove(concat(&[&be(*user_id), &be(account.id)]))?;
            }
        }
        Change::PutPluginKv { plugin, key, value } => {
            t.plugin_kv.insert(concat(&[&lp(plugin), key.as_bytes()]), value.as_slice())?;
        }
        Change::DeletePluginKv { plugin, key } => {
            t.plugin_kv.remove(concat(&[&lp(plugin), key.as_bytes()]))?;
        }
        Change::RememberIdempotencyKey { scope, key } => {
            t.idempotency.insert(concat(&[scope.as_bytes(), &[0], key.as_bytes()]), &millis_key(now()))?;
        }
        Change::InsertAddressType(kind) => {
            if t.address_types.get(kind.key.as_bytes())?.is_some() {
                return abort(Error::Conflict {
                    code: "address_type_exists",
                    message: format!("Address type '{}' already exists", kind.key),
                });
            }
            t.address_types.insert(kind.key.as_bytes(), to_json(kind)?)?;
        }
        Change::PutAddress(address) => {
            if t.users.get(be(address.user_id))?.is_none() {
                return abort(Error::NotFound(format!("User not found: {}", address.user_id)));
            }
            put_address(t, address)?;
        }
        Change::PutAddressChangeRequest { request, if_status } => {
            if let Some(expected) = if_status {
                let current = match t.address_change_requests.get(be(request.id))? {
                    Some(raw) => Some(tx_from_json::<AddressChangeRequest>(&raw)?.status),
                    None => None,
                };
                if current != Some(*expected) {
                    return abort(Error::Conflict {
                        code: "change_request_changed",
                        message: format!("Address change request {} was changed meanwhile", request.id),
                    });
                }
            }
            t.address_change_requests.insert(&be(request.id), to_json(request.as_ref())?)?;
        }
        Change::InsertGroup { name, sorting } => {
            let at = now();
            let group = Group {
                id: next_id(&t.system, "groups")?,
                name: name.clone(),
                sorting: *sorting,
                created_at: at,
                updated_at: at,
            };
            t.groups.insert(&be(group.id), to_json(&group)?)?;
            applied.created.push(Created::Group(group));
        }
        Change::AddToGroup { user_id, group_id } => {
            if t.users.get(be(*user_id))?.is_none() {
                return abort(Error::NotFound(format!("User not found: {user_id}")));
            }
            if t.groups.get(be(*group_id))?.is_none() {
                return abort(Error::NotFound(format!("Group not found: {group_id}")));
            }
            let member = concat(&[&be(*user_id), &be(*group_id)]);
            if t.user_groups.get(&member)?.is_none() {
                t.user_groups.insert(member, &millis_key(now()))?;
                t.group_users.insert(concat(&[&be(*group_id), &be(*user_id)]), &[])?;
            }
        }
        Change::RemoveFromGroup { user_id, group_id } => {
            t.user_groups.remove(concat(&[&be(*user_id), &be(*group_id)]))?;
            t.group_users.remove(concat(&[&be(*group_id), &be(*user_id)]))?;
        }
        Change::UpdateGroup { id, name, sorting } => {
            let Some(old) = t.groups.get(be(*id))? else {
                return abort(Error::NotFound(format!("Group not found: {id}")));
            };
            let old: Group = tx_from_json(&old)?;
            let group = Group { name: name.clone(), sorting: *sorting, updated_at: now(), ..old };
            t.groups.insert(&be(*id), to_json(&group)?)?;
        }
        Change::DeleteGroup(id) => {
            if t.groups.remove(&be(*id))?.is_none() {
                return abort(Error::NotFound(format!("Group not found: {id}")));
            }
            for (group_id, members) in pre.group_members.iter().filter(|(g, _)| g == id) {
                remove_group_members(t, *group_id, members)?;
            }
        }
        Change::InsertRole { name, permissions } => {
            let key = role_name_key(name);
            if t.roles_by_name.get(key.as_bytes())?.is_some() {
                return abort(role_name_taken(name));
            }
            let at = now();
            let role = AdminRole {
                id: next_id(&t.system, "roles")?,
                name: name.clone(),
                permissions: permissions.clone(),
                created_at: at,
                updated_at: at,
            };
            t.roles.insert(&be(role.id), to_json(&role)?)?;
            t.roles_by_name.insert(key.as_bytes(), &be(role.id))?;
            applied.created.push(Created::Role(role));
        }
        Change::UpdateRole { id, name, permissions } => {
            let Some(old) = t.roles.get(be(*id))? else {
                return abort(Error::NotFound(format!("Role not found: {id}")));
            };
            let old: AdminRole = tx_from_json(&old)?;
            let (old_key, new_key) = (role_name_key(&old.name), role_name_key(name));
            if old_key != new_key {
                if t.roles_by_name.get(new_key.as_bytes())?.is_some() {
                    return abort(role_name_taken(name));
                }
                t.roles_by_name.remove(old_key.as_bytes())?;
                t.roles_by_name.insert(new_key.as_bytes(), &be(*id))?;
            }
            let role = AdminRole { name: name.clone(), permissions: permissions.clone(), updated_at: now(), ..old };
            t.roles.insert(&be(*id), to_json(&role)?)?;
        }
        Change::DeleteRole(id) => {
            let Some(old) = t.roles.remove(&be(*id))? else {
                return abort(Error::NotFound(format!("Role not found: {id}")));
            };
            let old: AdminRole = tx_from_json(&old)?;
            t.roles_by_name.remove(role_name_key(&old.name).as_bytes())?;
            for (role_id, holders) in pre.role_holders.iter().filter(|(r, _)| r == id) {
                unassign_role(t, *role_id, holders)?;
            }
        }
        Change::SetUserRoles { user_id, roles } => set_user_roles(t, *user_id, roles)?,
        Change::InsertUser(user) => {
            if t.users.get(be(user.id))?.is_some() {
                return abort(Error::Conflict { code: "user_exists", message: format!("User {} exists", user.id) });
            }
            let email_k = email_key(&user.email);
            if t.users_by_email.get(email_k.as_bytes())?.is_some() {
                return abort(Error::Conflict { code: "email_taken", message: "Email is already taken".into() });
            }
            let seq = b"seq/users";
            let current = match t.system.get(seq)? {
                Some(v) => id_of(&v).map_err(ConflictableTransactionError::Abort)?,
                None => 0,
            };
            if user.id > current {
                t.system.insert(seq, &be(user.id))?;
            }
            count_user(t, None, user)?;
            t.users.insert(&be(user.id), to_json(user.as_ref())?)?;
            t.users_by_email.insert(email_k.as_bytes(), &be(user.id))?;
            t.users_by_uuid.insert(user.uuid.as_bytes(), &be(user.id))?;
        }
        Change::Import(record) => super::import::import(t, record)?,
    }
    Ok(())
}
