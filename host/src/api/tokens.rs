//! Tokens as resources, so the CLI is needed only for the first API token: `/api/api-tokens`
//! (list, create with a route whitelist, revoke) and a user's autologin tokens (list, without
//! token values; `POST /api/autologin-tokens` in [`super::autologin`] issues them).

use super::{
    App, json,
    plugins::require_api_token,
    rest::{self, from_error},
};
use crate::domain::token::ApiToken;
use crate::service::tokens::parse_allowed_routes;
use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::{delete, get},
};
use serde_json::{Value, json};

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/api-tokens", get(list).post(create))
        .route("/api/api-tokens/{id}", delete(revoke))
        .route("/api/users/{id}/autologin-tokens", get(autologin_list))
        .route("/api/users/{id}/autologin-tokens/{token_id}", delete(autologin_revoke))
}

fn token_json(app: &App, t: &ApiToken) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "allowed_routes": t.allowed_routes,
        "active": t.active,
        "created_at": app.date(t.created_at),
    })
}

async fn list(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "api-tokens/list").await {
        return refused;
    }
    match app.services.store.api_tokens().await {
        Ok(tokens) => {
            json(StatusCode::OK, &json!({"data": tokens.iter().map(|t| token_json(&app, t)).collect::<Vec<_>>()}))
        }
        Err(e) => from_error(e),
    }
}

async fn create(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "api-tokens/create").await {
        return refused;
    }
    let parsed = rest::object(&body).and_then(|b| {
        rest::only_keys(&b, &["name", "allowed_routes"])?;
        let name = rest::string(&b, "name")?.unwrap_or_default();
        let routes = match b.get("allowed_routes") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
            }
            _ => return Err(rest::invalid("allowed_routes is a list of route names, or \"*\"")),
        };
        Ok((name, routes))
    });
    let (name, routes) = match parsed {
        Ok(p) => p,
        Err(e) => return from_error(e),
    };
    let result = match parse_allowed_routes(&routes) {
        Ok(routes) => app.services.create_api_token(&name, routes).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((token, plain)) => {
            let mut body = token_json(&app, &token);
            body["token"] = Value::String(plain);
            json(StatusCode::CREATED, &body)
        }
        Err(e) => from_error(e),
    }
}

async fn revoke(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "api-tokens/revoke").await {
        return refused;
    }
    if id.parse::<u64>().is_err() {
        return from_error(rest::invalid("the token id is a positive integer"));
    }
    match app.services.revoke_api_token(&id).await {
        Ok(revoked) => {
            let data = revoked.iter().map(|t| token_json(&app, &ApiToken { active: false, ..t.clone() }));
            json(StatusCode::OK, &json!({"status": "ok", "data": data.collect::<Vec<_>>()}))
        }
        Err(e) => from_error(e),
    }
}

async fn autologin_list(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "autologin-tokens/list").await {
        return refused;
    }
    let id = match rest::user_id(&id) {
        Ok(id) => id,
        Err(e) => return from_error(e),
    };
    if let Err(e) = app.services.live_user(id).await {
        return from_error(e);
    }
    match app.services.store.autologin_tokens_of_user(id).await {
        Ok(tokens) => {
            let data: Vec<Value> = tokens
                .iter()
                .map(|t| {
                    json!({
                        "id": t.id,
                        "user_id": t.user_id,
                        "email": t.email,
                        "created_at": app.date(t.created_at),
                        "valid_from": app.date(t.valid_from),
                        "valid_to": app.date(t.valid_to),
                        "used_count": t.used_count,
                        "max_count": t.max_count,
                    })
                })
                .collect();
            json(StatusCode::OK, &json!({"data": data}))
        }
        Err(e) => from_error(e),
    }
}

async fn autologin_revoke(
    State(app): State<App>,
    headers: HeaderMap,
    Path((id, token_id)): Path<(String, String)>,
) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "autologin-tokens/revoke").await {
        return refused;
    }
    let ids = rest::user_id(&id).and_then(|id| {
        token_id.parse::<u64>().map(|t| (id, t)).map_err(|_| rest::invalid("the token id is a positive integer"))
    });
    let (id, token_id) = match ids {
        Ok(ids) => ids,
        Err(e) => return from_error(e),
    };
    if let Err(e) = app.services.live_user(id).await {
        return from_error(e);
    }
    match app.services.revoke_autologin_token(id, token_id).await {
        Ok(t) => json(StatusCode::OK, &json!({"status": "ok", "id": t.id, "user_id": t.user_id})),
        Err(e) => from_error(e),
    }
}
