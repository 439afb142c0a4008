//! The user-meta routes: `user-meta/upsert`, `user-meta/delete`, `user-meta/key-users` (JSON
//! documents, REMP's schema error bodies) and `user-meta/list` (a user token, or an API token
//! acting for `user_id`). State is re-read through `user-meta/list` and `key-users`; events are
//! observed through the kv-counter event-listener fixture.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{TestServer, create_api_token};
use crate::plugins::{eventually, server_with, unchanged};

const UPSERT: &str = "/api/v1/user-meta/upsert";
const DELETE: &str = "/api/v1/user-meta/delete";
const KEY_USERS: &str = "/api/v1/user-meta/key-users";
const LIST: &str = "/api/v1/user-meta/list";

fn upsert(s: &TestServer, user_id: i64, key: &str, value: &str, is_public: bool) -> Value {
    let body = json!({"user_id": user_id, "key": key, "value": value, "is_public": is_public});
    s.post_json(UPSERT, body, Some(&s.api_token)).expect(200).clone()
}

fn key_users(s: &TestServer, body: Value) -> Value {
    s.post_json(KEY_USERS, body, Some(&s.api_token)).expect(200).clone()
}

fn list(s: &TestServer, token: &str, query: &[(&str, &str)]) -> Value {
    s.req("GET", LIST).query(query).bearer(Some(token)).send().expect(200).clone()
}

/// A server plus an API token allowed only on `allow`.
fn server_with_token(allow: &str) -> (TestServer, String) {
    let mut token = String::new();
    let s = TestServer::start_with(None, |data| token = create_api_token(data, "limited", allow));
    (s, token)
}

#[test]
fn upsert_creates_an_entry_then_overwrites_value_and_visibility() {
    let mut s = TestServer::start();
    let (id, token) = s.create_user("anna@example.com", "secret123");
    let created = upsert(&s, id, "nickname", "Annie", true);
    assert_eq!(created, json!({"key": "nickname", "value": "Annie", "is_public": true}));
    assert_eq!(list(&s, &token, &[]), json!([{"user_id": id, "key": "nickname", "value": "Annie"}]));

    // is_public defaults to false on update too, so the entry leaves the public list.
    let body = json!({"user_id": id, "key": "nickname", "value": "Ann"});
    s.post_json(UPSERT, body, Some(&s.api_token))
        .expect_fields(200, json!({"key": "nickname", "value": "Ann", "is_public": false}));
    assert_eq!(list(&s, &token, &[]), json!([]));
    assert_eq!(key_users(&s, json!({"key": "nickname"})), json!([{"user_id": id, "value": "Ann"}]));

    s.restart();
    assert_eq!(key_users(&s, json!({"key": "nickname"})), json!([{"user_id": id, "value": "Ann"}]));
}

#[test]
fn upsert_and_delete_for_an_unknown_user_are_404_user_not_found() {
    let s = TestServer::start();
    for (path, body) in
        [(UPSERT, json!({"user_id": 999, "key": "k", "value": "v"})), (DELETE, json!({"user_id": 999, "key": "k"}))]
    {
        let r = s.post_json(path, body, Some(&s.api_token));
        assert_eq!(r.expect(404), &json!({"status": "error", "message": "User not found: 999"}), "{path}");
    }
    let r = s.post_json(UPSERT, json!({"user_id": -4, "key": "k", "value": "v"}), Some(&s.api_token));
    assert_eq!(r.expect(404)["message"], "User not found: -4");
    assert_eq!(key_users(&s, json!({"key": "k"})), json!([]));
}

#[test]
fn json_meta_routes_refuse_empty_and_malformed_bodies_as_remp() {
    let s = TestServer::start();
    for path in [UPSERT, DELETE, KEY_USERS] {
        let empty = s.req("POST", path).bearer(Some(&s.api_token)).send();
        assert_eq!(empty.expect(400), &json!({"status": "error", "message": "Empty request"}), "{path}");
        let malformed = s.req("POST", path).raw("application/json", b"{\"key\":".to_vec()).bearer(Some(&s.api_token));
        assert_eq!(
            malformed.send().expect(400),
            &json!({"status": "error", "message": "Malformed JSON", "errors": ["Syntax error"]}),
            "{path}"
        );
        // A form body is not a JSON document either.
        let form = s.api_form(path, &[("key", "k")]);
        form.expect_fields(400, json!({"message": "Malformed JSON"}));
    }
}

#[test]
fn json_meta_routes_list_each_schema_problem_as_payload_error() {
    let s = TestServer::start();
    let r = s.post_json(UPSERT, json!({"user_id": "1", "value": 5, "colour": "red"}), Some(&s.api_token));
    let body = r.expect_fields(400, json!({"status": "error", "message": "Payload error"}));
    let errors = body["errors"].as_array().expect("errors array");
    for expected in [
        json!({"": "The property colour is not defined and the definition does not allow additional properties: additionalProp"}),
        json!({"user_id": "String value found, but an integer is required: type"}),
        json!({"key": "The property key is required: required"}),
        json!({"value": "Integer value found, but a string is required: type"}),
    ] {
        assert!(errors.contains(&expected), "{expected} missing in {body}");
    }
    assert_eq!(errors.len(), 4, "{body}");

    let r =
        s.post_json(UPSERT, json!({"user_id": 1, "key": "k", "value": "v", "is_public": "yes"}), Some(&s.api_token));
    r.expect_fields(400, json!({"errors": [{"is_public": "String value found, but a boolean is required: type"}]}));
    s.post_json(DELETE, json!({"key": "k"}), Some(&s.api_token))
        .expect_fields(400, json!({"errors": [{"user_id": "The property user_id is required: required"}]}));
    s.post_json(KEY_USERS, json!({"key": "k", "user_id": 1}), Some(&s.api_token)).expect_fields(
        400,
        json!({"errors": [{"": "The property user_id is not defined and the definition does not allow additional properties: additionalProp"}]}),
    );
    s.post_json(KEY_USERS, json!([1]), Some(&s.api_token))
        .expect_fields(400, json!({"errors": [{"": "Array value found, but an object is required: type"}]}));
}

#[test]
fn upsert_refuses_keys_over_255_bytes_and_values_over_64_kib() {
    let s = TestServer::start();
    let (id, _) = s.create_user("anna@example.com", "secret123");
    let long_key = "k".repeat(256);
    let r = s.post_json(UPSERT, json!({"user_id": id, "key": long_key, "value": "v"}), Some(&s.api_token));
    r.expect_fields(
        400,
        json!({"message": "Payload error", "errors": [{"key": "Must be at most 255 bytes long: maxLength"}]}),
    );
    let long_value = "v".repeat(64 * 1024 + 1);
    let r = s.post_json(UPSERT, json!({"user_id": id, "key": "big", "value": long_value}), Some(&s.api_token));
    r.expect_fields(400, json!({"errors": [{"value": "Must be at most 65536 bytes long: maxLength"}]}));
    assert_eq!(key_users(&s, json!({"key": "big"})), json!([]));

    // The limits themselves are fine.
    let key = "k".repeat(255);
    upsert(&s, id, &key, &"v".repeat(64 * 1024), false);
    assert_eq!(key_users(&s, json!({"key": key}))[0]["user_id"], id);
}

#[test]
fn delete_removes_the_key_only_when_the_given_value_matches_and_answers_204() {
    let s = TestServer::start();
    let (id, _) = s.create_user("anna@example.com", "secret123");
    upsert(&s, id, "plan", "gold", false);

    let wrong = s.post_json(DELETE, json!({"user_id": id, "key": "plan", "value": "silver"}), Some(&s.api_token));
    assert_eq!((wrong.status, wrong.text.as_str()), (204, ""));
    assert_eq!(key_users(&s, json!({"key": "plan"})), json!([{"user_id": id, "value": "gold"}]));

    let right = s.post_json(DELETE, json!({"user_id": id, "key": "plan", "value": "gold"}), Some(&s.api_token));
    assert_eq!((right.status, right.text.as_str()), (204, ""));
    assert_eq!(key_users(&s, json!({"key": "plan"})), json!([]));

    upsert(&s, id, "plan", "gold", false);
    s.post_json(DELETE, json!({"user_id": id, "key": "plan"}), Some(&s.api_token)).expect(204);
    assert_eq!(key_users(&s, json!({"key": "plan"})), json!([]));
    // Deleting what is not there is still 204.
    s.post_json(DELETE, json!({"user_id": id, "key": "plan"}), Some(&s.api_token)).expect(204);
}

#[test]
fn key_users_finds_public_and_private_entries_by_key_and_by_value() {
    let s = TestServer::start();
    let (a, _) = s.create_user("a@example.com", "secret123");
    let (b, _) = s.create_user("b@example.com", "secret123");
    let (c, _) = s.create_user("c@example.com", "secret123");
    upsert(&s, a, "segment", "x", true);
    upsert(&s, b, "segment", "y", false);
    upsert(&s, c, "other", "x", true);

    let mut all = key_users(&s, json!({"key": "segment"})).as_array().cloned().expect("array");
    all.sort_by_key(|e| e["user_id"].as_i64());
    assert_eq!(all, vec![json!({"user_id": a, "value": "x"}), json!({"user_id": b, "value": "y"})]);
    assert_eq!(key_users(&s, json!({"key": "segment", "value": "y"})), json!([{"user_id": b, "value": "y"}]));
    assert_eq!(key_users(&s, json!({"key": "segment", "value": "z"})), json!([]));
    // REMP filters by value only when it is truthy; "" and "0" list every holder of the key.
    assert_eq!(key_users(&s, json!({"key": "segment", "value": "0"})).as_array().map(Vec::len), Some(2));
    assert_eq!(key_users(&s, json!({"key": "missing"})), json!([]));
}

#[test]
fn key_users_sees_meta_written_by_users_create() {
    let s = TestServer::start();
    let r = s.create(&[("email", "news@example.com"), ("password", "secret123"), ("newsletters_subscribe", "1")]);
    let id = r.expect(200)["user"]["id"].as_i64().expect("id");
    s.create_user("quiet@example.com", "secret123");
    assert_eq!(key_users(&s, json!({"key": "newsletters_subscribe"})), json!([{"user_id": id, "value": "1"}]));
}

#[test]
fn list_with_a_user_token_shows_public_meta_newest_first_and_filters_by_key() {
    let s = TestServer::start();
    let (id, token) = s.create_user("anna@example.com", "secret123");
    let (other, _) = s.create_user("bob@example.com", "secret123");
    upsert(&s, id, "first", "1", true);
    std::thread::sleep(Duration::from_millis(20));
    upsert(&s, id, "second", "2", true);
    upsert(&s, id, "secret", "3", false);
    upsert(&s, other, "theirs", "4", true);

    assert_eq!(
        list(&s, &token, &[]),
        json!([{"user_id": id, "key": "second", "value": "2"}, {"user_id": id, "key": "first", "value": "1"}])
    );
    assert_eq!(list(&s, &token, &[("key", "first")]), json!([{"user_id": id, "key": "first", "value": "1"}]));
    assert_eq!(list(&s, &token, &[("key", "secret")]), json!([]));
    // A user token never reads someone else's meta, whatever user_id says.
    assert_eq!(list(&s, &token, &[("user_id", &other.to_string()), ("key", "theirs")]), json!([]));
}

#[test]
fn list_with_a_device_token_shows_meta_of_the_paired_users() {
    let s = TestServer::start();
    let (id, token) = s.create_user("anna@example.com", "secret123");
    upsert(&s, id, "nickname", "Annie", true);
    let r = s.post_form("/api/v1/users/get-device-token", &[("device_id", "phone-1"), ("access_token", &token)], None);
    let device = r.expect(200)["device_token"].as_str().expect("device token").to_owned();
    assert_eq!(list(&s, &device, &[]), json!([{"user_id": id, "key": "nickname", "value": "Annie"}]));
}

#[test]
fn list_with_an_api_token_and_user_id_shows_that_users_meta() {
    let (s, limited) = server_with_token("user-meta/list");
    let (id, _) = s.create_user("anna@example.com", "secret123");
    upsert(&s, id, "nickname", "Annie", true);
    upsert(&s, id, "secret", "x", false);
    let user_id = id.to_string();
    assert_eq!(
        list(&s, &limited, &[("user_id", &user_id)]),
        json!([{"user_id": id, "key": "nickname", "value": "Annie"}])
    );
    // The user_id must come in the query string, as REMP reads it from $_GET.
    let r = s.req("POST", LIST).form(&[("user_id", &user_id)]).bearer(Some(&limited)).send();
    r.expect_fields(403, json!({"message": "Not authorized: Device token doesn't exist"}));
}

#[test]
fn list_falls_back_to_a_user_token_when_the_api_token_cannot_act() {
    let (s, not_allowed) = server_with_token("users/list");
    let (id, _) = s.create_user("anna@example.com", "secret123");
    upsert(&s, id, "nickname", "Annie", true);
    let refused = json!({"status": "error", "message": "Not authorized: Device token doesn't exist", "error": "no_authorization"});
    // A token not whitelisted for user-meta/list, then an unknown user, then no user_id.
    let user_id = id.to_string();
    for (token, query) in [
        (not_allowed.as_str(), vec![("user_id", user_id.as_str())]),
        (s.api_token.as_str(), vec![("user_id", "999")]),
        (s.api_token.as_str(), vec![]),
    ] {
        let r = s.req("GET", LIST).query(&query).bearer(Some(token)).send();
        assert_eq!(r.expect(403), &refused, "{query:?}");
    }
    s.req("GET", LIST)
        .send()
        .expect_fields(403, json!({"message": "Not authorized: Authorization header HTTP_Authorization is not set"}));
}

#[test]
fn meta_routes_need_an_api_token_whitelisting_them() {
    let (s, limited) = server_with_token("user-meta/list");
    let (id, _) = s.create_user("anna@example.com", "secret123");
    for (path, name) in [(UPSERT, "user-meta/upsert"), (DELETE, "user-meta/delete"), (KEY_USERS, "user-meta/key-users")]
    {
        let r = s.post_json(path, json!({"user_id": id, "key": "k", "value": "v"}), Some(&limited));
        r.expect_fields(403, json!({"message": format!("Not authorized: Token has no access to resource [{name}]")}));
    }
    assert_eq!(key_users(&s, json!({"key": "k"})), json!([]));
}

#[test]
fn meta_writes_publish_user_meta_events_only_when_something_changed() {
    let (s, _plugins) = server_with(&["kv-counter"], unchanged);
    let (id, _) = s.create_user("anna@example.com", "secret123");
    let events = || s.stderr().matches("event user_meta").count();
    upsert(&s, id, "plan", "gold", false);
    // Nothing to delete: no event.
    s.post_json(DELETE, json!({"user_id": id, "key": "plan", "value": "silver"}), Some(&s.api_token)).expect(204);
    s.post_json(DELETE, json!({"user_id": id, "key": "plan"}), Some(&s.api_token)).expect(204);
    upsert(&s, id, "last", "1", false);
    // A listener gets events in order, so once the last upsert's event is in, all are.
    eventually(Duration::from_secs(10), "three user_meta events", || events() >= 3);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(events(), 3, "upsert, delete, upsert; stderr:\n{}", s.stderr());
}
