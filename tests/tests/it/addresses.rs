//! Addresses through the real server: REMP's `users/addresses`, `users/address`,
//! `user/addresses` and `users/change-address-request`, change requests accepted and
//! rejected through `/api/address-change-requests`, address types from config, CLI, API and
//! plugins, and plugin types validating, normalizing and formatting their addresses.

use crate::harness::{TestServer, run_cli, server_with_plugins};
use serde_json::{Value, json};

/// A config type, as REMP's test seeder inserts `crm_test`.
const CONFIG: &str = "[[address_types]]\ntype = \"crm_test\"\ntitle = \"Test address\"\n";

fn server() -> TestServer {
    TestServer::start_with_config(CONFIG)
}

/// `users/address` that must succeed; returns the new address id.
#[track_caller]
fn add_address(server: &TestServer, pairs: &[(&str, &str)]) -> u64 {
    let r = server.api_form("/api/v1/users/address", pairs);
    let id = r.expect(200)["address"]["id"].as_u64();
    assert_eq!(r["status"], "ok");
    id.unwrap_or_else(|| panic!("users/address gave no integer id: {}", r.text))
}

/// `users/addresses` of `email` (optionally of one type), which must succeed.
#[track_caller]
fn addresses_of(server: &TestServer, email: &str, kind: Option<&str>) -> Vec<Value> {
    let mut query = vec![("email", email)];
    if let Some(kind) = kind {
        query.push(("type", kind));
    }
    let r = server.req("GET", "/api/v1/users/addresses").query(&query).bearer(Some(&server.api_token)).send();
    r.expect(200)["addresses"].as_array().cloned().unwrap_or_else(|| panic!("no addresses array: {}", r.text))
}

#[track_caller]
fn change_request(server: &TestServer, pairs: &[(&str, &str)]) -> crate::harness::Resp {
    server.api_form("/api/v1/users/change-address-request", pairs)
}

#[track_caller]
fn decide(server: &TestServer, id: &str, decision: &str) -> crate::harness::Resp {
    server.req("POST", &format!("/api/address-change-requests/{id}/{decision}")).bearer(Some(&server.api_token)).send()
}

#[test]
fn users_address_creates_addresses_that_users_addresses_lists() {
    let server = server();
    server.create_user("jana@example.com", "secret123");
    let first = add_address(
        &server,
        &[
            ("email", "jana@example.com"),
            ("type", "crm_test"),
            ("first_name", "Jana"),
            ("last_name", "Nová"),
            ("street", "Hlavná"),
            ("number", "1"),
            ("zip", "811 01"),
            ("city", "Bratislava"),
            ("company_id", " 123 456 78 "),
            ("tax_id", "2020 123 456"),
            ("vat_id", "SK 2020 123 456"),
            ("phone_number", "+421 900 000 000"),
        ],
    );
    // REMP's README calls the street `address`; both names are taken.
    let second = add_address(&server, &[("email", "jana@example.com"), ("type", "crm_test"), ("address", "Dlhá")]);
    assert_ne!(first, second, "users/address always creates a new address");

    let list = addresses_of(&server, "jana@example.com", None);
    assert_eq!(list.len(), 2, "{list:?}");
    let a = list.iter().find(|a| a["street"] == "Hlavná").expect("first address listed");
    crate::harness::assert_subset(
        a,
        &json!({
            "type": "crm_test",
            "email": "jana@example.com",
            "first_name": "Jana",
            "last_name": "Nová",
            "number": "1",
            "zip": "811 01",
            "city": "Bratislava",
            "company_id": "12345678",
            "tax_id": "2020123456",
            "vat_id": "SK2020123456",
            "phone_number": "+421 900 000 000",
            "company_name": null,
            "country": "Slovakia",
        }),
    );
    assert!(a["user_id"].is_u64());
    let created = a["created_at"].as_str().expect("created_at");
    assert!(chrono::DateTime::parse_from_rfc3339(created).is_ok() && created.len() == 25, "{created}");
    assert!(list.iter().any(|a| a["street"] == "Dlhá"), "the alias `address` fills street: {list:?}");

    assert_eq!(addresses_of(&server, "jana@example.com", Some("crm_test")).len(), 2);
    assert!(addresses_of(&server, "jana@example.com", Some("invoice")).is_empty());
}

#[test]
fn address_routes_refuse_as_remp_does() {
    let server = server();
    server.create_user("jana@example.com", "secret123");
    let missing = server.api_form("/api/v1/users/address", &[("email", "jana@example.com")]);
    missing.expect_fields(400, json!({"code": "invalid_input", "errors": {"type": ["Field is required"]}}));
    let no_user = server.api_form("/api/v1/users/address", &[("email", "nobody@example.com"), ("type", "crm_test")]);
    assert_eq!(no_user.expect(404), &json!({"status": "error", "message": "User not found"}));
    let no_type = server.api_form("/api/v1/users/address", &[("email", "jana@example.com"), ("type", "nope")]);
    assert_eq!(no_type.expect(400), &json!({"status": "error", "message": "Address type not found"}));
    let no_country = server.api_form(
        "/api/v1/users/address",
        &[("email", "jana@example.com"), ("type", "crm_test"), ("country_iso", "XQ")],
    );
    assert_eq!(no_country.expect(400), &json!({"status": "error", "message": "Country not found"}));
    let no_token = server.post_form("/api/v1/users/address", &[("email", "jana@example.com")], None);
    no_token.expect_fields(403, json!({"error": "no_authorization"}));
    assert!(addresses_of(&server, "jana@example.com", None).is_empty(), "nothing was created");

    let unknown = server.req("GET", "/api/v1/users/addresses").query(&[("email", "nobody@example.com")]);
    let unknown = unknown.bearer(Some(&server.api_token)).send();
    assert_eq!(unknown.expect(400), &json!({"status": "error", "message": "user doesn't exist: nobody@example.com"}));
    let no_email = server.get("/api/v1/users/addresses", Some(&server.api_token));
    no_email.expect_fields(400, json!({"code": "invalid_input", "errors": {"email": ["Field is required"]}}));
}

#[test]
fn country_defaults_to_the_configured_one_and_iso_codes_are_case_insensitive() {
    let server = TestServer::start_with_config(&format!("default_country = \"CZ\"\n{CONFIG}"));
    server.create_user("jan@example.com", "secret123");
    add_address(&server, &[("email", "jan@example.com"), ("type", "crm_test"), ("city", "Praha")]);
    add_address(
        &server,
        &[("email", "jan@example.com"), ("type", "crm_test"), ("city", "Wien"), ("country_iso", "at")],
    );
    let list = addresses_of(&server, "jan@example.com", None);
    let country_of = |city: &str| list.iter().find(|a| a["city"] == city).map(|a| a["country"].clone());
    assert_eq!(country_of("Praha"), Some(json!("Czechia")));
    assert_eq!(country_of("Wien"), Some(json!("Austria")));
}

#[test]
fn an_unknown_default_country_stops_the_start_with_its_name() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "default_country = \"XQ\"\n").expect("config");
    let out = run_cli(&dir.path().join("data"), &["--config", config.to_str().expect("utf-8"), "address-type", "list"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("'XQ'"), "{}", crate::harness::combined(&out));
}

#[test]
fn user_addresses_lists_the_users_own_addresses_keyed_by_id_newest_first() {
    let server = server();
    let (_, token) = server.create_user("jana@example.com", "secret123");
    let empty = server.get("/api/v1/user/addresses", Some(&token));
    assert_eq!(empty.expect(200), &json!({"status": "ok", "addresses": []}));

    let older = add_address(
        &server,
        &[
            ("email", "jana@example.com"),
            ("type", "crm_test"),
            ("first_name", "Jana"),
            ("last_name", "Nová"),
            ("street", "Hlavná"),
            ("number", "1"),
            ("zip", "811 01"),
            ("city", "Bratislava"),
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(5));
    let newer = add_address(&server, &[("email", "jana@example.com"), ("type", "crm_test"), ("city", "Košice")]);
    let r = server.get("/api/v1/user/addresses", Some(&token));
    let addresses = r.expect(200)["addresses"].as_object().expect("an object keyed by id").clone();
    let keys: Vec<&String> = addresses.keys().collect();
    assert_eq!(keys, [&newer.to_string(), &older.to_string()], "newest first");
    let first = &addresses[&older.to_string()];
    let sk = json!({"id": first["country"]["id"], "name": "Slovakia", "iso_code": "SK"});
    assert!(first["country"]["id"].is_u64(), "{first}");
    assert_eq!(
        first,
        &json!({
            "id": older,
            "type": "crm_test",
            "first_name": "Jana",
            "last_name": "Nová",
            "street": "Hlavná",
            "number": "1",
            "city": "Bratislava",
            "zip": "811 01",
            "country": sk,
            "is_default": false,
            "address_string": "Jana Nová, Hlavná 1, 811 01 Bratislava, SK",
        }),
        "null fields are left out"
    );
    assert_eq!(addresses[&newer.to_string()]["address_string"], "Košice, SK");

    let other = server.get("/api/v1/user/addresses?type=invoice", Some(&token));
    assert_eq!(other.expect(200)["addresses"], json!([]));
    server.get("/api/v1/user/addresses", None).expect_fields(403, json!({"error": "no_authorization"}));
    let (_, stranger) = server.create_user("petra@example.com", "secret123");
    assert_eq!(server.get("/api/v1/user/addresses", Some(&stranger)).expect(200)["addresses"], json!([]));
}

#[test]
fn accepted_change_request_changes_the_address_and_keeps_the_old_values() {
    let server = server();
    server.create_user("jana@example.com", "secret123");
    let address = add_address(
        &server,
        &[("email", "jana@example.com"), ("type", "crm_test"), ("street", "Hlavná"), ("city", "Bratislava")],
    );
    let requested = change_request(
        &server,
        &[
            ("email", "jana@example.com"),
            ("type", "crm_test"),
            ("street", "Hlavná"),
            ("city", "Košice"),
            ("company_vat_id", "SK 123"),
        ],
    );
    let request_id = requested.expect(200)["address"]["id"].as_u64().expect("change request id");
    assert_eq!(
        addresses_of(&server, "jana@example.com", None)[0]["city"],
        "Bratislava",
        "a new request changes nothing"
    );

    let accepted = decide(&server, &request_id.to_string(), "accept");
    accepted.expect_fields(
        200,
        json!({"status": "ok", "change_request": {
            "id": request_id,
            "status": "accepted",
            "address_id": address,
            "city": "Košice",
            "company_vat_id": "SK123",
            "old_city": "Bratislava",
            "old_street": "Hlavná",
            "old_company_vat_id": null,
        }}),
    );
    let list = addresses_of(&server, "jana@example.com", None);
    assert_eq!(list.len(), 1, "accepting a change does not add an address");
    assert_eq!((&list[0]["city"], &list[0]["vat_id"]), (&json!("Košice"), &json!("SK123")));

    // Accepting again answers with the accepted request; rejecting it now is a conflict.
    decide(&server, &request_id.to_string(), "accept")
        .expect_fields(200, json!({"change_request": {"status": "accepted"}}));
    decide(&server, &request_id.to_string(), "reject").expect_fields(409, json!({"code": "change_request_accepted"}));
}

#[test]
fn rejected_change_request_leaves_the_address_and_cannot_be_accepted() {
    let server = server();
    server.create_user("jana@example.com", "secret123");
    add_address(&server, &[("email", "jana@example.com"), ("type", "crm_test"), ("city", "Bratislava")]);
    let requested = change_request(&server, &[("email", "jana@example.com"), ("type", "crm_test"), ("city", "Nitra")]);
    let id = requested.expect(200)["address"]["id"].as_u64().expect("id").to_string();

    decide(&server, &id, "reject")
        .expect_fields(200, json!({"change_request": {"status": "rejected", "city": "Nitra"}}));
    assert_eq!(addresses_of(&server, "jana@example.com", None)[0]["city"], "Bratislava");
    decide(&server, &id, "accept").expect_fields(409, json!({"code": "change_request_rejected"}));
    decide(&server, &id, "reject").expect_fields(200, json!({"change_request": {"status": "rejected"}}));
    assert_eq!(addresses_of(&server, "jana@example.com", None)[0]["city"], "Bratislava");

    decide(&server, "999", "accept").expect_fields(404, json!({"code": "not_found"}));
    decide(&server, "abc", "reject").expect_fields(404, json!({"code": "not_found"}));
}

#[test]
fn change_request_errors_follow_remp_and_an_unchanged_request_has_no_id() {
    let server = server();
    server.create_user("jana@example.com", "secret123");
    let no_parent = change_request(&server, &[("email", "jana@example.com"), ("type", "crm_test"), ("city", "Nitra")]);
    assert_eq!(no_parent.expect(404), &json!({"status": "error", "message": "Parent address not found"}));
    let no_user = change_request(&server, &[("email", "nobody@example.com"), ("type", "crm_test")]);
    assert_eq!(no_user.expect(404), &json!({"status": "error", "message": "User not found"}));
    let no_type = change_request(&server, &[("email", "jana@example.com"), ("type", "nope")]);
    assert_eq!(no_type.expect(400), &json!({"status": "error", "message": "Address type not found"}));
    change_request(&server, &[("email", "jana@example.com")])
        .expect_fields(400, json!({"code": "invalid_input", "errors": {"type": ["Field is required"]}}));

    add_address(&server, &[("email", "jana@example.com"), ("type", "crm_test"), ("city", "Nitra")]);
    let same = change_request(&server, &[("email", "jana@example.com"), ("type", "crm_test"), ("city", "Nitra")]);
    assert_eq!(same.expect(200), &json!({"status": "ok", "address": {"id": null}}));
    let bad_country = change_request(
        &server,
        &[("email", "jana@example.com"), ("type", "crm_test"), ("city", "Nitra"), ("country_id", "99999")],
    );
    assert_eq!(bad_country.expect(400), &json!({"status": "error", "message": "Country not found"}));
}

#[test]
fn address_types_come_from_config_cli_and_api_and_survive_a_restart() {
    let mut server = TestServer::start_with(Some(CONFIG), |data| {
        let out = run_cli(data, &["address-type", "add", "print", "--title", "Print address", "--sorting", "5"]);
        assert!(out.status.success(), "{}", crate::harness::combined(&out));
        let bad = run_cli(data, &["address-type", "add", "Bad Key", "--title", "X"]);
        assert!(!bad.status.success(), "an invalid key is refused");
    });
    let token = server.api_token.clone();
    let created =
        server.post_json("/api/address-types", json!({"type": "delivery", "title": "Delivery"}), Some(&token));
    created.expect_fields(201, json!({"address_type": {"type": "delivery", "title": "Delivery", "source": "stored"}}));
    server
        .post_json("/api/address-types", json!({"type": "delivery", "title": "Again"}), Some(&token))
        .expect_fields(409, json!({"code": "address_type_exists"}));
    server
        .post_json("/api/address-types", json!({"type": "crm_test", "title": "Clash"}), Some(&token))
        .expect_fields(409, json!({"code": "address_type_exists"}));
    server
        .post_json("/api/address-types", json!({"type": "No Way", "title": "X"}), Some(&token))
        .expect_fields(400, json!({"code": "invalid_type"}));
    server
        .post_json("/api/address-types", json!({"type": "x"}), Some(&token))
        .expect_fields(400, json!({"code": "invalid_input"}));
    server.post_json("/api/address-types", json!({"type": "y", "title": "Y"}), None).expect(401);

    let listed = || {
        let r = server.get("/api/address-types", Some(&token));
        r.expect(200)["address_types"].as_array().cloned().expect("a list")
    };
    let expected = json!([
        {"type": "print", "title": "Print address", "sorting": 5, "source": "stored", "plugin": null},
        {"type": "crm_test", "title": "Test address", "sorting": 100, "source": "config", "plugin": null},
        {"type": "delivery", "title": "Delivery", "sorting": 100, "source": "stored", "plugin": null},
    ]);
    assert_eq!(Value::Array(listed()), expected);

    server.create_user("jana@example.com", "secret123");
    add_address(&server, &[("email", "jana@example.com"), ("type", "delivery")]);
    add_address(&server, &[("email", "jana@example.com"), ("type", "print")]);

    server.restart();
    let token = server.api_token.clone();
    let r = server.get("/api/address-types", Some(&token));
    assert_eq!(r.expect(200)["address_types"], expected, "stored types are durable");
    assert_eq!(addresses_of(&server, "jana@example.com", None).len(), 2, "addresses are durable");
}

#[test]
fn set_up_routes_need_a_whitelisted_token() {
    let server = TestServer::start_with(Some(CONFIG), |data| {
        let limited = crate::harness::create_api_token(data, "lister", "address-types/list");
        std::fs::write(data.join("limited-token"), limited).expect("save token");
    });
    let limited = std::fs::read_to_string(server.data_dir().join("limited-token")).expect("token");
    server.get("/api/address-types", Some(&limited)).expect(200);
    server
        .post_json("/api/address-types", json!({"type": "x", "title": "X"}), Some(&limited))
        .expect_fields(403, json!({"code": "forbidden"}));
    decide(&server, "1", "accept").expect_fields(404, json!({"code": "not_found"}));
    let r = server.req("POST", "/api/address-change-requests/1/accept").bearer(Some(&limited)).send();
    r.expect_fields(403, json!({"code": "forbidden"}));
    let remp = server.api_form("/api/v1/users/address", &[("email", "a@example.com"), ("type", "crm_test")]);
    remp.expect(404);
    let remp = server.post_form("/api/v1/users/address", &[("email", "a@example.com")], Some(&limited));
    remp.expect_fields(403, json!({"error": "no_authorization"}));
}

#[test]
fn invoice_plugin_validates_normalizes_and_formats_invoice_addresses() {
    let (server, _plugins) = server_with_plugins(&["invoice-address"], |_, t| t, "");
    let types = server.get("/api/address-types", Some(&server.api_token));
    assert_eq!(
        types.expect(200)["address_types"],
        json!([{"type": "invoice", "title": "Invoice address", "sorting": 0, "source": "plugin", "plugin": "invoice-address"}])
    );
    let (_, token) = server.create_user("firma@example.com", "secret123");

    let refused = server.api_form(
        "/api/v1/users/address",
        &[("email", "firma@example.com"), ("type", "invoice"), ("street", "Hlavná"), ("vat_id", "SK1")],
    );
    let body =
        refused.expect_fields(400, json!({"status": "error", "message": "Invalid address", "code": "invalid_address"}));
    let errors = body["errors"].as_object().expect("errors by field");
    for field in ["company_name", "city", "zip", "company_vat_id"] {
        assert!(errors[field].as_array().is_some_and(|m| !m.is_empty() && m[0].is_string()), "{field}: {body}");
    }
    assert!(addresses_of(&server, "firma@example.com", None).is_empty(), "nothing stored");

    let id = add_address(
        &server,
        &[
            ("email", "firma@example.com"),
            ("type", "invoice"),
            ("company_name", " ACME s.r.o. "),
            ("street", "Hlavná"),
            ("number", "1"),
            ("zip", "811 01"),
            ("city", "Bratislava"),
            ("country_iso", "sk"),
            ("company_id", "123 456 78"),
            ("vat_id", "sk 2020123456"),
        ],
    );
    let own = server.get("/api/v1/user/addresses", Some(&token));
    let address = &own.expect(200)["addresses"][id.to_string()];
    assert_eq!(address["company_name"], "ACME s.r.o.");
    assert_eq!(address["company_vat_id"], "SK2020123456");
    assert_eq!(
        address["address_string"],
        "ACME s.r.o., Hlavná 1, 811 01 Bratislava, SK, IČO: 12345678, IČ DPH: SK2020123456"
    );

    let change = change_request(
        &server,
        &[("email", "firma@example.com"), ("type", "invoice"), ("company_name", "ACME"), ("company_vat_id", "CZ1234")],
    );
    change.expect_fields(400, json!({"code": "invalid_address"}));
    assert!(change["errors"]["company_vat_id"].is_array(), "{}", change.text);
}

#[test]
fn uppercase_plugin_stores_the_fields_it_normalized() {
    let (server, _plugins) = server_with_plugins(&["uppercase-address"], |_, t| t, "");
    let (_, token) = server.create_user("jana@example.com", "secret123");
    let id = add_address(
        &server,
        &[("email", "jana@example.com"), ("type", "shouting"), ("first_name", "jana"), ("city", "bratislava")],
    );
    let list = addresses_of(&server, "jana@example.com", Some("shouting"));
    assert_eq!((&list[0]["first_name"], &list[0]["city"]), (&json!("JANA"), &json!("BRATISLAVA")));
    let own = server.get("/api/v1/user/addresses", Some(&token));
    assert_eq!(own.expect(200)["addresses"][id.to_string()]["address_string"], "JANA | BRATISLAVA | SK");
}

#[test]
fn a_failing_type_plugin_refuses_addresses_when_it_fails_closed() {
    let (server, _plugins) = server_with_plugins(&["broken-address"], |_, t| t, "");
    let (_, token) = server.create_user("jana@example.com", "secret123");
    let refused = server.api_form("/api/v1/users/address", &[("email", "jana@example.com"), ("type", "broken")]);
    refused.expect_fields(422, json!({"status": "error", "code": "address_type_unavailable"}));
    assert!(addresses_of(&server, "jana@example.com", None).is_empty(), "nothing stored");
    assert_eq!(server.get("/api/v1/user/addresses", Some(&token)).expect(200)["addresses"], json!([]));
}

#[test]
fn a_failing_type_plugin_that_fails_open_keeps_the_address_and_the_built_in_format() {
    let (server, _plugins) = server_with_plugins(&["broken-address"], |_, t| format!("{t}\nfailure = \"open\"\n"), "");
    let (_, token) = server.create_user("jana@example.com", "secret123");
    let id = add_address(&server, &[("email", "jana@example.com"), ("type", "broken"), ("city", "nitra")]);
    assert_eq!(addresses_of(&server, "jana@example.com", None)[0]["city"], "nitra", "kept as given");
    let own = server.get("/api/v1/user/addresses", Some(&token));
    assert_eq!(own.expect(200)["addresses"][id.to_string()]["address_string"], "nitra, SK");
}

#[test]
fn address_events_reach_event_listeners_once_each() {
    let (server, _plugins) = server_with_plugins(&["kv-counter"], |_, t| t, CONFIG);
    server.create_user("jana@example.com", "secret123");
    add_address(&server, &[("email", "jana@example.com"), ("type", "crm_test"), ("city", "Nitra")]);
    let requested = change_request(&server, &[("email", "jana@example.com"), ("type", "crm_test"), ("city", "Žilina")]);
    let id = requested.expect(200)["address"]["id"].as_u64().expect("id");
    decide(&server, &id.to_string(), "accept").expect(200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.stderr().contains("event address_changed") {
        assert!(std::time::Instant::now() < deadline, "no address_changed event:\n{}", server.stderr());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Listeners get events in order, so the earlier ones have been logged by now.
    let log = server.stderr();
    let requests = log.matches("event new_address_change_request").count();
    assert_eq!(requests, 2, "users/address and change-address-request each make a request");
    assert_eq!(log.matches("event new_address").count() - requests, 1, "REMP's double NewAddressEvent is sent once");
    assert_eq!(log.matches("event address_changed").count(), 1);
}
