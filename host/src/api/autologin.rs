//! `POST /api/autologin-tokens`: issue an autologin token for a user (API token with
//! `autologin-tokens/create`). JSON in: `email` or `user_id`, optional RFC 3339 `valid_from` and
//! `valid_to` (defaults: now and ten minutes later) and `max_count` (default 1).

use super::{App, authz::require_api_token, json};
use crate::domain::Error;
use crate::service::autologin::{AutologinRequest, TokenOwner};
use axum::{Router, body::Bytes, extract::State, http::HeaderMap, http::StatusCode, response::Response, routing::post};
use serde_json::{Value, json};

pub fn router() -> Router<App> {
    Router::new().route("/api/autologin-tokens", post(create))
}

fn bad_request(message: impl Into<String>) -> Response {
    json(StatusCode::BAD_REQUEST, &json!({"status": "error", "code": "invalid_input", "message": message.into()}))
}

/// An optional RFC 3339 date field; `Err` says what is wrong with it.
fn date(body: &Value, field: &str) -> Result<Option<crate::domain::Timestamp>, String> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|d| Some(d.with_timezone(&chrono::Utc)))
            .map_err(|_| format!("{field} must be an RFC 3339 date such as 2026-01-31T12:00:00+01:00")),
        Some(_) => Err(format!("{field} must be a string")),
    }
}

async fn create(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "autologin-tokens/create").await {
        return refused;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad_request("the body must be a JSON object");
    };
    if !body.is_object() {
        return bad_request("the body must be a JSON object");
    }
    let owner = match (body.get("email").and_then(Value::as_str), body.get("user_id").and_then(Value::as_u64)) {
        (Some(email), _) => TokenOwner::Email(email.to_owned()),
        (None, Some(id)) => TokenOwner::Id(id),
        _ => return bad_request("give the user's email or user_id"),
    };
    let (valid_from, valid_to) = match (date(&body, "valid_from"), date(&body, "valid_to")) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(why), _) | (_, Err(why)) => return bad_request(why),
    };
    let max_count = match body.get("max_count") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => return bad_request("max_count must be a positive integer"),
        },
    };
    let req = AutologinRequest { owner, valid_from, valid_to, max_count };
    match app.services.create_autologin_token(req).await {
        Ok(issued) => json(
            StatusCode::OK,
            &json!({
                "token": issued.token,
                "user_id": issued.user.id,
                "valid_from": app.date(issued.valid_from),
                "valid_to": app.date(issued.valid_to),
                "max_count": issued.max_count,
            }),
        ),
        Err(Error::NotFound(_)) => json(
            StatusCode::NOT_FOUND,
            &json!({"status": "error", "code": "user_not_found", "message": "User not found"}),
        ),
        Err(Error::Invalid { message, .. }) => bad_request(message),
        Err(e) => axum::response::IntoResponse::into_response(super::ApiError(e)),
    }
}
