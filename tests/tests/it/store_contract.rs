//! The repository contract every backend keeps, checked on the store itself (in process, no
//! server) with the backend of this test binary: writes racing each other end as if they ran
//! one after another (one role per name, no membership left in a deleted group, indexes that
//! agree both ways, an autologin token used no more than it allows), a failed batch leaves
//! nothing, deep pages and counts follow every change, strings with NUL round-trip, and ids
//! no store can hold are refused as bad input. On PostgreSQL also: the per-account lock holds
//! a second taker until the first lets go.

use crate::harness::{Backend, backend, postgres};
use crm_users::domain::{
    now,
    secret::TokenDigest,
    user::{NewUser, Role, User},
};
use crm_users::store::{
    Batch, Change, Imported, Store, UserScan,
    postgres::{PostgresOptions, PostgresStore},
    sled::SledStore,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh, empty store of this binary's backend, and what keeps it alive.
async fn fresh_store() -> (Arc<dyn Store>, Option<tempfile::TempDir>) {
    match backend() {
        Backend::Sled => {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = SledStore::open(&dir.path().join("sled")).expect("open sled");
            (Arc::new(store), Some(dir))
        }
        Backend::Postgres => {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let schema = format!("contract_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
            let options = PostgresOptions { url: postgres().url(Some(&schema)), pool_size: 32 };
            (Arc::new(PostgresStore::open(&options).await.expect("open PostgreSQL")), None)
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    // The server's blocking client cannot start inside the runtime.
    if backend() == Backend::Postgres {
        postgres();
    }
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("runtime")
}

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
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

async fn user(store: &dyn Store, email: &str) -> User {
    store.create_user(new_user(email), vec![], None).await.expect("create user").0
}

async fn apply(store: &dyn Store, change: Change) -> crm_users::domain::Result<crm_users::store::Applied> {
    store.apply(Batch(vec![change])).await
}

#[test]
fn concurrent_inserts_of_one_role_name_create_one_role() {
    runtime().block_on(async {
        let (store, _keep) = fresh_store().await;
        let tries: Vec<_> = (0..12)
            .map(|i| {
                let store = Arc::clone(&store);
                let name = if i % 2 == 0 { "Editors" } else { "EDITORS" };
                tokio::spawn(async move {
                    apply(store.as_ref(), Change::InsertRole { name: name.into(), permissions: vec!["*".into()] }).await
                })
            })
            .collect();
        let mut created = 0;
        for t in tries {
            match t.await.expect("task") {
                Ok(_) => created += 1,
                Err(e) => assert_eq!(e.code(), "role_name_taken", "{e}"),
            }
        }
        assert_eq!(created, 1);
        assert_eq!(store.roles().await.expect("roles").len(), 1);
    });
}

/// Which of the racing writers deletes the group; the others add members.
const DELETER: usize = 8;

#[test]
fn memberships_added_while_their_group_is_deleted_are_gone_with_it() {
    runtime().block_on(async {
        let (store, _keep) = fresh_store().await;
        let mut users = Vec::new();
        for i in 0..16 {
            users.push(user(store.as_ref(), &format!("u{i}@example.com")).await.id);
        }
        for round in 0..5 {
            let created = apply(store.as_ref(), Change::InsertGroup { name: format!("G{round}"), sorting: 1 }).await;
            let group = created.expect("group").group().expect("created group").id;
            let mut tasks = Vec::new();
            for (i, user_id) in users.iter().enumerate() {
                let store = Arc::clone(&store);
                let user_id = *user_id;
                tasks.push(tokio::spawn(async move {
                    if i == DELETER {
                        apply(store.as_ref(), Change::DeleteGroup(group)).await.map(drop)
                    } else {
                        apply(store.as_ref(), Change::AddToGroup { user_id, group_id: group }).await.map(drop)
                    }
                }));
            }
            for t in tasks {
                if let Err(e) = t.await.expect("task") {
                    assert_eq!(e.code(), "not_found", "an add after the delete finds no group: {e}");
                }
            }
            assert!(store.group(group).await.expect("group").is_none());
            assert!(store.users_in_group(group).await.expect("members").is_empty(), "round {round}");
            for user_id in &users {
                assert!(!store.groups_of_user(*user_id).await.expect("groups").contains(&group), "round {round}");
            }
        }
    });
}

#[test]
fn concurrent_replacements_of_a_users_roles_leave_both_indexes_agreeing() {
    runtime().block_on(async {
        let (store, _keep) = fresh_store().await;
        let anna = user(store.as_ref(), "anna@example.com").await.id;
        let mut roles = Vec::new();
        for name in ["A", "B", "C", "D"] {
            let created = apply(store.as_ref(), Change::InsertRole { name: name.into(), permissions: vec![] }).await;
            roles.push(created.expect("role").role().expect("created role").id);
        }
        let sets: Vec<Vec<u64>> = vec![vec![roles[0], roles[1]], vec![roles[2]], vec![roles[1], roles[3]], vec![]];
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (store, set) = (Arc::clone(&store), sets[i % sets.len()].clone());
                tokio::spawn(
                    async move { apply(store.as_ref(), Change::SetUserRoles { user_id: anna, roles: set }).await },
                )
            })
            .collect();
        for t in tasks {
            t.await.expect("task").expect("set roles");
        }
        let held = store.roles_of_user(anna).await.expect("roles of user");
        assert!(sets.contains(&held), "{held:?} is one of the sets written");
        for role in &roles {
            let holders = store.users_with_role(*role).await.expect("holders");
            assert_eq!(holders.contains(&anna), held.contains(role), "role {role}: {holders:?} vs {held:?}");
        }
    });
}

#[test]
fn an_autologin_token_racing_for_its_last_uses_is_used_exactly_max_count_times() {
    runtime().block_on(async {
        let (store, _keep) = fresh_store().await;
        let anna = user(store.as_ref(), "anna@example.com").await;
        let digest = TokenDigest::of("autologin-race");
        let at = now();
        let insert = Change::InsertAutologinToken {
            digest,
            user_id: anna.id,
            email: anna.email.clone(),
            valid_from: at,
            valid_to: at + chrono::Duration::hours(1),
            max_count: 3,
        };
        apply(store.as_ref(), insert).await.expect("insert token");
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { apply(store.as_ref(), Change::UseAutologinToken(digest)).await })
            })
            .collect();
        let mut used = 0;
        for t in tasks {
            match t.await.expect("task") {
                Ok(_) => used += 1,
                Err(e) => assert_eq!(e.code(), "token_count_expired", "{e}"),
            }
        }
        assert_eq!(used, 3);
        assert_eq!(store.autologin_token(&digest).await.expect("token").expect("stored").used_count, 3);
    });
}

#[test]
fn a_failed_batch_leaves_nothing_behind_and_takes_no_email() {
    runtime().block_on(async {
        let (store, _keep) = fresh_store().await;
        let a = user(store.as_ref(), "a@example.com").await;
        let b = user(store.as_ref(), "b@example.com").await;
        let mut taken = b.clone();
        taken.email = "A@EXAMPLE.com".into();
        let batch = Batch(vec![
            Change::PutMeta { user_id: b.id, key: "k".into(), value: "v".into(), is_public: true },
            Change::InsertGroup { name: "G".into(), sorting: 1 },
            Change::PutUser(Box::new(taken)),
        ]);
        assert_eq!(store.apply(batch).await.expect_err("email taken").code(), "email_taken");
        assert!(store.meta_entry(b.id, "k").await.expect("meta").is_none());
        assert!(store.users_with_meta("k", None).await.expect("meta index").is_empty());
        assert!(store.groups().await.expect("groups").is_empty());
        assert_eq!(store.user_by_email("b@example.com").await.expect("by email").expect("b").id, b.id);
        assert_eq!(store.user_by_email("a@example.com").await.expect("by email").expect("a").id, a.id);
        let err = store.create_user(new_user(" A@example.COM "), vec![], None).await.expect_err("taken");
        assert_eq!(err.code(), "email_taken");
    });
}

#[test]
fn counts_and_deep_pages_follow_every_change_of_a_user() {
    runtime().block_on(async {
        let (store, _keep) = fresh_store().await;
        let mut all = Vec::new();
        for i in 0..600u64 {
            let mut u = user(store.as_ref(), &format!("u{i}@example.com")).await;
            if i % 7 == 3 || i % 11 == 5 {
                u.active = i % 7 != 3;
                u.deleted_at = (i % 11 == 5).then(now);
                apply(store.as_ref(), Change::PutUser(Box::new(u.clone()))).await.expect("put user");
            }
            all.push(u);
        }
        for (include_inactive, include_deleted) in [(false, false), (true, false), (true, true), (false, true)] {
            let scan = UserScan { after: None, include_inactive, include_deleted };
            let listed = |u: &User| (include_deleted || u.deleted_at.is_none()) && (include_inactive || u.active);
            let expected: Vec<u64> = all.iter().filter(|u| listed(u)).map(|u| u.id).collect();
            assert_eq!(store.count_users(&scan).await.expect("count"), expected.len() as u64, "{scan:?}");
            for skip in [0, 1, 255, 256, 511, expected.len() - 1, expected.len(), 5000] {
                let got: Vec<u64> =
                    store.scan_users(&scan, skip, 50).await.expect("scan").iter().map(|u| u.id).collect();
                let want: Vec<u64> = expected.iter().copied().skip(skip).take(50).collect();
                assert_eq!(got, want, "skip {skip} in {scan:?}");
            }
            let after = UserScan { after: Some(300), ..scan };
            let got: Vec<u64> = store.scan_users(&after, 10, 20).await.expect("scan").iter().map(|u| u.id).collect();
            let want: Vec<u64> = expected.iter().copied().filter(|id| *id > 300).skip(10).take(20).collect();
            assert_eq!(got, want, "after 300 in {scan:?}");
        }
    });
}

#[test]
fn strings_with_nul_and_every_byte_round_trip_through_keys_and_records() {
    runtime().block_on(async {
        let (store, _keep) = fresh_store().await;
        let anna = user(store.as_ref(), "anna@example.com").await;
        let key = "k\u{0}ey\u{1}";
        let value = "v\u{0}\u{85}\u{ffff}ü";
        apply(
            store.as_ref(),
            Change::PutMeta { user_id: anna.id, key: key.into(), value: value.into(), is_public: true },
        )
        .await
        .expect("meta with NUL");
        assert_eq!(store.meta_entry(anna.id, key).await.expect("meta").expect("stored").value, value);
        assert_eq!(store.users_with_meta(key, Some(value)).await.expect("by value"), vec![(anna.id, value.to_owned())]);
        let mut renamed = anna.clone();
        renamed.first_name = Some("An\u{0}na".into());
        apply(store.as_ref(), Change::PutUser(Box::new(renamed))).await.expect("user with NUL");
        assert_eq!(store.user(anna.id).await.expect("user").expect("stored").first_name.as_deref(), Some("An\u{0}na"));
        let kv = Change::PutPluginKv { plugin: "p\u{0}".into(), key: "\u{0}".into(), value: (0..=255).collect() };
        apply(store.as_ref(), kv).await.expect("plugin kv");
        assert_eq!(store.plugin_kv("p\u{0}", "\u{0}").await.expect("kv"), Some((0..=255).collect::<Vec<u8>>()));
    });
}

#[test]
fn ids_no_store_can_hold_are_refused_as_bad_input_and_read_as_absent() {
    runtime().block_on(async {
        let (store, _keep) = fresh_store().await;
        assert!(store.user(u64::MAX).await.expect("read").is_none());
        assert!(store.groups_of_user(u64::MAX).await.expect("read").is_empty());
        if backend() == Backend::Postgres {
            // sled keys are 64-bit; PostgreSQL's bigint stops at 2^63 - 1.
            let huge = new_user("huge@example.com").into_user(u64::MAX, "uuid-huge".into(), now());
            let err = apply(store.as_ref(), Change::Import(Imported::User(Box::new(huge)))).await.expect_err("too big");
            assert_eq!(err.code(), "id_out_of_range", "{err}");
            assert!(store.user_by_email("huge@example.com").await.expect("read").is_none());
        }
    });
}

#[test]
fn the_account_lock_holds_a_second_taker_until_the_first_lets_go() {
    if backend() != Backend::Postgres {
        eprintln!("a sled store has one host; the service's own lock does this there");
        return;
    }
    runtime().block_on(async {
        let (store, _keep) = fresh_store().await;
        let first = store.lock_account(7).await.expect("first lock");
        let waiting = {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.lock_account(7).await.map(drop) })
        };
        // Another account is not held up.
        let other = tokio::time::timeout(std::time::Duration::from_secs(5), store.lock_account(8)).await;
        drop(other.expect("another account's lock is free").expect("lock"));
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "the second taker waits while the first holds the lock");
        drop(first);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("the second taker gets the lock once the first lets go")
            .expect("task")
            .expect("lock");
    });
}
