//! What an operator reads about one user besides the user record, as resources (the admin
//! console is a client of these): login attempts, password changes, access tokens with their
//! devices (revoke one token, or every token of a device), meta, addresses formatted by their
//! type and address change requests; and the dashboard's new-user counts. Each route needs an
//! API token naming it or an admin whose roles grant it. Never a token value or password hash.

use super::{
    App,
    addresses::{change_request_json, fields_json},
    authz::require_api_token,
    json,
    rest::{self, from_error},
};
use crate::domain::{Error, user::UserId};
use crate::service::dashboard::MAX_DAYS;
use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::{delete, get},
};
use serde_json::{Map, Value, json};

/// Login attempts listed when the client does not say.
const DEFAULT_ATTEMPTS: usize = 100;
/// Most login attempts or password changes in one answer; older ones stay in the store.
const MAX_ROWS: usize = 1000;
/// Days of the new-users graph when the client does not say (REMP's widget shows a month).
const DEFAULT_DAYS: u32 = 31;

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/stats/new-users", get(new_users))
        .route("/api/users/{id}/login-attempts", get(login_attempts))
        .route("/api/users/{id}/password-changes", get(password_changes))
        .route("/api/users/{id}/access-tokens", get(access_tokens))
        .route("/api/users/{id}/access-tokens/{token_id}", delete(revoke_access_token))
        .route("/api/users/{id}/device-tokens/{device_token_id}", delete(revoke_device_token))
        .route("/api/users/{id}/meta", get(meta))
        .route("/api/users/{id}/addresses", get(addresses))
        .route("/api/users/{id}/address-change-requests", get(change_requests))
}

/// Authorize `route`, then read the user id from the path and check the user exists.
async fn live_user(app: &App, headers: &HeaderMap, route: &str, raw_id: &str) -> Result<UserId, Response> {
    require_api_token(app, headers, route).await?;
    let id = rest::user_id(raw_id).map_err(from_error)?;
    app.services.live_user(id).await.map_err(from_error)?;
    Ok(id)
}

fn limit(query: Option<&str>, default: usize) -> Result<usize, Error> {
    match rest::query(query).get("limit").filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_ROWS).contains(n))
            .ok_or_else(|| rest::invalid(format!("limit is an integer from 1 to {MAX_ROWS}"))),
    }
}

fn ok_data(data: Vec<Value>) -> Response {
    json(StatusCode::OK, &json!({"data": data}))
}

async fn new_users(State(app): State<App>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "stats/new-users").await {
        return refused;
    }
    let days = match rest::query(query.as_deref()).get("days").filter(|v| !v.is_empty()) {
        None => DEFAULT_DAYS,
        Some(v) => match v.parse::<u32>().ok().filter(|n| (1..=MAX_DAYS).contains(n)) {
            Some(n) => n,
            None => return from_error(rest::invalid(format!("days is an integer from 1 to {MAX_DAYS}"))),
        },
    };
    let zone = app.settings.timezone;
    match app.services.new_users(zone, crate::domain::now(), days).await {
        Ok(stats) => json(
            StatusCode::OK,
            &json!({
                "timezone": zone.name(),
                "today": stats.today,
                "this_month": stats.this_month,
                "last_month_to_date": stats.last_month_to_date,
                "per_day": stats.per_day.iter().map(|(day, n)| json!({"date": day.to_string(), "count": n})).collect::<Vec<_>>(),
            }),
        ),
        Err(e) => from_error(e),
    }
}

async fn login_attempts(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let id = match live_user(&app, &headers, "users/login-attempts", &id).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let limit = match limit(query.as_deref(), DEFAULT_ATTEMPTS) {
        Ok(n) => n,
        Err(e) => return from_error(e),
    };
    match app.services.store.login_attempts_of_user(id, limit).await {
        Ok(rows) => ok_data(
            rows.iter()
                .map(|a| {
                    json!({
                        "id": a.id,
                        "created_at": app.date(a.created_at),
                        "status": a.status.as_str(),
                        "ok": a.status.is_ok(),
                        "source": a.source,
                        "ip": a.ip,
                        "user_agent": a.user_agent,
                        "message": a.message,
                    })
                })
                .collect(),
        ),
        Err(e) => from_error(e),
    }
}

async fn password_changes(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let id = match live_user(&app, &headers, "users/password-changes", &id).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let limit = match limit(query.as_deref(), MAX_ROWS) {
        Ok(n) => n,
        Err(e) => return from_error(e),
    };
    match app.services.store.password_changes_of_user(id, limit).await {
        // The hashes stay in the store: an operator needs when and why, not the hashes.
        Ok(rows) => ok_data(
            rows.iter().map(|c| json!({"id": c.id, "created_at": app.date(c.created_at), "type": c.kind})).collect(),
        ),
        Err(e) => from_error(e),
    }
}

async fn access_tokens(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let id = match live_user(&app, &headers, "access-tokens/list", &id).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let tokens = match app.services.store.access_tokens_of_user(id).await {
        Ok(t) => t,
        Err(e) => return from_error(e),
    };
    let mut data = Vec::with_capacity(tokens.len());
    for t in tokens {
        let device = match t.device_token_id {
            Some(device_id) => match app.services.store.device_token_by_id(device_id).await {
                Ok(Some(d)) => json!({
                    "id": d.id,
                    "device_id": d.device_id,
                    "created_at": app.date(d.created_at),
                    "last_used_at": app.date_json(d.last_used_at),
                }),
                Ok(None) => Value::Null,
                Err(e) => return from_error(e),
            },
            None => Value::Null,
        };
        data.push(json!({
            "id": t.id,
            "source": t.source,
            "method": t.method,
            "ip": t.ip,
            "user_agent": t.user_agent,
            "created_at": app.date(t.created_at),
            "last_used_at": app.date_json(t.last_used_at),
            "device": device,
        }));
    }
    ok_data(data)
}

fn token_id(raw: &str) -> Result<u64, Error> {
    raw.parse::<u64>().map_err(|_| rest::invalid("the token id is a positive integer"))
}

async fn revoke_access_token(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, token)): Path<(String, String)>,
) -> Response {
    let id = match live_user(&app, &headers, "access-tokens/revoke", &id).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let token = match token_id(&token) {
        Ok(t) => t,
        Err(e) => return from_error(e),
    };
    let digests = match app.services.store.access_tokens_of_user(id).await {
        Ok(tokens) => tokens.into_iter().filter(|t| t.id == token).map(|t| t.digest).collect::<Vec<_>>(),
        Err(e) => return from_error(e),
    };
    if digests.is_empty() {
        return from_error(Error::NotFound(format!("access token {token} of user {id} not found")));
    }
    match app.services.remove_access_tokens(digests).await {
        Ok(removed) => {
            json(StatusCode::OK, &json!({"status": "ok", "revoked": removed.iter().map(|t| t.id).collect::<Vec<_>>()}))
        }
        Err(e) => from_error(e),
    }
}

/// Revoke every access token of the user paired with the device token: the device is signed
/// out (as REMP's logout with a device token does).
async fn revoke_device_token(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, device)): Path<(String, String)>,
) -> Response {
    let id = match live_user(&app, &headers, "access-tokens/revoke", &id).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let device = match token_id(&device) {
        Ok(d) => d,
        Err(e) => return from_error(e),
    };
    let digests = match app.services.store.access_tokens_of_device(device).await {
        Ok(tokens) => tokens.into_iter().filter(|t| t.user_id == id).map(|t| t.digest).collect::<Vec<_>>(),
        Err(e) => return from_error(e),
    };
    if digests.is_empty() {
        return from_error(Error::NotFound(format!(
            "no access token of user {id} is paired with device token {device}"
        )));
    }
    match app.services.remove_access_tokens(digests).await {
        Ok(removed) => {
            json(StatusCode::OK, &json!({"status": "ok", "revoked": removed.iter().map(|t| t.id).collect::<Vec<_>>()}))
        }
        Err(e) => from_error(e),
    }
}

async fn meta(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let id = match live_user(&app, &headers, "users/meta", &id).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    match app.services.store.user_meta(id).await {
        Ok(entries) => ok_data(
            entries
                .iter()
                .map(|m| {
                    json!({
                        "key": m.key,
                        "value": m.value,
                        "is_public": m.is_public,
                        "created_at": app.date(m.created_at),
                        "updated_at": app.date(m.updated_at),
                    })
                })
                .collect(),
        ),
        Err(e) => from_error(e),
    }
}

async fn addresses(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let id = match live_user(&app, &headers, "addresses/list", &id).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    let listed = async {
        let addresses = app.services.addresses(id, None).await?;
        let strings = app.services.format_addresses(&addresses).await?;
        let types = app.services.address_types().await?;
        Ok::<_, Error>((addresses, strings, types))
    };
    let (addresses, strings, types) = match listed.await {
        Ok(l) => l,
        Err(e) => return from_error(e),
    };
    let data = addresses
        .iter()
        .zip(strings)
        .map(|(a, text)| {
            let mut out = Map::new();
            out.insert("id".into(), json!(a.id));
            out.insert("type".into(), json!(a.kind));
            let title = types.iter().find(|t| t.kind.key == a.kind).map(|t| t.kind.title.clone());
            out.insert("type_title".into(), json!(title));
            out.insert("is_default".into(), json!(a.is_default));
            out.insert("title".into(), json!(a.title));
            fields_json(&mut out, "", &a.fields);
            out.insert("address_string".into(), json!(text));
            out.insert("created_at".into(), json!(app.date(a.created_at)));
            out.insert("updated_at".into(), json!(app.date(a.updated_at)));
            Value::Object(out)
        })
        .collect();
    ok_data(data)
}

async fn change_requests(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let id = match live_user(&app, &headers, "address-change-requests/list", &id).await {
        Ok(id) => id,
        Err(refused) => return refused,
    };
    match app.services.store.address_change_requests_of_user(id).await {
        Ok(rows) => ok_data(rows.iter().map(|r| change_request_json(&app, r)).collect()),
        Err(e) => from_error(e),
    }
}
