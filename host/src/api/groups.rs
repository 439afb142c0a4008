//! `/api/groups`: the set-up interface for groups, which REMP manages in its admin. `POST`
//! with `{"name": N}` creates one; it needs an API token whose whitelist names `groups/create`.
//! Errors are JSON `{"status": "error", "code": ..., "message": ...}`.

use super::{ApiError, App, json, plugins::require_api_token};
use crate::domain::Error;
use axum::{
    Router,
    body::Body,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde::Deserialize;
use serde_json::json;

pub fn router() -> Router<App> {
    Router::new().route("/api/groups", post(create))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewGroup {
    name: String,
}

fn invalid(message: impl Into<String>) -> Response {
    json(StatusCode::BAD_REQUEST, &json!({"status": "error", "code": "invalid_input", "message": message.into()}))
}

async fn create(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "groups/create").await {
        return refused;
    }
    let limit = app.settings.max_body_bytes;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return json(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"status": "error", "code": "payload_too_large", "message": format!("The request body is larger than {limit} bytes")}),
        );
    };
    let request: NewGroup = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => return invalid(format!("expected a JSON object {{\"name\": \"...\"}}: {e}")),
    };
    match app.services.create_group(&request.name).await {
        Ok(group) => json(StatusCode::OK, &json!({"id": group.id, "name": group.name})),
        Err(Error::Invalid { message, .. }) => invalid(message),
        Err(e) => ApiError(e).into_response(),
    }
}
