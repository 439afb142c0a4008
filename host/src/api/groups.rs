//! `/api/groups` and `/api/users/{id}/groups`: groups as a resource. List (with member counts),
//! show (with member ids), create, rename or re-sort, delete (memberships go with the group),
//! a user's groups, and adding or removing members (idempotent). Each route names itself for
//! authorization (see `authz`); errors are `{"status": "error", "code": ..., "message": ...}`.

use super::authz::{Rejection, error, invalid, json_object, path_id, require_api_token};
use super::{ApiError, App, json};
use crate::domain::{Error, group::Group};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use serde_json::{Value, json};

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/groups", get(list).post(create))
        .route("/api/groups/{id}", get(show).put(update).delete(remove))
        .route("/api/groups/{id}/members", post(add_member))
        .route("/api/groups/{id}/members/{user_id}", delete(remove_member))
        .route("/api/users/{id}/groups", get(of_user))
}

pub(crate) fn group_json(app: &App, g: &Group) -> Value {
    json!({
        "id": g.id,
        "name": g.name,
        "sorting": g.sorting,
        "created_at": app.date(g.created_at),
        "updated_at": app.date(g.updated_at),
    })
}

/// Store and service errors in this resource's shape.
fn failed(e: Error) -> Response {
    match e {
        Error::NotFound(m) => error(StatusCode::NOT_FOUND, "not_found", &m),
        Error::Invalid { message, .. } => invalid(message),
        e => ApiError(e).into_response(),
    }
}

fn sorting_of(v: &Value) -> Result<Option<i32>, Rejection> {
    match v {
        Value::Null => Ok(None),
        v => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| Rejection::invalid("sorting must be an integer")),
    }
}

async fn list(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "groups/list").await {
        return refused;
    }
    match app.services.groups_with_counts().await {
        Ok(groups) => {
            let groups: Vec<Value> = groups
                .iter()
                .map(|(g, count)| {
                    let mut v = group_json(&app, g);
                    v["member_count"] = json!(count);
                    v
                })
                .collect();
            json(StatusCode::OK, &json!({"status": "ok", "groups": groups}))
        }
        Err(e) => failed(e),
    }
}

/// `{"name": N}`; answers `{"id", "name"}` (the contract since issue 4).
async fn create(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "groups/create").await {
        return refused;
    }
    let body = match json_object(&body, &["name"]) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let Some(name) = body.get("name").and_then(Value::as_str) else {
        return invalid("expected a JSON object {\"name\": \"...\"}");
    };
    match app.services.create_group(name).await {
        Ok(group) => json(StatusCode::OK, &json!({"id": group.id, "name": group.name})),
        Err(e) => failed(e),
    }
}

async fn show(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "groups/show").await {
        return refused;
    }
    let id = match path_id(&id, "Group") {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    match app.services.group_with_members(id).await {
        Ok((g, members)) => {
            let mut v = group_json(&app, &g);
            v["member_count"] = json!(members.len());
            v["members"] = json!(members);
            json(StatusCode::OK, &json!({"status": "ok", "group": v}))
        }
        Err(e) => failed(e),
    }
}

/// `{"name"?: N, "sorting"?: S}`, at least one.
async fn update(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "groups/update").await {
        return refused;
    }
    let id = match path_id(&id, "Group") {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let body = match json_object(&body, &["name", "sorting"]) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let name = match body.get("name") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return invalid("name must be a string"),
    };
    let sorting = match sorting_of(body.get("sorting").unwrap_or(&Value::Null)) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if name.is_none() && sorting.is_none() {
        return invalid("give name, sorting or both");
    }
    match app.services.update_group(id, name, sorting).await {
        Ok(g) => json(StatusCode::OK, &json!({"status": "ok", "group": group_json(&app, &g)})),
        Err(e) => failed(e),
    }
}

async fn remove(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "groups/delete").await {
        return refused;
    }
    let id = match path_id(&id, "Group") {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    match app.services.delete_group(id).await {
        Ok(()) => json(StatusCode::OK, &json!({"status": "ok"})),
        Err(e) => failed(e),
    }
}

/// `{"user_id": N}`; adding a member twice changes nothing.
async fn add_member(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "groups/members").await {
        return refused;
    }
    let id = match path_id(&id, "Group") {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let body = match json_object(&body, &["user_id"]) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let Some(user_id) = body.get("user_id").and_then(Value::as_u64) else {
        return invalid("user_id must be a positive integer");
    };
    match app.services.set_group_membership(user_id, id, true).await {
        Ok(()) => json(StatusCode::OK, &json!({"status": "ok"})),
        Err(e) => failed(e),
    }
}

/// Removing a membership that does not exist changes nothing and succeeds; an unknown group
/// is 404.
async fn remove_member(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, user_id)): Path<(String, String)>,
) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "groups/members").await {
        return refused;
    }
    let (id, user_id) = match (path_id(&id, "Group"), path_id(&user_id, "User")) {
        (Ok(g), Ok(u)) => (g, u),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    if let Err(e) = app.services.group_with_members(id).await {
        return failed(e);
    }
    match app.services.set_group_membership(user_id, id, false).await {
        Ok(()) => json(StatusCode::OK, &json!({"status": "ok"})),
        Err(e) => failed(e),
    }
}

async fn of_user(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "groups/list").await {
        return refused;
    }
    let id = match path_id(&id, "User") {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    match app.services.groups_of_user(id).await {
        Ok(groups) => {
            let groups: Vec<Value> = groups.iter().map(|g| group_json(&app, g)).collect();
            json(StatusCode::OK, &json!({"status": "ok", "user_id": id, "groups": groups}))
        }
        Err(e) => failed(e),
    }
}
