//! `crm-users check`: walk every tree and every index of the store and report each
//! inconsistency, like fsck. Each record must parse and sit under its own key, each index
//! entry must point at a record that agrees with it and each record must have its index
//! entries (both ways), every reference must resolve, the per-block user counts must match
//! the users, and every sequence must be at or past the largest id it handed out.
//!
//! Read only. Run it while nothing writes (the CLI holds the folder lock): a write between two
//! reads would look like an inconsistency.

use super::keys::*;
use super::*;
use std::collections::BTreeMap;

/// Findings reported in full; beyond this only the count grows.
const MAX_FINDINGS: usize = 1000;

/// What a check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Records and index entries read.
    pub entries: u64,
    /// One line per inconsistency (the first [`MAX_FINDINGS`]).
    pub findings: Vec<String>,
    /// All inconsistencies, including those not listed.
    pub problems: u64,
}

impl CheckReport {
    fn problem(&mut self, text: String) {
        self.problems += 1;
        if self.findings.len() < MAX_FINDINGS {
            self.findings.push(text);
        }
    }

    pub fn is_clean(&self) -> bool {
        self.problems == 0
    }
}

/// Entries of a tree as `(key, value)` byte vectors; an unreadable tree is a storage error.
fn entries(tree: &sled::Tree) -> impl Iterator<Item = Result<(sled::IVec, sled::IVec)>> + '_ {
    tree.iter().map(|item| item.map_err(Error::storage))
}

fn hex_key(key: &[u8]) -> String {
    hex::encode(key)
}

impl SledStore {
    /// Check the whole store; `Err` only when sled cannot read it at all.
    pub fn check(&self) -> Result<CheckReport> {
        let mut r = CheckReport::default();
        let t = &self.t;
        // Highest id seen per sequence name.
        let mut max_ids: BTreeMap<&'static str, u64> = BTreeMap::new();
        let mut seen = |name: &'static str, id: u64| {
            let max = max_ids.entry(name).or_insert(0);
            *max = (*max).max(id);
        };

        let mut blocks = BTreeMap::<u64, BlockCounts>::new();
        for item in entries(&t.users) {
            let (k, v) = item?;
            r.entries += 1;
            let user: User = match from_json(&v) {
                Ok(u) => u,
                Err(e) => {
                    r.problem(format!("users/{}: {e}", hex_key(&k)));
                    continue;
                }
            };
            seen("users", user.id);
            if k.as_ref() != be(user.id) {
                r.problem(format!("users/{}: holds user {}", hex_key(&k), user.id));
            }
            blocks.entry(user.id / COUNT_BLOCK).or_default()[user_class(&user)] += 1;
            let email_k = email_key(&user.email);
            match t.users_by_email.get(email_k.as_bytes()).map_err(Error::storage)? {
                Some(id) if id.as_ref() == be(user.id) => {}
                Some(id) => r.problem(format!("user {}: email {email_k} is indexed to user {}", user.id, id_of(&id)?)),
                None => r.problem(format!("user {}: email {email_k} is not in the email index", user.id)),
            }
            match t.users_by_uuid.get(user.uuid.as_bytes()).map_err(Error::storage)? {
                Some(id) if id.as_ref() == be(user.id) => {}
                _ => r.problem(format!("user {}: uuid {} is not indexed to it", user.id, user.uuid)),
            }
        }
        for (tree, what) in [(&t.users_by_email, "email"), (&t.users_by_uuid, "uuid")] {
            for item in entries(tree) {
                let (k, id) = item?;
                r.entries += 1;
                let key = String::from_utf8_lossy(&k);
                let id = id_of(&id)?;
                match Self::get_json::<User>(&t.users, &be(id)) {
                    Ok(Some(user)) => {
                        let matches = match what {
                            "email" => email_key(&user.email) == key,
                            _ => user.uuid == key,
                        };
                        if !matches {
                            r.problem(format!("{what} index: {key} points at user {id}, whose {what} differs"));
                        }
                    }
                    Ok(None) => r.problem(format!("{what} index: {key} points at missing user {id}")),
                    Err(e) => r.problem(format!("{what} index: {key}: {e}")),
                }
            }
        }
        let mut stored_blocks = BTreeMap::new();
        for item in entries(&t.user_counts) {
            let (k, v) = item?;
            r.entries += 1;
            stored_blocks.insert(id_of(&k)?, counts_of(&v)?);
        }
        for block in blocks.keys().chain(stored_blocks.keys()).copied().collect::<std::collections::BTreeSet<_>>() {
            let (want, got) = (blocks.get(&block).copied().unwrap_or_default(), stored_blocks.get(&block).copied());
            if got.unwrap_or_default() != want {
                r.problem(format!(
                    "user counts of ids {}..{}: stored {got:?}, counted {want:?}",
                    block * COUNT_BLOCK,
                    (block + 1) * COUNT_BLOCK
                ));
            }
        }
        let user_exists = |id: UserId| -> Result<bool> { t.users.contains_key(be(id)).map_err(Error::storage) };

        // Meta and its key/value index.
        for item in entries(&t.meta) {
            let (k, v) = item?;
            r.entries += 1;
            let Ok(m) = from_json::<MetaEntry>(&v) else {
                r.problem(format!("meta/{}: unreadable", hex_key(&k)));
                continue;
            };
            if k.as_ref() != meta_key(m.user_id, &m.key) {
                r.problem(format!("meta {} of user {}: stored under another key", m.key, m.user_id));
            }
            if !user_exists(m.user_id)? {
                r.problem(format!("meta {} belongs to missing user {}", m.key, m.user_id));
            }
            if !t.meta_by_key.contains_key(meta_index_key(&m.key, &m.value, m.user_id)).map_err(Error::storage)? {
                r.problem(format!("meta {} of user {}: not in the key/value index", m.key, m.user_id));
            }
        }
        for item in entries(&t.meta_by_key) {
            let (k, _) = item?;
            r.entries += 1;
            let parsed = split_lp(&k).and_then(|(key, rest)| Ok((key, split_lp(rest)?)));
            let Ok((key, (value, id))) = parsed else {
                r.problem(format!("meta index/{}: malformed key", hex_key(&k)));
                continue;
            };
            let (key, value, user_id) = (String::from_utf8_lossy(key), String::from_utf8_lossy(value), id_of(id)?);
            match Self::get_json::<MetaEntry>(&t.meta, &meta_key(user_id, &key)) {
                Ok(Some(m)) if m.value == value => {}
                _ => r.problem(format!("meta index: {key}={value} of user {user_id} has no such meta entry")),
            }
        }

        // Access tokens, by user and by device.
        for item in entries(&t.access_tokens) {
            let (k, v) = item?;
            r.entries += 1;
            let Ok(token) = from_json::<AccessToken>(&v) else {
                r.problem(format!("access token {}: unreadable", hex_key(&k)));
                continue;
            };
            seen("access_tokens", token.id);
            let by_user = t.access_by_user.get(concat(&[&be(token.user_id), &be(token.id)])).map_err(Error::storage)?;
            if k.as_ref() != token.digest.0 || by_user.as_deref() != Some(&token.digest.0[..]) {
                r.problem(format!("access token {}: not indexed to user {}", token.id, token.user_id));
            }
            if !user_exists(token.user_id)? {
                r.problem(format!("access token {} belongs to missing user {}", token.id, token.user_id));
            }
            if let Some(device) = token.device_token_id {
                let by_device =
                    t.access_by_device.get(concat(&[&be(device), &be(token.id)])).map_err(Error::storage)?;
                if by_device.as_deref() != Some(&token.digest.0[..]) {
                    r.problem(format!("access token {}: not indexed to device token {device}", token.id));
                }
            }
        }
        for (tree, what) in [(&t.access_by_user, "user"), (&t.access_by_device, "device")] {
            for item in entries(tree) {
                let (k, digest) = item?;
                r.entries += 1;
                let owner = id_of(k.get(..8).unwrap_or_default())?;
                let token = Self::get_json::<AccessToken>(&t.access_tokens, &digest).ok().flatten();
                let agrees = token.is_some_and(|tok| {
                    tok.id == tail_id(&k).unwrap_or(0)
                        && match what {
                            "user" => tok.user_id == owner,
                            _ => tok.device_token_id == Some(owner),
                        }
                });
                if !agrees {
                    r.problem(format!("access tokens by {what} {owner}: entry {} has no matching token", hex_key(&k)));
                }
            }
        }

        // Device tokens and their id index.
        for item in entries(&t.device_tokens) {
            let (k, v) = item?;
            r.entries += 1;
            let Ok(device) = from_json::<DeviceToken>(&v) else {
                r.problem(format!("device token {}: unreadable", hex_key(&k)));
                continue;
            };
            seen("device_tokens", device.id);
            let by_id = t.device_by_id.get(be(device.id)).map_err(Error::storage)?;
            if k.as_ref() != device.digest.0 || by_id.as_deref() != Some(&device.digest.0[..]) {
                r.problem(format!("device token {}: not indexed by its id", device.id));
            }
        }
        self.check_id_index(&mut r, &t.device_by_id, &t.device_tokens, "device token", |d: DeviceToken| d.id)?;

        // API tokens and their id index.
        for item in entries(&t.api_tokens) {
            let (k, v) = item?;
            r.entries += 1;
            let Ok(token) = from_json::<ApiToken>(&v) else {
                r.problem(format!("API token {}: unreadable", hex_key(&k)));
                continue;
            };
            seen("api_tokens", token.id);
            let by_id = t.api_tokens_by_id.get(be(token.id)).map_err(Error::storage)?;
            if k.as_ref() != token.digest.0 || by_id.as_deref() != Some(&token.digest.0[..]) {
                r.problem(format!("API token {}: not indexed by its id", token.id));
            }
        }
        self.check_id_index(&mut r, &t.api_tokens_by_id, &t.api_tokens, "API token", |a: ApiToken| a.id)?;

        // Login attempts and their three indexes.
        for item in entries(&t.login_attempts) {
            let (k, v) = item?;
            r.entries += 1;
            let Ok(a) = from_json::<LoginAttempt>(&v) else {
                r.problem(format!("login attempt {}: unreadable", hex_key(&k)));
                continue;
            };
            seen("login_attempts", a.id);
            if !t.attempts_by_ip.contains_key(concat(&[&lp(&a.ip), &be(a.id)])).map_err(Error::storage)? {
                r.problem(format!("login attempt {}: not in the by-IP index", a.id));
            }
            if let Some(user) = a.user_id {
                if !t.attempts_by_user.contains_key(concat(&[&be(user), &be(a.id)])).map_err(Error::storage)? {
                    r.problem(format!("login attempt {}: not in the by-user index", a.id));
                }
                let wrong = t
                    .wrong_pass_by_user
                    .contains_key(concat(&[&be(user), &millis_key(a.created_at), &be(a.id)]))
                    .map_err(Error::storage)?;
                if wrong != (a.status == crate::domain::attempt::LoginStatus::WrongPass) {
                    r.problem(format!("login attempt {}: the wrong-password index disagrees with its status", a.id));
                }
            }
        }
        for (tree, what) in
            [(&t.attempts_by_ip, "IP"), (&t.attempts_by_user, "user"), (&t.wrong_pass_by_user, "wrong-password")]
        {
            for item in entries(tree) {
                let (k, _) = item?;
                r.entries += 1;
                let id = tail_id(&k)?;
                match Self::get_json::<LoginAttempt>(&t.login_attempts, &be(id)) {
                    Ok(Some(a)) => {
                        let agrees = match what {
                            "IP" => k.starts_with(&lp(&a.ip)),
                            _ => a.user_id.is_some_and(|u| k.starts_with(&be(u))),
                        };
                        if !agrees {
                            r.problem(format!("login attempts by {what}: entry for attempt {id} disagrees with it"));
                        }
                    }
                    _ => r.problem(format!("login attempts by {what}: entry for missing attempt {id}")),
                }
            }
        }
        for (tree, name) in
            [(&t.registration_attempts, "registration_attempts"), (&t.password_changes, "password_changes")]
        {
            for item in entries(tree) {
                let (k, v) = item?;
                r.entries += 1;
                match serde_json::from_slice::<serde_json::Value>(&v) {
                    Ok(row) if row["id"].as_u64() == Some(id_of(&k)?) => seen(name, id_of(&k)?),
                    _ => r.problem(format!("{name}/{}: unreadable or under another id", id_of(&k)?)),
                }
            }
        }

        // Autologin tokens and connected accounts, each with a by-user index.
        for item in entries(&t.autologin_tokens) {
            let (k, v) = item?;
            r.entries += 1;
            let Ok(token) = from_json::<AutologinToken>(&v) else {
                r.problem(format!("autologin token {}: unreadable", hex_key(&k)));
                continue;
            };
            seen("autologin_tokens", token.id);
            let by_user =
                t.autologin_by_user.get(concat(&[&be(token.user_id), &be(token.id)])).map_err(Error::storage)?;
            if k.as_ref() != token.digest.0 || by_user.as_deref() != Some(&token.digest.0[..]) {
                r.problem(format!("autologin token {}: not indexed to user {}", token.id, token.user_id));
            }
            if !user_exists(token.user_id)? {
                r.problem(format!("autologin token {} belongs to missing user {}", token.id, token.user_id));
            }
        }
        for item in entries(&t.autologin_by_user) {
            let (k, digest) = item?;
            r.entries += 1;
            let token = Self::get_json::<AutologinToken>(&t.autologin_tokens, &digest).ok().flatten();
            if token.is_none_or(|tok| k.as_ref() != concat(&[&be(tok.user_id), &be(tok.id)])) {
                r.problem(format!("autologin tokens by user: entry {} has no matching token", hex_key(&k)));
            }
        }
        for item in entries(&t.connected_accounts) {
            let (k, v) = item?;
            r.entries += 1;
            let Ok(account) = from_json::<ConnectedAccount>(&v) else {
                r.problem(format!("connected account {}: unreadable", hex_key(&k)));
                continue;
            };
            seen("connected_accounts", account.id);
            let by_user =
                t.connected_by_user.get(concat(&[&be(account.user_id), &be(account.id)])).map_err(Error::storage)?;
            if by_user.as_deref() != Some(k.as_ref()) || !user_exists(account.user_id)? {
                r.problem(format!(
                    "connected account {}: not indexed to existing user {}",
                    account.id, account.user_id
                ));
            }
        }
        for item in entries(&t.connected_by_user) {
            let (k, key) = item?;
            r.entries += 1;
            let account = Self::get_json::<ConnectedAccount>(&t.connected_accounts, &key).ok().flatten();
            if account.is_none_or(|a| k.as_ref() != concat(&[&be(a.user_id), &be(a.id)])) {
                r.problem(format!("connected accounts by user: entry {} has no matching account", hex_key(&k)));
            }
        }

        // Addresses and their two indexes; change requests.
        for item in entries(&t.addresses) {
            let (k, v) = item?;
            r.entries += 1;
            let Ok(a) = from_json::<Address>(&v) else {
                r.problem(format!("address {}: unreadable", hex_key(&k)));
                continue;
            };
            seen("addresses", a.id);
            let indexed =
                t.addresses_by_user.contains_key(concat(&[&be(a.user_id), &be(a.id)])).map_err(Error::storage)?
                    && t.addresses_by_user_type
                        .contains_key(address_type_index_key(a.user_id, &a.kind, a.id))
                        .map_err(Error::storage)?;
            if k.as_ref() != be(a.id) || !indexed || !user_exists(a.user_id)? {
                r.problem(format!("address {}: not indexed to existing user {} and type {}", a.id, a.user_id, a.kind));
            }
        }
        for (tree, what) in [(&t.addresses_by_user, "user"), (&t.addresses_by_user_type, "user and type")] {
            for item in entries(tree) {
                let (k, _) = item?;
                r.entries += 1;
                let id = tail_id(&k)?;
                let address = Self::get_json::<Address>(&t.addresses, &be(id)).ok().flatten();
                let agrees = address.is_some_and(|a| match what {
                    "user" => k.as_ref() == concat(&[&be(a.user_id), &be(a.id)]),
                    _ => k.as_ref() == address_type_index_key(a.user_id, &a.kind, a.id),
                });
                if !agrees {
                    r.problem(format!("addresses by {what}: entry for address {id} has no matching address"));
                }
            }
        }
        for item in entries(&t.address_change_requests) {
            let (k, v) = item?;
            r.entries += 1;
            match from_json::<AddressChangeRequest>(&v) {
                Ok(req) if k.as_ref() == be(req.id) => seen("address_change_requests", req.id),
                _ => r.problem(format!("address change request {}: unreadable or under another id", hex_key(&k))),
            }
        }

        // Groups and memberships, both ways.
        for item in entries(&t.groups) {
            let (k, v) = item?;
            r.entries += 1;
            match from_json::<Group>(&v) {
                Ok(g) if k.as_ref() == be(g.id) => seen("groups", g.id),
                _ => r.problem(format!("group {}: unreadable or under another id", hex_key(&k))),
            }
        }
        for item in entries(&t.user_groups) {
            let (k, _) = item?;
            r.entries += 1;
            let (user, group) = (id_of(k.get(..8).unwrap_or_default())?, tail_id(&k)?);
            if !t.group_users.contains_key(concat(&[&be(group), &be(user)])).map_err(Error::storage)? {
                r.problem(format!("membership of user {user} in group {group}: missing from the group's members"));
            }
            if !user_exists(user)? || !t.groups.contains_key(be(group)).map_err(Error::storage)? {
                r.problem(format!("membership of user {user} in group {group}: the user or the group is missing"));
            }
        }
        for item in entries(&t.group_users) {
            let (k, _) = item?;
            r.entries += 1;
            let (group, user) = (id_of(k.get(..8).unwrap_or_default())?, tail_id(&k)?);
            if !t.user_groups.contains_key(concat(&[&be(user), &be(group)])).map_err(Error::storage)? {
                r.problem(format!("member {user} of group {group}: missing from the user's groups"));
            }
        }

        // Roles, their name index, and assignments both ways.
        for item in entries(&t.roles) {
            let (k, v) = item?;
            r.entries += 1;
            let Ok(role) = from_json::<AdminRole>(&v) else {
                r.problem(format!("role {}: unreadable", hex_key(&k)));
                continue;
            };
            seen("roles", role.id);
            let by_name = t.roles_by_name.get(role_name_key(&role.name).as_bytes()).map_err(Error::storage)?;
            if k.as_ref() != be(role.id) || by_name.as_deref() != Some(&be(role.id)[..]) {
                r.problem(format!("role {}: not indexed by its name '{}'", role.id, role.name));
            }
        }
        for item in entries(&t.roles_by_name) {
            let (k, id) = item?;
            r.entries += 1;
            let role = Self::get_json::<AdminRole>(&t.roles, &id).ok().flatten();
            if role.is_none_or(|role| role_name_key(&role.name).as_bytes() != k.as_ref()) {
                r.problem(format!("role name index: '{}' has no matching role", String::from_utf8_lossy(&k)));
            }
        }
        for item in entries(&t.user_roles) {
            let (k, v) = item?;
            r.entries += 1;
            let user = id_of(&k)?;
            let Ok(ids) = from_json::<Vec<RoleId>>(&v) else {
                r.problem(format!("roles of user {user}: unreadable"));
                continue;
            };
            if !user_exists(user)? {
                r.problem(format!("roles of missing user {user}"));
            }
            for id in ids {
                let indexed = t.role_users.contains_key(concat(&[&be(id), &be(user)])).map_err(Error::storage)?;
                if !indexed || !t.roles.contains_key(be(id)).map_err(Error::storage)? {
                    r.problem(format!("role {id} of user {user}: missing role or missing from the role's holders"));
                }
            }
        }
        for item in entries(&t.role_users) {
            let (k, _) = item?;
            r.entries += 1;
            let (role, user) = (id_of(k.get(..8).unwrap_or_default())?, tail_id(&k)?);
            let ids: Vec<RoleId> = Self::get_json(&t.user_roles, &be(user)).ok().flatten().unwrap_or_default();
            if !ids.contains(&role) {
                r.problem(format!("holder {user} of role {role}: missing from the user's roles"));
            }
        }

        // Sequences: never behind an id they handed out, or the next insert would reuse it.
        for (name, max) in max_ids {
            let stored = match t.system.get(format!("seq/{name}").as_bytes()).map_err(Error::storage)? {
                Some(v) => id_of(&v)?,
                None => 0,
            };
            if stored < max {
                r.problem(format!("sequence {name} is at {stored}, behind the stored id {max}"));
            }
        }
        r.entries += t.system.len() as u64;
        Ok(r)
    }

    /// Each entry of an id → digest index points at a record with that id.
    fn check_id_index<T: DeserializeOwned>(
        &self,
        r: &mut CheckReport,
        index: &sled::Tree,
        records: &sled::Tree,
        what: &str,
        id: impl Fn(T) -> u64,
    ) -> Result<()> {
        for item in entries(index) {
            let (k, digest) = item?;
            r.entries += 1;
            let want = id_of(&k)?;
            if Self::get_json::<T>(records, &digest).ok().flatten().map(&id) != Some(want) {
                r.problem(format!("{what} id index: {want} points at no such {what}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sled::tests::new_user;
    use crate::store::{Batch, Change};

    #[tokio::test]
    async fn a_consistent_store_checks_clean_and_each_broken_index_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        let meta = vec![("k".to_string(), "v".to_string(), true)];
        let (a, _) = store.create_user(new_user("a@example.com"), meta, None).await.unwrap();
        let g = store.apply(Batch(vec![Change::InsertGroup { name: "G".into(), sorting: 1 }])).await.unwrap();
        let g = g.group().unwrap().id;
        store.apply(Batch(vec![Change::AddToGroup { user_id: a.id, group_id: g }])).await.unwrap();
        let report = store.check().unwrap();
        assert!(report.is_clean(), "{:?}", report.findings);
        assert!(report.entries > 5);

        // Break one thing of each sort behind the store's back.
        store.t.users_by_email.remove("a@example.com").unwrap();
        store.t.group_users.insert(concat(&[&be(g), &be(99)]), &[]).unwrap();
        store.t.meta_by_key.remove(meta_index_key("k", "v", a.id)).unwrap();
        store.t.system.insert("seq/users", &be(0)).unwrap();
        let report = store.check().unwrap();
        let all = report.findings.join("\n");
        for expected in [
            "email a@example.com is not in the email index",
            "member 99 of group 1: missing from the user's groups",
            "meta k of user 1: not in the key/value index",
            "sequence users is at 0, behind the stored id 1",
        ] {
            assert!(all.contains(expected), "no '{expected}' in\n{all}");
        }
        assert_eq!(report.problems, 4, "{all}");
    }
}
