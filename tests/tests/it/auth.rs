//! Authorization as a client meets it: API tokens and their route whitelists, user tokens
//! (access and device), the `Authorization` header parser, and the login rate limits
//! (10 consecutive failures within 10 s, per user and per IP).

use std::thread;
use std::time::Duration;

use serde_json::json;

use crate::harness::{TestServer, create_api_token, run_cli_ok};

const NOT_SET: &str = "Not authorized: Authorization header HTTP_Authorization is not set";
const INVALID_STRUCTURE: &str = "Not authorized: Authorization header contains invalid structure";
const TOO_MANY: &str = "Too many unsuccessful login attempts. Try it later.";

/// The API-token routes with a minimal valid parameter set each (the request must pass
/// authorization; what it does afterwards does not matter here).
const API_TOKEN_ROUTES: [(&str, &str); 6] = [
    ("/api/v1/users/email-check", "users/email-check"),
    ("/api/v1/users/create", "users/create"),
    ("/api/v1/users/update", "users/update"),
    ("/api/v1/users/confirm", "users/confirm"),
    ("/api/v1/users/list", "users/list"),
    ("/api/v1/users/touch", "users/touch"),
];

#[test]
fn api_token_route_without_authorization_is_403_header_not_set() {
    let s = TestServer::start();
    for (path, _) in API_TOKEN_ROUTES {
        let r = s.post_form(path, &[("email", "a@example.com")], None);
        r.expect_fields(403, json!({"status": "error", "error": "no_authorization", "message": NOT_SET}));
    }
    // Nothing was created by the rejected users/create.
    s.email_check("a@example.com").expect_fields(200, json!({"status": "available"}));
}

#[test]
fn authorization_header_with_wrong_shape_is_403_invalid_structure() {
    let s = TestServer::start();
    let token = s.api_token.clone();
    for header in [
        "Bearer".to_owned(),
        format!("Bearer {token} extra"),
        format!("Bearer  {token}"),
        format!("Basic {token}"),
        format!("Token {token}"),
        token.clone(),
    ] {
        let r = s
            .req("POST", "/api/v1/users/list")
            .form(&[("user_ids", "[]"), ("page", "1")])
            .header("Authorization", &header)
            .send();
        assert_eq!(r.status, 403, "header {header:?}: {}", r.text);
        assert_eq!(
            r.body,
            json!({"status": "error", "message": INVALID_STRUCTURE, "error": "no_authorization"}),
            "header {header:?}"
        );
    }
}

#[test]
fn bearer_scheme_is_case_insensitive_for_api_and_user_tokens() {
    let s = TestServer::start();
    let (id, access) = s.create_user("anna@example.com", "secret123");
    for scheme in ["bearer", "BEARER", "BeArEr"] {
        s.req("POST", "/api/v1/users/list")
            .form(&[("user_ids", "[]"), ("page", "1")])
            .header("Authorization", &format!("{scheme} {}", s.api_token))
            .send()
            .expect_fields(200, json!({"status": "ok", "totalCount": 1}));
        s.req("GET", "/api/v1/user/info")
            .header("Authorization", &format!("{scheme} {access}"))
            .send()
            .expect_fields(200, json!({"user": {"id": id}}));
    }
}

#[test]
fn unknown_api_token_is_403_token_doesnt_exists() {
    let s = TestServer::start();
    s.post_form(
        "/api/v1/users/create",
        &[("email", "a@example.com"), ("password", "secret123")],
        Some("0123456789abcdef0123456789abcdef"),
    )
    .expect_fields(
        403,
        json!({"status": "error", "error": "no_authorization",
               "message": "Not authorized: Token doesn't exists"}),
    );
    s.email_check("a@example.com").expect_fields(200, json!({"status": "available"}));
}

#[test]
fn revoked_api_token_is_403_token_isnt_active() {
    let mut revoked = String::new();
    let s = TestServer::start_with(None, |data| {
        revoked = create_api_token(data, "old", "*");
        run_cli_ok(data, &["api-token", "revoke", "old"]);
    });
    s.post_form("/api/v1/users/list", &[("user_ids", "[]"), ("page", "1")], Some(&revoked)).expect_fields(
        403,
        json!({"status": "error", "error": "no_authorization",
               "message": "Not authorized: Token isn't active"}),
    );
}

#[test]
fn api_token_without_route_in_whitelist_is_403_naming_the_resource() {
    let mut list_only = String::new();
    let s = TestServer::start_with(None, |data| {
        list_only = create_api_token(data, "lister", "users/list");
    });
    s.post_form("/api/v1/users/list", &[("user_ids", "[]"), ("page", "1")], Some(&list_only))
        .expect_fields(200, json!({"status": "ok"}));
    for (path, name) in API_TOKEN_ROUTES {
        if name == "users/list" {
            continue;
        }
        let r = s
            .req("POST", path)
            .query(&[("id", "1")])
            .form(&[("email", "a@example.com"), ("user_id", "1")])
            .bearer(Some(&list_only))
            .send();
        r.expect_fields(
            403,
            json!({"status": "error", "error": "no_authorization",
                   "message": format!("Not authorized: Token has no access to resource [{name}]")}),
        );
    }
    s.email_check("a@example.com").expect_fields(200, json!({"status": "available"}));
}

#[test]
fn api_token_whitelist_with_several_routes_allows_each_of_them() {
    let mut token = String::new();
    let s = TestServer::start_with(None, |data| {
        token = create_api_token(data, "registrar", "users/create,users/confirm");
    });
    s.post_form("/api/v1/users/create", &[("email", "anna@example.com"), ("password", "secret123")], Some(&token))
        .expect(200);
    s.post_form("/api/v1/users/confirm", &[("email", "anna@example.com")], Some(&token))
        .expect_fields(200, json!({"status": "ok"}));
    s.post_form("/api/v1/users/email-check", &[("email", "anna@example.com")], Some(&token))
        .expect_fields(403, json!({"message": "Not authorized: Token has no access to resource [users/email-check]"}));
}

#[test]
fn user_access_token_is_not_accepted_as_api_token() {
    let s = TestServer::start();
    let (_, access) = s.create_user("anna@example.com", "secret123");
    s.post_form("/api/v1/users/list", &[("user_ids", "[]"), ("page", "1")], Some(&access))
        .expect_fields(403, json!({"error": "no_authorization", "message": "Not authorized: Token doesn't exists"}));
}

#[test]
fn api_token_is_not_accepted_as_user_token() {
    let s = TestServer::start();
    s.user_info(&s.api_token.clone()).expect_fields(
        403,
        json!({"error": "no_authorization",
               "message": "Not authorized: Device token doesn't exist"}),
    );
}

#[test]
fn user_token_route_with_invalid_header_structure_is_403() {
    let s = TestServer::start();
    let (_, access) = s.create_user("anna@example.com", "secret123");
    let r = s.req("GET", "/api/v1/user/info").header("Authorization", &format!("Bearer {access} x")).send();
    r.expect_fields(403, json!({"status": "error", "error": "no_authorization", "message": INVALID_STRUCTURE}));
}

#[test]
fn public_routes_ignore_a_garbage_authorization_header() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    let garbage = [("Authorization", "Basic a b c")];
    let login = s
        .req("POST", "/api/v1/users/login")
        .form(&[("email", "anna@example.com"), ("password", "secret123")])
        .header(garbage[0].0, garbage[0].1)
        .send();
    login.expect_fields(200, json!({"status": "ok"}));
    s.req("POST", "/api/v1/users/validate-email")
        .form(&[("email", "ok@example.com")])
        .header(garbage[0].0, garbage[0].1)
        .send()
        .expect_fields(200, json!({"status": "success"}));
    s.req("POST", "/api/v1/users/get-device-token")
        .form(&[("device_id", "d1")])
        .header(garbage[0].0, garbage[0].1)
        .send()
        .expect(200);
}

fn fail_login(s: &TestServer, email: &str, times: usize) {
    for i in 0..times {
        let r = s.login_resp(email, "wrong-password");
        assert_eq!(r.status, 400, "failed attempt {i}: {}", r.text);
        assert_ne!(r["message"], TOO_MANY, "attempt {} must not be rate limited yet: {}", i + 1, r.text);
    }
}

#[test]
fn eleventh_attempt_after_ten_failures_is_blocked_even_with_correct_password() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    fail_login(&s, "anna@example.com", 10);
    s.login_resp("anna@example.com", "secret123").expect_fields(
        400,
        json!({"status": "error", "error": "auth_failed", "code": "auth_failed",
               "message": TOO_MANY}),
    );
}

#[test]
fn login_block_lifts_after_ten_quiet_seconds() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    fail_login(&s, "anna@example.com", 10);
    s.login_resp("anna@example.com", "secret123").expect_fields(400, json!({"message": TOO_MANY}));
    thread::sleep(Duration::from_secs(11));
    s.login("anna@example.com", "secret123");
}

#[test]
fn nine_failures_do_not_block_and_a_success_resets_the_count() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    fail_login(&s, "anna@example.com", 9);
    s.login("anna@example.com", "secret123");
    fail_login(&s, "anna@example.com", 9);
    s.login("anna@example.com", "secret123");
}

#[test]
fn ten_failures_from_one_ip_for_unknown_emails_block_other_users_logins() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    for i in 0..10 {
        s.login_resp(&format!("nobody{i}@example.com"), "whatever")
            .expect_fields(400, json!({"code": "identity_not_found"}));
    }
    s.login_resp("anna@example.com", "secret123").expect_fields(
        400,
        json!({"status": "error", "error": "auth_failed", "code": "auth_failed",
               "message": TOO_MANY}),
    );
}

#[test]
fn email_check_is_not_rate_limited_after_login_failures() {
    let s = TestServer::start();
    let (id, _) = s.create_user("anna@example.com", "secret123");
    fail_login(&s, "anna@example.com", 10);
    s.login_resp("anna@example.com", "secret123").expect_fields(400, json!({"message": TOO_MANY}));
    s.email_check("anna@example.com").expect_fields(200, json!({"status": "taken", "id": id}));
}

#[test]
fn email_v2_is_429_rate_limit_exceeded_after_ten_wrong_passwords() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    for i in 0..10 {
        let r =
            s.post_form("/api/v2/users/email", &[("email", "anna@example.com"), ("password", "wrong-password")], None);
        assert_eq!(r.status, 401, "attempt {i}: {}", r.text);
    }
    s.post_form("/api/v2/users/email", &[("email", "anna@example.com"), ("password", "secret123")], None)
        .expect_fields(
            429,
            json!({"status": "error", "message": "Rate limit exceeded", "code": "rate_limit_exceeded"}),
        );
}

#[test]
fn email_v1_is_200_rate_limit_exceeded_after_ten_wrong_passwords() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    for i in 0..10 {
        let r =
            s.post_form("/api/v1/users/email", &[("email", "anna@example.com"), ("password", "wrong-password")], None);
        assert_eq!(r.status, 200, "attempt {i}: {}", r.text);
        assert_eq!(r["password"], json!(false), "attempt {i}: {}", r.text);
    }
    s.post_form("/api/v1/users/email", &[("email", "anna@example.com"), ("password", "secret123")], None)
        .expect_fields(
            200,
            json!({"status": "error", "message": "Rate limit exceeded", "code": "rate_limit_exceeded"}),
        );
}

#[test]
fn failed_email_checks_count_towards_the_login_limit() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    for _ in 0..10 {
        s.post_form("/api/v2/users/email", &[("email", "anna@example.com"), ("password", "wrong-password")], None)
            .expect(401);
    }
    s.login_resp("anna@example.com", "secret123")
        .expect_fields(400, json!({"code": "auth_failed", "message": TOO_MANY}));
}
