//! The current user: `GET /api/me`, `PUT /api/profile`, `PUT /api/profile/password`. These
//! take a user token (an access token, or a device token standing for its paired access
//! tokens, as REMP's `UserTokenAuthorization`), not an API token.

use super::{
    App, json,
    rest::{self, error, from_error, user_json},
    users::user_fields,
};
use crate::domain::{Error, error::AuthReason};
use crate::service::{auth::UserAuthorization, user_admin::OwnPasswordChange};
use axum::{
    Router,
    body::Bytes,
    extract::{ConnectInfo, State},
    http::{HeaderMap, StatusCode, header},
    response::Response,
    routing::{get, put},
};
use serde_json::json;
use std::net::SocketAddr;

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/me", get(me))
        .route("/api/profile", put(profile))
        .route("/api/profile/password", put(password))
}

/// What a user may change about themselves.
const PROFILE_FIELDS: &[&str] = &["email", "first_name", "last_name", "public_name", "locale", "timezone"];

/// The user behind the token; 401 when there is none.
async fn current(app: &App, headers: &HeaderMap) -> Result<(crate::domain::user::User, UserAuthorization), Error> {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    match app.services.authorize_user_token(authorization).await {
        Ok(Ok(authz)) => match authz.users.iter().find(|u| !u.is_deleted() && u.active).cloned() {
            Some(user) => Ok((user, authz)),
            None => Err(Error::auth(AuthReason::Failure, "The token stands for no active user")),
        },
        Ok(Err(denied)) => Err(Error::auth(AuthReason::Failure, denied.0)),
        Err(e) => Err(e),
    }
}

async fn me(State(app): State<App>, headers: HeaderMap) -> Response {
    let (user, _) = match current(&app, &headers).await {
        Ok(c) => c,
        Err(e) => return from_error(e),
    };
    match user_json(&app, &user, None).await {
        Ok(body) => json(StatusCode::OK, &body),
        Err(e) => from_error(e),
    }
}

async fn profile(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (user, _) = match current(&app, &headers).await {
        Ok(c) => c,
        Err(e) => return from_error(e),
    };
    let fields = match rest::object(&body).and_then(|b| user_fields(&b, PROFILE_FIELDS)) {
        Ok(f) => f,
        Err(e) => return from_error(e),
    };
    match app.services.patch_user(user.id, fields).await {
        Ok(user) => match user_json(&app, &user, None).await {
            Ok(body) => json(StatusCode::OK, &body),
            Err(e) => from_error(e),
        },
        Err(e) => from_error(e),
    }
}

async fn password(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (user, authz) = match current(&app, &headers).await {
        Ok(c) => c,
        Err(e) => return from_error(e),
    };
    let parsed = rest::object(&body).and_then(|b| {
        rest::only_keys(&b, &["old_password", "password", "password_confirmation", "revoke_other_tokens"])?;
        let required = |field: &str| {
            rest::string(&b, field)?
                .ok_or_else(|| Error::invalid("missing_field", field, format!("{field} is required")))
        };
        Ok(OwnPasswordChange {
            old_password: required("old_password")?,
            password: required("password")?,
            password_confirmation: required("password_confirmation")?,
            revoke_other_tokens: rest::boolean(&b, "revoke_other_tokens")?.unwrap_or(false),
        })
    });
    let change = match parsed {
        Ok(c) => c,
        Err(e) => return from_error(e),
    };
    let keep: Vec<_> = authz.access_tokens.iter().filter(|t| t.user_id == user.id).map(|t| t.digest).collect();
    let client = super::remp::client_info(&app, peer, &headers);
    match app.services.change_own_password(&user, change, &keep, &client).await {
        Ok(()) => json(StatusCode::OK, &json!({"status": "ok"})),
        Err(Error::RateLimited(m)) => error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", m),
        Err(e) => from_error(e),
    }
}
