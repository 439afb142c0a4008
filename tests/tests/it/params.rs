//! The HTTP surface shared by every route: where parameters come from (query string,
//! urlencoded form, multipart form, JSON object body), methods, trailing slashes, OPTIONS,
//! unknown routes, the body size limit and the JSON content type. Route semantics are tested in
//! the other modules.

use serde_json::json;

use crate::harness::{Body, TestServer, assert_hex32};

const LOGIN: &str = "/api/v1/users/login";
const CREATE: &str = "/api/v1/users/create";

fn login_with(s: &TestServer, body: Body, query: &[(&str, &str)]) {
    let r = s.req("POST", LOGIN).query(query).body(body).send();
    let body = r.expect_fields(200, json!({"status": "ok", "user": {"email": "anna@example.com"}}));
    let token = assert_hex32(&body["access"]["token"]);
    s.user_info(&token).expect(200);
}

fn pairs() -> Vec<(String, String)> {
    vec![("email".to_owned(), "anna@example.com".to_owned()), ("password".to_owned(), "secret 123&=+".to_owned())]
}

fn server_with_anna() -> TestServer {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret 123&=+");
    s
}

#[test]
fn login_reads_params_from_the_query_string() {
    let s = server_with_anna();
    login_with(&s, Body::Empty, &[("email", "anna@example.com"), ("password", "secret 123&=+")]);
}

#[test]
fn login_reads_params_from_an_urlencoded_form() {
    let s = server_with_anna();
    login_with(&s, Body::Form(pairs()), &[]);
}

#[test]
fn login_reads_params_from_a_multipart_form() {
    let s = server_with_anna();
    login_with(&s, Body::Multipart(pairs()), &[]);
}

#[test]
fn login_reads_params_from_a_json_object_body() {
    let s = server_with_anna();
    login_with(&s, Body::Json(json!({"email": "anna@example.com", "password": "secret 123&=+"})), &[]);
}

#[test]
fn create_reads_params_from_every_body_kind() {
    let s = TestServer::start();
    for kind in ["query", "form", "multipart", "json"] {
        let email = format!("{kind}@example.com");
        let fields =
            [("email", email.as_str()), ("password", "secret123"), ("first_name", "Žofia"), ("last_name", kind)];
        let req = s.req("POST", CREATE).bearer(Some(&s.api_token));
        let req = match kind {
            "query" => req.query(&fields),
            "form" => req.form(&fields),
            "multipart" => req.multipart(&fields),
            _ => req.json(json!({"email": email, "password": "secret123",
                                 "first_name": "Žofia", "last_name": kind})),
        };
        let r = req.send();
        assert_eq!(r.status, 200, "{kind}: {}", r.text);
        assert_eq!(r["user"]["email"], email.as_str(), "{kind}");
        assert_eq!(r["user"]["first_name"], "Žofia", "{kind}");
        assert_eq!(r["user"]["last_name"], kind, "{kind}");
        s.login(&email, "secret123");
    }
    s.list_all(false).expect_fields(200, json!({"totalCount": 4}));
}

#[test]
fn json_body_accepts_numbers_and_booleans_as_values() {
    let s = TestServer::start();
    s.post_json(
        CREATE,
        json!({"email": "num@example.com", "password": "secret123", "ext_id": 7}),
        Some(&s.api_token.clone()),
    )
    .expect_fields(200, json!({"user": {"ext_id": 7}}));
    let r = s.post_json(CREATE, json!({"email": "ghost@example.com", "unclaimed": true}), Some(&s.api_token.clone()));
    assert!(
        r.expect(200).get("access").is_none(),
        "unclaimed=true creates an unclaimed user without a token: {}",
        r.text
    );
    s.email_check("ghost@example.com").expect_fields(200, json!({"status": "available"}));
}

#[test]
fn users_list_reads_user_ids_from_a_json_body() {
    let s = TestServer::start();
    let (a, _) = s.create_user("a@example.com", "secret123");
    s.create_user("b@example.com", "secret123");
    let r = s.post_json(
        "/api/v1/users/list",
        json!({"user_ids": format!("[{a}]"), "page": "1"}),
        Some(&s.api_token.clone()),
    );
    r.expect_fields(200, json!({"totalCount": 1, "users": {a.to_string(): {"email": "a@example.com"}}}));
}

#[test]
fn responses_are_json_with_utf8_content_type_and_unescaped_unicode() {
    let s = TestServer::start();
    let r = s.create(&[("email", "anna@example.com"), ("password", "secret123"), ("first_name", "Ľudmila")]);
    r.expect(200);
    assert_eq!(r.content_type.as_deref(), Some("application/json; charset=utf-8"));
    assert!(r.text.contains("Ľudmila"), "unicode is not escaped (JSON_UNESCAPED_UNICODE): {}", r.text);
    let err = s.login_resp("anna@example.com", "wrong-password");
    err.expect(400);
    assert_eq!(err.content_type.as_deref(), Some("application/json; charset=utf-8"));
}

#[test]
fn any_http_method_reaches_a_route() {
    let s = TestServer::start();
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
        let r = s.req(method, "/api/v1/users/validate-email").query(&[("email", "ok@example.com")]).send();
        assert_eq!(r.status, 200, "{method}: {}", r.text);
        assert_eq!(r.body, json!({"status": "success"}), "{method}");
    }
    let r = s
        .req("PUT", CREATE)
        .form(&[("email", "put@example.com"), ("password", "secret123")])
        .bearer(Some(&s.api_token))
        .send();
    r.expect_fields(200, json!({"user": {"email": "put@example.com"}}));
}

#[test]
fn trailing_slash_reaches_the_same_route() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    let r = s.post_form("/api/v1/users/login/", &[("email", "anna@example.com"), ("password", "secret123")], None);
    let token = assert_hex32(&r.expect(200)["access"]["token"]);
    s.get("/api/v1/user/info/", Some(&token)).expect_fields(200, json!({"user": {"email": "anna@example.com"}}));
    s.post_form("/api/v2/users/email/", &[("email", "anna@example.com")], None)
        .expect_fields(200, json!({"status": "taken"}));
}

#[test]
fn options_on_any_route_is_200_options_ok_without_authorization() {
    let s = TestServer::start();
    for path in [
        "/api/v1/users/login",
        "/api/v1/users/create",
        "/api/v1/user/info",
        "/api/v1/users/list/",
        "/api/v2/users/email",
    ] {
        let r = s.req("OPTIONS", path).send();
        assert_eq!(r.status, 200, "OPTIONS {path}: {}", r.text);
        assert_eq!(r.body, json!({"options": "ok"}), "OPTIONS {path}");
    }
}

#[test]
fn unknown_route_is_404_json_not_found() {
    let s = TestServer::start();
    for path in ["/api/v1/users/nope", "/api/v1/nothing/here", "/api/v9/users/login", "/api/v1/users"] {
        let r = s.post_form(path, &[("email", "a@example.com")], None);
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(r["status"], "error", "{path}: {}", r.text);
        assert_eq!(r["code"], "not_found", "{path}: {}", r.text);
        assert_eq!(r.content_type.as_deref(), Some("application/json; charset=utf-8"), "{path}");
    }
}

#[test]
fn body_over_one_mebibyte_is_413_payload_too_large() {
    let s = server_with_anna();
    let padding = "x".repeat(1024 * 1024 + 1024);
    let r = s
        .req("POST", LOGIN)
        .form(&[("email", "anna@example.com"), ("password", "secret 123&=+"), ("padding", &padding)])
        .send();
    r.expect_fields(413, json!({"status": "error", "code": "payload_too_large"}));
    let r = s
        .req("POST", LOGIN)
        .json(json!({"email": "anna@example.com", "password": "secret 123&=+",
                     "padding": padding}))
        .send();
    r.expect_fields(413, json!({"code": "payload_too_large"}));
    // The server is still fine afterwards.
    s.login("anna@example.com", "secret 123&=+");
}

#[test]
fn body_just_under_one_mebibyte_is_accepted() {
    let s = server_with_anna();
    let padding = "x".repeat(1000 * 1000);
    s.req("POST", LOGIN)
        .form(&[("email", "anna@example.com"), ("password", "secret 123&=+"), ("padding", &padding)])
        .send()
        .expect_fields(200, json!({"status": "ok"}));
}

#[test]
fn malformed_json_body_is_a_4xx_json_error() {
    let s = server_with_anna();
    let r = s.req("POST", LOGIN).raw("application/json", b"{\"email\": \"anna@example.com\", ".to_vec()).send();
    assert!((400..500).contains(&r.status), "malformed JSON must be a client error, got {}: {}", r.status, r.text);
    assert_eq!(r["status"], "error", "JSON error body: {}", r.text);
}

#[test]
fn empty_string_counts_as_missing_for_required_params() {
    let s = TestServer::start();
    s.post_form("/api/v1/users/get-device-token", &[("device_id", "")], None).expect_fields(
        400,
        json!({"status": "error", "code": "invalid_input",
               "errors": {"device_id": ["Field is required"]}}),
    );
}

#[test]
fn framework_refusals_on_resource_routes_are_json_errors_too() {
    let s = TestServer::start();
    let huge = "x".repeat(1024 * 1024 + 10);
    let too_large = s.post_json("/api/groups", serde_json::json!({"name": huge}), Some(&s.api_token));
    too_large.expect_fields(413, serde_json::json!({"status": "error", "code": "payload_too_large"}));
    assert!(too_large.content_type.as_deref().unwrap_or_default().starts_with("application/json"));

    let wrong_method = s.req("POST", "/api/me").send();
    wrong_method.expect_fields(405, serde_json::json!({"status": "error", "code": "method_not_allowed"}));

    let bad_path = s.get("/api/users/%FF", Some(&s.api_token));
    assert!(bad_path.status == 400 || bad_path.status == 404, "{}", bad_path.text);
    assert_eq!(bad_path["status"], "error", "JSON body: {}", bad_path.text);
}
