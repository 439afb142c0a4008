//! Autologin tokens and Google/Apple ID-token sign-in through the real server, including the
//! attacks an ID-token verifier must refuse. A JWKS server on loopback publishes the test key
//! in `tests/fixtures/sso`.

use crate::harness::{StubServer, TestServer, run_cli_ok};
use base64::Engine;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/sso");
const KID: &str = "test-key-1";
const GOOGLE_ISS: &str = "https://accounts.google.test";
const APPLE_ISS: &str = "https://appleid.apple.test";
const CLIENT: &str = "test-client";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// RS256-signed with `key` under `kid`.
fn sign_with(claims: &Value, key: &str, kid: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(&fixture(key)).expect("test key");
    jsonwebtoken::encode(&header, claims, &key).expect("sign")
}

fn sign(claims: &Value) -> String {
    sign_with(claims, "signing-key.pem", KID)
}

fn google_claims(sub: &str, email: &str) -> Value {
    json!({"iss": GOOGLE_ISS, "aud": CLIENT, "sub": sub, "email": email, "iat": now(), "exp": now() + 600,
           "given_name": "Gina", "family_name": "Oogle"})
}

/// The identity provider's key server: the test JWKS at any path; `POST /token` (Google's code
/// exchange) answers `{"id_token": <token_reply>}` for the code `good-code` when one is set.
fn key_server_with_token_reply(token_reply: Option<String>) -> StubServer {
    let jwks = fixture("jwks.json");
    StubServer::start(move |request| match (&token_reply, request.starts_with("POST /token")) {
        (Some(id_token), true) if request.contains("code=good-code") => {
            json!({"id_token": id_token}).to_string().into_bytes()
        }
        (_, true) => br#"{"error":"invalid_grant"}"#.to_vec(),
        _ => jwks.clone(),
    })
}

fn key_server() -> StubServer {
    key_server_with_token_reply(None)
}

fn sso_config(jwks_port: u16) -> String {
    format!(
        "[sso.google]\nclient_ids = [\"{CLIENT}\"]\nissuers = [\"{GOOGLE_ISS}\"]\njwks_url = \"http://127.0.0.1:{jwks_port}/certs\"\n\
         [sso.apple]\nclient_ids = [\"{CLIENT}\"]\nissuers = [\"{APPLE_ISS}\"]\njwks_url = \"http://127.0.0.1:{jwks_port}/keys\"\n"
    )
}

fn google(server: &TestServer, id_token: &str, extra: &[(&str, &str)]) -> crate::harness::Resp {
    let mut form = vec![("id_token", id_token)];
    form.extend_from_slice(extra);
    server.post_form("/api/v1/users/google-token-sign-in", &form, None)
}

fn new_autologin(server: &TestServer, body: Value) -> crate::harness::Resp {
    server.post_json("/api/autologin-tokens", body, Some(&server.api_token))
}

fn autologin_login(server: &TestServer, token: &str) -> crate::harness::Resp {
    server.post_form("/api/v1/users/autologin-token-login", &[("autologin_token", token)], None)
}

#[test]
fn autologin_token_signs_in_once_and_is_then_spent() {
    let server = TestServer::start();
    let (id, _) = server.create_user("jane@example.com", "secret123");
    let issued = new_autologin(&server, json!({"email": "jane@example.com"}));
    let token = issued.expect(200)["token"].as_str().expect("token").to_owned();
    assert_eq!(issued["max_count"], 1);

    let login = autologin_login(&server, &token);
    let body = login.expect_fields(200, json!({"status": "ok", "user": {"id": id, "email": "jane@example.com"}}));
    let access = body["access"]["token"].as_str().expect("access token").to_owned();
    server.user_info(&access).expect(200);

    autologin_login(&server, &token).expect_fields(
        401,
        json!({"status": "error", "error": "auth_failed", "message": "Token reached max users count"}),
    );
}

#[test]
fn autologin_token_allows_max_count_uses() {
    let server = TestServer::start();
    server.create_user("jane@example.com", "secret123");
    let token = new_autologin(&server, json!({"email": "jane@example.com", "max_count": 2})).expect(200)["token"]
        .as_str()
        .expect("token")
        .to_owned();
    autologin_login(&server, &token).expect(200);
    autologin_login(&server, &token).expect(200);
    autologin_login(&server, &token).expect(401);
}

#[test]
fn autologin_token_outside_its_window_or_unknown_is_401_invalid_token() {
    let server = TestServer::start();
    server.create_user("jane@example.com", "secret123");
    let past = new_autologin(
        &server,
        json!({"email": "jane@example.com", "valid_from": "2020-01-01T00:00:00Z", "valid_to": "2020-01-02T00:00:00Z"}),
    );
    let token = past.expect(200)["token"].as_str().expect("token").to_owned();
    autologin_login(&server, &token)
        .expect_fields(401, json!({"status": "error", "error": "auth_failed", "message": "Invalid token"}));
    autologin_login(&server, "0123456789abcdef0123456789abcdef")
        .expect_fields(401, json!({"message": "Invalid token"}));
    server
        .post_form("/api/v1/users/autologin-token-login", &[], None)
        .expect_fields(400, json!({"code": "invalid_input", "errors": {"autologin_token": ["Field is required"]}}));
}

#[test]
fn autologin_for_an_admin_is_403() {
    let server = TestServer::start_with(None, |data| {
        run_cli_ok(data, &["user", "add", "admin@example.com", "--password", "secret123", "--admin"]);
    });
    let token = new_autologin(&server, json!({"email": "admin@example.com"})).expect(200)["token"]
        .as_str()
        .expect("token")
        .to_owned();
    autologin_login(&server, &token).expect_fields(
        403,
        json!({"status": "error", "error": "auth_failed", "message": "Autologin for this account is disabled"}),
    );
}

#[test]
fn autologin_pairs_the_new_token_with_a_device_and_refuses_an_unknown_device() {
    let server = TestServer::start();
    server.create_user("jane@example.com", "secret123");
    let token = new_autologin(&server, json!({"email": "jane@example.com", "max_count": 2})).expect(200)["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let unknown = "00000000000000000000000000000000";
    server
        .post_form("/api/v1/users/autologin-token-login", &[("autologin_token", &token), ("device_token", unknown)], None)
        .expect_fields(
            404,
            json!({"status": "error", "error": "invalid_device_token", "message": format!("device token doesn't exist: {unknown}")}),
        );
    let device =
        server.post_form("/api/v1/users/get-device-token", &[("device_id", "phone")], None).expect(200)["device_token"]
            .as_str()
            .expect("device token")
            .to_owned();
    server
        .post_form(
            "/api/v1/users/autologin-token-login",
            &[("autologin_token", &token), ("device_token", &device)],
            None,
        )
        .expect(200);
    server.user_info(&device).expect_fields(200, json!({"user": {"email": "jane@example.com"}}));
}

#[test]
fn autologin_token_api_validates_its_input() {
    let server = TestServer::start();
    server.create_user("jane@example.com", "secret123");
    new_autologin(&server, json!({"email": "nobody@example.com"}))
        .expect_fields(404, json!({"code": "user_not_found"}));
    new_autologin(&server, json!({"email": "jane@example.com", "valid_from": "yesterday"}))
        .expect_fields(400, json!({"code": "invalid_input"}));
    new_autologin(
        &server,
        json!({"email": "jane@example.com", "valid_from": "2030-01-02T00:00:00Z", "valid_to": "2030-01-01T00:00:00Z"}),
    )
    .expect_fields(400, json!({"code": "invalid_input"}));
    new_autologin(&server, json!({"email": "jane@example.com", "max_count": 0})).expect(400);
    new_autologin(&server, json!({})).expect(400);
    server.post_json("/api/autologin-tokens", json!({"email": "jane@example.com"}), None).expect(401);
}

#[test]
fn autologin_token_from_the_cli_works_on_the_server() {
    let token = Arc::new(std::sync::Mutex::new(String::new()));
    let slot = token.clone();
    let server = TestServer::start_with(None, move |data| {
        run_cli_ok(data, &["user", "add", "cli@example.com", "--password", "secret123"]);
        let out = run_cli_ok(data, &["autologin-token", "create", "--email", "cli@example.com"]);
        *slot.lock().expect("lock") = out.lines().last().unwrap_or_default().trim().to_owned();
    });
    let token = token.lock().expect("lock").clone();
    autologin_login(&server, &token).expect_fields(200, json!({"user": {"email": "cli@example.com"}}));
}

#[test]
fn google_sign_in_creates_the_user_links_the_account_and_matches_it_later() {
    let keys = key_server();
    let server = TestServer::start_with_config(&sso_config(keys.port));
    let first = google(&server, &sign(&google_claims("g-1", "gina@example.com")), &[("create_access_token", "1")]);
    let body =
        first.expect_fields(200, json!({"status": "ok", "user": {"email": "gina@example.com"}, "user_meta": {}}));
    let id = body["user"]["id"].clone();
    assert!(body["user"]["created_at"].is_string());
    let access = body["access"]["token"].as_str().expect("token").to_owned();
    server.user_info(&access).expect_fields(200, json!({"user": {"id": id, "first_name": "Gina"}}));

    // The same Google account with a changed email still finds the same user.
    let again = google(&server, &sign(&google_claims("g-1", "gina.new@example.com")), &[]);
    assert_eq!(again.expect(200)["user"]["id"], id);
    assert!(again.body.get("access").is_none(), "no token unless create_access_token");
    assert_eq!(server.email_check("gina.new@example.com")["status"], "available", "no second user");
}

#[test]
fn google_sign_in_matches_an_existing_user_by_email() {
    let keys = key_server();
    let server = TestServer::start_with_config(&sso_config(keys.port));
    let (id, _) = server.create_user("jane@example.com", "secret123");
    let resp = google(&server, &sign(&google_claims("g-2", "jane@example.com")), &[("create_access_token", "true")]);
    assert_eq!(resp.expect(200)["user"]["id"], id);
}

#[test]
fn apple_sign_in_checks_the_nonce_when_given() {
    let keys = key_server();
    let server = TestServer::start_with_config(&sso_config(keys.port));
    let claims = json!({"iss": APPLE_ISS, "aud": CLIENT, "sub": "a-1", "email": "ann@example.com", "exp": now() + 600, "nonce": "n-123"});
    let token = sign(&claims);
    let apple = |extra: &[(&str, &str)]| {
        let mut form = vec![("id_token", token.as_str())];
        form.extend_from_slice(extra);
        server.post_form("/api/v1/users/apple-token-sign-in", &form, None)
    };
    apple(&[("nonce", "other")]).expect_fields(400, json!({"code": "error_verifying_id_token"}));
    apple(&[("nonce", "n-123"), ("create_access_token", "1")])
        .expect_fields(200, json!({"user": {"email": "ann@example.com"}}));
}

#[test]
fn id_token_sign_in_without_configured_client_ids_is_400_sso_disabled() {
    let server = TestServer::start();
    google(&server, "x.y.z", &[]).expect_fields(400, json!({"status": "error", "code": "sso_disabled"}));
    server
        .post_form("/api/v1/users/apple-token-sign-in", &[("id_token", "x.y.z")], None)
        .expect_fields(400, json!({"code": "sso_disabled"}));
}

#[test]
fn id_token_sign_in_checks_device_token_rules_and_required_params() {
    let keys = key_server();
    let server = TestServer::start_with_config(&sso_config(keys.port));
    let token = sign(&google_claims("g-3", "dev@example.com"));
    google(&server, &token, &[("device_token", "00000000000000000000000000000000")])
        .expect_fields(400, json!({"code": "no_access_token_to_pair_device_token"}));
    google(&server, &token, &[("device_token", "00000000000000000000000000000000"), ("create_access_token", "1")])
        .expect_fields(404, json!({"code": "device_token_doesnt_exist"}));
    server
        .post_form("/api/v1/users/google-token-sign-in", &[], None)
        .expect_fields(400, json!({"code": "invalid_input"}));
}

#[test]
fn forged_expired_and_misdirected_id_tokens_never_sign_anyone_in() {
    let keys = key_server();
    let server = TestServer::start_with_config(&sso_config(keys.port));
    let good = google_claims("g-9", "victim@example.com");
    let with = |field: &str, value: Value| {
        let mut c = good.clone();
        c[field] = value;
        c
    };
    let without = |field: &str| {
        let mut c = good.clone();
        c.as_object_mut().expect("object").remove(field);
        c
    };
    let header_b64 = |h: Value| b64(h.to_string().as_bytes());
    let alg_none = format!("{}.{}.", header_b64(json!({"alg": "none", "kid": KID})), b64(good.to_string().as_bytes()));
    let hs256_with_public_key = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        header.kid = Some(KID.to_owned());
        let key = jsonwebtoken::EncodingKey::from_secret(&fixture("signing-key.pub.pem"));
        jsonwebtoken::encode(&header, &good, &key).expect("sign")
    };
    let tampered = {
        let valid = sign(&with("email", json!("someone@example.com")));
        let parts: Vec<&str> = valid.split('.').collect();
        format!("{}.{}.{}", parts[0], b64(good.to_string().as_bytes()), parts[2])
    };
    let attacks: Vec<(&str, String)> = vec![
        ("alg none", alg_none),
        ("HS256 keyed with the RSA public key", hs256_with_public_key),
        ("unknown kid", sign_with(&good, "signing-key.pem", "no-such-key")),
        ("signed by another key", sign_with(&good, "other-key.pem", KID)),
        ("expired", sign(&with("exp", json!(now() - 3600)))),
        ("not yet valid", sign(&with("nbf", json!(now() + 3600)))),
        ("wrong aud", sign(&with("aud", json!("someone-else")))),
        ("missing aud", sign(&without("aud"))),
        ("wrong iss", sign(&with("iss", json!("https://evil.test")))),
        ("missing iss", sign(&without("iss"))),
        ("missing exp", sign(&without("exp"))),
        ("tampered payload", tampered),
        ("malformed", "not-a-token".to_owned()),
        ("three garbage parts", "a.b.c".to_owned()),
    ];
    for (name, token) in attacks {
        let resp = google(&server, &token, &[("create_access_token", "1")]);
        assert_eq!(resp.status, 400, "{name}: {}", resp.text);
        assert_eq!(resp["code"], "error_verifying_id_token", "{name}: {}", resp.text);
        assert!(resp.body.get("access").is_none(), "{name}");
    }
    assert_eq!(server.email_check("victim@example.com")["status"], "available", "nobody was created");
    // The genuine token still works afterwards.
    google(&server, &sign(&good), &[]).expect(200);
}

#[test]
fn unknown_key_ids_do_not_make_the_server_hammer_the_key_server() {
    let keys = key_server();
    let server = TestServer::start_with_config(&sso_config(keys.port));
    google(&server, &sign(&google_claims("g-5", "a@example.com")), &[]).expect(200);
    let after_first = keys.hits.load(Ordering::Relaxed);
    for i in 0..10 {
        let forged = sign_with(&google_claims("g-5", "a@example.com"), "signing-key.pem", &format!("made-up-{i}"));
        google(&server, &forged, &[]).expect(400);
    }
    assert_eq!(keys.hits.load(Ordering::Relaxed), after_first, "made-up key ids within a minute cause no refetch");
}

#[test]
fn unreachable_key_server_gives_a_clear_error_within_seconds() {
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let server = TestServer::start_with_config(&sso_config(dead));
    let started = Instant::now();
    let resp = google(&server, &sign(&google_claims("g-6", "b@example.com")), &[]);
    assert!(started.elapsed() < Duration::from_secs(7), "took {:?}", started.elapsed());
    resp.expect_fields(503, json!({"status": "error", "code": "sso_unavailable"}));
    assert_eq!(server.email_check("b@example.com")["status"], "available");
}

#[test]
fn gsi_auth_code_is_exchanged_for_the_id_token_at_the_configured_endpoint() {
    let exchanged = sign(&google_claims("g-7", "code@example.com"));
    let keys = key_server_with_token_reply(Some(exchanged));
    let port = keys.port;
    let server = TestServer::start_with_config(&format!(
        "[sso.google]\nclient_ids = [\"{CLIENT}\"]\nissuers = [\"{GOOGLE_ISS}\"]\n\
         jwks_url = \"http://127.0.0.1:{port}/certs\"\ntoken_url = \"http://127.0.0.1:{port}/token\"\n"
    ));
    // The request's own id_token is garbage; the exchanged one decides.
    google(&server, "garbage", &[("gsi_auth_code", "good-code"), ("is_web", "1")])
        .expect_fields(200, json!({"user": {"email": "code@example.com"}}));
    // A refused exchange leaves the request's id_token, which is then refused.
    google(&server, "garbage", &[("gsi_auth_code", "bad-code")])
        .expect_fields(400, json!({"code": "error_verifying_id_token"}));
}

#[test]
fn sign_in_handlers_see_id_token_sign_ins() {
    let keys = key_server();
    let (server, _plugins) = crate::harness::server_with_plugins(&["deny-all"], |_, t| t, &sso_config(keys.port));
    let resp = google(&server, &sign(&google_claims("g-8", "deny@example.com")), &[("create_access_token", "1")]);
    resp.expect_fields(403, json!({"status": "error", "code": "sign_in_denied", "message": "denied by policy"}));
    assert!(resp.body.get("access").is_none());
}

fn upsert_meta(server: &TestServer, user_id: &Value, key: &str, value: &str) {
    server
        .post_json(
            "/api/v1/user-meta/upsert",
            json!({"user_id": user_id, "key": key, "value": value}),
            Some(&server.api_token),
        )
        .expect(200);
}

#[test]
fn a_secured_admin_account_cannot_be_linked_to_a_google_account() {
    let keys = key_server();
    let server = TestServer::start_with(Some(&sso_config(keys.port)), |data| {
        run_cli_ok(data, &["user", "add", "boss@example.com", "--password", "secret123", "--admin"]);
    });
    let id = server.email_check("boss@example.com")["id"].clone();
    upsert_meta(&server, &id, "secure_login_allowed", "1");
    let resp = google(&server, &sign(&google_claims("g-boss", "boss@example.com")), &[("create_access_token", "1")]);
    resp.expect_fields(403, json!({"status": "error", "code": "error_linking_admin_account"}));
    assert!(resp["message"].as_str().unwrap_or_default().contains("accountwith admin rights"), "{}", resp.text);
}

#[test]
fn secure_admin_sign_in_lets_admins_in_only_through_google_with_secure_login_allowed() {
    let keys = key_server();
    let plugins = tempfile::tempdir().expect("plugins dir");
    crate::harness::install(plugins.path(), "secure-admin-sign-in", |t| t);
    let config = format!("plugins = {:?}\n{}", plugins.path().display().to_string(), sso_config(keys.port));
    let server = TestServer::start_with(Some(&config), |data| {
        run_cli_ok(data, &["user", "add", "boss@example.com", "--password", "secret123", "--admin"]);
    });
    let id = server.email_check("boss@example.com")["id"].clone();
    let token = sign(&google_claims("g-boss", "boss@example.com"));
    // Google links the account (not yet secured), but the handler refuses: no secure_login_allowed.
    google(&server, &token, &[("create_access_token", "1")]).expect_fields(403, json!({"code": "sign_in_denied"}));
    upsert_meta(&server, &id, "secure_login_allowed", "1");
    // The linked account signs in through Google now; the password still does not.
    let allowed = google(&server, &token, &[("create_access_token", "1")]);
    let access = allowed.expect(200)["access"]["token"].as_str().expect("token").to_owned();
    server.user_info(&access).expect_fields(200, json!({"user": {"email": "boss@example.com"}}));
    server.login_resp("boss@example.com", "secret123").expect_fields(403, json!({"code": "sign_in_denied"}));
}

#[test]
fn autologin_tokens_are_listed_and_revoked_as_resources() {
    let server = TestServer::start();
    let (id, _) = server.create_user("jane@example.com", "secret123");
    let token = new_autologin(&server, json!({"email": "jane@example.com", "max_count": 3})).expect(200)["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let listed = server.get(&format!("/api/users/{id}/autologin-tokens"), Some(&server.api_token));
    let entry = listed.expect(200)["data"][0].clone();
    assert_eq!(entry["max_count"], 3);
    assert!(entry.get("token").is_none(), "values are never listed: {entry}");
    let token_id = entry["id"].as_i64().expect("id");

    let path = format!("/api/users/{id}/autologin-tokens/{token_id}");
    server.req("DELETE", &path).bearer(Some(&server.api_token)).send().expect_fields(200, json!({"id": token_id}));
    autologin_login(&server, &token).expect_fields(401, json!({"message": "Invalid token"}));
    server.req("DELETE", &path).bearer(Some(&server.api_token)).send().expect(404);
    let listed = server.get(&format!("/api/users/{id}/autologin-tokens"), Some(&server.api_token));
    assert_eq!(listed.expect(200)["data"], json!([]));
}
