//! `/admin`: the admin console, three static files embedded in the binary (no build step, no
//! framework, nothing fetched from elsewhere). The page is a client of the resource API: it
//! signs in through `users/login` and sends the admin's access token as a Bearer header, so it
//! can do nothing the API does not offer to the same token. Served with a strict
//! Content-Security-Policy: no inline script or style, no other origin.

use super::App;
use axum::{
    Router,
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};

const INDEX_HTML: &str = include_str!("../../assets/admin/index.html");
const APP_JS: &str = include_str!("../../assets/admin/app.js");
const APP_CSS: &str = include_str!("../../assets/admin/app.css");

/// Same-origin everything; `data:` images for nothing but the favicon the browser asks for.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router() -> Router<App> {
    Router::new()
        .route("/admin", get(|| async { Redirect::permanent("/admin/") }))
        .route("/admin/", get(|| async { asset("text/html; charset=utf-8", INDEX_HTML) }))
        .route("/admin/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/admin/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        // A new binary brings new files; nothing is cached across versions by accident.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (HeaderName::from_static("cross-origin-opener-policy"), HeaderValue::from_static("same-origin")),
    ];
    (StatusCode::OK, headers, body).into_response()
}
