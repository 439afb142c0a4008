//! The user lifecycle routes: `users/create` (including unclaimed users and device tokens),
//! `users/update`, `users/confirm` (with idempotency keys), `users/list`, `users/touch`,
//! `users/data`, `user/delete` and `users/get-device-token` with its pairing rules. Each test
//! re-reads the state it changed through the API.

use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::accounts::{IDENTITY_NOT_FOUND, INVALID_CREDENTIAL};
use crate::harness::{TestServer, assert_hex32, is_hex32, run_cli_ok};

const UPDATE: &str = "/api/v1/users/update";
const CONFIRM: &str = "/api/v1/users/confirm";
const LIST: &str = "/api/v1/users/list";
const TOUCH: &str = "/api/v1/users/touch";
const DATA: &str = "/api/v1/users/data";
const DELETE: &str = "/api/v1/user/delete";
const DEVICE: &str = "/api/v1/users/get-device-token";
const LOGOUT: &str = "/api/v1/users/logout";

fn is_uuid_v4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    lens == [8, 4, 4, 4, 12] && s.chars().all(|c| c == '-' || c.is_ascii_hexdigit()) && parts[2].starts_with('4')
}

fn device_token(s: &TestServer, device_id: &str, access_token: Option<&str>) -> String {
    let mut pairs = vec![("device_id", device_id)];
    if let Some(t) = access_token {
        pairs.push(("access_token", t));
    }
    let r = s.post_form(DEVICE, &pairs, None);
    assert_hex32(&r.expect(200)["device_token"])
}

fn user_id(body: &Value) -> i64 {
    body["user"]["id"].as_i64().unwrap_or_else(|| panic!("no integer user.id in {body}"))
}

#[test]
fn create_returns_the_user_and_a_working_access_token() {
    let s = TestServer::start();
    let r = s.create(&[
        ("email", "anna@example.com"),
        ("password", "secret123"),
        ("first_name", "Anna"),
        ("last_name", "Horváthová"),
    ]);
    let body = r.expect_fields(
        200,
        json!({"status": "ok", "user": {"email": "anna@example.com", "first_name": "Anna",
               "last_name": "Horváthová", "confirmed_at": null}}),
    );
    let id = user_id(body);
    let uuid = body["user"]["uuid"].as_str().expect("user.uuid");
    assert!(is_uuid_v4(uuid), "uuid v4 expected, got {uuid}");
    assert!(body["user"].get("ext_id").is_none(), "ext_id only when given: {}", r.text);
    let token = assert_hex32(&body["access"]["token"]);
    s.user_info(&token).expect_fields(200, json!({"user": {"id": id, "uuid": uuid}}));
    s.login("anna@example.com", "secret123");
}

#[test]
fn create_assigns_distinct_ids_and_uuids() {
    let s = TestServer::start();
    let a = s.create(&[("email", "a@example.com"), ("password", "secret123")]);
    let b = s.create(&[("email", "b@example.com"), ("password", "secret123")]);
    assert_ne!(user_id(a.expect(200)), user_id(b.expect(200)));
    assert_ne!(a["user"]["uuid"], b["user"]["uuid"]);
}

#[test]
fn create_with_ext_id_returns_it_as_an_integer() {
    let s = TestServer::start();
    s.create(&[("email", "anna@example.com"), ("password", "secret123"), ("ext_id", "4242")])
        .expect_fields(200, json!({"user": {"ext_id": 4242}}));
}

#[test]
fn create_with_zero_ext_id_omits_it() {
    let s = TestServer::start();
    let r = s.create(&[("email", "anna@example.com"), ("password", "secret123"), ("ext_id", "0")]);
    assert!(r.expect(200)["user"].get("ext_id").is_none(), "a falsy ext_id is not shown: {}", r.text);
}

#[test]
fn create_with_existing_email_is_404_email_taken() {
    let s = TestServer::start();
    let (id, _) = s.create_user("anna@example.com", "secret123");
    s.create(&[("email", "anna@example.com"), ("password", "other-pass")])
        .expect_fields(404, json!({"status": "error", "message": "Email is already taken", "code": "email_taken"}));
    s.login("anna@example.com", "secret123");
    s.email_check("anna@example.com").expect_fields(200, json!({"id": id}));
}

#[test]
fn create_with_missing_or_malformed_email_is_404_invalid_email() {
    let s = TestServer::start();
    let expected = json!({"status": "error", "message": "Invalid email", "code": "invalid_email"});
    s.create(&[("password", "secret123")]).expect_fields(404, expected.clone());
    s.create(&[("email", ""), ("password", "secret123")]).expect_fields(404, expected.clone());
    s.create(&[("email", "0test@user"), ("password", "secret123")]).expect_fields(404, expected.clone());
    // isEmail applies even when the validator chain is disabled.
    s.create(&[("email", "not-an-email"), ("password", "secret123"), ("disable_email_validation", "1")])
        .expect_fields(404, expected);
    s.list_all(true).expect_fields(200, json!({"totalCount": 0, "users": []}));
}

#[test]
fn create_with_disposable_domain_is_404_invalid_email() {
    let s = TestServer::start();
    s.create(&[("email", "x@mailinator.com"), ("password", "secret123")])
        .expect_fields(404, json!({"status": "error", "message": "Invalid email", "code": "invalid_email"}));
    s.email_check("x@mailinator.com").expect_fields(200, json!({"status": "available"}));
}

#[test]
fn create_honours_disable_email_validation_only_for_1_or_true() {
    let s = TestServer::start();
    for (i, flag) in ["yes", "on", "0"].into_iter().enumerate() {
        let email = format!("no{i}@mailinator.com");
        let r = s.create(&[("email", &email), ("password", "secret123"), ("disable_email_validation", flag)]);
        assert_eq!(r.status, 404, "flag {flag:?} must not disable: {}", r.text);
        assert_eq!(r["code"], "invalid_email", "flag {flag:?}");
    }
    for (i, flag) in ["1", "true"].into_iter().enumerate() {
        let email = format!("yes{i}@mailinator.com");
        s.create(&[("email", &email), ("password", "secret123"), ("disable_email_validation", flag)])
            .expect_fields(200, json!({"user": {"email": email}}));
        s.login(&email, "secret123");
    }
}

#[test]
fn create_with_short_password_is_400_invalid_password_and_creates_nothing() {
    let s = TestServer::start();
    let r = s.create(&[("email", "anna@example.com"), ("password", "12345")]);
    let body = r.expect_fields(400, json!({"status": "error", "code": "invalid_password"}));
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "a message explains the rule: {}", r.text);
    s.email_check("anna@example.com").expect_fields(200, json!({"status": "available"}));
}

#[test]
fn create_with_six_character_password_succeeds() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "123456");
    s.login("anna@example.com", "123456");
}

#[test]
fn create_without_password_generates_one_that_is_not_empty() {
    let s = TestServer::start();
    let r = s.create(&[("email", "anna@example.com")]);
    let body = r.expect(200);
    let id = user_id(body);
    assert_hex32(&body["access"]["token"]);
    s.email_check("anna@example.com").expect_fields(200, json!({"status": "taken", "id": id}));
    s.login_resp("anna@example.com", "")
        .expect_fields(400, json!({"code": "invalid_credential", "message": INVALID_CREDENTIAL}));
}

#[test]
fn create_unclaimed_has_no_access_key_and_stays_unavailable_for_login() {
    let s = TestServer::start();
    let r = s.create(&[("email", "ghost@example.com"), ("unclaimed", "true")]);
    let body = r.expect_fields(200, json!({"status": "ok", "user": {"email": "ghost@example.com"}}));
    assert!(body.get("access").is_none(), "no access token for an unclaimed user: {}", r.text);
    s.email_check("ghost@example.com").expect_fields(200, json!({"status": "available"}));
    s.login_resp("ghost@example.com", "secret123").expect_fields(400, json!({"code": "identity_not_found"}));
}

#[test]
fn create_unclaimed_for_an_existing_email_is_404_email_taken() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    s.create(&[("email", "anna@example.com"), ("unclaimed", "1")]).expect_fields(404, json!({"code": "email_taken"}));
    s.create(&[("email", "ghost@example.com"), ("unclaimed", "1")]).expect(200);
    s.create(&[("email", "ghost@example.com"), ("unclaimed", "1")]).expect_fields(404, json!({"code": "email_taken"}));
}

#[test]
fn registering_an_unclaimed_email_claims_it_and_keeps_the_id() {
    let s = TestServer::start();
    let unclaimed = s.create(&[("email", "ghost@example.com"), ("unclaimed", "1")]);
    let id = user_id(unclaimed.expect(200));

    let claimed = s.create(&[("email", "ghost@example.com"), ("password", "secret123")]);
    let body = claimed.expect_fields(200, json!({"status": "ok", "user": {"id": id}}));
    let token = assert_hex32(&body["access"]["token"]);

    s.user_info(&token).expect_fields(200, json!({"user": {"id": id}}));
    s.login("ghost@example.com", "secret123");
    s.email_check("ghost@example.com").expect_fields(200, json!({"status": "taken", "id": id}));
    s.list_all(true).expect_fields(200, json!({"totalCount": 1}));
}

#[test]
fn create_with_unknown_device_token_is_400_and_creates_nothing() {
    let s = TestServer::start();
    s.create(&[
        ("email", "anna@example.com"),
        ("password", "secret123"),
        ("device_token", "0123456789abcdef0123456789abcdef"),
    ])
    .expect_fields(
        400,
        json!({"status": "error", "message": "Device token doesn't exist",
               "code": "device_token_doesnt_exist"}),
    );
    s.email_check("anna@example.com").expect_fields(200, json!({"status": "available"}));
}

#[test]
fn create_with_device_token_pairs_the_new_access_token() {
    let s = TestServer::start();
    let device = device_token(&s, "tablet", None);
    let r = s.create(&[("email", "anna@example.com"), ("password", "secret123"), ("device_token", &device)]);
    let id = user_id(r.expect(200));
    s.user_info(&device).expect_fields(200, json!({"user": {"id": id, "email": "anna@example.com"}}));
}

#[test]
fn create_with_newsletters_subscribe_keeps_the_private_meta_out_of_user_info() {
    let s = TestServer::start();
    let r = s.create(&[("email", "anna@example.com"), ("password", "secret123"), ("newsletters_subscribe", "1")]);
    let token = assert_hex32(&r.expect(200)["access"]["token"]);
    s.user_info(&token).expect_fields(200, json!({"status": "ok", "user_meta": {}}));
}

#[test]
fn create_with_locale_stores_it() {
    let s = TestServer::start();
    let r = s.create(&[("email", "anna@example.com"), ("password", "secret123"), ("locale", "sk_SK")]);
    let token = assert_hex32(&r.expect(200)["access"]["token"]);
    s.get(DATA, Some(&token)).expect_fields(200, json!({"basic": {"locale": "sk_SK"}}));
}

#[test]
fn update_email_moves_login_to_the_new_address() {
    let s = TestServer::start();
    let (id, _) = s.create_user("old@example.com", "secret123");
    let r = s.api_form(UPDATE, &[("user_id", &id.to_string()), ("email", "new@example.com")]);
    r.expect_fields(200, json!({"status": "ok", "user": {"id": id, "email": "new@example.com", "confirmed_at": null}}));
    s.login("new@example.com", "secret123");
    s.login_resp("old@example.com", "secret123")
        .expect_fields(400, json!({"code": "identity_not_found", "message": IDENTITY_NOT_FOUND}));
    s.email_check("old@example.com").expect_fields(200, json!({"status": "available"}));
    s.email_check("new@example.com").expect_fields(200, json!({"status": "taken", "id": id}));
}

#[test]
fn update_password_makes_the_old_one_fail_and_the_new_one_work() {
    let s = TestServer::start();
    let (id, _) = s.create_user("anna@example.com", "secret123");
    s.api_form(UPDATE, &[("user_id", &id.to_string()), ("password", "better-secret")])
        .expect_fields(200, json!({"status": "ok", "user": {"id": id}}));
    s.login_resp("anna@example.com", "secret123").expect_fields(400, json!({"code": "invalid_credential"}));
    s.login("anna@example.com", "better-secret");
}

#[test]
fn update_accepts_a_password_shorter_than_six() {
    let s = TestServer::start();
    let (id, _) = s.create_user("anna@example.com", "secret123");
    s.api_form(UPDATE, &[("user_id", &id.to_string()), ("password", "abc")]).expect(200);
    s.login("anna@example.com", "abc");
}

#[test]
fn update_with_email_of_another_user_is_409_email_taken() {
    let s = TestServer::start();
    let (anna, _) = s.create_user("anna@example.com", "secret123");
    let (bob, _) = s.create_user("bob@example.com", "secret123");
    s.api_form(UPDATE, &[("user_id", &bob.to_string()), ("email", "anna@example.com")])
        .expect_fields(409, json!({"status": "error", "message": "Email is already taken", "code": "email_taken"}));
    s.email_check("anna@example.com").expect_fields(200, json!({"id": anna}));
    s.email_check("bob@example.com").expect_fields(200, json!({"id": bob}));
    s.login("bob@example.com", "secret123");
}

#[test]
fn update_with_own_email_is_ok() {
    let s = TestServer::start();
    let (id, _) = s.create_user("anna@example.com", "secret123");
    s.api_form(UPDATE, &[("user_id", &id.to_string()), ("email", "anna@example.com")])
        .expect_fields(200, json!({"user": {"id": id, "email": "anna@example.com"}}));
}

#[test]
fn update_of_unknown_user_is_404_user_not_found() {
    let s = TestServer::start();
    s.api_form(UPDATE, &[("user_id", "987654"), ("email", "x@example.com")])
        .expect_fields(404, json!({"status": "error", "message": "User not found", "code": "user_not_found"}));
}

#[test]
fn update_without_user_id_is_400_invalid_input() {
    let s = TestServer::start();
    s.api_form(UPDATE, &[("email", "x@example.com")]).expect_fields(
        400,
        json!({"status": "error", "code": "invalid_input",
               "errors": {"user_id": ["Field is required"]}}),
    );
}

#[test]
fn update_with_invalid_email_is_400_unless_validation_is_disabled() {
    let s = TestServer::start();
    let (id, _) = s.create_user("anna@example.com", "secret123");
    let id = id.to_string();
    s.api_form(UPDATE, &[("user_id", &id), ("email", "anna@mailinator.com")])
        .expect_fields(400, json!({"status": "error", "message": "Invalid email", "code": "invalid_email"}));
    s.login("anna@example.com", "secret123");
    s.api_form(UPDATE, &[("user_id", &id), ("email", "anna@mailinator.com"), ("disable_email_validation", "1")])
        .expect_fields(200, json!({"user": {"email": "anna@mailinator.com"}}));
    s.login("anna@mailinator.com", "secret123");
}

#[test]
fn update_ext_id_and_locale_show_up_afterwards() {
    let s = TestServer::start();
    let (id, token) = s.create_user("anna@example.com", "secret123");
    s.api_form(UPDATE, &[("user_id", &id.to_string()), ("ext_id", "77"), ("locale", "cs_CZ")])
        .expect_fields(200, json!({"user": {"id": id, "ext_id": 77}}));
    s.get(DATA, Some(&token)).expect_fields(200, json!({"basic": {"locale": "cs_CZ"}}));
}

#[test]
fn confirm_sets_confirmed_at_once_and_keeps_it() {
    let s = TestServer::start();
    let (_, token) = s.create_user("anna@example.com", "secret123");
    s.api_form(CONFIRM, &[("email", "anna@example.com")]).expect_fields(200, json!({"status": "ok"}));
    let first = s.user_info(&token).expect(200)["user"]["confirmed_at"].clone();
    assert!(first.is_string(), "confirmed_at is set: {first}");
    thread::sleep(Duration::from_millis(1100));
    s.api_form(CONFIRM, &[("email", "anna@example.com")]).expect_fields(200, json!({"status": "ok"}));
    let second = s.user_info(&token).expect(200)["user"]["confirmed_at"].clone();
    assert_eq!(first, second, "confirming twice keeps the first date");
}

#[test]
fn confirm_of_unknown_email_is_404_user_not_found() {
    let s = TestServer::start();
    s.api_form(CONFIRM, &[("email", "nobody@example.com")])
        .expect_fields(404, json!({"status": "error", "code": "user_not_found"}));
}

#[test]
fn confirm_without_email_is_400_invalid_input() {
    let s = TestServer::start();
    s.api_form(CONFIRM, &[]).expect_fields(
        400,
        json!({"status": "error", "code": "invalid_input",
               "errors": {"email": ["Field is required"]}}),
    );
}

#[test]
fn confirm_replay_of_a_stored_idempotency_key_is_200_even_for_unknown_email() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    let confirm = |key: &str, email: &str| {
        s.req("POST", CONFIRM)
            .form(&[("email", email)])
            .bearer(Some(&s.api_token))
            .header("Idempotency-Key", key)
            .send()
    };
    // A failed call does not store the key.
    confirm("key-1", "nobody@example.com").expect_fields(404, json!({"code": "user_not_found"}));
    confirm("key-1", "anna@example.com").expect_fields(200, json!({"status": "ok"}));
    confirm("key-1", "nobody@example.com").expect_fields(200, json!({"status": "ok"}));
    // Another key is not a replay.
    confirm("key-2", "nobody@example.com").expect_fields(404, json!({"code": "user_not_found"}));
    // Nor is the same key without the header.
    s.api_form(CONFIRM, &[("email", "nobody@example.com")]).expect(404);
    // Idempotency does not apply to GET requests.
    s.req("GET", CONFIRM)
        .query(&[("email", "nobody@example.com")])
        .bearer(Some(&s.api_token))
        .header("Idempotency-Key", "key-1")
        .send()
        .expect_fields(404, json!({"code": "user_not_found"}));
}

#[test]
fn list_with_empty_user_ids_lists_every_active_user_keyed_by_id() {
    let s = TestServer::start();
    let (a, _) = s.create_user("a@example.com", "secret123");
    let (b, _) = s.create_user("b@example.com", "secret123");
    let (c, _) = s.create_user("c@example.com", "secret123");
    let r = s.list_all(false);
    let body = r.expect_fields(
        200,
        json!({"status": "ok", "page": 1, "totalCount": 3, "users": {
            a.to_string(): {"id": a, "email": "a@example.com"},
            b.to_string(): {"id": b, "email": "b@example.com"},
            c.to_string(): {"id": c, "email": "c@example.com"},
        }}),
    );
    assert!(body["totalPages"].as_u64() == Some(1), "totalPages is the integer 1: {}", r.text);
    assert!(body["users"][a.to_string()].get("uuid").is_none(), "uuid only with with_uuid: {}", r.text);
    let keys: Vec<&String> = body["users"].as_object().expect("users object").keys().collect();
    assert_eq!(keys.len(), 3);
}

#[test]
fn list_filters_by_user_ids() {
    let s = TestServer::start();
    let (a, _) = s.create_user("a@example.com", "secret123");
    let (_b, _) = s.create_user("b@example.com", "secret123");
    let (c, _) = s.create_user("c@example.com", "secret123");
    let ids = format!("[{a},{c}]");
    let r = s.api_form(LIST, &[("user_ids", &ids), ("page", "1")]);
    let body = r.expect_fields(200, json!({"totalCount": 2}));
    let mut keys: Vec<String> = body["users"].as_object().expect("users object").keys().cloned().collect();
    keys.sort();
    let mut want = vec![a.to_string(), c.to_string()];
    want.sort();
    assert_eq!(keys, want);
}

#[test]
fn list_with_uuid_includes_each_users_uuid() {
    let s = TestServer::start();
    let created = s.create(&[("email", "a@example.com"), ("password", "secret123")]);
    let id = user_id(created.expect(200));
    s.api_form(LIST, &[("user_ids", "[]"), ("page", "1"), ("with_uuid", "1")]).expect_fields(
        200,
        json!({"users": {id.to_string(): {"id": id, "email": "a@example.com",
                                           "uuid": created["user"]["uuid"]}}}),
    );
}

#[test]
fn list_excludes_deactivated_users_unless_include_deactivated() {
    let s = TestServer::start_with(None, |data| {
        run_cli_ok(data, &["user", "add", "off@example.com", "--password", "secret123", "--inactive"]);
    });
    let (on, _) = s.create_user("on@example.com", "secret123");
    let r = s.list_all(false);
    let body = r.expect_fields(200, json!({"totalCount": 1}));
    assert!(body["users"].get(on.to_string()).is_some(), "{}", r.text);
    let r = s.list_all(true);
    let body = r.expect_fields(200, json!({"totalCount": 2}));
    let emails: Vec<&str> =
        body["users"].as_object().expect("users object").values().filter_map(|u| u["email"].as_str()).collect();
    assert!(emails.contains(&"off@example.com"), "{}", r.text);
}

#[test]
fn list_with_no_match_returns_users_as_empty_array() {
    let s = TestServer::start();
    s.create_user("a@example.com", "secret123");
    let r = s.api_form(LIST, &[("user_ids", "[987654]"), ("page", "1")]);
    r.expect_fields(200, json!({"status": "ok", "totalCount": 0, "users": []}));
}

#[test]
fn list_page_beyond_the_last_is_empty_with_totals() {
    let s = TestServer::start();
    s.create_user("a@example.com", "secret123");
    s.api_form(LIST, &[("user_ids", "[]"), ("page", "2")])
        .expect_fields(200, json!({"page": 2, "totalPages": 1, "totalCount": 1, "users": []}));
}

#[test]
fn list_without_required_params_is_400_invalid_input() {
    let s = TestServer::start();
    s.api_form(LIST, &[("page", "1")]).expect_fields(
        400,
        json!({"status": "error", "code": "invalid_input",
               "errors": {"user_ids": ["Field is required"]}}),
    );
    s.api_form(LIST, &[("user_ids", "[]")]).expect_fields(
        400,
        json!({"status": "error", "code": "invalid_input",
               "errors": {"page": ["Field is required"]}}),
    );
}

#[test]
fn list_with_zero_page_is_400_missing_param() {
    let s = TestServer::start();
    s.api_form(LIST, &[("user_ids", "[]"), ("page", "0")]).expect_fields(
        400,
        json!({"status": "error", "error": "missing_param",
                   "message": "missing required parameter: page"}),
    );
}

#[test]
fn list_with_non_json_user_ids_is_400() {
    let s = TestServer::start();
    s.api_form(LIST, &[("user_ids", "1,2,3"), ("page", "1")])
        .expect_fields(400, json!({"status": "error", "message": "user_ids should be valid JSON array"}));
}

#[test]
fn touch_of_existing_user_is_200_user_touched() {
    let s = TestServer::start();
    let (id, _) = s.create_user("a@example.com", "secret123");
    s.req("GET", TOUCH)
        .query(&[("id", &id.to_string())])
        .bearer(Some(&s.api_token))
        .send()
        .expect_fields(200, json!({"status": "ok", "message": "User touched"}));
}

#[test]
fn touch_of_unknown_user_is_404_naming_the_id() {
    let s = TestServer::start();
    s.req("GET", TOUCH).query(&[("id", "987654")]).bearer(Some(&s.api_token)).send().expect_fields(
        404,
        json!({"status": "error", "code": "user_not_found",
                   "message": "User not found: 987654"}),
    );
}

#[test]
fn touch_without_id_is_400_invalid_input() {
    let s = TestServer::start();
    s.get(TOUCH, Some(&s.api_token.clone())).expect_fields(
        400,
        json!({"status": "error", "code": "invalid_input",
               "errors": {"id": ["Field is required"]}}),
    );
}

#[test]
fn users_data_returns_the_basic_block_for_an_access_token() {
    let s = TestServer::start();
    let created = s.create(&[("email", "anna@example.com"), ("password", "secret123")]);
    let body = created.expect(200);
    let id = user_id(body);
    let token = assert_hex32(&body["access"]["token"]);
    let r = s.get(DATA, Some(&token));
    let data = r.expect_fields(
        200,
        json!({"basic": {"id": id, "email": "anna@example.com", "confirmed_at": null,
                         "uuid": body["user"]["uuid"]},
               "user_stats": []}),
    );
    let created_at =
        data["basic"]["created_at"].as_i64().unwrap_or_else(|| panic!("created_at is a unix timestamp: {}", r.text));
    assert!((chrono::Utc::now().timestamp() - created_at).abs() < 120, "created_at is about now: {created_at}");
    let hashed = data["basic"]["hashed_id"].as_str().expect("hashed_id");
    assert!(
        hashed.len() == 64 && hashed.bytes().all(|b| b.is_ascii_hexdigit()),
        "hashed_id is a SHA-256 HMAC in hex: {hashed}"
    );
    assert!(data["basic"]["locale"].is_string(), "{}", r.text);
    assert!(data["user_meta"].is_array(), "user_meta is a list: {}", r.text);
}

#[test]
fn users_data_shows_confirmed_at_as_unix_time_after_confirm() {
    let s = TestServer::start();
    let (_, token) = s.create_user("anna@example.com", "secret123");
    s.api_form(CONFIRM, &[("email", "anna@example.com")]).expect(200);
    let r = s.get(DATA, Some(&token));
    let confirmed = r.expect(200)["basic"]["confirmed_at"]
        .as_i64()
        .unwrap_or_else(|| panic!("confirmed_at is a unix timestamp: {}", r.text));
    assert!((chrono::Utc::now().timestamp() - confirmed).abs() < 120);
}

#[test]
fn users_data_with_unknown_or_logged_out_token_is_404_token_not_found() {
    let s = TestServer::start();
    let (_, token) = s.create_user("anna@example.com", "secret123");
    let expected = json!({"status": "error", "message": "Token not found"});
    s.get(DATA, Some("0123456789abcdef0123456789abcdef")).expect_fields(404, expected.clone());
    s.get(LOGOUT, Some(&token)).expect(200);
    s.get(DATA, Some(&token)).expect_fields(404, expected);
}

#[test]
fn users_data_with_bad_authorization_header_is_400_with_parser_message() {
    let s = TestServer::start();
    s.get(DATA, None).expect_fields(
        400,
        json!({"status": "error",
               "message": "Authorization header HTTP_Authorization is not set"}),
    );
    s.req("GET", DATA).header("Authorization", "Bearer a b").send().expect_fields(
        400,
        json!({"status": "error",
                   "message": "Authorization header contains invalid structure"}),
    );
}

#[test]
fn delete_is_204_and_removes_the_user_from_every_view() {
    let s = TestServer::start();
    let (id, token) = s.create_user("anna@example.com", "secret123");
    let second = s.login("anna@example.com", "secret123");
    let (other, _) = s.create_user("bob@example.com", "secret123");

    let r = s.post_form(DELETE, &[], Some(&token));
    r.expect(204);
    assert!(r.text.is_empty(), "204 has no body: {:?}", r.text);

    for t in [&token, &second] {
        s.user_info(t).expect_fields(403, json!({"message": "Not authorized: Device token doesn't exist"}));
    }
    s.login_resp("anna@example.com", "secret123").expect_fields(400, json!({"code": "identity_not_found"}));
    s.email_check("anna@example.com").expect_fields(200, json!({"status": "available"}));
    let r = s.list_all(true);
    let body = r.expect_fields(200, json!({"totalCount": 1}));
    assert!(body["users"].get(id.to_string()).is_none(), "{}", r.text);
    assert!(body["users"].get(other.to_string()).is_some(), "{}", r.text);
    s.req("GET", TOUCH)
        .query(&[("id", &id.to_string())])
        .bearer(Some(&s.api_token))
        .send()
        .expect_fields(404, json!({"code": "user_not_found"}));
}

#[test]
fn deleted_users_email_can_be_registered_again_as_a_new_user() {
    let s = TestServer::start();
    let (old_id, token) = s.create_user("anna@example.com", "secret123");
    s.post_form(DELETE, &[], Some(&token)).expect(204);
    let (new_id, new_token) = s.create_user("anna@example.com", "another-secret");
    assert_ne!(old_id, new_id);
    s.user_info(&new_token).expect_fields(200, json!({"user": {"id": new_id, "email": "anna@example.com"}}));
    s.login("anna@example.com", "another-secret");
}

#[test]
fn delete_without_authorization_is_403() {
    let s = TestServer::start();
    let (_, token) = s.create_user("anna@example.com", "secret123");
    s.post_form(DELETE, &[], None).expect_fields(
        403,
        json!({"status": "error", "error": "no_authorization",
               "message": "Not authorized: Authorization header HTTP_Authorization is not set"}),
    );
    s.user_info(&token).expect(200);
}

#[test]
fn get_device_token_returns_a_new_32_hex_token_per_call() {
    let s = TestServer::start();
    let a = device_token(&s, "phone", None);
    let b = device_token(&s, "phone", None);
    assert_ne!(a, b);
    assert!(is_hex32(&a) && is_hex32(&b));
    let r = s.post_form(DEVICE, &[("device_id", "phone")], None);
    let body = r.expect(200);
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "only device_token: {}", r.text);
}

#[test]
fn get_device_token_without_device_id_is_400_invalid_input() {
    let s = TestServer::start();
    s.post_form(DEVICE, &[], None).expect_fields(
        400,
        json!({"status": "error", "code": "invalid_input",
               "errors": {"device_id": ["Field is required"]}}),
    );
}

#[test]
fn get_device_token_with_unknown_access_token_is_400_access_token_not_valid() {
    let s = TestServer::start();
    s.post_form(DEVICE, &[("device_id", "phone"), ("access_token", "0123456789abcdef0123456789abcdef")], None)
        .expect_fields(400, json!({"status": "error", "message": "Access token not valid"}));
}

#[test]
fn device_token_paired_with_an_access_token_authorizes_user_info() {
    let s = TestServer::start();
    let (id, access) = s.create_user("anna@example.com", "secret123");
    let device = device_token(&s, "phone", Some(&access));
    s.user_info(&device).expect_fields(200, json!({"status": "ok", "user": {"id": id, "email": "anna@example.com"}}));
}

#[test]
fn device_token_without_paired_tokens_cannot_authorize_user_info() {
    let s = TestServer::start();
    let device = device_token(&s, "phone", None);
    s.user_info(&device).expect_fields(
        403,
        json!({"status": "error", "error": "no_authorization", "message": "Cannot authorize user"}),
    );
}

#[test]
fn logout_with_device_token_removes_every_paired_access_token() {
    let s = TestServer::start();
    let (id, unpaired) = s.create_user("anna@example.com", "secret123");
    let device = device_token(&s, "phone", None);
    let mut paired = Vec::new();
    for _ in 0..2 {
        let r = s.post_form(
            "/api/v1/users/login",
            &[("email", "anna@example.com"), ("password", "secret123"), ("device_token", &device)],
            None,
        );
        paired.push(assert_hex32(&r.expect(200)["access"]["token"]));
    }
    s.get(LOGOUT, Some(&device)).expect_fields(200, json!({"status": "ok"}));
    for t in &paired {
        s.user_info(t).expect(403);
    }
    s.user_info(&unpaired).expect_fields(200, json!({"user": {"id": id}}));
    s.user_info(&device).expect(403);
}

#[test]
fn pairing_another_users_token_unpairs_the_first_user_from_the_device() {
    let s = TestServer::start();
    let (anna, anna_token) = s.create_user("anna@example.com", "secret123");
    let (bob, bob_token) = s.create_user("bob@example.com", "secret123");
    let device = device_token(&s, "shared-tablet", Some(&anna_token));
    s.user_info(&device).expect_fields(200, json!({"user": {"id": anna}}));

    let bob_on_device = s.post_form(
        "/api/v1/users/login",
        &[("email", "bob@example.com"), ("password", "secret123"), ("device_token", &device)],
        None,
    );
    let bob_on_device = assert_hex32(&bob_on_device.expect(200)["access"]["token"]);
    s.user_info(&device).expect_fields(200, json!({"user": {"id": bob}}));

    // Logging out through the device removes Bob's paired token only; Anna's was unpaired,
    // not deleted.
    s.get(LOGOUT, Some(&device)).expect(200);
    s.user_info(&bob_on_device).expect(403);
    s.user_info(&anna_token).expect_fields(200, json!({"user": {"id": anna}}));
    s.user_info(&bob_token).expect_fields(200, json!({"user": {"id": bob}}));
}
