//! Authorization of the resource API (`/api/...` outside REMP's versioned paths), and the JSON
//! error shape those routes share: `{"status": "error", "code": .., "message": ..}`.
//!
//! A route names itself (`groups/list`); an API token passes when its whitelist names the route
//! or `*`, exactly as on REMP's routes, and an admin user's access token passes when one of the
//! user's roles grants the route or `*`. Everything else is 401 (no usable token) or 403
//! (`forbidden`, naming the missing permission).

use super::{App, json};
use crate::service::auth::{ResourceCaller, ResourceRefusal};
use axum::{
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

/// Check the caller for `route`; a response when refused. Kept under this name because every
/// resource route calls it; it accepts admin user tokens too (see the module doc).
pub async fn require_api_token(app: &App, headers: &HeaderMap, route: &str) -> Result<(), Response> {
    authorize(app, headers, route).await.map(|_| ())
}

/// Like [`require_api_token`], and tells who passed.
pub async fn authorize(app: &App, headers: &HeaderMap, route: &str) -> Result<ResourceCaller, Response> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match app.services.authorize_resource(authorization, route).await {
        Ok(Ok(caller)) => Ok(caller),
        Ok(Err(ResourceRefusal::Unauthenticated(message))) => {
            Err(error(StatusCode::UNAUTHORIZED, "unauthorized", &message))
        }
        Ok(Err(ResourceRefusal::Forbidden(message))) => Err(error(StatusCode::FORBIDDEN, "forbidden", &message)),
        Err(e) => Err(super::ApiError(e).into_response()),
    }
}

/// A resource-API error body.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    json(status, &json!({"status": "error", "code": code, "message": message}))
}

/// 400 `invalid_input`.
pub fn invalid(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_input", &message.into())
}

/// A request refused before it reaches a use case; small, so helpers can return it cheaply.
#[derive(Debug)]
pub struct Rejection {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl Rejection {
    /// 400 `invalid_input`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Rejection { status: StatusCode::BAD_REQUEST, code: "invalid_input", message: message.into() }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        error(self.status, self.code, &self.message)
    }
}

/// A request body that must be one JSON object with no keys outside `allowed`, so a misspelt
/// field is not silently ignored.
pub fn json_object(body: &[u8], allowed: &[&str]) -> Result<serde_json::Map<String, Value>, Rejection> {
    let map = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(Rejection::invalid("the body must be a JSON object")),
        Err(e) => return Err(Rejection::invalid(format!("malformed JSON body: {e}"))),
    };
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(Rejection::invalid(format!("unknown field '{k}'; expected {}", allowed.join(", ")))),
        None => Ok(map),
    }
}

/// A numeric id from the path; 404 with `what` when it is not one (no such record can exist).
pub fn path_id(raw: &str, what: &str) -> Result<u64, Rejection> {
    raw.parse::<u64>().map_err(|_| Rejection {
        status: StatusCode::NOT_FOUND,
        code: "not_found",
        message: format!("{what} not found: {raw}"),
    })
}
