//! Account routes seen by a client: `users/login`, `users/logout`, `user/info`, `users/email`
//! (v1 and v2), `users/email-check` and `users/validate-email`. Registration and the other user
//! routes are in `registration`; authorization headers and rate limits are in `auth`.

use serde_json::json;

use crate::harness::{TestServer, assert_hex32, run_cli_ok};

pub const IDENTITY_NOT_FOUND: &str =
    "Email you entered doesn't match our records. Please log in as you would on the website.";
pub const INVALID_CREDENTIAL: &str =
    "The password you entered doesn't match our records. Please log in as you would on the website.";

const LOGIN: &str = "/api/v1/users/login";
const LOGOUT: &str = "/api/v1/users/logout";
const EMAIL_V1: &str = "/api/v1/users/email";
const EMAIL_V2: &str = "/api/v2/users/email";
const EMAIL_CHECK: &str = "/api/v1/users/email-check";
const VALIDATE: &str = "/api/v1/users/validate-email";

/// A server with an inactive user `off@example.com` / `secret123` made by the CLI.
fn server_with_inactive_user() -> TestServer {
    TestServer::start_with(None, |data| {
        run_cli_ok(data, &["user", "add", "off@example.com", "--password", "secret123", "--inactive"]);
    })
}

#[test]
fn login_with_correct_password_returns_user_meta_and_fresh_token() {
    let s = TestServer::start();
    let created = s.create(&[
        ("email", "anna@example.com"),
        ("password", "secret123"),
        ("first_name", "Anna"),
        ("last_name", "Nováková"),
    ]);
    let created = created.expect(200);
    let id = created["user"]["id"].as_i64().expect("user.id");

    let r = s.login_resp("anna@example.com", "secret123");
    let body = r.expect_fields(
        200,
        json!({
            "status": "ok",
            "user": {
                "id": id,
                "uuid": created["user"]["uuid"],
                "email": "anna@example.com",
                "first_name": "Anna",
                "last_name": "Nováková",
                "confirmed_at": null,
            },
            "user_meta": {},
        }),
    );
    let token = assert_hex32(&body["access"]["token"]);
    assert_ne!(
        token,
        assert_hex32(&created["access"]["token"]),
        "login must issue a new token, not return the registration one"
    );
    s.user_info(&token).expect_fields(200, json!({"user": {"id": id}}));
}

#[test]
fn login_twice_issues_distinct_tokens_that_both_work() {
    let s = TestServer::start();
    let (id, _) = s.create_user("bob@example.com", "secret123");
    let first = s.login("bob@example.com", "secret123");
    let second = s.login("bob@example.com", "secret123");
    assert_ne!(first, second);
    for token in [&first, &second] {
        s.user_info(token).expect_fields(200, json!({"user": {"id": id}}));
    }
}

#[test]
fn login_with_wrong_password_is_400_invalid_credential() {
    let s = TestServer::start();
    s.create_user("carl@example.com", "secret123");
    s.login_resp("carl@example.com", "wrong-password").expect_fields(
        400,
        json!({"status": "error", "error": "auth_failed", "code": "invalid_credential",
               "message": INVALID_CREDENTIAL}),
    );
}

#[test]
fn login_with_empty_password_is_400_invalid_credential() {
    let s = TestServer::start();
    s.create_user("dana@example.com", "secret123");
    s.login_resp("dana@example.com", "")
        .expect_fields(400, json!({"status": "error", "error": "auth_failed", "code": "invalid_credential"}));
}

#[test]
fn login_with_unknown_email_is_400_identity_not_found() {
    let s = TestServer::start();
    s.login_resp("nobody@example.com", "secret123").expect_fields(
        400,
        json!({"status": "error", "error": "auth_failed", "code": "identity_not_found",
               "message": IDENTITY_NOT_FOUND}),
    );
}

#[test]
fn login_of_inactive_user_with_correct_password_is_400_identity_not_found() {
    let s = server_with_inactive_user();
    s.login_resp("off@example.com", "secret123").expect_fields(
        400,
        json!({"status": "error", "error": "auth_failed", "code": "identity_not_found",
               "message": IDENTITY_NOT_FOUND}),
    );
}

#[test]
fn login_of_unclaimed_user_is_400_identity_not_found() {
    let s = TestServer::start();
    s.create(&[("email", "ghost@example.com"), ("unclaimed", "1")]).expect(200);
    s.login_resp("ghost@example.com", "anything")
        .expect_fields(400, json!({"status": "error", "error": "auth_failed", "code": "identity_not_found"}));
}

#[test]
fn login_without_email_is_400_no_email() {
    let s = TestServer::start();
    s.post_form(LOGIN, &[("password", "secret123")], None).expect_fields(
        400,
        json!({"status": "error", "error": "no_email", "message": "No valid email",
                   "code": "invalid_email"}),
    );
}

#[test]
fn login_without_password_is_400_no_password() {
    let s = TestServer::start();
    s.create_user("erik@example.com", "secret123");
    s.post_form(LOGIN, &[("email", "erik@example.com")], None).expect_fields(
        400,
        json!({"status": "error", "error": "no_password", "message": "No valid password",
                   "code": "invalid_password"}),
    );
}

#[test]
fn login_with_unknown_device_token_is_404_before_checking_credentials() {
    let s = TestServer::start();
    s.create_user("fero@example.com", "secret123");
    s.post_form(
        LOGIN,
        &[
            ("email", "fero@example.com"),
            ("password", "secret123"),
            ("device_token", "0123456789abcdef0123456789abcdef"),
        ],
        None,
    )
    .expect_fields(
        404,
        json!({"status": "error", "message": "Device token doesn't exist",
               "code": "device_token_doesnt_exist"}),
    );
}

#[test]
fn login_with_device_token_pairs_the_new_token_with_the_device() {
    let s = TestServer::start();
    let (id, _) = s.create_user("gita@example.com", "secret123");
    let device =
        s.post_form("/api/v1/users/get-device-token", &[("device_id", "phone-1")], None).expect(200)["device_token"]
            .clone();
    let device = assert_hex32(&device);
    // Unpaired device: no user behind it yet.
    s.user_info(&device).expect(403);
    s.post_form(LOGIN, &[("email", "gita@example.com"), ("password", "secret123"), ("device_token", &device)], None)
        .expect(200);
    s.user_info(&device).expect_fields(200, json!({"user": {"id": id, "email": "gita@example.com"}}));
}

#[test]
fn logout_revokes_only_the_presented_access_token() {
    let s = TestServer::start();
    let (id, registration_token) = s.create_user("hana@example.com", "secret123");
    let login_token = s.login("hana@example.com", "secret123");

    s.get(LOGOUT, Some(&login_token)).expect_fields(200, json!({"status": "ok"}));

    s.user_info(&login_token).expect_fields(
        403,
        json!({"status": "error", "error": "no_authorization",
               "message": "Not authorized: Device token doesn't exist"}),
    );
    s.user_info(&registration_token).expect_fields(200, json!({"user": {"id": id}}));
}

#[test]
fn logout_twice_with_the_same_token_is_403_the_second_time() {
    let s = TestServer::start();
    let (_, token) = s.create_user("ivan@example.com", "secret123");
    s.post_form(LOGOUT, &[], Some(&token)).expect(200);
    s.post_form(LOGOUT, &[], Some(&token)).expect_fields(403, json!({"status": "error", "error": "no_authorization"}));
}

#[test]
fn logout_without_authorization_is_403_header_not_set() {
    let s = TestServer::start();
    s.post_form(LOGOUT, &[], None).expect_fields(
        403,
        json!({"status": "error", "error": "no_authorization",
               "message": "Not authorized: Authorization header HTTP_Authorization is not set"}),
    );
}

#[test]
fn user_info_returns_id_uuid_email_names_and_empty_meta_object() {
    let s = TestServer::start();
    let created = s.create(&[
        ("email", "jana@example.com"),
        ("password", "secret123"),
        ("first_name", "Jana"),
        ("last_name", "Kováčová"),
    ]);
    let created = created.expect(200);
    let token = assert_hex32(&created["access"]["token"]);
    let info = s.user_info(&token);
    let body = info.expect_fields(
        200,
        json!({
            "status": "ok",
            "user": {
                "id": created["user"]["id"],
                "uuid": created["user"]["uuid"],
                "email": "jana@example.com",
                "confirmed_at": null,
                "first_name": "Jana",
                "last_name": "Kováčová",
            },
        }),
    );
    assert_eq!(body["user_meta"], json!({}), "user_meta must be an empty object, not an array: {}", info.text);
}

#[test]
fn user_info_without_authorization_is_403_header_not_set() {
    let s = TestServer::start();
    s.get("/api/v1/user/info", None).expect_fields(
        403,
        json!({"status": "error", "error": "no_authorization",
               "message": "Not authorized: Authorization header HTTP_Authorization is not set"}),
    );
}

#[test]
fn user_info_with_unknown_token_is_403_device_token_doesnt_exist() {
    let s = TestServer::start();
    s.user_info("ffffffffffffffffffffffffffffffff").expect_fields(
        403,
        json!({"status": "error", "error": "no_authorization",
               "message": "Not authorized: Device token doesn't exist"}),
    );
}

#[test]
fn user_info_shows_confirmed_at_as_rfc3339_utc_after_confirm() {
    let s = TestServer::start();
    let (_, token) = s.create_user("karol@example.com", "secret123");
    s.api_form("/api/v1/users/confirm", &[("email", "karol@example.com")]).expect(200);
    let info = s.user_info(&token);
    let confirmed = info.expect(200)["user"]["confirmed_at"]
        .as_str()
        .unwrap_or_else(|| panic!("confirmed_at must be a string now: {}", info.text))
        .to_owned();
    assert!(confirmed.ends_with("+00:00"), "default timezone UTC renders +00:00, got {confirmed}");
    let at = chrono::DateTime::parse_from_rfc3339(&confirmed).expect("RFC 3339 date");
    let age = chrono::Utc::now().signed_duration_since(at);
    assert!(age.num_seconds().abs() < 120, "confirmed_at {confirmed} is not about now");
}

#[test]
fn dates_render_in_the_configured_timezone() {
    let s = TestServer::start_with_config("timezone = \"Europe/Bratislava\"\n");
    let (_, token) = s.create_user("lucia@example.com", "secret123");
    s.api_form("/api/v1/users/confirm", &[("email", "lucia@example.com")]).expect(200);
    let info = s.user_info(&token);
    let confirmed = info.expect(200)["user"]["confirmed_at"]
        .as_str()
        .unwrap_or_else(|| panic!("confirmed_at must be a string: {}", info.text))
        .to_owned();
    let at = chrono::DateTime::parse_from_rfc3339(&confirmed).expect("RFC 3339 date");
    let offset = at.offset().local_minus_utc();
    assert!(offset == 3600 || offset == 7200, "Europe/Bratislava is +01:00 or +02:00, got {confirmed}");
}

#[test]
fn email_v1_of_registered_user_without_password_is_taken_with_null_password() {
    let s = TestServer::start();
    let (id, _) = s.create_user("maria@example.com", "secret123");
    s.post_form(EMAIL_V1, &[("email", "maria@example.com")], None)
        .expect_fields(200, json!({"email": "maria@example.com", "id": id, "status": "taken", "password": null}));
}

#[test]
fn email_with_correct_password_is_taken_with_password_true() {
    let s = TestServer::start();
    let (id, _) = s.create_user("nina@example.com", "secret123");
    for path in [EMAIL_V1, EMAIL_V2] {
        s.post_form(path, &[("email", "nina@example.com"), ("password", "secret123")], None)
            .expect_fields(200, json!({"email": "nina@example.com", "id": id, "status": "taken", "password": true}));
    }
}

#[test]
fn email_v1_with_wrong_password_is_200_taken_password_false() {
    let s = TestServer::start();
    let (id, _) = s.create_user("olga@example.com", "secret123");
    s.post_form(EMAIL_V1, &[("email", "olga@example.com"), ("password", "nope-nope")], None)
        .expect_fields(200, json!({"email": "olga@example.com", "id": id, "status": "taken", "password": false}));
}

#[test]
fn email_v2_with_wrong_password_is_401_taken_password_false() {
    let s = TestServer::start();
    let (id, _) = s.create_user("pavol@example.com", "secret123");
    s.post_form(EMAIL_V2, &[("email", "pavol@example.com"), ("password", "nope-nope")], None)
        .expect_fields(401, json!({"email": "pavol@example.com", "id": id, "status": "taken", "password": false}));
}

#[test]
fn email_of_unknown_valid_address_is_available_without_id() {
    let s = TestServer::start();
    for path in [EMAIL_V1, EMAIL_V2] {
        let r = s.post_form(path, &[("email", "free@example.com")], None);
        let body = r.expect_fields(200, json!({"email": "free@example.com", "status": "available"}));
        assert!(body["id"].is_null(), "no id for an unknown email: {}", r.text);
        assert!(body["password"].is_null(), "no password verdict for an unknown email: {}", r.text);
    }
}

#[test]
fn email_of_unclaimed_user_is_available_with_null_id() {
    let s = TestServer::start();
    s.create(&[("email", "ghost@example.com"), ("unclaimed", "true")]).expect(200);
    let r = s.post_form(EMAIL_V2, &[("email", "ghost@example.com")], None);
    let body = r.expect_fields(200, json!({"status": "available"}));
    assert!(body["id"].is_null(), "unclaimed user has no id here: {}", r.text);
}

#[test]
fn email_of_inactive_user_with_correct_password_is_available_with_id() {
    let s = server_with_inactive_user();
    let r = s.post_form(EMAIL_V2, &[("email", "off@example.com"), ("password", "secret123")], None);
    let body = r.expect_fields(200, json!({"email": "off@example.com", "status": "available"}));
    assert!(
        body["id"].is_i64(),
        "REMP quirk: an inactive user with the right password is 'available' with its id: {}",
        r.text
    );
}

#[test]
fn email_v1_without_email_is_200_email_missing() {
    let s = TestServer::start();
    s.post_form(EMAIL_V1, &[], None)
        .expect_fields(200, json!({"status": "error", "message": "No valid email", "code": "email_missing"}));
}

#[test]
fn email_v2_without_email_is_400_invalid_input() {
    let s = TestServer::start();
    s.post_form(EMAIL_V2, &[], None).expect_fields(
        400,
        json!({"status": "error", "code": "invalid_input",
               "errors": {"email": ["Field is required"]}}),
    );
}

#[test]
fn email_v1_of_unknown_malformed_address_is_200_invalid_email() {
    let s = TestServer::start();
    s.post_form(EMAIL_V1, &[("email", "not-an-email")], None)
        .expect_fields(200, json!({"status": "error", "message": "Invalid email format", "code": "invalid_email"}));
}

#[test]
fn email_v2_of_unknown_malformed_address_is_422_invalid_email() {
    let s = TestServer::start();
    s.post_form(EMAIL_V2, &[("email", "not-an-email")], None)
        .expect_fields(422, json!({"status": "error", "message": "Invalid email format", "code": "invalid_email"}));
}

#[test]
fn email_longer_than_255_characters_is_422_on_both_versions() {
    let s = TestServer::start();
    let long = format!("{}@example.com", "a".repeat(250));
    for path in [EMAIL_V1, EMAIL_V2] {
        s.post_form(path, &[("email", &long)], None)
            .expect_fields(422, json!({"status": "error", "message": "Invalid email format", "code": "invalid_email"}));
    }
}

#[test]
fn email_check_of_registered_email_is_taken_with_id() {
    let s = TestServer::start();
    let (id, _) = s.create_user("quido@example.com", "secret123");
    s.email_check("quido@example.com")
        .expect_fields(200, json!({"email": "quido@example.com", "status": "taken", "id": id}));
}

#[test]
fn email_check_of_unknown_email_is_available_without_id_key() {
    let s = TestServer::start();
    let r = s.email_check("nobody@example.com");
    let body = r.expect_fields(200, json!({"email": "nobody@example.com", "status": "available"}));
    assert!(body.get("id").is_none(), "no id key when available: {}", r.text);
}

#[test]
fn email_check_of_unclaimed_user_is_available() {
    let s = TestServer::start();
    s.create(&[("email", "ghost@example.com"), ("unclaimed", "1")]).expect(200);
    let r = s.email_check("ghost@example.com");
    let body = r.expect_fields(200, json!({"status": "available"}));
    assert!(body.get("id").is_none(), "no id key when available: {}", r.text);
}

#[test]
fn email_check_without_email_is_400_invalid_input() {
    let s = TestServer::start();
    s.api_form(EMAIL_CHECK, &[]).expect_fields(
        400,
        json!({"status": "error", "code": "invalid_input",
               "errors": {"email": ["Field is required"]}}),
    );
}

#[test]
fn email_check_longer_than_255_characters_is_422_invalid_email() {
    let s = TestServer::start();
    let long = format!("{}@example.com", "b".repeat(250));
    s.email_check(&long)
        .expect_fields(422, json!({"status": "error", "message": "Invalid email format", "code": "invalid_email"}));
}

#[test]
fn validate_email_accepts_well_formed_addresses() {
    let s = TestServer::start();
    for email in ["john.doe+tag@example.com", "a.b-c_d@sub.example.co.uk", "UPPER@EXAMPLE.COM", "x@ex-ample.sk"] {
        let r = s.post_form(VALIDATE, &[("email", email)], None);
        assert_eq!(r.status, 200, "{email} should be valid: {}", r.text);
        assert_eq!(r.body, json!({"status": "success"}), "{email}");
    }
}

#[test]
fn validate_email_rejects_malformed_addresses_with_400_naming_the_email() {
    let s = TestServer::start();
    for email in [
        "0test@user",
        "plainaddress",
        "a@example.123",
        "a..b@example.com",
        ".a@example.com",
        "a@-example.com",
        "a b@example.com",
    ] {
        let r = s.post_form(VALIDATE, &[("email", email)], None);
        assert_eq!(r.status, 400, "{email} should be invalid: {}", r.text);
        assert_eq!(
            r.body,
            json!({"status": "error", "message": format!("Email '{email}' is not valid"),
                   "code": "invalid_email"}),
            "{email}"
        );
    }
}

#[test]
fn validate_email_rejects_disposable_domain() {
    let s = TestServer::start();
    s.post_form(VALIDATE, &[("email", "x@mailinator.com")], None).expect_fields(
        400,
        json!({"status": "error", "message": "Email 'x@mailinator.com' is not valid",
                   "code": "invalid_email"}),
    );
}

#[test]
fn validate_email_is_also_served_under_the_user_package() {
    let s = TestServer::start();
    s.post_form("/api/v1/user/validate-email", &[("email", "ok@example.com")], None)
        .expect_fields(200, json!({"status": "success"}));
    s.post_form("/api/v1/user/validate-email", &[("email", "0test@user")], None)
        .expect_fields(400, json!({"code": "invalid_email"}));
}

#[test]
fn validate_email_with_empty_email_is_400_invalid_input() {
    let s = TestServer::start();
    s.post_form(VALIDATE, &[("email", "")], None).expect_fields(
        400,
        json!({"status": "error", "code": "invalid_input",
               "errors": {"email": ["Field is required"]}}),
    );
}
