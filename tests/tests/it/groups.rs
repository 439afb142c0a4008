//! Groups: the set-up interface (`POST /api/groups`, `crm-users group add`) and REMP's
//! `users/add-to-group` / `users/remove-from-group`. Memberships are re-read with the offline
//! `crm-users user show` (the server is stopped and started around it, so they also prove
//! durable).

use serde_json::json;

use crate::harness::{TestServer, create_api_token, run_cli_ok};

const GROUPS: &str = "/api/groups";
const ADD: &str = "/api/v1/users/add-to-group";
const REMOVE: &str = "/api/v1/users/remove-from-group";

fn create_group(s: &TestServer, name: &str) -> i64 {
    let r = s.post_json(GROUPS, json!({"name": name}), Some(&s.api_token));
    let body = r.expect_fields(200, json!({"name": name}));
    body["id"].as_i64().unwrap_or_else(|| panic!("no integer id in {}", r.text))
}

fn membership(s: &TestServer, path: &str, email: &str, group_id: i64) -> crate::harness::Resp {
    s.api_form(path, &[("email", email), ("group_id", &group_id.to_string())])
}

#[test]
fn create_group_returns_its_id_and_name() {
    let s = TestServer::start();
    let r = s.post_json(GROUPS, json!({"name": "  Premium "}), Some(&s.api_token));
    let body = r.expect(200);
    assert_eq!(body["name"], "Premium", "names are trimmed: {body}");
    assert!(body["id"].as_i64().is_some_and(|id| id > 0), "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "only id and name: {body}");
}

#[test]
fn create_group_allows_duplicate_names_with_distinct_ids() {
    let s = TestServer::start();
    let first = create_group(&s, "Newsletter");
    let second = create_group(&s, "Newsletter");
    assert_ne!(first, second);
}

#[test]
fn create_group_refuses_a_missing_empty_or_overlong_name_with_invalid_input() {
    let s = TestServer::start();
    for body in
        [json!({}), json!({"name": ""}), json!({"name": "   "}), json!({"name": 5}), json!({"name": "x".repeat(256)})]
    {
        let r = s.post_json(GROUPS, body.clone(), Some(&s.api_token));
        r.expect_fields(400, json!({"status": "error", "code": "invalid_input"}));
        assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}: {}", r.text);
    }
    let r = s.req("POST", GROUPS).raw("application/json", b"{nope".to_vec()).bearer(Some(&s.api_token)).send();
    r.expect_fields(400, json!({"code": "invalid_input"}));
    // 255 characters is the limit, counted in characters.
    create_group(&s, &"é".repeat(255));
}

#[test]
fn create_group_needs_a_token_whitelisting_groups_create() {
    let mut tokens = (String::new(), String::new());
    let s = TestServer::start_with(None, |data| {
        tokens = (create_api_token(data, "groups", "groups/create"), create_api_token(data, "other", "users/list"));
    });
    s.req("POST", GROUPS).json(json!({"name": "A"})).send().expect_fields(401, json!({"code": "unauthorized"}));
    s.post_json(GROUPS, json!({"name": "A"}), Some(&tokens.1)).expect_fields(403, json!({"code": "forbidden"}));
    s.post_json(GROUPS, json!({"name": "A"}), Some(&tokens.0)).expect_fields(200, json!({"name": "A"}));
}

#[test]
fn cli_group_add_prints_the_new_id_alone_on_the_last_line() {
    let mut out = String::new();
    let mut s = TestServer::start_with(None, |data| out = run_cli_ok(data, &["group", "add", "VIP"]));
    let id = out.lines().last().unwrap_or_default().trim().to_owned();
    assert!(id.parse::<u64>().is_ok(), "last line is the id: {out}");
    s.create_user("anna@example.com", "secret123");
    membership(&s, ADD, "anna@example.com", id.parse().expect("id")).expect(200);
    assert_eq!(s.user_field("anna@example.com", "groups"), id);
    let err = s.cli(&["group", "add", " "]);
    assert!(!err.status.success(), "an empty name is refused");
}

#[test]
fn add_and_remove_are_idempotent_and_change_the_membership() {
    let mut s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    let premium = create_group(&s, "Premium");
    let other = create_group(&s, "Other");
    for _ in 0..2 {
        assert_eq!(membership(&s, ADD, "anna@example.com", premium).expect(200), &json!({"status": "ok"}));
    }
    membership(&s, ADD, "anna@example.com", other).expect(200);
    assert_eq!(s.user_field("anna@example.com", "groups"), format!("{premium},{other}"));

    for _ in 0..2 {
        assert_eq!(membership(&s, REMOVE, "anna@example.com", premium).expect(200), &json!({"status": "ok"}));
    }
    assert_eq!(s.user_field("anna@example.com", "groups"), other.to_string());
    membership(&s, REMOVE, "anna@example.com", other).expect(200);
    assert_eq!(s.user_field("anna@example.com", "groups"), "-");
}

#[test]
fn add_to_group_with_a_trailing_slash_adds() {
    let mut s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    let group = create_group(&s, "Premium");
    membership(&s, &format!("{ADD}/"), "anna@example.com", group).expect(200);
    assert_eq!(s.user_field("anna@example.com", "groups"), group.to_string());
    membership(&s, &format!("{REMOVE}/"), "anna@example.com", group).expect(200);
    assert_eq!(s.user_field("anna@example.com", "groups"), "-");
}

#[test]
fn unknown_user_or_group_is_404_with_remps_body_without_code() {
    let s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    let group = create_group(&s, "Premium");
    for path in [ADD, REMOVE] {
        let r = membership(&s, path, "nobody@example.com", group);
        assert_eq!(r.expect(404), &json!({"status": "error", "message": "User doesn't exists"}), "{path}");
        let r = membership(&s, path, "anna@example.com", group + 100);
        assert_eq!(r.expect(404), &json!({"status": "error", "message": "Group doesn't exists"}), "{path}");
        let r = s.api_form(path, &[("email", "anna@example.com"), ("group_id", "premium")]);
        assert_eq!(r.expect(404)["message"], "Group doesn't exists");
    }
}

#[test]
fn missing_email_or_group_id_is_400_invalid_input() {
    let s = TestServer::start();
    for path in [ADD, REMOVE] {
        s.api_form(path, &[]).expect_fields(
            400,
            json!({"status": "error", "code": "invalid_input",
                   "errors": {"email": ["Field is required"], "group_id": ["Field is required"]}}),
        );
        s.api_form(path, &[("email", "anna@example.com"), ("group_id", "")])
            .expect_fields(400, json!({"errors": {"group_id": ["Field is required"]}}));
    }
}

#[test]
fn add_and_remove_each_need_their_own_whitelist_entry() {
    let mut token = String::new();
    let mut s = TestServer::start_with(None, |data| token = create_api_token(data, "adder", "users/add-to-group"));
    s.create_user("anna@example.com", "secret123");
    let group = create_group(&s, "Premium");
    let pairs = [("email", "anna@example.com"), ("group_id", &group.to_string()[..])];
    s.post_form(ADD, &pairs, Some(&token)).expect(200);
    s.post_form(REMOVE, &pairs, Some(&token)).expect_fields(
        403,
        json!({"message": "Not authorized: Token has no access to resource [users/remove-from-group]"}),
    );
    assert_eq!(s.user_field("anna@example.com", "groups"), group.to_string());
}
