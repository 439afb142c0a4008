//! `crm-users import remp` against a real MariaDB holding a REMP-shaped database
//! (`tests/fixtures/remp/`, bcrypt `$2y$` hashes made here): the import runs through the real
//! binary on a fresh data folder, then a server on that folder is checked route by route as
//! REMP's clients would use it. The server setup is in `mariadb`.

use crate::harness::{Backend, TestServer, backend, combined, run_cli, run_cli_ok};
use crate::mariadb::{self, Hashes, MariaDb};
use serde_json::json;
use std::path::Path;

const JANE_ACCESS: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";
const JANE_APP_ACCESS: [&str; 2] = ["a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2", "a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4"];
const JOHN_ACCESS: &str = "a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3";
const JANE_DEVICE: &str = "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1";
const JOHN_AUTOLOGIN: &str = "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1";
const BACKEND_API: &str = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1";
const IP_LIMITED_API: &str = "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2";
const RETIRED_API: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";

/// A fresh REMP database; returns its URL.
fn remp_database() -> String {
    let server = MariaDb::get();
    server.url(&server.remp_database(Hashes::get()))
}

fn import(data: &Path, url: &str, extra: &[&str]) -> String {
    let mut args = vec!["import", "remp", "--mysql-url", url, "--timezone", "Europe/Bratislava"];
    args.extend_from_slice(extra);
    run_cli_ok(data, &args)
}

/// A server on a data folder that holds the import of a fresh REMP database, and the report.
fn imported_server() -> (TestServer, String) {
    let url = remp_database();
    let mut report = String::new();
    let server = TestServer::start_after(|data| report = import(data, &url, &[]));
    // Like every data command, the import keeps out of a sled folder a running server holds.
    if backend() == Backend::Sled {
        let out = server.cli(&["import", "remp", "--mysql-url", &url]);
        assert!(
            !out.status.success() && combined(&out).contains("in use by a running crm-users server"),
            "{}",
            combined(&out)
        );
    }
    (server, report)
}

/// The `table read imported skipped removed` line of a report, as numbers.
fn counts(report: &str, table: &str) -> [u64; 4] {
    let line = report
        .lines()
        .find(|l| l.split_whitespace().next() == Some(table))
        .unwrap_or_else(|| panic!("no {table} line in the report:\n{report}"));
    let n: Vec<u64> = line.split_whitespace().skip(1).map(|w| w.parse().expect("a count")).collect();
    assert_eq!(n.len(), 4, "{line}");
    [n[0], n[1], n[2], n[3]]
}

#[test]
fn remp_passwords_sign_in_and_are_rehashed_to_argon2id() {
    let (mut s, _) = imported_server();
    assert_eq!(s.user_field("jane@example.com", "password"), "bcrypt");
    // A wrong password against a bcrypt hash answers exactly as against an argon2id one.
    s.create_user("native@example.com", "native-pass-1");
    let wrong_bcrypt = s.login_resp("jane@example.com", "not-her-password");
    let wrong_argon = s.login_resp("native@example.com", "not-her-password");
    assert_eq!(wrong_bcrypt.status, 400, "{}", wrong_bcrypt.text);
    assert_eq!((wrong_bcrypt.status, &wrong_bcrypt.body), (wrong_argon.status, &wrong_argon.body));
    assert_eq!(s.user_field("jane@example.com", "password"), "bcrypt", "a failed sign-in rehashes nothing");

    let r = s.login_resp("jane@example.com", mariadb::JANE_PASSWORD);
    r.expect_fields(
        200,
        json!({"status": "ok", "user": {"id": 1, "email": "jane@example.com", "uuid": "6f1c3a52-2d4b-4c1e-9f0a-0b1c2d3e4f50"}}),
    );
    assert_eq!(s.user_field("jane@example.com", "password"), "argon2id");
    // The argon2id hash took the same password, and only that one.
    s.login("jane@example.com", mariadb::JANE_PASSWORD);
    assert_eq!(s.login_resp("jane@example.com", mariadb::JOHN_PASSWORD).status, 400);
    s.login("admin@example.com", mariadb::ADMIN_PASSWORD);
    let inactive = s.login_resp("inactive@example.com", mariadb::INACTIVE_PASSWORD);
    assert_eq!(inactive.status, 400, "an inactive REMP user stays disabled: {}", inactive.text);
}

#[test]
fn wrong_passwords_against_remp_hashes_count_for_the_rate_limit() {
    let (mut s, _) = imported_server();
    for i in 0..10 {
        let r = s.login_resp("john@example.com", "not-his-password");
        r.expect_fields(400, json!({"error": "auth_failed", "code": "invalid_credential"}));
        assert_ne!(r["message"], TOO_MANY, "attempt {} is not limited yet", i + 1);
    }
    s.login_resp("john@example.com", mariadb::JOHN_PASSWORD)
        .expect_fields(400, json!({"status": "error", "error": "auth_failed", "message": TOO_MANY}));
    assert_eq!(s.user_field("john@example.com", "password"), "bcrypt", "a refused sign-in rehashes nothing");
}

const TOO_MANY: &str = "Too many unsuccessful login attempts. Try it later.";

#[test]
fn remp_access_device_and_autologin_tokens_keep_working() {
    let (s, _) = imported_server();
    s.user_info(JANE_ACCESS).expect_fields(
        200,
        json!({"status": "ok",
               "user": {"id": 1, "uuid": "6f1c3a52-2d4b-4c1e-9f0a-0b1c2d3e4f50", "email": "jane@example.com",
                        "confirmed_at": "2024-03-01T09:00:00+00:00"},
               "user_meta": {"newsletter": "daily"}}),
    );
    s.user_info(JOHN_ACCESS).expect_fields(200, json!({"user": {"id": 2, "email": "john@example.com"}}));
    // The device token stands for Jane's two app tokens, and logging it out ends both.
    for token in JANE_APP_ACCESS {
        s.user_info(token).expect_fields(200, json!({"user": {"id": 1}}));
    }
    s.post_form("/api/v1/users/logout", &[], Some(JANE_DEVICE)).expect_fields(200, json!({"status": "ok"}));
    for token in JANE_APP_ACCESS {
        s.user_info(token).expect_fields(403, json!({"status": "error", "error": "no_authorization"}));
    }
    s.user_info(JANE_ACCESS).expect_fields(200, json!({"user": {"id": 1}}));
    // John's sign-in link still signs him in (twice, its max_count).
    for _ in 0..2 {
        s.post_form("/api/v1/users/autologin-token-login", &[("autologin_token", JOHN_AUTOLOGIN)], None)
            .expect_fields(200, json!({"status": "ok", "user": {"id": 2}}));
    }
    s.post_form("/api/v1/users/autologin-token-login", &[("autologin_token", JOHN_AUTOLOGIN)], None)
        .expect_fields(401, json!({"message": "Token reached max users count"}));
}

#[test]
fn remp_api_tokens_reach_exactly_their_granted_routes() {
    let (s, _) = imported_server();
    let call = |method: &str, path: &str, token: &str, form: &[(&str, &str)]| {
        s.req(method, path).form(form).bearer(Some(token)).send()
    };
    // Users:ListUsers, Users:UserGroupApi (add and remove), Users:Addresses, Users:UserMetaList.
    call("POST", "/api/v1/users/list", BACKEND_API, &[("user_ids", "[]"), ("page", "1")])
        .expect_fields(200, json!({"status": "ok", "totalCount": 3}));
    call("POST", "/api/v1/users/add-to-group", BACKEND_API, &[("email", "john@example.com"), ("group_id", "5")])
        .expect(200);
    call("POST", "/api/v1/users/remove-from-group", BACKEND_API, &[("email", "john@example.com"), ("group_id", "5")])
        .expect(200);
    s.req("GET", "/api/v1/users/addresses")
        .query(&[("email", "john@example.com")])
        .bearer(Some(BACKEND_API))
        .send()
        .expect(200);
    s.req("GET", "/api/v1/user-meta/list").query(&[("user_id", "2")]).bearer(Some(BACKEND_API)).send().expect(200);
    // Users:UsersCreate was granted to no token; Subscriptions:* is not served here.
    let denied = |route: &str| {
        json!({"status": "error", "error": "no_authorization",
                                      "message": format!("Not authorized: Token has no access to resource [{route}]")})
    };
    let r =
        call("POST", "/api/v1/users/create", BACKEND_API, &[("email", "new@example.com"), ("password", "secret123")]);
    assert_eq!((r.status, &r.body), (403, &denied("users/create")), "{}", r.text);
    let r = call("POST", "/api/v1/users/update", BACKEND_API, &[("user_id", "1"), ("first_name", "X")]);
    assert_eq!((r.status, &r.body), (403, &denied("users/update")), "{}", r.text);
    // The inactive token stays inactive; the IP-limited one was not taken.
    call("POST", "/api/v1/users/list", RETIRED_API, &[("user_ids", "[]")])
        .expect_fields(403, json!({"message": "Not authorized: Token isn't active"}));
    call("POST", "/api/v1/users/list", IP_LIMITED_API, &[("user_ids", "[]")])
        .expect_fields(403, json!({"message": "Not authorized: Token doesn't exists"}));
}

#[test]
fn remp_addresses_meta_and_groups_answer_as_before() {
    let (mut s, _) = imported_server();
    let r = s
        .req("GET", "/api/v1/users/addresses")
        .query(&[("email", "jane@example.com")])
        .bearer(Some(&s.api_token))
        .send();
    let addresses = r.expect(200)["addresses"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        addresses.len(),
        1,
        "the deleted one is not listed, the one with an unknown country was not taken: {}",
        r.text
    );
    crate::harness::assert_subset(
        &addresses[0],
        &json!({"type": "invoice", "street": "Main", "number": "1", "city": "Bratislava", "zip": "81101",
                "country": "Slovakia", "company_id": "12345678", "company_name": "Doe s.r.o."}),
    );
    let mine = s.req("GET", "/api/v1/user/addresses").bearer(Some(JANE_ACCESS)).send();
    crate::harness::assert_subset(
        mine.expect(200),
        &json!({"status": "ok", "addresses": {"1": {"street": "Main", "address_string": "Jane Doe, Main 1, 81101 Bratislava, SK"}}}),
    );
    // Meta: Jane's public entry is listed, her private one is found by key, as in REMP.
    let meta = s.req("GET", "/api/v1/user-meta/list").query(&[("user_id", "1")]).bearer(Some(&s.api_token)).send();
    assert_eq!(meta.expect(200), &json!([{"user_id": 1, "key": "newsletter", "value": "daily"}]));
    let private = s.post_json("/api/v1/user-meta/key-users", json!({"key": "crm_note"}), Some(&s.api_token));
    assert!(private.expect(200).to_string().contains("\"internal\""), "{}", private.text);
    // Groups: Jane in Premium and Staff, John in Premium (group 9 does not exist).
    assert_eq!(s.user_field("jane@example.com", "groups"), "1,2");
    assert_eq!(s.user_field("john@example.com", "groups"), "1");
    // New records get ids past REMP's: the next address is 5, not one that exists.
    let created = s.api_form(
        "/api/v1/users/address",
        &[("email", "john@example.com"), ("type", "invoice"), ("street", "New"), ("city", "Nitra"), ("zip", "94901")],
    );
    let id = created.expect(200)["address"]["id"].as_i64();
    assert!(id.is_some_and(|id| id > 4), "{}", created.text);
}

#[test]
fn a_second_import_updates_and_duplicates_nothing() {
    let server = MariaDb::get();
    let db = server.remp_database(Hashes::get());
    let url = server.url(&db);
    let john_uuid = |data: &Path| {
        let out = run_cli_ok(data, &["user", "show", "john@example.com"]);
        out.lines().find_map(|l| l.strip_prefix("uuid: ")).map(str::to_owned).expect("uuid line")
    };
    let s = TestServer::start_after(|data| {
        let first = import(data, &url, &[]);
        let uuid = john_uuid(data);
        assert_eq!(uuid.len(), 36, "John's REMP row had no uuid; one is made: {uuid}");
        let again = import(data, &url, &[]);
        assert_eq!(first, again, "the same rows are taken the same way");
        // Meanwhile in REMP: John is renamed, signs out, leaves Premium, drops his newsletter.
        server.exec(&db, "UPDATE users SET first_name = 'Johnny' WHERE id = 2");
        server.exec(&db, "DELETE FROM access_tokens WHERE id = 3");
        server.exec(&db, "DELETE FROM user_groups WHERE id = 3");
        server.exec(&db, "DELETE FROM user_meta WHERE id = 3");
        let third = import(data, &url, &[]);
        assert_eq!(counts(&third, "users"), counts(&first, "users"));
        assert_eq!(counts(&third, "access_tokens"), [5, 3, 2, 1], "{third}");
        assert_eq!(counts(&third, "user_groups"), [3, 2, 1, 1], "{third}");
        assert_eq!(counts(&third, "user_meta"), [3, 2, 1, 1], "{third}");
        assert_eq!(john_uuid(data), uuid, "the made uuid is stable");
    });
    s.user_info(JOHN_ACCESS).expect_fields(403, json!({"error": "no_authorization"}));
    let meta = s.req("GET", "/api/v1/user-meta/list").query(&[("user_id", "2")]).bearer(Some(&s.api_token)).send();
    assert_eq!(meta.expect(200), &json!([]));
    s.req("POST", "/api/v1/users/list")
        .form(&[("user_ids", "[]"), ("page", "1")])
        .bearer(Some(&s.api_token))
        .send()
        .expect_fields(200, json!({"totalCount": 3}));
    s.req("GET", "/api/users/2").bearer(Some(&s.api_token)).send().expect_fields(200, json!({"first_name": "Johnny"}));
    let r = s
        .req("GET", "/api/v1/users/addresses")
        .query(&[("email", "jane@example.com")])
        .bearer(Some(&s.api_token))
        .send();
    assert_eq!(r.expect(200)["addresses"].as_array().map(Vec::len), Some(1), "{}", r.text);
    let meta = s.req("GET", "/api/v1/user-meta/list").query(&[("user_id", "1")]).bearer(Some(&s.api_token)).send();
    assert_eq!(meta.text.matches("\"daily\"").count(), 1, "{}", meta.text);
    s.user_info(JANE_ACCESS).expect_fields(200, json!({"user": {"id": 1}}));
    s.post_form("/api/v1/users/logout", &[], Some(JANE_DEVICE)).expect(200);
    for token in JANE_APP_ACCESS {
        s.user_info(token).expect(403);
    }
    let mut s = s;
    assert_eq!(s.user_field("john@example.com", "groups"), "-");
    assert_eq!(s.user_field("jane@example.com", "groups"), "1,2");
}

#[test]
fn dry_run_reports_the_same_counts_and_writes_nothing() {
    let url = remp_database();
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let dry = import(&data, &url, &["--dry-run"]);
    assert!(dry.contains("dry run: nothing was written"), "{dry}");
    assert_eq!(counts(&dry, "users"), [6, 5, 1, 0]);
    let out = run_cli(&data, &["user", "show", "jane@example.com"]);
    assert!(!out.status.success() && combined(&out).contains("User not found"), "{}", combined(&out));
    let real = import(&data, &url, &[]);
    for table in ["users", "access_tokens", "addresses", "api_tokens", "user_meta", "login_attempts"] {
        assert_eq!(counts(&dry, table), counts(&real, table), "{table}:\n{dry}\n{real}");
    }
}

#[test]
fn rows_that_cannot_be_imported_are_reported_with_their_reason() {
    let (_, report) = imported_server();
    assert_eq!(counts(&report, "users"), [6, 5, 1, 0], "{report}");
    assert_eq!(counts(&report, "access_tokens"), [6, 4, 2, 0], "{report}");
    assert_eq!(counts(&report, "api_tokens"), [3, 2, 1, 0], "{report}");
    for expected in [
        "countries id=3: ISO code \"XA\" is unknown to crm-users",
        "address_types row 1: type \"Bad Type\" is not",
        "users id=5: email \"   \" is empty",
        "user_meta id=4: user 5 was not imported",
        "user_groups id=4: group 9 was not imported",
        "access_tokens id=5: the token is not 32 hex characters",
        "access_tokens id=6: the same token as id=1",
        "addresses id=2: `country_id` 3 is no known country",
        "address_change_requests id=2: address 2 was not imported",
        "login_attempts id=4: status \"teleported\"",
        "api_tokens id=2: ip_restrictions \"10.0.0.1\" cannot be enforced",
        "api_access id=6: resource Subscriptions:SubscriptionsList is not served by crm-users",
    ] {
        assert!(report.contains(expected), "missing {expected:?} in:\n{report}");
    }
}

#[test]
fn unreachable_servers_and_bad_urls_fail_with_one_clear_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let closed = format!("mysql://remp:pw@127.0.0.1:{}/remp", closed_port());
    let wrong_password = MariaDb::get().url("remp_1").replace(mariadb::PASSWORD, "wrong-password");
    for (url, expected) in [
        (closed.as_str(), "crm-users: cannot connect to MySQL at 127.0.0.1:"),
        ("http://example.com/remp", "crm-users: invalid --mysql-url"),
        ("mysql://remp:pw@127.0.0.1", "crm-users: --mysql-url names no database"),
        (wrong_password.as_str(), "Access denied"),
    ] {
        let out = run_cli(&data, &["import", "remp", "--mysql-url", url]);
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        assert!(!out.status.success(), "{url}: {}", combined(&out));
        assert!(stderr.contains(expected) && stderr.lines().count() == 1, "{url}: {stderr}");
        assert!(!stderr.contains("wrong-password"), "the password is never printed: {stderr}");
    }
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
