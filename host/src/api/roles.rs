//! `/api/roles`, `/api/users/{id}/roles` and `/api/users/{id}/permissioncheck`: admin roles as
//! a resource, their assignment to users, and per-permission checks. Permissions are route
//! names (`groups/list`) or `*`; they count for admin users only. Errors are
//! `{"status": "error", "code": ..., "message": ...}`.

use super::authz::{Rejection, error, invalid, json_object, path_id, require_api_token};
use super::{ApiError, App, json};
use crate::domain::{Error, role::AdminRole, user::Role};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Map, Value, json};

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/roles", get(list).post(create))
        .route("/api/roles/{id}", get(show).put(update).delete(remove))
        .route("/api/users/{id}/roles", get(of_user).put(set_of_user))
        .route("/api/users/{id}/permissioncheck", get(permission_check))
}

fn role_json(app: &App, r: &AdminRole) -> Value {
    json!({
        "id": r.id,
        "name": r.name,
        "permissions": r.permissions,
        "created_at": app.date(r.created_at),
        "updated_at": app.date(r.updated_at),
    })
}

fn failed(e: Error) -> Response {
    match e {
        Error::NotFound(m) => error(StatusCode::NOT_FOUND, "not_found", &m),
        Error::Invalid { code, message, .. } => error(StatusCode::BAD_REQUEST, code, &message),
        Error::Conflict { code, message } => error(StatusCode::CONFLICT, code, &message),
        e => ApiError(e).into_response(),
    }
}

/// `permissions` as a list of strings, when present.
fn permissions_of(body: &Map<String, Value>) -> Result<Option<Vec<String>>, Rejection> {
    match body.get("permissions") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| Rejection::invalid("permissions must be a list of route names")),
        Some(_) => Err(Rejection::invalid("permissions must be a list of route names")),
    }
}

fn name_of(body: &Map<String, Value>) -> Result<Option<&str>, Rejection> {
    match body.get("name") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Rejection::invalid("name must be a string")),
    }
}

async fn list(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "roles/list").await {
        return refused;
    }
    match app.services.roles_with_counts().await {
        Ok(roles) => {
            let roles: Vec<Value> = roles
                .iter()
                .map(|(r, count)| {
                    let mut v = role_json(&app, r);
                    v["user_count"] = json!(count);
                    v
                })
                .collect();
            json(StatusCode::OK, &json!({"status": "ok", "roles": roles}))
        }
        Err(e) => failed(e),
    }
}

/// `{"name": N, "permissions": [..]}` → 201 with the role.
async fn create(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "roles/create").await {
        return refused;
    }
    let body = match json_object(&body, &["name", "permissions"]) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let (name, perms) = match (name_of(&body), permissions_of(&body)) {
        (Ok(Some(n)), Ok(p)) => (n, p.unwrap_or_default()),
        (Ok(None), _) => return invalid("name is required"),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    match app.services.create_role(name, &perms).await {
        Ok(role) => json(StatusCode::CREATED, &json!({"status": "ok", "role": role_json(&app, &role)})),
        Err(e) => failed(e),
    }
}

async fn show(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "roles/show").await {
        return refused;
    }
    let id = match path_id(&id, "Role") {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    match app.services.role(id).await {
        Ok(role) => json(StatusCode::OK, &json!({"status": "ok", "role": role_json(&app, &role)})),
        Err(e) => failed(e),
    }
}

/// `{"name"?: N, "permissions"?: [..]}`, at least one; permissions are replaced, not merged.
async fn update(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "roles/update").await {
        return refused;
    }
    let id = match path_id(&id, "Role") {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let body = match json_object(&body, &["name", "permissions"]) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let (name, perms) = match (name_of(&body), permissions_of(&body)) {
        (Ok(n), Ok(p)) => (n, p),
        (Err(r), _) | (_, Err(r)) => return r.into_response(),
    };
    if name.is_none() && perms.is_none() {
        return invalid("give name, permissions or both");
    }
    match app.services.update_role(id, name, perms.as_deref()).await {
        Ok(role) => json(StatusCode::OK, &json!({"status": "ok", "role": role_json(&app, &role)})),
        Err(e) => failed(e),
    }
}

async fn remove(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "roles/delete").await {
        return refused;
    }
    let id = match path_id(&id, "Role") {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    match app.services.delete_role(id).await {
        Ok(()) => json(StatusCode::OK, &json!({"status": "ok"})),
        Err(e) => failed(e),
    }
}

fn user_roles_json(app: &App, user_id: u64, admin: bool, roles: &[AdminRole]) -> Value {
    let roles: Vec<Value> = roles.iter().map(|r| role_json(app, r)).collect();
    json!({"status": "ok", "user_id": user_id, "admin": admin, "roles": roles})
}

async fn of_user(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "users/roles").await {
        return refused;
    }
    let id = match path_id(&id, "User") {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    match app.services.roles_of_user(id).await {
        Ok((user, roles)) => json(StatusCode::OK, &user_roles_json(&app, id, user.role == Role::Admin, &roles)),
        Err(e) => failed(e),
    }
}

/// `{"roles": [ids]}` replaces the user's roles.
async fn set_of_user(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "users/roles").await {
        return refused;
    }
    let id = match path_id(&id, "User") {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let body = match json_object(&body, &["roles"]) {
        Ok(b) => b,
        Err(r) => return r.into_response(),
    };
    let Some(ids) = body
        .get("roles")
        .and_then(Value::as_array)
        .and_then(|a| a.iter().map(Value::as_u64).collect::<Option<Vec<_>>>())
    else {
        return invalid("roles must be a list of role ids");
    };
    if let Err(e) = app.services.set_user_roles(id, ids).await {
        return failed(e);
    }
    match app.services.roles_of_user(id).await {
        Ok((user, roles)) => json(StatusCode::OK, &user_roles_json(&app, id, user.role == Role::Admin, &roles)),
        Err(e) => failed(e),
    }
}

/// `?permissions=a,b` → `{"permissions": {"a": true, "b": false}}`: whether the user (an admin
/// with roles) holds each one; names no role can hold are answered `false`.
async fn permission_check(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "users/permissioncheck").await {
        return refused;
    }
    let id = match path_id(&id, "User") {
        Ok(id) => id,
        Err(r) => return r.into_response(),
    };
    let mut names: Vec<String> = Vec::new();
    for (k, v) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "permissions" || k == "permissions[]" {
            names.extend(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned));
        }
    }
    if names.is_empty() {
        return invalid("give the permissions to check: ?permissions=a,b");
    }
    match app.services.check_permissions(id, &names).await {
        Ok(answers) => {
            let map: Map<String, Value> = answers.into_iter().map(|(k, v)| (k, Value::Bool(v))).collect();
            json(StatusCode::OK, &json!({"status": "ok", "user_id": id, "permissions": map}))
        }
        Err(e) => failed(e),
    }
}
