//! Roles and permissions through the real server: `/api/roles`, `/api/users/{id}/roles`,
//! `/api/users/{id}/permissioncheck`, admin user tokens on the resource API, the CLI
//! (`role add`, `role assign`) and `user.roles` in REMP's login response.

use serde_json::{Value, json};
use std::path::Path;

use crate::harness::{TestServer, create_api_token, run_cli, run_cli_ok};

const ROLES: &str = "/api/roles";

fn create_role(s: &TestServer, name: &str, permissions: &[&str]) -> i64 {
    let r = s.post_json(ROLES, json!({"name": name, "permissions": permissions}), Some(&s.api_token));
    let body = r.expect_fields(201, json!({"status": "ok", "role": {"name": name, "permissions": permissions}}));
    body["role"]["id"].as_i64().unwrap_or_else(|| panic!("no id: {}", r.text))
}

fn put(s: &TestServer, path: &str, body: Value, bearer: &str) -> crate::harness::Resp {
    s.req("PUT", path).json(body).bearer(Some(bearer)).send()
}

/// Offline: a user (admin or not) with the roles given as `name:perm,perm`.
fn user_with_roles(data: &Path, email: &str, admin: bool, roles: &[(&str, &str)]) {
    let mut args = vec!["user", "add", email, "--password", "secret123"];
    if admin {
        args.push("--admin");
    }
    run_cli_ok(data, &args);
    for (name, perms) in roles {
        if run_cli(data, &["role", "assign", email, name]).status.success() {
            continue;
        }
        run_cli_ok(data, &["role", "add", name, "--permissions", perms]);
        run_cli_ok(data, &["role", "assign", email, name]);
    }
}

#[test]
fn roles_are_created_shown_listed_updated_and_deleted() {
    let s = TestServer::start();
    let id = create_role(&s, "Editors", &["groups/list", "groups/show"]);
    let path = format!("{ROLES}/{id}");
    s.get(&path, Some(&s.api_token)).expect_fields(200, json!({"role": {"id": id, "name": "Editors"}}));
    let list = s.get(ROLES, Some(&s.api_token));
    assert_eq!(list.expect(200)["roles"][0]["user_count"], 0, "{}", list.text);

    let r = put(&s, &path, json!({"permissions": ["*"]}), &s.api_token);
    r.expect_fields(200, json!({"role": {"name": "Editors", "permissions": ["*"]}}));
    put(&s, &path, json!({"name": "Writers"}), &s.api_token).expect_fields(200, json!({"role": {"name": "Writers"}}));
    s.get(&path, Some(&s.api_token)).expect_fields(200, json!({"role": {"name": "Writers", "permissions": ["*"]}}));

    s.req("DELETE", &path).bearer(Some(&s.api_token)).send().expect_fields(200, json!({"status": "ok"}));
    s.get(&path, Some(&s.api_token)).expect_fields(404, json!({"status": "error", "code": "not_found"}));
    s.req("DELETE", &path).bearer(Some(&s.api_token)).send().expect_fields(404, json!({"code": "not_found"}));
    assert_eq!(s.get(ROLES, Some(&s.api_token)).expect(200)["roles"], json!([]));
}

#[test]
fn role_input_errors_are_4xx_with_codes() {
    let s = TestServer::start();
    let editors = create_role(&s, "Editors", &[]);
    create_role(&s, "Viewers", &["roles/list"]);
    let post = |body: Value| s.post_json(ROLES, body, Some(&s.api_token));
    post(json!({"name": "editors"})).expect_fields(409, json!({"status": "error", "code": "role_name_taken"}));
    post(json!({"name": "X", "permissions": ["users/fly"]})).expect_fields(400, json!({"code": "invalid_permission"}));
    post(json!({"name": "X", "permissions": "groups/list"})).expect_fields(400, json!({"code": "invalid_input"}));
    post(json!({"permissions": []})).expect_fields(400, json!({"code": "invalid_input"}));
    post(json!({"name": " "})).expect_fields(400, json!({"code": "invalid_input"}));
    post(json!({"name": "X", "colour": "red"})).expect_fields(400, json!({"code": "invalid_input"}));
    let r = s.req("POST", ROLES).raw("application/json", b"{nope".to_vec()).bearer(Some(&s.api_token)).send();
    r.expect_fields(400, json!({"code": "invalid_input"}));

    let path = format!("{ROLES}/{editors}");
    put(&s, &path, json!({"name": "VIEWERS"}), &s.api_token).expect_fields(409, json!({"code": "role_name_taken"}));
    put(&s, &path, json!({}), &s.api_token).expect_fields(400, json!({"code": "invalid_input"}));
    put(&s, &format!("{ROLES}/999"), json!({"name": "Z"}), &s.api_token)
        .expect_fields(404, json!({"code": "not_found"}));
    s.get(&format!("{ROLES}/abc"), Some(&s.api_token)).expect_fields(404, json!({"code": "not_found"}));
}

#[test]
fn user_roles_are_replaced_read_back_and_lose_deleted_roles() {
    let s = TestServer::start();
    let (user, _) = s.create_user("anna@example.com", "secret123");
    let a = create_role(&s, "A", &["groups/list"]);
    let b = create_role(&s, "B", &["roles/list"]);
    let path = format!("/api/users/{user}/roles");
    let r = put(&s, &path, json!({"roles": [b, a, b]}), &s.api_token);
    let body = r.expect_fields(200, json!({"user_id": user, "admin": false}));
    let ids: Vec<i64> = body["roles"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![a, b]);

    s.req("DELETE", &format!("{ROLES}/{a}")).bearer(Some(&s.api_token)).send().expect(200);
    let body = s.get(&path, Some(&s.api_token));
    let names: Vec<&str> =
        body.expect(200)["roles"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["B"], "the deleted role is no longer assigned");

    put(&s, &path, json!({"roles": [b + 100]}), &s.api_token).expect_fields(400, json!({"code": "unknown_role"}));
    put(&s, &path, json!({"roles": "x"}), &s.api_token).expect_fields(400, json!({"code": "invalid_input"}));
    put(&s, "/api/users/999/roles", json!({"roles": []}), &s.api_token)
        .expect_fields(404, json!({"code": "not_found"}));
    s.get("/api/users/999/roles", Some(&s.api_token)).expect_fields(404, json!({"code": "not_found"}));
    put(&s, &path, json!({"roles": []}), &s.api_token).expect_fields(200, json!({"roles": []}));
}

#[test]
fn permissioncheck_answers_per_permission_for_admins_only() {
    let s = TestServer::start_with(None, |data| {
        user_with_roles(data, "admin@example.com", true, &[("Groups", "groups/list,groups/show")]);
        user_with_roles(data, "root@example.com", true, &[("Root", "*")]);
        user_with_roles(data, "anna@example.com", false, &[("Groups", "")]);
    });
    let id = |email: &str| s.email_check(email).expect(200)["id"].as_i64().unwrap();
    let check =
        |user: i64, q: &str| s.get(&format!("/api/users/{user}/permissioncheck?permissions={q}"), Some(&s.api_token));
    check(id("admin@example.com"), "groups/list,roles/list,made/up")
        .expect_fields(200, json!({"permissions": {"groups/list": true, "roles/list": false, "made/up": false}}));
    check(id("root@example.com"), "groups/list,roles/delete")
        .expect_fields(200, json!({"permissions": {"groups/list": true, "roles/delete": true}}));
    check(id("anna@example.com"), "groups/list").expect_fields(200, json!({"permissions": {"groups/list": false}}));
    check(id("anna@example.com"), "").expect_fields(400, json!({"code": "invalid_input"}));
    check(999, "groups/list").expect_fields(404, json!({"code": "not_found"}));
}

#[test]
fn admin_user_tokens_reach_resource_routes_within_their_roles() {
    let mut narrow = String::new();
    let s = TestServer::start_with(None, |data| {
        user_with_roles(data, "admin@example.com", true, &[("Groups", "groups/list")]);
        user_with_roles(data, "root@example.com", true, &[("Root", "*")]);
        user_with_roles(data, "bare@example.com", true, &[]);
        user_with_roles(data, "anna@example.com", false, &[("Root", "*")]);
        narrow = create_api_token(data, "narrow", "groups/list");
    });
    let admin = s.login("admin@example.com", "secret123");
    s.get("/api/groups", Some(&admin)).expect_fields(200, json!({"status": "ok"}));
    let r = s.get(ROLES, Some(&admin));
    r.expect_fields(403, json!({"status": "error", "code": "forbidden"}));
    assert!(r["message"].as_str().unwrap().contains("roles/list"), "names the permission: {}", r.text);

    let root = s.login("root@example.com", "secret123");
    s.get(ROLES, Some(&root)).expect(200);
    s.post_json(ROLES, json!({"name": "New"}), Some(&root)).expect(201);

    for email in ["bare@example.com", "anna@example.com"] {
        let token = s.login(email, "secret123");
        s.get("/api/groups", Some(&token)).expect_fields(403, json!({"code": "forbidden"}));
    }
    // API tokens keep their whitelists exactly.
    s.get("/api/groups", Some(&narrow)).expect(200);
    s.get(ROLES, Some(&narrow)).expect_fields(403, json!({"code": "forbidden"}));
    s.get(ROLES, Some("0123456789abcdef0123456789abcdef")).expect_fields(401, json!({"code": "unauthorized"}));
    s.get(ROLES, None).expect_fields(401, json!({"code": "unauthorized"}));
    // After logout the admin's token is no longer accepted.
    s.post_form("/api/v1/users/logout", &[], Some(&root)).expect(200);
    s.get(ROLES, Some(&root)).expect_fields(401, json!({"code": "unauthorized"}));
}

#[test]
fn login_lists_role_names_for_admins_with_roles_only() {
    let s = TestServer::start_with(None, |data| {
        user_with_roles(data, "admin@example.com", true, &[("Editors", "groups/list"), ("Root", "*")]);
        user_with_roles(data, "bare@example.com", true, &[]);
        user_with_roles(data, "anna@example.com", false, &[("Editors", "")]);
    });
    let r = s.login_resp("admin@example.com", "secret123");
    assert_eq!(r.expect(200)["user"]["roles"], json!(["Editors", "Root"]), "{}", r.text);
    for email in ["bare@example.com", "anna@example.com"] {
        let r = s.login_resp(email, "secret123");
        assert!(r.expect(200)["user"].get("roles").is_none(), "{email}: {}", r.text);
    }
}

#[test]
fn cli_role_add_prints_the_id_and_assign_prints_the_users_role_ids() {
    let mut out = (String::new(), String::new());
    let s = TestServer::start_with(None, |data| {
        run_cli_ok(data, &["user", "add", "admin@example.com", "--password", "secret123", "--admin"]);
        out.0 = run_cli_ok(data, &["role", "add", "Admins", "--permissions", "roles/list, groups/list"]);
        let id = out.0.lines().last().unwrap_or_default().trim().to_owned();
        out.1 = run_cli_ok(data, &["role", "assign", "admin@example.com", &id]);
        assert!(!run_cli(data, &["role", "add", "Bad", "--permissions", "nope"]).status.success());
        assert!(!run_cli(data, &["role", "add", "admins"]).status.success(), "names are unique in any case");
        assert!(!run_cli(data, &["role", "assign", "nobody@example.com", "Admins"]).status.success());
    });
    let id: i64 = out.0.lines().last().unwrap_or_default().trim().parse().expect("id alone on the last line");
    assert!(out.1.trim().ends_with(&format!("roles {id}")), "{}", out.1);
    let token = s.login("admin@example.com", "secret123");
    s.get(&format!("{ROLES}/{id}"), Some(&token)).expect_fields(403, json!({"code": "forbidden"}));
    let body = s.get(ROLES, Some(&token));
    assert_eq!(body.expect(200)["roles"][0]["permissions"], json!(["roles/list", "groups/list"]));
}

#[test]
fn users_created_or_replaced_with_roles_get_them_and_unknown_roles_write_nothing() {
    let s = TestServer::start();
    let editors = create_role(&s, "Editors", &["users/index"]);
    let body = json!({"email": "ed@example.com", "password": "secret123", "password_confirmation": "secret123",
                      "role": "admin", "roles": [editors]});
    let id = s.post_json("/api/users", body, Some(&s.api_token)).expect(201)["id"].as_i64().expect("id");
    let roles = s.get(&format!("/api/users/{id}/roles"), Some(&s.api_token));
    assert_eq!(roles.expect(200)["roles"][0]["name"], "Editors");

    let unknown = json!({"email": "nope@example.com", "password": "secret123", "password_confirmation": "secret123",
                         "roles": [999]});
    s.post_json("/api/users", unknown, Some(&s.api_token)).expect_fields(422, json!({"code": "unknown_role"}));
    s.get("/api/users/by-email/nope@example.com", Some(&s.api_token)).expect(404);

    let replaced = put(&s, &format!("/api/users/{id}"), json!({"email": "ed@example.com", "roles": []}), &s.api_token);
    replaced.expect(200);
    let roles = s.get(&format!("/api/users/{id}/roles"), Some(&s.api_token));
    assert_eq!(roles.expect(200)["roles"], json!([]));
}
