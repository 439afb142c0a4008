//! REMP's users API, wire-compatible: `/api/v{1,2}/<package>/<action>[/]`, any method, every
//! parameter source, REMP's authorization kinds and REMP's exact bodies. The routes themselves
//! are in `remp/account.rs` (a user's own session), `remp/users.rs` (server-to-server),
//! `remp/signin.rs` (autologin and ID tokens), `remp/addresses.rs` (addresses and change
//! requests), `remp/meta.rs` (user meta), `remp/groups.rs` (group memberships) and
//! `remp/email_validation.rs`; `remp/schema.rs` checks the JSON bodies some of them take.

mod account;
mod addresses;
mod email_validation;
mod groups;
mod meta;
pub(crate) mod schema;
mod signin;
mod users;

use super::{ApiError, App, json, params::Params};
use crate::domain::token::ClientInfo;
use crate::domain::user::User;
use crate::service::auth::UserAuthorization;
use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
    routing::any,
};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;

/// How a route authorizes its caller (REMP's authorization classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// `NoAuthorization`.
    Open,
    /// `BearerTokenAuthorization`: an API token whose whitelist names the route.
    ApiToken,
    /// `UserTokenAuthorization`: an access token or a device token.
    UserToken,
    /// `ServiceTokenAuthorization`: with a query `user_id`, an API token whose whitelist names
    /// the route acts for that user; otherwise (or when that fails) a user token.
    ServiceToken,
}

/// A known route: its whitelist name and how it is authorized.
#[derive(Debug, Clone, Copy)]
struct Route {
    name: &'static str,
    access: Access,
}

/// The metrics and log label of a request to `path` (`/api/v1/users/login`): the REMP route
/// it reaches as `v1 users/login`, `None` for an unknown one.
pub(crate) fn route_label(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/api/v")?;
    let (version, action) = rest.split_once('/')?;
    let version = version.parse::<u8>().ok().filter(|v| matches!(v, 1 | 2))?;
    resolve(version, action.trim_end_matches('/')).map(|route| format!("v{version} {}", route.name))
}

/// Resolve `(version, package/action)` to a route. v1 and v2 of a route share its name.
fn resolve(version: u8, path: &str) -> Option<Route> {
    use Access::*;
    let (name, access) = match (version, path) {
        (1, "user/info") => ("user/info", UserToken),
        (1, "users/login") => ("users/login", Open),
        (1, "users/logout") => ("users/logout", UserToken),
        (1 | 2, "users/email") => ("users/email", Open),
        (1, "users/email-check") => ("users/email-check", ApiToken),
        (1, "users/validate-email" | "user/validate-email") => ("users/validate-email", Open),
        (1, "users/create") => ("users/create", ApiToken),
        (1, "users/update") => ("users/update", ApiToken),
        (1, "users/list") => ("users/list", ApiToken),
        (1, "users/confirm") => ("users/confirm", ApiToken),
        (1, "users/touch") => ("users/touch", ApiToken),
        (1, "users/data") => ("users/data", Open),
        (1, "user/delete") => ("user/delete", UserToken),
        (1, "users/get-device-token") => ("users/get-device-token", Open),
        (1, "users/autologin-token-login") => ("users/autologin-token-login", Open),
        (1, "users/google-token-sign-in") => ("users/google-token-sign-in", Open),
        (1, "users/apple-token-sign-in") => ("users/apple-token-sign-in", Open),
        (1, "users/addresses") => ("users/addresses", ApiToken),
        (1, "users/address") => ("users/address", ApiToken),
        (1, "users/change-address-request") => ("users/change-address-request", ApiToken),
        (1, "user/addresses") => ("user/addresses", UserToken),
        (1, "user-meta/upsert") => ("user-meta/upsert", ApiToken),
        (1, "user-meta/list") => ("user-meta/list", ServiceToken),
        (1, "user-meta/key-users") => ("user-meta/key-users", ApiToken),
        (1, "user-meta/delete") => ("user-meta/delete", ApiToken),
        // REMP picks the action from the last path segment, so `add-to-group/` removes; we
        // trim the slash first and add (DESIGN.md section 6).
        (1, "users/add-to-group") => ("users/add-to-group", ApiToken),
        (1, "users/remove-from-group") => ("users/remove-from-group", ApiToken),
        (1 | 2, "users/set-email-validated") => ("users/set-email-validated", ApiToken),
        (1 | 2, "users/set-email-invalidated") => ("users/set-email-invalidated", ApiToken),
        _ => return None,
    };
    Some(Route { name, access })
}

/// Routes that read their body as one JSON document checked against a schema (REMP's
/// `JsonValidationTrait`); they answer a body they cannot read themselves, in REMP's shapes.
fn takes_json_document(version: u8, name: &str) -> bool {
    matches!(name, "user-meta/upsert" | "user-meta/key-users" | "user-meta/delete")
        || (version == 2 && matches!(name, "users/set-email-validated" | "users/set-email-invalidated"))
}

/// `/api/{version}/...`; resource routes under `/api/` are static paths, which the router
/// prefers over this pattern.
/// The one route template every REMP route is served under.
pub(crate) const ROUTE_TEMPLATE: &str = "/api/{version}/{*path}";

pub fn router() -> Router<App> {
    Router::new().route(ROUTE_TEMPLATE, any(handle))
}

/// The caller, once authorized.
#[derive(Debug)]
pub(crate) enum Caller {
    Anonymous,
    Api,
    User(UserAuthorization),
    /// An API token acting for this user (`ServiceTokenAuthorization` with `user_id`).
    OnBehalf(Box<User>),
}

/// Everything a route handler gets.
#[derive(Debug)]
pub(crate) struct Call {
    pub app: App,
    pub version: u8,
    pub route: &'static str,
    pub method: Method,
    pub headers: HeaderMap,
    pub params: Params,
    pub client: ClientInfo,
    pub caller: Caller,
}

impl Call {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn authorization(&self) -> Option<&str> {
        self.header(header::AUTHORIZATION.as_str())
    }

    /// The first authorized user of a user-token route.
    pub fn user(&self) -> Option<&User> {
        self.users().first()
    }

    /// Every authorized user: the token's user, the users of a device token's paired access
    /// tokens, or the user an API token acts for.
    pub fn users(&self) -> &[User] {
        match &self.caller {
            Caller::User(authz) => &authz.users,
            Caller::OnBehalf(user) => std::slice::from_ref(user.as_ref()),
            Caller::Anonymous | Caller::Api => &[],
        }
    }

    /// REMP's Runner check: `400 invalid_input` naming every missing or empty parameter, or
    /// `None` when all are there.
    pub fn missing_params(&self, names: &[&str]) -> Option<Response> {
        let missing = self.params.missing(names);
        if missing.is_empty() {
            return None;
        }
        let errors: Map<String, Value> =
            missing.into_iter().map(|n| (n.to_owned(), json!(["Field is required"]))).collect();
        Some(json(StatusCode::BAD_REQUEST, &json!({"status": "error", "code": "invalid_input", "errors": errors})))
    }
}

/// A REMP error body with `message` and `code`.
pub(crate) fn error(status: StatusCode, message: &str, code: &str) -> Response {
    json(status, &json!({"status": "error", "message": message, "code": code}))
}

/// REMP's authorization failure.
fn not_authorized(message: &str) -> Response {
    json(
        StatusCode::FORBIDDEN,
        &json!({"status": "error", "message": format!("Not authorized: {message}"), "error": "no_authorization"}),
    )
}

/// Where a request comes from: the socket peer, or REMP's header order when configured to
/// trust a proxy.
pub(crate) fn client_info(app: &App, peer: SocketAddr, headers: &HeaderMap) -> ClientInfo {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty());
    let forwarded = || header("client-ip").or_else(|| header("x-forwarded-for").filter(|v| *v != "127.0.0.1"));
    let ip = match app.settings.trust_forwarded_headers.then(forwarded).flatten() {
        Some(ip) => ip.chars().take(64).collect(),
        None => peer.ip().to_string(),
    };
    let user_agent = header("user-agent").unwrap_or_default().chars().take(1024).collect();
    ClientInfo { ip, user_agent }
}

async fn handle(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path((version, path)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if method == Method::OPTIONS {
        return json(StatusCode::OK, &json!({"options": "ok"}));
    }
    let version = match version.as_str() {
        "v1" => 1,
        "v2" => 2,
        _ => 0,
    };
    let Some(route) = resolve(version, path.trim_end_matches('/')) else {
        return json(
            StatusCode::NOT_FOUND,
            &json!({"status": "error", "code": "not_found", "message": "Unknown api endpoint"}),
        );
    };
    let body = match axum::body::to_bytes(body, app.settings.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("The request body is larger than {} bytes", app.settings.max_body_bytes),
                "payload_too_large",
            );
        }
    };
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let params = Params::parse(uri.query(), content_type, body).await;
    if let Some(problem) = &params.body_error
        && !takes_json_document(version, route.name)
    {
        return error(StatusCode::BAD_REQUEST, problem, "invalid_input");
    }
    let client = client_info(&app, peer, &headers);
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let services = &app.services;
    let caller = match route.access {
        Access::Open => Caller::Anonymous,
        Access::ApiToken => match services.authorize_api_token(authorization, route.name).await {
            Ok(Ok(_)) => Caller::Api,
            Ok(Err(denied)) => return not_authorized(&denied.0),
            Err(e) => return ApiError(e).into_response(),
        },
        Access::UserToken => match authorize_user(&app, authorization, &params, &client).await {
            Ok(caller) => caller,
            Err(refused) => return refused,
        },
        Access::ServiceToken => match on_behalf_of(&app, authorization, route.name, params.query("user_id")).await {
            Ok(Some(user)) => Caller::OnBehalf(Box::new(user)),
            Ok(None) => match authorize_user(&app, authorization, &params, &client).await {
                Ok(caller) => caller,
                Err(refused) => return refused,
            },
            Err(e) => return ApiError(e).into_response(),
        },
    };
    let call = Call { app, version, route: route.name, method, headers, params, client, caller };
    let result = match route.name {
        "user/info" => account::info(&call).await,
        "users/login" => account::login(&call).await,
        "users/logout" => account::logout(&call).await,
        "users/email" => account::email(&call).await,
        "users/validate-email" => account::validate_email(&call).await,
        "users/data" => account::data(&call).await,
        "user/delete" => account::delete(&call).await,
        "users/get-device-token" => account::device_token(&call).await,
        "users/email-check" => users::email_check(&call).await,
        "users/create" => users::create(&call).await,
        "users/update" => users::update(&call).await,
        "users/list" => users::list(&call).await,
        "users/confirm" => users::confirm(&call).await,
        "users/touch" => users::touch(&call).await,
        "users/autologin-token-login" => signin::autologin(&call).await,
        "users/google-token-sign-in" => signin::google(&call).await,
        "users/apple-token-sign-in" => signin::apple(&call).await,
        "users/addresses" => addresses::list_for_email(&call).await,
        "users/address" => addresses::create(&call).await,
        "users/change-address-request" => addresses::change_request(&call).await,
        "user/addresses" => addresses::list_own(&call).await,
        "user-meta/upsert" => meta::upsert(&call).await,
        "user-meta/list" => meta::list(&call).await,
        "user-meta/key-users" => meta::key_users(&call).await,
        "user-meta/delete" => meta::delete(&call).await,
        "users/add-to-group" => groups::membership(&call, true).await,
        "users/remove-from-group" => groups::membership(&call, false).await,
        "users/set-email-validated" => email_validation::set(&call, true).await,
        "users/set-email-invalidated" => email_validation::set(&call, false).await,
        other => Err(ApiError(crate::domain::Error::Internal(anyhow::anyhow!("route {other} has no handler")))),
    };
    result.unwrap_or_else(IntoResponse::into_response)
}

/// `UserTokenAuthorization`: an access token (which counts as the user's last access) or a
/// device token; REMP's 403 when neither.
async fn authorize_user(
    app: &App,
    authorization: Option<&str>,
    params: &Params,
    client: &ClientInfo,
) -> Result<Caller, Response> {
    let services = &app.services;
    match services.authorize_user_token(authorization).await {
        Ok(Ok(authz)) => {
            if authz.device.is_none() {
                for user in &authz.users {
                    services.events.publish(crate::domain::event::DomainEvent::UserLastAccess {
                        user_id: user.id,
                        source: params.query("source").map(|s| format!("api+{s}")),
                        user_agent: client.user_agent.clone(),
                    });
                }
            }
            Ok(Caller::User(authz))
        }
        Ok(Err(denied)) => Err(not_authorized(&denied.0)),
        Err(e) => Err(ApiError(e).into_response()),
    }
}

/// The first half of `ServiceTokenAuthorization`: the user named by the query `user_id` when
/// the bearer is an API token allowed on `route` and that user exists; `None` otherwise, and
/// the caller falls back to a user token.
async fn on_behalf_of(
    app: &App,
    authorization: Option<&str>,
    route: &str,
    user_id: Option<&str>,
) -> crate::domain::Result<Option<User>> {
    let Some(user_id) = user_id.and_then(|id| id.trim().parse::<u64>().ok()) else {
        return Ok(None);
    };
    let services = &app.services;
    if services.authorize_api_token(authorization, route).await?.is_err() {
        return Ok(None);
    }
    services.store.user(user_id).await
}

/// What handlers return: a finished response, or an error for the shared mapping.
pub(crate) type Handled = Result<Response, ApiError>;

/// `{"k": "v", ...}` of public meta; `{}` when there is none (REMP uses an object here).
pub(crate) fn meta_object(meta: Vec<(String, String)>) -> Value {
    Value::Object(meta.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

/// REMP's `user.roles` in login responses: the admin's role names, only when there are some.
pub(crate) fn add_login_roles(user: &mut Value, roles: Vec<String>) {
    if !roles.is_empty() {
        user["roles"] = json!(roles);
    }
}
