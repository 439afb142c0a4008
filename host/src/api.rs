//! HTTP: the application state, the routers, and the one place where errors become responses.
//! `api/remp.rs` serves REMP's routes with REMP's exact bodies; resource routes live in their
//! own files (authorized through `api/authz.rs`), are merged here, and have a row each in
//! `api/openapi.rs`.

pub mod addresses;
pub mod admin;
pub mod authz;
pub mod autologin;
pub mod groups;
pub mod me;
pub mod observe;
pub mod openapi;
pub mod params;
pub mod plugins;
pub mod remp;
pub mod rest;
pub mod roles;
pub mod tokens;
pub mod user_records;
pub mod users;

use crate::domain::{Error, Timestamp};
use crate::service::Services;
use axum::{
    Router,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use std::sync::Arc;

/// Settings of the HTTP layer, validated from the config.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Dates are rendered in this zone, as REMP renders them in the server's default zone.
    pub timezone: chrono_tz::Tz,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Take the client IP from `Client-IP` / `X-Forwarded-For` as REMP does. Only safe behind
    /// a proxy that sets them, so off by default.
    pub trust_forwarded_headers: bool,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings { timezone: chrono_tz::UTC, max_body_bytes: 1024 * 1024, trust_forwarded_headers: false }
    }
}

/// The application state handed to every handler: one pointer, because axum clones it for
/// every request (cloning the services' dozen `Arc`s was 4% of a `user/info`).
#[derive(Clone, Debug)]
pub struct App(Arc<AppState>);

/// What [`App`] points to.
#[derive(Debug)]
pub struct AppState {
    pub services: Services,
    pub settings: ApiSettings,
}

impl std::ops::Deref for App {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.0
    }
}

impl App {
    pub fn new(services: Services, settings: ApiSettings) -> Self {
        App(Arc::new(AppState { services, settings }))
    }

    /// RFC 3339 with an explicit offset, PHP's `DATE_RFC3339` (`2025-08-20T10:20:30+02:00`).
    pub fn date(&self, at: Timestamp) -> String {
        at.with_timezone(&self.settings.timezone).format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }

    /// An optional date as a JSON value.
    pub fn date_json(&self, at: Option<Timestamp>) -> serde_json::Value {
        at.map(|t| serde_json::Value::String(self.date(t))).unwrap_or(serde_json::Value::Null)
    }
}

/// The whole HTTP surface.
pub fn router(app: App) -> Router {
    let max_body = app.settings.max_body_bytes;
    Router::new()
        .route("/healthz", get(|| async { json(StatusCode::OK, &serde_json::json!({"status": "ok"})) }))
        .merge(remp::router())
        .merge(plugins::router())
        .merge(autologin::router())
        .merge(addresses::router())
        .merge(groups::router())
        .merge(roles::router())
        .merge(openapi::router())
        .merge(users::router())
        .merge(me::router())
        .merge(tokens::router())
        .merge(user_records::router())
        .merge(admin::router())
        .merge(observe::router())
        .route_layer(axum::middleware::from_fn(observe::tag_route))
        .fallback(|| async {
            json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"status": "error", "code": "not_found", "message": "Unknown api endpoint"}),
            )
        })
        .with_state(app.clone())
        .layer(axum::middleware::map_response(json_client_errors))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(max_body, refuse_declared_oversized))
        .layer(axum::middleware::from_fn_with_state(app, observe::observe))
}

/// How much of an oversized body is read and dropped before the 413 goes out, and for how
/// long: a client still sending would otherwise get a reset connection instead of the answer.
/// Past either bound the connection is just closed.
const OVERSIZED_DRAIN_BYTES: usize = 16 << 20;
const OVERSIZED_DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// A body whose Content-Length is over the limit gets 413 before any handler runs (and without
/// buffering any of it); bodies without a length are cut at the limit by `DefaultBodyLimit`.
async fn refuse_declared_oversized(
    axum::extract::State(max_body): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_none_or(|len| len <= max_body as u64) {
        return next.run(request).await;
    }
    let mut body = request.into_body().into_data_stream();
    let _ = tokio::time::timeout(OVERSIZED_DRAIN_TIME, async {
        use futures_util::StreamExt;
        let mut drained = 0usize;
        while let Some(Ok(chunk)) = body.next().await {
            drained += chunk.len();
            if drained > OVERSIZED_DRAIN_BYTES {
                break;
            }
        }
    })
    .await;
    let mut response = json(
        StatusCode::PAYLOAD_TOO_LARGE,
        &serde_json::json!({"status": "error", "code": "payload_too_large",
            "message": format!("The request body is larger than {max_body} bytes")}),
    );
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Longest extractor message kept in a JSON error body.
const MAX_REJECTION_TEXT: usize = 512;

/// Client errors raised by the framework before a handler runs (a body over the limit, a path
/// that does not decode, a method a route does not take) come as plain text or empty; they
/// leave as the same JSON error body as every other refusal.
async fn json_client_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let code = match status {
        StatusCode::BAD_REQUEST => "invalid_input",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_input",
        _ => "client_error",
    };
    let text = axum::body::to_bytes(response.into_body(), MAX_REJECTION_TEXT * 4).await.unwrap_or_default();
    let mut message: String = String::from_utf8_lossy(&text).chars().take(MAX_REJECTION_TEXT).collect();
    if message.trim().is_empty() {
        message = status.canonical_reason().unwrap_or("Client error").to_owned();
    }
    json(status, &serde_json::json!({"status": "error", "code": code, "message": message}))
}

/// REMP's content type for JSON.
pub const JSON_CONTENT_TYPE: &str = "application/json; charset=utf-8";

/// A JSON response with REMP's content type.
pub fn json(status: StatusCode, body: &serde_json::Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = (status, bytes).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    response
}

/// `Retry-After` of a storage failure: the store probes for recovery once a second.
const STORAGE_RETRY_AFTER_SECS: &str = "5";

/// An error on its way out. Specific routes turn the errors they document into their own
/// bodies first; what is left is mapped here, and 5xx causes are logged, never sent.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let (status, message) = match &e {
            Error::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            Error::Conflict { message, .. } => (StatusCode::CONFLICT, message.clone()),
            Error::Invalid { message, .. } => (StatusCode::BAD_REQUEST, message.clone()),
            Error::Auth { message, .. } => (StatusCode::BAD_REQUEST, message.clone()),
            Error::RateLimited(m) => (StatusCode::TOO_MANY_REQUESTS, m.clone()),
            Error::Busy(m) => (StatusCode::SERVICE_UNAVAILABLE, m.clone()),
            Error::Storage(_) => {
                // A full disk or a failing device: the store recovers on its own, so the
                // client is told to come back, and nothing about the cause.
                tracing::error!(error = %e, "request failed");
                let mut response = json(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &serde_json::json!({"status": "error", "code": "storage_unavailable", "message": "The service cannot store data right now; try again later"}),
                );
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(STORAGE_RETRY_AFTER_SECS));
                return response;
            }
            Error::Internal(_) => {
                tracing::error!(error = %e, "request failed");
                return json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &serde_json::json!({"status": "error", "code": "internal_server_error"}),
                );
            }
        };
        json(status, &serde_json::json!({"status": "error", "code": e.code(), "message": message}))
    }
}
