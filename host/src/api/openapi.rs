//! `GET /api/openapi.json` (placeholder, filled in below).
use super::{App, json};
use axum::{Router, http::StatusCode, response::Response, routing::get};

pub fn router() -> Router<App> {
    Router::new().route("/api/openapi.json", get(document))
}

async fn document() -> Response {
    json(StatusCode::OK, &serde_json::json!({}))
}
