//! Reading every stored record back out as [`Imported`] values (`Store::export`), tree by tree
//! straight from sled's iterators, so memory stays flat however large the store is. Index
//! trees are not exported: importing a record rebuilds its indexes.

use super::keys::*;
use super::*;
use crate::store::Imported;

type Sink<'a> = &'a mut (dyn FnMut(Imported) -> Result<()> + Send);

/// Every value of `tree`, parsed as JSON, in key order.
fn each_json<T: DeserializeOwned>(tree: &sled::Tree, sink: Sink<'_>, wrap: impl Fn(T) -> Imported) -> Result<()> {
    for item in tree.iter() {
        let (_, raw) = item.map_err(Error::storage)?;
        sink(wrap(from_json(&raw)?))?;
    }
    Ok(())
}

fn utf8(bytes: &[u8], what: &str) -> Result<String> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::Storage(anyhow::anyhow!("corrupt {what}: not UTF-8")))
}

fn millis_of(bytes: &[u8]) -> Result<Timestamp> {
    let ms = id_of(bytes)?;
    i64::try_from(ms)
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .ok_or_else(|| Error::Storage(anyhow::anyhow!("corrupt time {ms}")))
}

impl SledStore {
    pub(super) fn export_all(&self, sink: Sink<'_>) -> Result<()> {
        let t = &self.t;
        for item in t.system.scan_prefix(b"secret/") {
            let (k, v) = item.map_err(Error::storage)?;
            let name = utf8(&k[b"secret/".len()..], "secret name")?;
            let key = <[u8; 32]>::try_from(v.as_ref())
                .map_err(|_| Error::Storage(anyhow::anyhow!("corrupt secret {name}")))?;
            sink(Imported::ServerSecret { name, key })?;
        }
        each_json(&t.users, sink, |u| Imported::User(Box::new(u)))?;
        each_json(&t.groups, sink, Imported::Group)?;
        each_json(&t.roles, sink, Imported::Role)?;
        each_json(&t.address_types, sink, Imported::AddressType)?;
        each_json(&t.api_tokens, sink, Imported::ApiToken)?;
        each_json(&t.device_tokens, sink, Imported::DeviceToken)?;
        each_json(&t.meta, sink, Imported::Meta)?;
        each_json(&t.access_tokens, sink, Imported::AccessToken)?;
        each_json(&t.autologin_tokens, sink, Imported::AutologinToken)?;
        each_json(&t.connected_accounts, sink, Imported::ConnectedAccount)?;
        for item in t.user_groups.iter() {
            let (k, since) = item.map_err(Error::storage)?;
            let user_id = id_of(k.get(..8).unwrap_or_default())?;
            sink(Imported::Membership { user_id, group_id: tail_id(&k)?, since: millis_of(&since)? })?;
        }
        for item in t.user_roles.iter() {
            let (k, ids) = item.map_err(Error::storage)?;
            sink(Imported::UserRoles { user_id: id_of(&k)?, roles: from_json(&ids)? })?;
        }
        each_json(&t.addresses, sink, |a| Imported::Address(Box::new(a)))?;
        each_json(&t.address_change_requests, sink, |r| Imported::AddressChangeRequest(Box::new(r)))?;
        each_json(&t.login_attempts, sink, Imported::LoginAttempt)?;
        each_json(&t.registration_attempts, sink, Imported::RegistrationAttempt)?;
        each_json(&t.password_changes, sink, Imported::PasswordChange)?;
        for item in t.plugin_kv.iter() {
            let (k, value) = item.map_err(Error::storage)?;
            let (plugin, key) = split_lp(&k)?;
            sink(Imported::PluginKv {
                plugin: utf8(plugin, "plugin name")?,
                key: utf8(key, "plugin key")?,
                value: value.to_vec(),
            })?;
        }
        for item in t.idempotency.iter() {
            let (k, at) = item.map_err(Error::storage)?;
            let nul = k.iter().position(|b| *b == 0).ok_or_else(|| Error::Storage(anyhow::anyhow!("corrupt key")))?;
            sink(Imported::IdempotencyKey {
                scope: utf8(&k[..nul], "idempotency scope")?,
                key: utf8(&k[nul + 1..], "idempotency key")?,
                at: millis_of(&at)?,
            })?;
        }
        for item in t.system.scan_prefix(b"seq/") {
            let (k, v) = item.map_err(Error::storage)?;
            sink(Imported::Sequence { name: utf8(&k[b"seq/".len()..], "sequence name")?, last: id_of(&v)? })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        address::{AddressFields, AddressType},
        attempt::{LoginStatus, PasswordChangeKind, RegistrationStatus},
        user::Role,
    };
    use crate::store::{LoginAttemptDraft, backup};

    fn new_user(email: &str) -> NewUser {
        NewUser {
            email: email.into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            first_name: Some("Jana".into()),
            last_name: None,
            role: Role::User,
            active: true,
            source: "web".into(),
            referer: None,
            registration_channel: "crm".into(),
            locale: "sk_SK".into(),
            ext_id: Some(5),
            note: None,
        }
    }

    /// A store with at least one record of every kind `Imported` has.
    async fn populated(store: &SledStore) {
        let draft = |token: &str, user_id| AccessTokenDraft {
            digest: TokenDigest::of(token),
            user_id,
            device_token_id: None,
            source: Some("web".into()),
            method: Some("password".into()),
            ip: "10.0.0.1".into(),
            user_agent: "ua".into(),
        };
        let meta = vec![("newsletter".to_string(), "1".to_string(), true)];
        let (a, _) = store.create_user(new_user("a@example.com"), meta, Some(draft("t-a", 0))).await.unwrap();
        let (b, _) = store.create_user(new_user("b@example.com"), vec![], None).await.unwrap();
        let address = store.reserve_id(IdSequence::Address).await.unwrap();
        let request = store.reserve_id(IdSequence::AddressChangeRequest).await.unwrap();
        // Reserved and never written: the sequence position must survive the round trip.
        store.reserve_id(IdSequence::Address).await.unwrap();
        let at = now();
        let changes = vec![
            Change::InsertDeviceToken { digest: TokenDigest::of("d-a"), device_id: "phone".into() },
            Change::InsertAccessToken(AccessTokenDraft { device_token_id: Some(1), ..draft("t-a2", a.id) }),
            Change::InsertLoginAttempt(LoginAttemptDraft {
                user_id: Some(a.id),
                email: a.email.clone(),
                status: LoginStatus::WrongPass,
                source: "web".into(),
                ip: "10.0.0.2".into(),
                user_agent: "ua".into(),
                message: None,
            }),
            Change::InsertRegistrationAttempt {
                user_id: Some(b.id),
                email: b.email.clone(),
                status: RegistrationStatus::Ok,
                source: None,
                ip: "10.0.0.3".into(),
                user_agent: "ua".into(),
            },
            Change::InsertPasswordChange {
                user_id: a.id,
                kind: PasswordChangeKind::Change,
                from_hash: "old".into(),
                to_hash: "new".into(),
            },
            Change::InsertApiToken {
                digest: TokenDigest::of("api"),
                name: "backend".into(),
                allowed_routes: vec!["*".into()],
            },
            Change::RememberIdempotencyKey { scope: "users/confirm".into(), key: "k-1".into() },
            Change::InsertAutologinToken {
                digest: TokenDigest::of("auto"),
                user_id: a.id,
                email: a.email.clone(),
                valid_from: at,
                valid_to: at,
                max_count: 3,
            },
            Change::InsertConnectedAccount {
                user_id: b.id,
                kind: "google_sign_in".into(),
                external_id: "sub-1".into(),
                email: None,
            },
            Change::PutPluginKv { plugin: "counter".into(), key: "hits".into(), value: vec![0, 159, 255, 10] },
            Change::InsertAddressType(AddressType { key: "print".into(), title: "Print".into(), sorting: 5 }),
            Change::PutAddress(Box::new(Address::new(address, a.id, "print".into(), AddressFields::default(), at))),
            Change::PutAddressChangeRequest {
                request: Box::new(AddressChangeRequest {
                    id: request,
                    user_id: a.id,
                    kind: "print".into(),
                    address_id: Some(address),
                    status: crate::domain::address::ChangeRequestStatus::New,
                    fields: AddressFields { city: Some("Košice".into()), ..Default::default() },
                    old: AddressFields::default(),
                    created_at: at,
                    updated_at: at,
                }),
                if_status: None,
            },
            Change::InsertGroup { name: "Premium".into(), sorting: 10 },
            Change::AddToGroup { user_id: b.id, group_id: 1 },
            Change::InsertRole { name: "Editors".into(), permissions: vec!["users/list".into()] },
            Change::SetUserRoles { user_id: a.id, roles: vec![1] },
        ];
        store.apply(Batch(changes)).await.unwrap();
        store.server_secret("hashed_id").await.unwrap();
    }

    async fn export_bytes(store: &SledStore) -> Vec<u8> {
        let mut out = Vec::new();
        backup::export(store, &mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn every_record_kind_round_trips_and_a_second_export_is_identical() {
        let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let first = SledStore::open(one.path()).unwrap();
        populated(&first).await;
        let exported = export_bytes(&first).await;
        let text = String::from_utf8(exported.clone()).unwrap();
        let kinds: std::collections::BTreeSet<String> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"].as_str().map(str::to_owned))
            .collect();
        for kind in [
            "user",
            "meta",
            "access_token",
            "device_token",
            "autologin_token",
            "connected_account",
            "login_attempt",
            "password_change",
            "api_token",
            "group",
            "membership",
            "address_type",
            "address",
            "address_change_request",
            "role",
            "user_roles",
            "registration_attempt",
            "plugin_kv",
            "server_secret",
            "idempotency_key",
            "sequence",
        ] {
            assert!(kinds.contains(kind), "no {kind} line in\n{text}");
        }
        assert!(!text.contains("t-a"), "tokens leave only as digests");

        let records = backup::validate(exported.as_slice()).unwrap();
        let second = SledStore::open(two.path()).unwrap();
        assert!(backup::is_empty(&second).await.unwrap());
        assert_eq!(backup::import(&second, exported.as_slice(), &|_| {}).await.unwrap(), records);
        assert!(!backup::is_empty(&second).await.unwrap());
        assert_eq!(String::from_utf8(export_bytes(&second).await).unwrap(), text);

        // Indexes were rebuilt, and sequences continue past what the first store handed out.
        assert_eq!(second.user_by_email("A@example.com").await.unwrap().unwrap().id, 1);
        assert_eq!(second.access_token(&TokenDigest::of("t-a2")).await.unwrap().unwrap().device_token_id, Some(1));
        assert_eq!(second.access_tokens_of_device(1).await.unwrap().len(), 1);
        assert_eq!(second.users_in_group(1).await.unwrap(), vec![2]);
        assert_eq!(second.users_with_role(1).await.unwrap(), vec![1]);
        assert_eq!(second.users_with_meta("newsletter", Some("1")).await.unwrap(), vec![(1, "1".to_string())]);
        assert_eq!(second.server_secret("hashed_id").await.unwrap(), first.server_secret("hashed_id").await.unwrap());
        assert_eq!(second.reserve_id(IdSequence::Address).await.unwrap(), 3);
        assert!(second.idempotency_key_seen("users/confirm", "k-1").await.unwrap());
        assert_eq!(second.plugin_kv("counter", "hits").await.unwrap(), Some(vec![0, 159, 255, 10]));
        let (c, _) = second.create_user(new_user("c@example.com"), vec![], None).await.unwrap();
        assert_eq!(c.id, 3);
    }

    #[tokio::test]
    async fn a_broken_line_is_named_and_nothing_is_read_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(dir.path()).unwrap();
        populated(&store).await;
        let text = String::from_utf8(export_bytes(&store).await).unwrap();
        let mut lines: Vec<&str> = text.lines().collect();
        lines[3] = r#"{"kind":"usr","record":{}}"#;
        let broken = lines.join("\n") + "\n";
        let err = backup::validate(broken.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("line 4: not a valid export record"), "{err}");
        let truncated: String = text.lines().take(5).map(|l| format!("{l}\n")).collect();
        let err = backup::validate(truncated.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        let err = backup::validate(&b"{\"users\":[]}\n"[..]).unwrap_err().to_string();
        assert!(err.starts_with("line 1: not a crm-users export"), "{err}");
    }
}
