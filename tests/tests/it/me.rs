//! The current user through the real server: `GET /api/me`, `PUT /api/profile` and
//! `PUT /api/profile/password`, with access tokens and device tokens.

use serde_json::json;

use crate::harness::{Resp, TestServer, assert_hex32};

fn put(s: &TestServer, path: &str, token: Option<&str>, body: serde_json::Value) -> Resp {
    s.req("PUT", path).json(body).bearer(token).send()
}

fn change(old: &str, new: &str) -> serde_json::Value {
    json!({"old_password": old, "password": new, "password_confirmation": new})
}

#[test]
fn me_returns_the_token_owner_for_access_and_device_tokens() {
    let s = TestServer::start();
    let (id, token) = s.create_user("me@example.com", "secret123");
    s.get("/api/me", Some(&token)).expect_fields(200, json!({"id": id, "email": "me@example.com", "groups": []}));
    let r = s.post_form("/api/v1/users/get-device-token", &[("device_id", "phone-1"), ("access_token", &token)], None);
    let device = assert_hex32(&r.expect(200)["device_token"]);
    s.get("/api/me", Some(&device)).expect_fields(200, json!({"id": id}));
    s.get("/api/me", None).expect_fields(401, json!({"status": "error", "code": "unauthorized"}));
    s.get("/api/me", Some("0123456789abcdef0123456789abcdef")).expect_fields(401, json!({"code": "unauthorized"}));
    // An API token is not a user token.
    s.get("/api/me", Some(&s.api_token)).expect(401);
}

#[test]
fn profile_updates_names_locale_timezone_and_email_with_validation() {
    let s = TestServer::start();
    let (id, token) = s.create_user("prof@example.com", "secret123");
    s.create_user("taken@example.com", "secret123");
    let body = json!({"first_name": "Ján", "last_name": "Novák", "locale": "sk_SK", "timezone": "Europe/Bratislava",
        "email": "prof.new@example.com"});
    put(&s, "/api/profile", Some(&token), body).expect_fields(
        200,
        json!({"id": id, "first_name": "Ján", "last_name": "Novák", "locale": "sk_SK", "timezone": "Europe/Bratislava",
            "email": "prof.new@example.com"}),
    );
    s.get("/api/me", Some(&token)).expect_fields(200, json!({"email": "prof.new@example.com", "first_name": "Ján"}));
    s.login("prof.new@example.com", "secret123");
    put(&s, "/api/profile", Some(&token), json!({"email": "TAKEN@example.com"}))
        .expect_fields(409, json!({"code": "email_taken"}));
    put(&s, "/api/profile", Some(&token), json!({"email": "nope"}))
        .expect_fields(422, json!({"code": "invalid_email"}));
    put(&s, "/api/profile", Some(&token), json!({"locale": "??"}))
        .expect_fields(422, json!({"code": "invalid_locale"}));
    // A user cannot make themselves an admin or deactivate through the profile.
    for body in [json!({"role": "admin"}), json!({"active": false}), json!({"password": "x"})] {
        put(&s, "/api/profile", Some(&token), body).expect_fields(400, json!({"code": "invalid_input"}));
    }
    s.get("/api/me", Some(&token)).expect_fields(200, json!({"role": "user", "active": true}));
    put(&s, "/api/profile", None, json!({"first_name": "X"})).expect(401);
}

#[test]
fn password_change_needs_the_old_password_and_switches_credentials() {
    let s = TestServer::start();
    let (_, token) = s.create_user("pw@example.com", "secret123");
    let other = s.login("pw@example.com", "secret123");
    let path = "/api/profile/password";
    put(&s, path, Some(&token), change("wrong-one", "newpass1"))
        .expect_fields(422, json!({"status": "error", "code": "invalid_old_password"}));
    let mismatch = json!({"old_password": "secret123", "password": "newpass1", "password_confirmation": "newpass2"});
    put(&s, path, Some(&token), mismatch).expect_fields(422, json!({"code": "password_mismatch"}));
    put(&s, path, Some(&token), change("secret123", "abc")).expect_fields(422, json!({"code": "invalid_password"}));
    put(&s, path, Some(&token), json!({"password": "newpass1"})).expect_fields(422, json!({"code": "missing_field"}));
    put(&s, path, None, change("secret123", "newpass1")).expect(401);
    put(&s, path, Some(&token), change("secret123", "newpass1")).expect_fields(200, json!({"status": "ok"}));
    s.login("pw@example.com", "newpass1");
    assert_ne!(s.login_resp("pw@example.com", "secret123").status, 200, "the old password fails");
    // Without revoke_other_tokens the other session lives on.
    s.get("/api/me", Some(&other)).expect(200);
}

#[test]
fn password_change_revokes_the_other_tokens_when_asked_and_keeps_its_own() {
    let s = TestServer::start();
    let (_, token) = s.create_user("rv@example.com", "secret123");
    let other = s.login("rv@example.com", "secret123");
    let mut body = change("secret123", "newpass1");
    body["revoke_other_tokens"] = json!(true);
    put(&s, "/api/profile/password", Some(&token), body).expect(200);
    s.get("/api/me", Some(&other)).expect(401);
    s.get("/api/me", Some(&token)).expect(200);
}

#[test]
fn wrong_old_passwords_count_towards_the_login_rate_limit() {
    let s = TestServer::start();
    let (_, token) = s.create_user("rl@example.com", "secret123");
    for i in 0..10 {
        let r = put(&s, "/api/profile/password", Some(&token), change(&format!("wrong{i}xx"), "newpass1"));
        r.expect_fields(422, json!({"code": "invalid_old_password"}));
    }
    // Ten failures in a row: even the right old password is refused for now, and so is a login.
    put(&s, "/api/profile/password", Some(&token), change("secret123", "newpass1"))
        .expect_fields(429, json!({"code": "rate_limited"}));
    assert_ne!(s.login_resp("rl@example.com", "secret123").status, 200);
}
