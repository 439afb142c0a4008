//! The users resource (`/api/users...`), API tokens and autologin tokens as resources, through
//! the real server: every route's success and errors, paging at the edges, each filter and
//! search mode, ordering, field selection, and whitelist refusals.

use serde_json::{Value, json};

use crate::harness::{Resp, TestServer, assert_hex32, create_api_token};

const USERS: &str = "/api/users";

fn call(s: &TestServer, method: &str, path: &str, body: Option<Value>) -> Resp {
    let req = s.req(method, path).bearer(Some(&s.api_token));
    match body {
        Some(b) => req.json(b).send(),
        None => req.send(),
    }
}

fn list(s: &TestServer, query: &[(&str, &str)]) -> Resp {
    s.req("GET", USERS).query(query).bearer(Some(&s.api_token)).send()
}

/// Creates a user through `POST /api/users`; returns its id.
fn add(s: &TestServer, email: &str, first: &str, last: &str) -> u64 {
    let body = json!({"email": email, "password": "secret123", "password_confirmation": "secret123",
        "first_name": first, "last_name": last});
    let r = call(s, "POST", USERS, Some(body));
    r.expect(201)["id"].as_u64().unwrap_or_else(|| panic!("no id: {}", r.text))
}

fn ids(body: &Value) -> Vec<u64> {
    body["data"].as_array().expect("data array").iter().map(|u| u["id"].as_u64().expect("id")).collect()
}

fn emails(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|u| u["email"].as_str().expect("email").to_owned())
        .collect()
}

/// Five users: ids in creation order, emails and last names in other orders.
fn five(s: &TestServer) -> Vec<u64> {
    vec![
        add(s, "carol@example.com", "Carol", "Zeman"),
        add(s, "anna@example.com", "Anna", "Kovac"),
        add(s, "eva@test.org", "Eva", "Novak"),
        add(s, "bob@example.com", "Bob", "Adams"),
        add(s, "dan@test.org", "Dan", "Kovacik"),
    ]
}

#[test]
fn create_returns_the_user_shape_and_get_finds_it_by_id_email_and_login() {
    let s = TestServer::start();
    let body = json!({"email": "anna@example.com", "password": "secret123", "password_confirmation": "secret123",
        "first_name": "Anna", "last_name": "Kovac", "locale": "sk_SK", "timezone": "Europe/Bratislava"});
    let r = call(&s, "POST", USERS, Some(body));
    let created = r.expect_fields(
        201,
        json!({"email": "anna@example.com", "first_name": "Anna", "last_name": "Kovac", "locale": "sk_SK",
            "timezone": "Europe/Bratislava", "role": "user", "active": true, "confirmed_at": null,
            "public_name": "anna@example.com", "groups": []}),
    );
    let keys: Vec<&str> = created.as_object().unwrap().keys().map(String::as_str).collect();
    for k in ["id", "uuid", "created_at", "modified_at", "email_validated_at", "source", "ext_id", "note"] {
        assert!(keys.contains(&k), "{k} missing: {created}");
    }
    assert!(!r.text.contains("argon2") && !r.text.contains("password"), "no password in {}", r.text);
    let id = created["id"].as_u64().unwrap();
    for path in [
        format!("{USERS}/{id}"),
        format!("{USERS}/by-email/ANNA@example.com"),
        format!("{USERS}/by-login/anna@example.com"),
    ] {
        call(&s, "GET", &path, None).expect_fields(200, json!({"id": id, "email": "anna@example.com"}));
    }
    // The new user signs in with the password given.
    s.login("anna@example.com", "secret123");
}

#[test]
fn get_answers_404_for_unknown_users_and_400_for_a_bad_id() {
    let s = TestServer::start();
    call(&s, "GET", &format!("{USERS}/99"), None).expect_fields(404, json!({"status": "error", "code": "not_found"}));
    call(&s, "GET", &format!("{USERS}/by-email/nobody@example.com"), None)
        .expect_fields(404, json!({"code": "not_found"}));
    call(&s, "GET", &format!("{USERS}/abc"), None).expect_fields(400, json!({"code": "invalid_input"}));
}

#[test]
fn create_refuses_invalid_input_with_clear_codes() {
    let s = TestServer::start();
    add(&s, "taken@example.com", "T", "T");
    let ok = json!({"email": "new@example.com", "password": "secret123", "password_confirmation": "secret123"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let cases = [
        (json!({"password": "secret123", "password_confirmation": "secret123"}), 422, "missing_field"),
        (json!({"email": "x@example.com"}), 422, "missing_field"),
        (with("email", json!("not-an-email")), 422, "invalid_email"),
        (with("email", json!("TAKEN@example.com")), 409, "email_taken"),
        (with("password", json!("abc")), 422, "invalid_password"),
        (with("password_confirmation", json!("secret124")), 422, "password_mismatch"),
        (with("timezone", json!("Mars/Olympus")), 422, "invalid_timezone"),
        (with("first_name", json!(5)), 400, "invalid_input"),
        (with("role", json!("root")), 400, "invalid_input"),
        (with("shoe_size", json!(44)), 400, "invalid_input"),
        (json!([1, 2]), 400, "invalid_input"),
    ];
    for (body, status, code) in cases {
        let r = call(&s, "POST", USERS, Some(body.clone()));
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r["code"], code, "{body}: {}", r.text);
        assert!(r["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.text);
    }
    let r = s.req("POST", USERS).raw("application/json", b"{nope".to_vec()).bearer(Some(&s.api_token)).send();
    r.expect_fields(400, json!({"code": "invalid_input"}));
    assert_eq!(list(&s, &[]).expect(200)["total"], 1, "nothing was created");
}

#[test]
fn list_pages_at_the_edges_with_total_and_next() {
    let s = TestServer::start();
    let all = five(&s);
    let r = list(&s, &[("per_page", "2")]);
    let body = r.expect_fields(200, json!({"page": 1, "per_page": 2, "total": 5, "total_pages": 3}));
    assert_eq!(ids(body), all[..2]);
    assert_eq!(body["next"], all[1]);
    let last = list(&s, &[("per_page", "2"), ("page", "3")]);
    assert_eq!(ids(last.expect(200)), all[4..]);
    assert_eq!(last["next"], Value::Null, "no next on the last page");
    let beyond = list(&s, &[("per_page", "2"), ("page", "4")]);
    assert_eq!(beyond.expect_fields(200, json!({"total": 5, "data": []}))["next"], Value::Null);
    // Defaults, and the maximum page size.
    assert_eq!(
        list(&s, &[]).expect_fields(200, json!({"per_page": 20, "page": 1}))["data"].as_array().unwrap().len(),
        5
    );
    assert_eq!(ids(list(&s, &[("per_page", "500")]).expect(200)), all);
    for bad in [("per_page", "501"), ("per_page", "0"), ("page", "0"), ("page", "x"), ("per_page", "-1")] {
        list(&s, &[bad]).expect_fields(400, json!({"status": "error", "code": "invalid_input"}));
    }
    list(&s, &[("page", "2"), ("after", "1")]).expect_fields(400, json!({"code": "invalid_input"}));
}

#[test]
fn keyset_paging_covers_every_user_exactly_once_in_both_directions() {
    let s = TestServer::start();
    let mut all = five(&s);
    for desc in [false, true] {
        let order = if desc { "id|desc" } else { "id" };
        let mut seen = Vec::new();
        let mut after: Option<u64> = None;
        for _ in 0..10 {
            let mut q = vec![("per_page", "2".to_owned()), ("order", order.to_owned())];
            if let Some(a) = after {
                q.push(("after", a.to_string()));
            }
            let q: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = list(&s, &q);
            let body = r.expect_fields(200, json!({"total": 5}));
            seen.extend(ids(body));
            match body["next"].as_u64() {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        if desc {
            all.reverse();
        }
        assert_eq!(seen, all, "order {order}");
        if desc {
            all.reverse();
        }
    }
    // Keyset paging needs the id order; a cursor past the end gives an empty page.
    list(&s, &[("after", "1"), ("order", "email")]).expect_fields(400, json!({"code": "invalid_input"}));
    list(&s, &[("after", "999")]).expect_fields(200, json!({"data": [], "next": null, "total": 5}));
}

#[test]
fn order_sorts_by_field_ascending_and_descending() {
    let s = TestServer::start();
    let all = five(&s);
    let r = list(&s, &[("order", "email")]);
    assert_eq!(
        emails(r.expect(200)),
        ["anna@example.com", "bob@example.com", "carol@example.com", "dan@test.org", "eva@test.org"]
    );
    let r = list(&s, &[("order", "email|desc")]);
    assert_eq!(emails(r.expect(200))[0], "eva@test.org");
    let r = list(&s, &[("order", "last_name")]);
    let last: Vec<&str> =
        r.expect(200)["data"].as_array().unwrap().iter().map(|u| u["last_name"].as_str().unwrap()).collect();
    assert_eq!(last, ["Adams", "Kovac", "Kovacik", "Novak", "Zeman"]);
    let mut newest_first = all.clone();
    newest_first.reverse();
    assert_eq!(ids(list(&s, &[("order", "created_at|desc")]).expect(200)), newest_first);
    assert_eq!(ids(list(&s, &[("order", "created_at")]).expect(200)), all);
    for bad in ["password", "email|up", "|desc"] {
        list(&s, &[("order", bad)]).expect_fields(400, json!({"code": "invalid_input"}));
    }
}

#[test]
fn select_returns_only_the_named_fields() {
    let s = TestServer::start();
    five(&s);
    let r = list(&s, &[("select", "first_name;id"), ("per_page", "1")]);
    let user = &r.expect(200)["data"][0];
    let mut keys: Vec<&str> = user.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["first_name", "id"], "{user}");
    list(&s, &[("select", "id;password_hash")]).expect_fields(400, json!({"code": "invalid_input"}));
}

#[test]
fn search_matches_like_or_exact_over_chosen_fields_with_and_or() {
    let s = TestServer::start();
    let all = five(&s);
    let (carol, anna, eva, bob, dan) = (all[0], all[1], all[2], all[3], all[4]);
    let found = |q: &[(&str, &str)]| {
        let mut v = ids(list(&s, q).expect(200));
        v.sort_unstable();
        v
    };
    // Default: like, over every field, any field matching.
    assert_eq!(found(&[("q", "kovac")]), [anna, dan]);
    assert_eq!(found(&[("q", "TEST.ORG")]), [eva, dan]);
    // Exact match on one field.
    assert_eq!(found(&[("q", "kovac"), ("search_fields", "last_name"), ("search_mode", "=")]), [anna]);
    assert_eq!(found(&[("q", "kovac"), ("search_fields", "last_name:=")]), [anna]);
    // appcrm's per-field syntax, and AND across fields.
    let names = "first_name:like;last_name:like";
    assert_eq!(found(&[("q", "a"), ("search_fields", names), ("search_match", "and")]), [carol, anna, eva, dan]);
    assert_eq!(found(&[("q", "a"), ("search_fields", names)]).len(), 5, "or is the default");
    assert_eq!(
        found(&[("q", "an"), ("search_fields", "first_name,last_name"), ("search_match", "or")]),
        [carol, anna, dan]
    );
    assert_eq!(
        found(&[("q", "an"), ("search_fields", "first_name,last_name"), ("search_match", "and")]),
        Vec::<u64>::new()
    );
    assert_eq!(found(&[("q", "zzz")]), Vec::<u64>::new());
    for bad in [("search_fields", "password"), ("search_mode", "~"), ("search_match", "xor")] {
        list(&s, &[("q", "a"), bad]).expect_fields(400, json!({"code": "invalid_input"}));
    }
    // search_fields:ext_id finds by the external id.
    call(&s, "PATCH", &format!("{USERS}/{bob}"), Some(json!({"ext_id": 4242}))).expect(200);
    assert_eq!(found(&[("q", "4242"), ("search_fields", "ext_id:=")]), [bob]);
}

#[test]
fn filters_narrow_the_list_each_alone_and_combined() {
    let s = TestServer::start();
    let all = five(&s);
    let (carol, anna, eva, bob, dan) = (all[0], all[1], all[2], all[3], all[4]);
    let found = |q: &[(&str, &str)]| {
        let r = list(&s, q);
        let body = r.expect(200);
        let mut v = ids(body);
        v.sort_unstable();
        assert_eq!(body["total"], v.len(), "total counts the filtered set: {}", r.text);
        v
    };
    assert_eq!(found(&[("email", "ANNA@example.com")]), [anna]);
    call(&s, "PATCH", &format!("{USERS}/{eva}"), Some(json!({"active": false}))).expect(200);
    assert_eq!(found(&[("active", "false")]), [eva]);
    assert_eq!(found(&[("active", "true")]).len(), 4);
    s.api_form("/api/v1/users/confirm", &[("email", "bob@example.com")]).expect(200);
    assert_eq!(found(&[("confirmed", "1")]), [bob]);
    assert_eq!(found(&[("confirmed", "0")]).len(), 4);
    let group =
        s.post_json("/api/groups", json!({"name": "VIP"}), Some(&s.api_token)).expect(200)["id"].as_i64().unwrap();
    for email in ["carol@example.com", "dan@test.org"] {
        s.api_form("/api/v1/users/add-to-group", &[("email", email), ("group_id", &group.to_string())]).expect(200);
    }
    assert_eq!(found(&[("group", &group.to_string())]), [carol, dan]);
    call(&s, "GET", &format!("{USERS}/{carol}"), None).expect_fields(200, json!({"groups": [group]}));
    call(&s, "PATCH", &format!("{USERS}/{dan}"), Some(json!({"role": "admin"}))).expect(200);
    assert_eq!(found(&[("role", "admin")]), [dan]);
    assert_eq!(found(&[("role", "admin"), ("group", &group.to_string())]), [dan]);
    for (id, value) in [(anna, "gold"), (bob, "silver")] {
        let body = json!({"user_id": id, "key": "tier", "value": value, "is_public": false});
        s.post_json("/api/v1/user-meta/upsert", body, Some(&s.api_token)).expect(200);
    }
    assert_eq!(found(&[("meta_key", "tier")]), [anna, bob]);
    assert_eq!(found(&[("meta_key", "tier"), ("meta_value", "gold")]), [anna]);
    assert_eq!(found(&[("meta_key", "tier"), ("q", "bob")]), [bob]);
    for bad in
        [("created_from", "yesterday"), ("active", "maybe"), ("group", "x"), ("role", "root"), ("meta_value", "gold")]
    {
        list(&s, &[bad]).expect_fields(400, json!({"code": "invalid_input"}));
    }
    // Created range: dates are shown to the second, so the late user comes a second later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let late = add(&s, "late@example.com", "L", "L");
    let r = call(&s, "GET", &format!("{USERS}/{late}"), None);
    let at = r.expect(200)["created_at"].as_str().unwrap().to_owned();
    assert_eq!(found(&[("created_from", &at)]), [late]);
    assert_eq!(found(&[("created_to", &at)]), all_sorted(&all));
    assert_eq!(found(&[("created_from", "2000-01-01T00:00:00Z")]).len(), 6);
    assert_eq!(
        found(&[("created_from", "2000-01-01T00:00:00Z"), ("created_to", "2000-12-31T00:00:00+02:00")]),
        Vec::<u64>::new()
    );
}

fn all_sorted(ids: &[u64]) -> Vec<u64> {
    let mut v = ids.to_vec();
    v.sort_unstable();
    v
}

#[test]
fn quick_search_takes_at_most_take_results_without_paging() {
    let s = TestServer::start();
    five(&s);
    let search = |q: &[(&str, &str)]| s.req("GET", "/api/users/search").query(q).bearer(Some(&s.api_token)).send();
    let r = search(&[("q", "example.com"), ("take", "2"), ("order", "email")]);
    assert_eq!(emails(r.expect(200)), ["anna@example.com", "bob@example.com"]);
    assert!(r.body.get("total").is_none(), "no paging: {}", r.text);
    assert_eq!(search(&[("q", "example.com")]).expect(200)["data"].as_array().unwrap().len(), 3);
    let r = search(&[("q", "eva"), ("select", "email")]);
    assert_eq!(r.expect(200)["data"], json!([{"email": "eva@test.org"}]));
    search(&[("q", "a"), ("take", "100")]).expect(200);
    for bad in [vec![("take", "1")], vec![("q", "a"), ("take", "101")], vec![("q", "a"), ("take", "0")]] {
        search(&bad).expect_fields(400, json!({"code": "invalid_input"}));
    }
}

#[test]
fn put_creates_under_the_id_then_replaces_every_field() {
    let s = TestServer::start();
    let body = json!({"email": "put@example.com", "password": "secret123", "password_confirmation": "secret123",
        "first_name": "Petra", "note": "vip", "ext_id": 7, "timezone": "Europe/Prague"});
    let r = call(&s, "PUT", &format!("{USERS}/40"), Some(body));
    r.expect_fields(
        201,
        json!({"id": 40, "email": "put@example.com", "first_name": "Petra", "note": "vip", "ext_id": 7}),
    );
    // Replace: fields not given fall back to their defaults; the password stays.
    let r = call(&s, "PUT", &format!("{USERS}/40"), Some(json!({"email": "put2@example.com", "last_name": "Nova"})));
    r.expect_fields(
        200,
        json!({"id": 40, "email": "put2@example.com", "first_name": null, "last_name": "Nova", "note": null,
            "ext_id": null, "timezone": null, "public_name": "put2@example.com"}),
    );
    s.login("put2@example.com", "secret123");
    // A later registration never collides with the id taken by PUT.
    assert!(add(&s, "after@example.com", "A", "B") > 40);
    // PUT needs an email; creating needs the password too.
    call(&s, "PUT", &format!("{USERS}/40"), Some(json!({"first_name": "X"})))
        .expect_fields(422, json!({"code": "missing_field"}));
    call(&s, "PUT", &format!("{USERS}/45"), Some(json!({"email": "x@example.com"})))
        .expect_fields(422, json!({"code": "missing_field"}));
    call(
        &s,
        "PUT",
        &format!("{USERS}/42"),
        Some(json!({"email": "put2@example.com", "password": "secret123",
        "password_confirmation": "secret123"})),
    )
    .expect_fields(409, json!({"code": "email_taken"}));
    call(&s, "GET", &format!("{USERS}/42"), None).expect(404);
}

#[test]
fn patch_changes_only_the_given_fields_and_404s_when_missing() {
    let s = TestServer::start();
    let id = add(&s, "pat@example.com", "Pat", "Smith");
    add(&s, "other@example.com", "O", "O");
    let r = call(&s, "PATCH", &format!("{USERS}/{id}"), Some(json!({"first_name": "Patricia", "locale": "de_DE"})));
    r.expect_fields(
        200,
        json!({"first_name": "Patricia", "last_name": "Smith", "locale": "de_DE", "email": "pat@example.com"}),
    );
    call(&s, "GET", &format!("{USERS}/{id}"), None)
        .expect_fields(200, json!({"first_name": "Patricia", "last_name": "Smith"}));
    call(&s, "PATCH", &format!("{USERS}/{id}"), Some(json!({"last_name": null})))
        .expect_fields(200, json!({"last_name": null}));
    let r = call(&s, "PATCH", &format!("{USERS}/{id}"), Some(json!({"email": "pat.new@example.com"})));
    r.expect_fields(
        200,
        json!({"email": "pat.new@example.com", "public_name": "pat.new@example.com", "email_validated_at": null}),
    );
    call(&s, "PATCH", &format!("{USERS}/{id}"), Some(json!({"email": "OTHER@example.com"})))
        .expect_fields(409, json!({"code": "email_taken"}));
    call(&s, "PATCH", &format!("{USERS}/{id}"), Some(json!({"email": "bad@"})))
        .expect_fields(422, json!({"code": "invalid_email"}));
    call(&s, "PATCH", "/api/users/999", Some(json!({"first_name": "X"})))
        .expect_fields(404, json!({"code": "not_found"}));
    // A password change needs its confirmation.
    call(&s, "PATCH", &format!("{USERS}/{id}"), Some(json!({"password": "newpass1"})))
        .expect_fields(422, json!({"code": "password_mismatch"}));
    call(
        &s,
        "PATCH",
        &format!("{USERS}/{id}"),
        Some(json!({"password": "newpass1", "password_confirmation": "newpass1"})),
    )
    .expect(200);
    s.login("pat.new@example.com", "newpass1");
}

#[test]
fn delete_anonymizes_then_the_user_is_gone() {
    let s = TestServer::start();
    let id = add(&s, "gone@example.com", "Gone", "Soon");
    let token = s.login("gone@example.com", "secret123");
    call(&s, "DELETE", &format!("{USERS}/{id}"), None).expect_fields(200, json!({"status": "ok", "id": id}));
    call(&s, "GET", &format!("{USERS}/{id}"), None).expect(404);
    call(&s, "GET", &format!("{USERS}/by-email/gone@example.com"), None).expect(404);
    call(&s, "DELETE", &format!("{USERS}/{id}"), None).expect(404);
    call(&s, "PATCH", &format!("{USERS}/{id}"), Some(json!({"first_name": "Back"}))).expect(404);
    call(&s, "PUT", &format!("{USERS}/{id}"), Some(json!({"email": "back@example.com"})))
        .expect_fields(409, json!({"code": "user_deleted"}));
    assert_eq!(list(&s, &[]).expect(200)["total"], 0);
    assert_ne!(s.login_resp("gone@example.com", "secret123").status, 200, "the old credentials are gone");
    s.get("/api/me", Some(&token)).expect(401);
    // The email may be registered again.
    add(&s, "gone@example.com", "New", "User");
}

#[test]
fn set_password_sets_or_generates_and_can_revoke_tokens() {
    let s = TestServer::start();
    let id = add(&s, "pw@example.com", "P", "W");
    let path = format!("{USERS}/{id}/password");
    let token = s.login("pw@example.com", "secret123");
    let r = call(&s, "PUT", &path, Some(json!({"password": "another1", "notify": true})));
    assert!(r.expect(200).get("password").is_none(), "a given password is not echoed: {}", r.text);
    s.login("pw@example.com", "another1");
    assert_ne!(s.login_resp("pw@example.com", "secret123").status, 200, "the old password fails");
    s.get("/api/me", Some(&token)).expect(200);
    let r = call(&s, "PUT", &path, Some(json!({"generate": true, "revoke_tokens": true})));
    let generated = r.expect(200)["password"].as_str().unwrap_or_else(|| panic!("{}", r.text)).to_owned();
    assert_eq!(generated.chars().count(), 8);
    s.get("/api/me", Some(&token)).expect(401);
    s.login("pw@example.com", &generated);
    call(&s, "PUT", &path, Some(json!({}))).expect_fields(422, json!({"code": "missing_field"}));
    call(&s, "PUT", &path, Some(json!({"password": "abc"}))).expect_fields(422, json!({"code": "invalid_password"}));
    call(&s, "PUT", &path, Some(json!({"password": "abcdefgh", "generate": true})))
        .expect_fields(400, json!({"code": "invalid_input"}));
    call(&s, "PUT", "/api/users/999/password", Some(json!({"generate": true}))).expect(404);
}

#[test]
fn every_users_route_needs_a_token_that_whitelists_it() {
    let mut tokens = (String::new(), String::new());
    let s = TestServer::start_with(None, |data| {
        tokens = (create_api_token(data, "index", "users/index"), create_api_token(data, "none", "users/list"));
    });
    let id = add(&s, "w@example.com", "W", "L");
    let body = json!({"first_name": "X"});
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", USERS.into(), None),
        ("POST", USERS.into(), Some(body.clone())),
        ("GET", "/api/users/search?q=a".into(), None),
        ("GET", format!("{USERS}/{id}"), None),
        ("GET", format!("{USERS}/by-email/w@example.com"), None),
        ("PUT", format!("{USERS}/{id}"), Some(body.clone())),
        ("PATCH", format!("{USERS}/{id}"), Some(body.clone())),
        ("DELETE", format!("{USERS}/{id}"), None),
        ("PUT", format!("{USERS}/{id}/password"), Some(json!({"generate": true}))),
        ("GET", "/api/api-tokens".into(), None),
        ("POST", "/api/api-tokens".into(), Some(json!({"name": "x", "allowed_routes": "*"}))),
        ("DELETE", "/api/api-tokens/1".into(), None),
        ("GET", format!("{USERS}/{id}/autologin-tokens"), None),
    ];
    for (method, path, body) in routes {
        let send = |token: Option<&str>| {
            let req = s.req(method, &path).bearer(token);
            match &body {
                Some(b) => req.json(b.clone()).send(),
                None => req.send(),
            }
        };
        send(None).expect_fields(401, json!({"status": "error", "code": "unauthorized"}));
        send(Some("0123456789abcdef0123456789abcdef")).expect_fields(401, json!({"code": "unauthorized"}));
        send(Some(&tokens.1)).expect_fields(403, json!({"code": "forbidden"}));
    }
    s.get(USERS, Some(&tokens.0)).expect_fields(200, json!({"total": 1}));
    s.get(&format!("{USERS}/{id}"), Some(&tokens.0)).expect_fields(403, json!({"code": "forbidden"}));
}

#[test]
fn api_tokens_are_created_listed_and_revoked_over_http() {
    let s = TestServer::start();
    let r = call(
        &s,
        "POST",
        "/api/api-tokens",
        Some(json!({"name": "reader", "allowed_routes": ["users/index", "users/show"]})),
    );
    let created = r
        .expect_fields(201, json!({"name": "reader", "allowed_routes": ["users/index", "users/show"], "active": true}));
    let plain = assert_hex32(&created["token"]);
    let id = created["id"].as_u64().unwrap();
    s.get(USERS, Some(&plain)).expect(200);
    s.get("/api/api-tokens", Some(&plain)).expect(403);
    let r = call(&s, "GET", "/api/api-tokens", None);
    let listed = r.expect(200)["data"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "the harness token and the new one: {}", r.text);
    assert!(!r.text.contains(&plain), "the list never shows token values");
    let r = call(&s, "DELETE", &format!("/api/api-tokens/{id}"), None);
    assert_eq!(r.expect(200)["data"][0]["id"], id);
    assert_eq!(r["data"][0]["active"], false, "{}", r.text);
    s.get(USERS, Some(&plain)).expect(401);
    let r = call(&s, "GET", "/api/api-tokens", None);
    assert!(r.expect(200)["data"].as_array().unwrap().iter().any(|t| t["id"] == id && t["active"] == false));
    call(&s, "DELETE", "/api/api-tokens/999", None).expect_fields(404, json!({"code": "not_found"}));
    call(&s, "DELETE", "/api/api-tokens/abc", None).expect(400);
    for bad in [json!({"name": "x", "allowed_routes": ["users/nope"]}), json!({"name": "", "allowed_routes": "*"})] {
        call(&s, "POST", "/api/api-tokens", Some(bad)).expect(422);
    }
    call(&s, "POST", "/api/api-tokens", Some(json!({"name": "x"})))
        .expect_fields(400, json!({"code": "invalid_input"}));
}

#[test]
fn autologin_tokens_of_a_user_are_listed_without_their_values() {
    let s = TestServer::start();
    let id = add(&s, "al@example.com", "A", "L");
    let r = s.post_json("/api/autologin-tokens", json!({"user_id": id, "max_count": 3}), Some(&s.api_token));
    let token = assert_hex32(&r.expect(200)["token"]);
    let r = call(&s, "GET", &format!("{USERS}/{id}/autologin-tokens"), None);
    let listed = &r.expect(200)["data"];
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "{}", r.text);
    let expected = json!({"user_id": id, "email": "al@example.com", "max_count": 3, "used_count": 0});
    crate::harness::assert_subset(&listed[0], &expected);
    assert!(!r.text.contains(&token), "no token values in {}", r.text);
    assert!(r["data"][0].get("token").is_none());
    call(&s, "GET", "/api/users/999/autologin-tokens", None).expect(404);
}

#[test]
fn keyset_paging_skips_deleted_and_includes_inactive_users() {
    let s = TestServer::start();
    let all = five(&s);
    call(&s, "DELETE", &format!("{USERS}/{}", all[1]), None).expect(200);
    call(&s, "PATCH", &format!("{USERS}/{}", all[3]), Some(json!({"active": false}))).expect(200);
    let first = list(&s, &[("per_page", "3")]);
    assert_eq!(ids(first.expect_fields(200, json!({"total": 4}))), [all[0], all[2], all[3]]);
    let after = first["next"].as_u64().expect("a next cursor").to_string();
    let rest = list(&s, &[("per_page", "3"), ("after", &after)]);
    assert_eq!(ids(rest.expect_fields(200, json!({"total": 4, "next": null, "page": null}))), [all[4]]);
}

#[test]
fn emails_run_the_plugin_validators_and_password_changes_reach_event_listeners() {
    let only_test_domain = |folder: &str, text: String| {
        if folder != "disposable-email" {
            return text;
        }
        let domains =
            |l: &str| if l.starts_with("domains") { "domains = \"throwaway.test\"".to_owned() } else { l.to_owned() };
        text.lines().map(domains).collect::<Vec<_>>().join("\n")
    };
    let (s, _plugins) = crate::plugins::server_with(&["disposable-email", "kv-counter"], only_test_domain);
    let body = json!({"email": "x@throwaway.test", "password": "secret123", "password_confirmation": "secret123"});
    call(&s, "POST", USERS, Some(body)).expect_fields(422, json!({"code": "invalid_email"}));
    let id = add(&s, "ok@example.com", "O", "K");
    let patch = json!({"email": "y@throwaway.test"});
    call(&s, "PATCH", &format!("{USERS}/{id}"), Some(patch)).expect_fields(422, json!({"code": "invalid_email"}));
    call(&s, "PUT", &format!("{USERS}/{id}/password"), Some(json!({"generate": true, "notify": true}))).expect(200);
    let events = || s.stderr().matches("event user_change_password").count();
    crate::plugins::eventually(std::time::Duration::from_secs(10), "a user_change_password event", || events() >= 1);
}
