//! Durability across process lifetimes: a clean SIGTERM shutdown, and a restart (clean or after
//! SIGKILL) on the same data folder that finds every acknowledged write. What each route does is
//! tested elsewhere; here only "is it still there" is asked.

use std::net::TcpStream;

use serde_json::json;

use crate::harness::{Backend, TestServer, assert_hex32, backend, runs_on};

#[test]
fn serve_shuts_down_cleanly_on_sigterm_and_releases_the_port() {
    let mut s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    let port = s.port;
    let status = s.stop();
    assert!(status.success(), "exit 0 on SIGTERM, got {status}\n{}", s.stderr());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens on {port} after shutdown");
}

#[test]
fn everything_written_before_sigterm_is_there_after_restart() {
    let mut s = TestServer::start();
    let anna = s.create(&[
        ("email", "anna@example.com"),
        ("password", "secret123"),
        ("first_name", "Anna"),
        ("last_name", "Nová"),
        ("ext_id", "11"),
        ("locale", "sk_SK"),
        ("newsletters_subscribe", "1"),
    ]);
    let anna_body = anna.expect(200).clone();
    let anna_id = anna_body["user"]["id"].as_i64().expect("id");
    let anna_token = assert_hex32(&anna_body["access"]["token"]);
    let (bob_id, _) = s.create_user("bob@example.com", "secret123");
    let (carl_id, carl_token) = s.create_user("carl@example.com", "secret123");
    let ghost = s.create(&[("email", "ghost@example.com"), ("unclaimed", "1")]);
    let ghost_id = ghost.expect(200)["user"]["id"].as_i64().expect("id");

    // Changes of every kind.
    s.api_form("/api/v1/users/confirm", &[("email", "anna@example.com")]).expect(200);
    s.api_form(
        "/api/v1/users/update",
        &[("user_id", &bob_id.to_string()), ("password", "bob-new-pass"), ("email", "robert@example.com")],
    )
    .expect(200);
    let logged_out = s.login("anna@example.com", "secret123");
    s.get("/api/v1/users/logout", Some(&logged_out)).expect(200);
    let device = s
        .post_form("/api/v1/users/get-device-token", &[("device_id", "phone"), ("access_token", &anna_token)], None)
        .expect(200)["device_token"]
        .clone();
    let device = assert_hex32(&device);
    s.post_form("/api/v1/user/delete", &[], Some(&carl_token)).expect(204);

    let info_before = s.user_info(&anna_token).expect(200).clone();
    let data_before = s.get("/api/v1/users/data", Some(&anna_token)).expect(200).clone();
    let list_before = s.list_all(true).expect(200).clone();
    // Anna, Robert and the unclaimed ghost (unclaimed users are listed); Carl is deleted.
    assert_eq!(list_before["totalCount"], json!(3), "{list_before}");

    s.restart();

    assert_eq!(s.user_info(&anna_token).expect(200), &info_before);
    assert_eq!(s.get("/api/v1/users/data", Some(&anna_token)).expect(200), &data_before);
    assert_eq!(s.list_all(true).expect(200), &list_before);
    s.user_info(&device).expect_fields(200, json!({"user": {"id": anna_id}}));
    s.user_info(&logged_out).expect(403);
    s.user_info(&carl_token).expect(403);
    s.login("anna@example.com", "secret123");
    s.login("robert@example.com", "bob-new-pass");
    s.login_resp("bob@example.com", "secret123").expect_fields(400, json!({"code": "identity_not_found"}));
    s.login_resp("carl@example.com", "secret123").expect_fields(400, json!({"code": "identity_not_found"}));
    s.email_check("ghost@example.com").expect_fields(200, json!({"status": "available"}));
    // The unclaimed user is still unclaimed: registering claims it with the same id.
    s.create(&[("email", "ghost@example.com"), ("password", "secret123")])
        .expect_fields(200, json!({"user": {"id": ghost_id}}));
    // Ids keep growing; none is reused after a restart.
    let (dora_id, _) = s.create_user("dora@example.com", "secret123");
    assert!(dora_id > carl_id && dora_id > ghost_id, "new id {dora_id} must not reuse an old one");
    // The API token made before the first start still works (it was used above), and the
    // deleted user's email is free.
    s.create_user("carl@example.com", "secret123");
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    let mut s = TestServer::start();
    let (id, token) = s.create_user("anna@example.com", "secret123");
    s.api_form("/api/v1/users/update", &[("user_id", &id.to_string()), ("password", "after-update")]).expect(200);
    s.api_form("/api/v1/users/confirm", &[("email", "anna@example.com")]).expect(200);
    s.kill_hard();
    s.start_again();
    let info = s.user_info(&token);
    assert!(info.expect(200)["user"]["confirmed_at"].is_string(), "confirmation survived: {}", info.text);
    s.login("anna@example.com", "after-update");
}

#[test]
fn idempotency_key_replay_survives_restart() {
    let mut s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    let confirm = |s: &TestServer, email: &str| {
        s.req("POST", "/api/v1/users/confirm")
            .form(&[("email", email)])
            .bearer(Some(&s.api_token))
            .header("Idempotency-Key", "restart-key")
            .send()
    };
    confirm(&s, "anna@example.com").expect(200);
    s.restart();
    confirm(&s, "nobody@example.com").expect_fields(200, json!({"status": "ok"}));
}

/// Writers at once, then SIGKILL: every write that was answered 200 is there after the
/// restart, whether writes share flushes (group commit) or flush one by one.
fn concurrent_acknowledged_writes_survive_sigkill(config: &str) {
    let mut s = TestServer::start_with_config(config);
    let (id, _) = s.create_user("anna@example.com", "secret123");
    let acknowledged: Vec<String> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let s = &s;
                scope.spawn(move || {
                    (0..15)
                        .map(|n| format!("w{w}-{n}"))
                        .filter(|key| {
                            let body = json!({"user_id": id, "key": key, "value": "v", "is_public": true});
                            s.post_json("/api/v1/user-meta/upsert", body, Some(&s.api_token)).status == 200
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        writers.into_iter().flat_map(|w| w.join().expect("writer thread")).collect()
    });
    assert_eq!(acknowledged.len(), 8 * 15, "every write was answered 200");
    s.kill_hard();
    s.start_again();
    let listed = s.get(&format!("/api/v1/user-meta/list?user_id={id}"), Some(&s.api_token));
    let keys: Vec<&str> =
        listed.expect(200).as_array().expect("a list").iter().filter_map(|m| m["key"].as_str()).collect();
    for key in &acknowledged {
        assert!(keys.contains(&key.as_str()), "acknowledged {key} is missing after SIGKILL ({} stored)", keys.len());
    }
}

#[test]
fn concurrent_writes_survive_sigkill_with_group_commit() {
    // On PostgreSQL a write is acknowledged after its commit; `commit` is sled's setting.
    let config = if backend() == Backend::Sled { "commit = \"group\"\n" } else { "" };
    concurrent_acknowledged_writes_survive_sigkill(config);
}

#[test]
fn concurrent_writes_survive_sigkill_flushing_each_write() {
    if !runs_on(Backend::Sled, "flushing each write is a sled setting") {
        return;
    }
    concurrent_acknowledged_writes_survive_sigkill("commit = \"each-write\"\n");
}
