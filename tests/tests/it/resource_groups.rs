//! Groups as a resource through the real server: `/api/groups`, `/api/groups/{id}`, members and
//! `/api/users/{id}/groups`. Deletion is re-read through the API and the offline `user show`.

use serde_json::json;

use crate::harness::{Resp, TestServer, create_api_token};

const GROUPS: &str = "/api/groups";

fn create_group(s: &TestServer, name: &str) -> i64 {
    let r = s.post_json(GROUPS, json!({"name": name}), Some(&s.api_token));
    r.expect(200)["id"].as_i64().unwrap_or_else(|| panic!("no id: {}", r.text))
}

fn add(s: &TestServer, group: i64, user: i64) -> Resp {
    s.post_json(&format!("{GROUPS}/{group}/members"), json!({"user_id": user}), Some(&s.api_token))
}

fn remove(s: &TestServer, group: i64, user: i64) -> Resp {
    s.req("DELETE", &format!("{GROUPS}/{group}/members/{user}")).bearer(Some(&s.api_token)).send()
}

fn member_ids(s: &TestServer, group: i64) -> serde_json::Value {
    s.get(&format!("{GROUPS}/{group}"), Some(&s.api_token)).expect(200)["group"]["members"].clone()
}

#[test]
fn list_counts_members_and_show_lists_member_ids() {
    let s = TestServer::start();
    let (anna, _) = s.create_user("anna@example.com", "secret123");
    let (bob, _) = s.create_user("bob@example.com", "secret123");
    let premium = create_group(&s, "Premium");
    let empty = create_group(&s, "Empty");
    add(&s, premium, bob).expect(200);
    add(&s, premium, anna).expect(200);
    let list = s.get(GROUPS, Some(&s.api_token));
    let groups = list.expect(200)["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!((groups[0]["id"].as_i64(), groups[0]["member_count"].as_i64()), (Some(premium), Some(2)));
    assert_eq!((groups[1]["id"].as_i64(), groups[1]["member_count"].as_i64()), (Some(empty), Some(0)));
    s.get(&format!("{GROUPS}/{premium}"), Some(&s.api_token))
        .expect_fields(200, json!({"group": {"name": "Premium", "sorting": 10, "member_count": 2}}));
    assert_eq!(member_ids(&s, premium), json!([anna, bob]));
    s.get(&format!("{GROUPS}/999"), Some(&s.api_token)).expect_fields(404, json!({"code": "not_found"}));
    s.get(&format!("{GROUPS}/x"), Some(&s.api_token)).expect_fields(404, json!({"code": "not_found"}));
}

#[test]
fn update_renames_and_resorts_and_refuses_bad_input() {
    let s = TestServer::start();
    let id = create_group(&s, "Premium");
    let path = format!("{GROUPS}/{id}");
    let put = |body: serde_json::Value| s.req("PUT", &path).json(body).bearer(Some(&s.api_token)).send();
    put(json!({"name": " Gold "})).expect_fields(200, json!({"group": {"name": "Gold", "sorting": 10}}));
    put(json!({"sorting": 3})).expect_fields(200, json!({"group": {"name": "Gold", "sorting": 3}}));
    s.get(&path, Some(&s.api_token)).expect_fields(200, json!({"group": {"name": "Gold", "sorting": 3}}));
    for bad in
        [json!({}), json!({"name": ""}), json!({"sorting": "x"}), json!({"name": 1}), json!({"colour": 1}), json!([])]
    {
        put(bad.clone()).expect_fields(400, json!({"status": "error", "code": "invalid_input"}));
    }
    s.req("PUT", &format!("{GROUPS}/999"))
        .json(json!({"name": "X"}))
        .bearer(Some(&s.api_token))
        .send()
        .expect_fields(404, json!({"code": "not_found"}));
}

#[test]
fn delete_removes_the_group_and_every_membership() {
    let mut s = TestServer::start();
    let (anna, _) = s.create_user("anna@example.com", "secret123");
    let doomed = create_group(&s, "Doomed");
    let kept = create_group(&s, "Kept");
    add(&s, doomed, anna).expect(200);
    add(&s, kept, anna).expect(200);
    s.req("DELETE", &format!("{GROUPS}/{doomed}"))
        .bearer(Some(&s.api_token))
        .send()
        .expect_fields(200, json!({"status": "ok"}));
    s.get(&format!("{GROUPS}/{doomed}"), Some(&s.api_token)).expect_fields(404, json!({"code": "not_found"}));
    let groups = s.get(&format!("/api/users/{anna}/groups"), Some(&s.api_token));
    let ids: Vec<i64> =
        groups.expect(200)["groups"].as_array().unwrap().iter().map(|g| g["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![kept]);
    assert_eq!(s.user_field("anna@example.com", "groups"), kept.to_string(), "durable, both indexes");
    s.req("DELETE", &format!("{GROUPS}/{doomed}"))
        .bearer(Some(&s.api_token))
        .send()
        .expect_fields(404, json!({"code": "not_found"}));
    add(&s, doomed, anna).expect_fields(404, json!({"code": "not_found"}));
}

#[test]
fn members_are_added_and_removed_idempotently() {
    let s = TestServer::start();
    let (anna, _) = s.create_user("anna@example.com", "secret123");
    let g = create_group(&s, "Premium");
    for _ in 0..2 {
        add(&s, g, anna).expect_fields(200, json!({"status": "ok"}));
    }
    assert_eq!(member_ids(&s, g), json!([anna]));
    for _ in 0..2 {
        remove(&s, g, anna).expect_fields(200, json!({"status": "ok"}));
    }
    assert_eq!(member_ids(&s, g), json!([]));
    add(&s, g, 999).expect_fields(404, json!({"code": "not_found"}));
    add(&s, 999, anna).expect_fields(404, json!({"code": "not_found"}));
    remove(&s, 999, anna).expect_fields(404, json!({"code": "not_found"}));
    for bad in [json!({}), json!({"user_id": "1"}), json!({"user_id": -1})] {
        s.post_json(&format!("{GROUPS}/{g}/members"), bad, Some(&s.api_token))
            .expect_fields(400, json!({"code": "invalid_input"}));
    }
    s.get("/api/users/999/groups", Some(&s.api_token)).expect_fields(404, json!({"code": "not_found"}));
}

#[test]
fn each_group_route_needs_its_own_permission() {
    let mut tokens = (String::new(), String::new());
    let s = TestServer::start_with(None, |data| {
        tokens =
            (create_api_token(data, "reader", "groups/list,groups/show"), create_api_token(data, "w", "groups/update"));
    });
    let g = create_group(&s, "Premium");
    let (reader, writer) = (&tokens.0, &tokens.1);
    s.get(GROUPS, Some(reader)).expect(200);
    s.get(&format!("{GROUPS}/{g}"), Some(reader)).expect(200);
    let put = |t: &str| s.req("PUT", &format!("{GROUPS}/{g}")).json(json!({"sorting": 1})).bearer(Some(t)).send();
    put(reader).expect_fields(403, json!({"code": "forbidden"}));
    put(writer).expect(200);
    s.get(GROUPS, Some(writer)).expect_fields(403, json!({"code": "forbidden"}));
    s.req("DELETE", &format!("{GROUPS}/{g}"))
        .bearer(Some(reader))
        .send()
        .expect_fields(403, json!({"code": "forbidden"}));
    s.post_json(&format!("{GROUPS}/{g}/members"), json!({"user_id": 1}), Some(reader))
        .expect_fields(403, json!({"code": "forbidden"}));
    s.get(GROUPS, None).expect_fields(401, json!({"code": "unauthorized"}));
}
