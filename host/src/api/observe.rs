//! What an on-call engineer reads: one log line per request (route, status, latency, request
//! id; never a header, query string or body, so no token reaches the log), the request id in
//! an `X-Request-Id` response header, and `GET /metrics` in Prometheus text format.
//!
//! `/metrics` answers without a token only to a client on the loopback interface whose request
//! carries no forwarding header (a scraper on the same host); through a proxy, or from
//! elsewhere, it needs an API token or admin role granting `metrics`.

use super::{App, authz::authorize};
use crate::metrics::Exposition;
use crate::store::UserScan;
use axum::{
    Router,
    extract::{ConnectInfo, MatchedPath, Request, State},
    http::{HeaderMap, HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tracing::Instrument;

pub fn router() -> Router<App> {
    Router::new().route("/metrics", get(metrics))
}

/// Header carrying the request id both ways.
pub const REQUEST_ID: &str = "x-request-id";
/// Longest incoming request id kept; a longer or odd one is replaced by a fresh id.
const MAX_REQUEST_ID: usize = 64;
/// Route label of requests no route matched (bounded: never the raw path).
const UNMATCHED: &str = "unmatched";

/// The route template a request matched, carried from the routed layer out to [`observe`].
#[derive(Debug, Clone)]
struct RouteName(Arc<str>);

/// Route layer: remember the matched route template on the response; REMP's routes, which
/// share one template, by their route name (`v1 users/login`).
pub async fn tag_route(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map(|m| {
        let remp = if m.as_str() == super::remp::ROUTE_TEMPLATE {
            super::remp::route_label(request.uri().path())
        } else {
            None
        };
        RouteName(Arc::from(remp.as_deref().unwrap_or(m.as_str())))
    });
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// An incoming id when it is short and plain, else a new one.
fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=MAX_REQUEST_ID).contains(&v.len())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string())
}

/// Outer layer: request id, one log line and the request metrics per request.
pub async fn observe(State(app): State<App>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id(request.headers());
    let method = request.method().clone();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = next.run(request).instrument(span).await;
    let latency = started.elapsed();
    let status = response.status().as_u16();
    let route = response.extensions().get::<RouteName>().map(|r| r.0.clone());
    let route = route.as_deref().unwrap_or(UNMATCHED);
    app.services.metrics.record_request(method.as_str(), route, status, latency);
    let latency_ms = (latency.as_secs_f64() * 1000.0 * 100.0).round() / 100.0;
    tracing::info!(target: "crm_users::access", request_id = %id, method = %method, route, status, latency_ms, "request");
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// Headers a proxy adds; their presence means the loopback peer is a proxy, not the scraper.
const FORWARDING_HEADERS: &[&str] = &["x-forwarded-for", "forwarded", "x-real-ip", "client-ip"];

async fn metrics(State(app): State<App>, request: Request) -> Response {
    let peer_is_local = request.extensions().get::<ConnectInfo<SocketAddr>>().is_some_and(|c| c.0.ip().is_loopback());
    let forwarded = FORWARDING_HEADERS.iter().any(|h| request.headers().contains_key(*h));
    let local_scraper = peer_is_local && !forwarded;
    if !local_scraper && let Err(refused) = authorize(&app, request.headers(), "metrics").await {
        return refused;
    }
    let mut out = Exposition::default();
    app.services.metrics.write(&mut out);
    write_gauges(&app, &mut out).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out.finish()).into_response()
}

/// What is read at scrape time: the hashing queue, plugins, storage.
async fn write_gauges(app: &App, out: &mut Exposition) {
    let services = &app.services;
    out.header("crm_users_password_hash_queue_depth", "gauge", "Password hashes waiting for a hashing thread.");
    out.sample("crm_users_password_hash_queue_depth", &[], services.passwords.queue_depth() as f64);
    out.header(
        "crm_users_password_verifications_total",
        "counter",
        "Passwords checked against an account's stored hash (the guesses evaluated; decoy checks excluded).",
    );
    out.sample("crm_users_password_verifications_total", &[], services.passwords.evaluated() as f64);

    let set = services.plugins.current();
    let families: [(&str, &str, &str); 5] = [
        ("crm_users_plugin_calls_total", "counter", "Calls into each plugin."),
        (
            "crm_users_plugin_failures_total",
            "counter",
            "Calls that trapped, ran out of fuel or time, or returned garbage.",
        ),
        (
            "crm_users_plugin_fuel_consumed_total",
            "counter",
            "Fuel (wasm instructions, roughly) the plugin's calls burnt.",
        ),
        ("crm_users_plugin_call_seconds_total", "counter", "Wall-clock seconds spent in the plugin's calls."),
        ("crm_users_plugin_quarantined", "gauge", "1 while the plugin is quarantined after repeated failures."),
    ];
    for (i, (name, kind, help)) in families.iter().enumerate() {
        out.header(name, kind, help);
        for p in &set.plugins {
            let m = p.manifest();
            let labels = [("plugin", m.name.as_str()), ("version", m.version.as_str())];
            let s = &p.stats;
            let value = match i {
                0 => s.calls.load(Ordering::Relaxed) as f64,
                1 => s.failures.load(Ordering::Relaxed) as f64,
                2 => s.fuel_consumed.load(Ordering::Relaxed) as f64,
                3 => s.busy_micros.load(Ordering::Relaxed) as f64 / 1e6,
                _ => f64::from(u8::from(p.state() == "quarantined")),
            };
            out.sample(name, &labels, value);
        }
    }

    out.header("crm_users_storage_bytes", "gauge", "Bytes the store takes on disk.");
    match services.store.size_on_disk().await {
        Ok(bytes) => out.sample("crm_users_storage_bytes", &[], bytes as f64),
        Err(e) => tracing::warn!(error = %e, "cannot read the store's size"),
    }
    out.header("crm_users_users", "gauge", "Users in the store (deleted ones excluded) by state.");
    let all = UserScan { after: None, include_inactive: true, include_deleted: false };
    let active = UserScan { include_inactive: false, ..all.clone() };
    match (services.store.count_users(&all).await, services.store.count_users(&active).await) {
        (Ok(all), Ok(active)) => {
            out.sample("crm_users_users", &[("state", "active")], active as f64);
            out.sample("crm_users_users", &[("state", "inactive")], all.saturating_sub(active) as f64);
        }
        (Err(e), _) | (_, Err(e)) => tracing::warn!(error = %e, "cannot count users"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::email::{DomainBlocklist, EmailValidator};
    use crate::plugins::PluginHost;
    use crate::service::passwords::{HashCost, PasswordHasher};
    use crate::service::{ServiceConfig, Services, sso::SsoProviders};
    use crate::store::{Store, sled::SledStore};
    use axum::body::Body;
    use axum::http::StatusCode;
    use tower::ServiceExt;

    fn app(dir: &std::path::Path) -> Router {
        let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.join("sled")).unwrap());
        let plugins = Arc::new(PluginHost::new(dir.join("plugins.d"), None, store.clone()).unwrap());
        let sso = SsoProviders::new(Default::default(), Default::default()).unwrap();
        let services = Services::new(
            store,
            PasswordHasher::new(HashCost::OWASP, 1),
            EmailValidator::new(DomainBlocklist::builtin()),
            ServiceConfig::default(),
            plugins,
            sso,
        );
        super::super::router(App::new(services, Default::default()))
    }

    async fn scrape(router: &Router, peer: &str, forwarded: bool) -> StatusCode {
        let mut request = Request::get("/metrics");
        if forwarded {
            request = request.header("x-forwarded-for", "198.51.100.7");
        }
        let mut request = request.body(Body::empty()).unwrap();
        request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
        router.clone().oneshot(request).await.unwrap().status()
    }

    #[tokio::test]
    async fn metrics_are_open_to_a_local_scraper_only() {
        let dir = tempfile::tempdir().unwrap();
        let router = app(dir.path());
        assert_eq!(scrape(&router, "127.0.0.1:40000", false).await, StatusCode::OK);
        assert_eq!(scrape(&router, "[::1]:40000", false).await, StatusCode::OK);
        assert_eq!(scrape(&router, "127.0.0.1:40000", true).await, StatusCode::UNAUTHORIZED);
        assert_eq!(scrape(&router, "10.1.2.3:40000", false).await, StatusCode::UNAUTHORIZED);
        assert_eq!(scrape(&router, "192.0.2.1:40000", true).await, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn odd_request_ids_are_replaced() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("abc-123_x.y:z"));
        assert_eq!(request_id(&headers), "abc-123_x.y:z");
        for odd in ["", "has space", "quote\"", &"x".repeat(MAX_REQUEST_ID + 1)] {
            headers.insert(REQUEST_ID, HeaderValue::from_str(odd).unwrap());
            let id = request_id(&headers);
            assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{odd:?} became {id}");
        }
    }
}
