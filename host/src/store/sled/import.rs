//! Writing [`Imported`] records: each under the id (or digest) it had in the system it came
//! from, replacing what an earlier import stored there, indexes included, and moving the id
//! sequence past it. Ordinary writes that create records live in `apply.rs`.

use super::keys::*;
use super::*;
use crate::store::Imported;

/// Move a sequence so that the next id it hands out is above `id`.
fn advance_sequence(system: &TransactionalTree, kind: &str, id: u64) -> TxResult<()> {
    let key = format!("seq/{kind}");
    let current = match system.get(key.as_bytes())? {
        Some(v) => id_of(&v).map_err(ConflictableTransactionError::Abort)?,
        None => 0,
    };
    if id > current {
        system.insert(key.as_bytes(), &be(id))?;
    }
    Ok(())
}

fn taken(code: &'static str, message: String) -> ConflictableTransactionError<Error> {
    ConflictableTransactionError::Abort(Error::Conflict { code, message })
}

fn require_user(t: &Trees<TransactionalTree>, user_id: UserId) -> TxResult<()> {
    if t.users.get(be(user_id))?.is_none() {
        return abort(Error::NotFound(format!("User not found: {user_id}")));
    }
    Ok(())
}

pub(super) fn import(t: &Trees<TransactionalTree>, record: &Imported) -> TxResult<()> {
    match record {
        Imported::User(user) => import_user(t, user),
        Imported::Meta(entry) => {
            require_user(t, entry.user_id)?;
            let k = meta_key(entry.user_id, &entry.key);
            if let Some(old) = t.meta.get(&k)? {
                let old: MetaEntry = tx_from_json(&old)?;
                t.meta_by_key.remove(meta_index_key(&old.key, &old.value, old.user_id))?;
            }
            t.meta.insert(k, to_json(entry)?)?;
            t.meta_by_key.insert(meta_index_key(&entry.key, &entry.value, entry.user_id), &[])?;
            Ok(())
        }
        Imported::AccessToken(token) => {
            require_user(t, token.user_id)?;
            remove_access_token(t, &token.digest)?;
            t.access_tokens.insert(&token.digest.0, to_json(token)?)?;
            t.access_by_user.insert(concat(&[&be(token.user_id), &be(token.id)]), &token.digest.0)?;
            if let Some(device) = token.device_token_id {
                t.access_by_device.insert(concat(&[&be(device), &be(token.id)]), &token.digest.0)?;
            }
            advance_sequence(&t.system, "access_tokens", token.id)
        }
        Imported::DeviceToken(device) => {
            if let Some(other) = t.device_by_id.get(be(device.id))?
                && other.as_ref() != device.digest.0
            {
                return Err(taken("device_token_exists", format!("device token {} here is another token", device.id)));
            }
            if let Some(old) = t.device_tokens.get(device.digest.0)? {
                let old: DeviceToken = tx_from_json(&old)?;
                if old.id != device.id {
                    t.device_by_id.remove(&be(old.id))?;
                }
            }
            t.device_tokens.insert(&device.digest.0, to_json(device)?)?;
            t.device_by_id.insert(&be(device.id), &device.digest.0)?;
            advance_sequence(&t.system, "device_tokens", device.id)
        }
        Imported::AutologinToken(token) => {
            require_user(t, token.user_id)?;
            if let Some(old) = t.autologin_tokens.get(token.digest.0)? {
                let old: AutologinToken = tx_from_json(&old)?;
                t.autologin_by_user.remove(concat(&[&be(old.user_id), &be(old.id)]))?;
            }
            t.autologin_tokens.insert(&token.digest.0, to_json(token)?)?;
            t.autologin_by_user.insert(concat(&[&be(token.user_id), &be(token.id)]), &token.digest.0)?;
            advance_sequence(&t.system, "autologin_tokens", token.id)
        }
        Imported::ConnectedAccount(account) => {
            require_user(t, account.user_id)?;
            let key = concat(&[&lp(&account.kind), account.external_id.as_bytes()]);
            if let Some(old) = t.connected_accounts.get(&key)? {
                let old: ConnectedAccount = tx_from_json(&old)?;
                t.connected_by_user.remove(concat(&[&be(old.user_id), &be(old.id)]))?;
            }
            t.connected_accounts.insert(key.as_slice(), to_json(account)?)?;
            t.connected_by_user.insert(concat(&[&be(account.user_id), &be(account.id)]), key)?;
            advance_sequence(&t.system, "connected_accounts", account.id)
        }
        Imported::LoginAttempt(attempt) => {
            if let Some(old) = t.login_attempts.get(be(attempt.id))? {
                let old: LoginAttempt = tx_from_json(&old)?;
                t.attempts_by_ip.remove(concat(&[&lp(&old.ip), &be(old.id)]))?;
                if let Some(user) = old.user_id {
                    t.attempts_by_user.remove(concat(&[&be(user), &be(old.id)]))?;
                    t.wrong_pass_by_user.remove(concat(&[&be(user), &millis_key(old.created_at), &be(old.id)]))?;
                }
            }
            put_login_attempt(t, attempt)?;
            advance_sequence(&t.system, "login_attempts", attempt.id)
        }
        Imported::PasswordChange(row) => {
            t.password_changes.insert(&be(row.id), to_json(row)?)?;
            advance_sequence(&t.system, "password_changes", row.id)
        }
        Imported::ApiToken(token) => {
            if let Some(other) = t.api_tokens_by_id.get(be(token.id))?
                && other.as_ref() != token.digest.0
            {
                return Err(taken("api_token_exists", format!("API token {} here is another token", token.id)));
            }
            if let Some(old) = t.api_tokens.get(token.digest.0)? {
                let old: ApiToken = tx_from_json(&old)?;
                if old.id != token.id {
                    t.api_tokens_by_id.remove(&be(old.id))?;
                }
            }
            t.api_tokens.insert(&token.digest.0, to_json(token)?)?;
            t.api_tokens_by_id.insert(&be(token.id), &token.digest.0)?;
            advance_sequence(&t.system, "api_tokens", token.id)
        }
        Imported::Group(group) => {
            t.groups.insert(&be(group.id), to_json(group)?)?;
            advance_sequence(&t.system, "groups", group.id)
        }
        Imported::Membership { user_id, group_id, since } => {
            require_user(t, *user_id)?;
            if t.groups.get(be(*group_id))?.is_none() {
                return abort(Error::NotFound(format!("Group not found: {group_id}")));
            }
            t.user_groups.insert(concat(&[&be(*user_id), &be(*group_id)]), &millis_key(*since))?;
            t.group_users.insert(concat(&[&be(*group_id), &be(*user_id)]), &[])?;
            Ok(())
        }
        Imported::AddressType(kind) => {
            t.address_types.insert(kind.key.as_bytes(), to_json(kind)?)?;
            Ok(())
        }
        Imported::Address(address) => {
            require_user(t, address.user_id)?;
            put_address(t, address)?;
            advance_sequence(&t.system, sequence_name(IdSequence::Address), address.id)
        }
        Imported::AddressChangeRequest(request) => {
            t.address_change_requests.insert(&be(request.id), to_json(request.as_ref())?)?;
            advance_sequence(&t.system, sequence_name(IdSequence::AddressChangeRequest), request.id)
        }
        Imported::Role(role) => {
            let name_k = role_name_key(&role.name);
            if let Some(owner) = t.roles_by_name.get(name_k.as_bytes())?
                && owner.as_ref() != be(role.id)
            {
                return abort(role_name_taken(&role.name));
            }
            if let Some(old) = t.roles.get(be(role.id))? {
                let old: AdminRole = tx_from_json(&old)?;
                t.roles_by_name.remove(role_name_key(&old.name).as_bytes())?;
            }
            t.roles.insert(&be(role.id), to_json(role)?)?;
            t.roles_by_name.insert(name_k.as_bytes(), &be(role.id))?;
            advance_sequence(&t.system, "roles", role.id)
        }
        Imported::UserRoles { user_id, roles } => set_user_roles(t, *user_id, roles),
        Imported::RegistrationAttempt(row) => {
            t.registration_attempts.insert(&be(row.id), to_json(row)?)?;
            advance_sequence(&t.system, "registration_attempts", row.id)
        }
        Imported::PluginKv { plugin, key, value } => {
            t.plugin_kv.insert(concat(&[&lp(plugin), key.as_bytes()]), value.as_slice())?;
            Ok(())
        }
        Imported::ServerSecret { name, key } => {
            t.system.insert(format!("secret/{name}").as_bytes(), &key[..])?;
            Ok(())
        }
        Imported::IdempotencyKey { scope, key, at } => {
            t.idempotency.insert(concat(&[scope.as_bytes(), &[0], key.as_bytes()]), &millis_key(*at))?;
            Ok(())
        }
        Imported::Sequence { name, last } => advance_sequence(&t.system, name, *last),
    }
}

/// A user under its own id: inserted, or replacing the one stored there, with the email and
/// uuid indexes following.
fn import_user(t: &Trees<TransactionalTree>, user: &User) -> TxResult<()> {
    let email_k = email_key(&user.email);
    if let Some(owner) = t.users_by_email.get(email_k.as_bytes())?
        && owner.as_ref() != be(user.id)
    {
        let owner = id_of(&owner).map_err(ConflictableTransactionError::Abort)?;
        return Err(taken("email_taken", format!("email {} belongs to user {owner} already", user.email)));
    }
    if let Some(owner) = t.users_by_uuid.get(user.uuid.as_bytes())?
        && owner.as_ref() != be(user.id)
    {
        let owner = id_of(&owner).map_err(ConflictableTransactionError::Abort)?;
        return Err(taken("uuid_taken", format!("uuid {} belongs to user {owner} already", user.uuid)));
    }
    let old: Option<User> = match t.users.get(be(user.id))? {
        Some(raw) => Some(tx_from_json(&raw)?),
        None => None,
    };
    if let Some(old) = &old {
        // The same person keeps the same uuid; another uuid under this id is a user made
        // here, which an import must not overwrite.
        if old.uuid != user.uuid {
            return Err(taken("user_exists", format!("user {} here is someone else (uuid {})", user.id, old.uuid)));
        }
        if email_key(&old.email) != email_k {
            t.users_by_email.remove(email_key(&old.email).as_bytes())?;
        }
    }
    count_user(t, old.as_ref(), user)?;
    t.users.insert(&be(user.id), to_json(user)?)?;
    t.users_by_email.insert(email_k.as_bytes(), &be(user.id))?;
    t.users_by_uuid.insert(user.uuid.as_bytes(), &be(user.id))?;
    advance_sequence(&t.system, "users", user.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{secret::TokenDigest, user::Role};
    use crate::store::{AccessTokenDraft, Batch, Change};

    fn new_user(email: &str) -> crate::domain::user::NewUser {
        crate::domain::user::NewUser {
            email: email.into(),
            password_hash: "$2y$10$abcdefghijklmnopqrstuuJ7y5tM4m8n1wS9wP8xJ0k4Z9bqS0f1e".into(),
            first_name: None,
            last_name: None,
            role: Role::User,
            active: true,
            source: "web".into(),
            referer: None,
            registration_channel: "crm".into(),
            locale: "sk_SK".into(),
            ext_id: None,
            note: None,
        }
    }

    fn remp_user(id: UserId, email: &str, uuid: &str) -> User {
        new_user(email).into_user(id, uuid.into(), now())
    }

    async fn import(store: &SledStore, record: Imported) -> Result<Applied> {
        store.apply(Batch(vec![Change::Import(record)])).await
    }

    #[tokio::test]
    async fn users_keep_their_ids_follow_email_changes_and_never_overwrite_another_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        import(&store, Imported::User(Box::new(remp_user(7, "jane@example.com", "u-7")))).await.unwrap();
        // Registrations after the import continue past REMP's ids.
        let (next, _) = store.create_user(new_user("new@example.com"), vec![], None).await.unwrap();
        assert_eq!(next.id, 8);
        // The same user again, with a changed email: the index follows, nothing is duplicated.
        import(&store, Imported::User(Box::new(remp_user(7, "Jane.Doe@example.com", "u-7")))).await.unwrap();
        assert!(store.user_by_email("jane@example.com").await.unwrap().is_none());
        assert_eq!(store.user_by_email("jane.doe@example.com").await.unwrap().unwrap().id, 7);
        assert_eq!(store.count_users(&crate::store::UserScan::default()).await.unwrap(), 2);
        // Another person under a taken id or email is refused.
        let other = import(&store, Imported::User(Box::new(remp_user(8, "x@example.com", "u-x")))).await.unwrap_err();
        assert_eq!(other.code(), "user_exists");
        let email = import(&store, Imported::User(Box::new(remp_user(9, "new@example.com", "u-9")))).await.unwrap_err();
        assert_eq!(email.code(), "email_taken");
        assert!(store.user(9).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn tokens_are_replaced_by_digest_and_their_sequences_move_past_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        import(&store, Imported::User(Box::new(remp_user(1, "jane@example.com", "u-1")))).await.unwrap();
        let token = AccessToken {
            id: 40,
            digest: TokenDigest::of("a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"),
            user_id: 1,
            device_token_id: Some(3),
            source: Some("web".into()),
            method: None,
            ip: "10.0.0.1".into(),
            user_agent: "ua".into(),
            created_at: now(),
            last_used_at: None,
        };
        for _ in 0..2 {
            import(&store, Imported::AccessToken(token.clone())).await.unwrap();
        }
        assert_eq!(store.access_tokens_of_user(1).await.unwrap().len(), 1);
        assert_eq!(store.access_tokens_of_device(3).await.unwrap().len(), 1);
        let unpaired = AccessToken { device_token_id: None, ..token.clone() };
        import(&store, Imported::AccessToken(unpaired)).await.unwrap();
        assert!(store.access_tokens_of_device(3).await.unwrap().is_empty());
        let draft = AccessTokenDraft {
            digest: TokenDigest::of("b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"),
            user_id: 1,
            device_token_id: None,
            source: None,
            method: None,
            ip: String::new(),
            user_agent: String::new(),
        };
        let applied = store.apply(Batch(vec![Change::InsertAccessToken(draft)])).await.unwrap();
        assert_eq!(applied.access_tokens().next().unwrap().id, 41);
        // An API token id held by another token is refused, not overwritten.
        let api = |digest: &str| ApiToken {
            id: 1,
            digest: TokenDigest::of(digest),
            name: "backend".into(),
            allowed_routes: vec!["users/list".into()],
            active: true,
            created_at: now(),
        };
        import(&store, Imported::ApiToken(api("c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1"))).await.unwrap();
        let clash = import(&store, Imported::ApiToken(api("c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2"))).await.unwrap_err();
        assert_eq!(clash.code(), "api_token_exists");
        assert_eq!(store.api_tokens().await.unwrap().len(), 1);
    }
}
