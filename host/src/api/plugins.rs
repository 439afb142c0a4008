//! `/api/plugins`: what is loaded and how it is doing, and reload without a restart. Both
//! need an API token whose whitelist names the route (`plugins/list`, `plugins/reload`), or an
//! admin whose roles grant it.

use super::{App, json};
use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::{get, post},
};
use serde_json::json;

pub use super::authz::require_api_token;

pub fn router() -> Router<App> {
    Router::new().route("/api/plugins", get(list)).route("/api/plugins/reload", post(reload))
}

fn describe(set: &crate::plugins::PluginSet) -> serde_json::Value {
    let plugins: Vec<serde_json::Value> = set
        .plugins
        .iter()
        .map(|p| {
            let m = p.manifest();
            let (calls, failures, fuel, last_error) = p.stats.snapshot();
            json!({
                "name": m.name,
                "version": m.version,
                "kinds": p.kinds.iter().map(|k| k.world()).collect::<Vec<_>>(),
                "priority": m.priority,
                "state": p.state(),
                "capabilities": m.capabilities.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                "calls": calls,
                "failures": failures,
                "fuel_consumed": fuel,
                "last_error": last_error,
            })
        })
        .collect();
    json!({"status": "ok", "plugins": plugins})
}

async fn list(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "plugins/list").await {
        return refused;
    }
    json(StatusCode::OK, &describe(&app.services.plugins.current()))
}

async fn reload(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "plugins/reload").await {
        return refused;
    }
    match app.services.plugins.reload().await {
        Ok(set) => json(StatusCode::OK, &describe(&set)),
        Err(e) => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({
                "status": "error",
                "code": "plugin_rejected",
                "message": format!("{e:#}"),
                "detail": "the previous plugin set keeps serving",
            }),
        ),
    }
}
