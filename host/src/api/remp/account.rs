//! REMP routes a user calls about their own account: sign-in and sign-out, `user/info`,
//! `users/email`, email validation, `users/data`, `user/delete` and device tokens.

use super::{Call, Handled, error, meta_object};
use crate::api::json;
use crate::domain::{Error, error::AuthReason, user::MAX_EMAIL_LEN};
use crate::service::auth::{Credentials, parse_bearer};
use axum::{http::StatusCode, response::IntoResponse};
use serde_json::{Value, json};

const IDENTITY_NOT_FOUND: &str =
    "Email you entered doesn't match our records. Please log in as you would on the website.";
const INVALID_CREDENTIAL: &str =
    "The password you entered doesn't match our records. Please log in as you would on the website.";

/// `user/info`: the authorized user and their public meta.
pub(super) async fn info(call: &Call) -> Handled {
    let Some(user) = call.user() else {
        return Ok(json(
            StatusCode::FORBIDDEN,
            &json!({"status": "error", "error": "no_authorization", "message": "Cannot authorize user"}),
        ));
    };
    let services = &call.app.services;
    let meta = services.public_meta(user.id).await?;
    let mut body = json!({
        "status": "ok",
        "user": {
            "id": user.id,
            "uuid": user.uuid,
            "email": user.email,
            "confirmed_at": call.app.date_json(user.confirmed_at),
            "first_name": user.first_name,
            "last_name": user.last_name,
        },
        "user_meta": meta_object(meta),
    });
    // The README's FooAuthenticator: the plugin that signed the user in adds its data.
    if let super::Caller::User(authz) = &call.caller {
        let method = authz.access_tokens.first().and_then(|t| t.method.as_deref());
        if let Some((name, extras)) = services.user_info_extras(method, user).await {
            body["source"] = json!(name);
            body[name.as_str()] = extras;
        }
    }
    Ok(json(StatusCode::OK, &body))
}

/// `users/login`: the authenticator chain, then a new access token.
pub(super) async fn login(call: &Call) -> Handled {
    let p = &call.params;
    let Some(email) = p.get("email") else {
        return Ok(json(
            StatusCode::BAD_REQUEST,
            &json!({"status": "error", "error": "no_email", "message": "No valid email", "code": "invalid_email"}),
        ));
    };
    let Some(password) = p.get("password") else {
        return Ok(json(
            StatusCode::BAD_REQUEST,
            &json!({"status": "error", "error": "no_password", "message": "No valid password", "code": "invalid_password"}),
        ));
    };
    let services = &call.app.services;
    let device = match p.non_empty("device_token") {
        Some(plain) => match services.find_device_token(plain).await? {
            Some(d) => Some(d),
            None => return Ok(device_token_missing(StatusCode::NOT_FOUND)),
        },
        None => None,
    };
    let source = match p.non_empty("source") {
        Some(s) if s != "api" => format!("api+{s}"),
        _ => "api".to_owned(),
    };
    let creds = Credentials {
        username: Some(email.to_owned()),
        password: Some(password.to_owned()),
        autologin_token: None,
        source,
        extra: p
            .iter()
            .filter(|(k, _)| !matches!(*k, "email" | "password" | "source" | "device_token"))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
    };
    let signed_in = match services.sign_in(&creds, &call.client).await {
        Ok(s) => s,
        Err(Error::Auth { reason, message }) => return Ok(auth_failed(reason, &message)),
        Err(e) => return Err(e.into()),
    };
    if let (Some(device), Some(plain)) = (&device, &signed_in.access_token)
        && let Some(access) = services.find_access_token(plain).await?
    {
        services.pair(&access, device).await?;
    }
    let user = &signed_in.user;
    let user_json = json!({
        "id": user.id,
        "uuid": user.uuid,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "confirmed_at": call.app.date_json(user.confirmed_at),
    });
    let mut user_json = user_json;
    super::add_login_roles(&mut user_json, services.login_role_names(user).await?);
    let mut body = json!({
        "status": "ok",
        "user": user_json,
        "user_meta": meta_object(services.public_meta(user.id).await?),
    });
    if let Some(token) = signed_in.access_token {
        body["access"] = json!({"token": token});
    }
    Ok(json(StatusCode::OK, &body))
}

/// REMP's sign-in failure body (`UsersLoginHandler`).
fn auth_failed(reason: AuthReason, message: &str) -> axum::response::Response {
    let (status, message) = match reason {
        AuthReason::IdentityNotFound | AuthReason::NotApproved => (StatusCode::BAD_REQUEST, IDENTITY_NOT_FOUND),
        AuthReason::InvalidCredential => (StatusCode::BAD_REQUEST, INVALID_CREDENTIAL),
        AuthReason::Denied => (StatusCode::FORBIDDEN, message),
        AuthReason::Failure | AuthReason::RateLimited => (StatusCode::BAD_REQUEST, message),
    };
    let mut body = json!({"status": "error", "error": "auth_failed", "message": message, "code": reason.code()});
    if reason == AuthReason::Denied {
        body = json!({"status": "error", "code": "sign_in_denied", "message": message});
    }
    json(status, &body)
}

fn device_token_missing(status: StatusCode) -> axum::response::Response {
    error(status, "Device token doesn't exist", "device_token_doesnt_exist")
}

/// `users/logout`: removes the access token, or every access token paired with the device.
pub(super) async fn logout(call: &Call) -> Handled {
    if let super::Caller::User(authz) = &call.caller {
        call.app.services.logout(authz).await?;
    }
    Ok(json(StatusCode::OK, &json!({"status": "ok"})))
}

/// `users/email` (v1 and v2): is the email taken, and does the password match.
pub(super) async fn email(call: &Call) -> Handled {
    let v1 = call.version == 1;
    let p = &call.params;
    if !v1 && let Some(missing) = call.missing_params(&["email"]) {
        return Ok(missing);
    }
    let Some(email) = p.non_empty("email") else {
        return Ok(json(
            StatusCode::OK,
            &json!({"status": "error", "message": "No valid email", "code": "email_missing"}),
        ));
    };
    let invalid_format = || {
        let status = if v1 { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
        error(status, "Invalid email format", "invalid_email")
    };
    // REMP checks the length before anything else and answers 422 on both versions
    // (commit 552009e); only the later format check differs between them.
    if email.len() > MAX_EMAIL_LEN {
        return Ok(error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid email format", "invalid_email"));
    }
    let services = &call.app.services;
    let user = services.store.user_by_email(email).await?.filter(|u| !u.is_deleted());
    let password = p.get("password");
    let outcome = services.check_password(email, password.unwrap_or_default(), "web", &call.client).await;
    let id = user.as_ref().map(|u| json!(u.id)).unwrap_or(Value::Null);
    let body = |id: Value, status: &str, password: Value| json!({"email": email, "id": id, "status": status, "password": password});
    let (status, result) = match outcome {
        Ok(_) => (StatusCode::OK, body(id, "taken", json!(true))),
        Err(Error::Auth { reason: AuthReason::IdentityNotFound, .. }) => {
            if !services.email_is_valid(email).await? {
                return Ok(invalid_format());
            }
            (StatusCode::OK, body(id, "available", Value::Null))
        }
        Err(Error::Auth { reason: AuthReason::InvalidCredential, .. }) => {
            let wrong = if password.is_some() { json!(false) } else { Value::Null };
            let status = if !v1 && password.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
            (status, body(id, "taken", wrong))
        }
        Err(Error::Auth { reason: AuthReason::NotApproved, .. }) => {
            (StatusCode::OK, body(Value::Null, "available", Value::Null))
        }
        Err(Error::Auth { reason: AuthReason::RateLimited, .. }) => {
            let status = if v1 { StatusCode::OK } else { StatusCode::TOO_MANY_REQUESTS };
            return Ok(error(status, "Rate limit exceeded", "rate_limit_exceeded"));
        }
        Err(Error::Auth { .. }) => (StatusCode::OK, body(id, "taken", Value::Null)),
        Err(e) => return Err(e.into()),
    };
    Ok(json(status, &result))
}

/// `users/validate-email` (also at REMP README's `user/validate-email`).
pub(super) async fn validate_email(call: &Call) -> Handled {
    if let Some(missing) = call.missing_params(&["email"]) {
        return Ok(missing);
    }
    let email = call.params.get("email").unwrap_or_default();
    if !call.app.services.email_is_valid(email).await? {
        return Ok(error(StatusCode::BAD_REQUEST, &format!("Email '{email}' is not valid"), "invalid_email"));
    }
    Ok(json(StatusCode::OK, &json!({"status": "success"})))
}

/// `users/data`: REMP's cached user data, built fresh from the store.
pub(super) async fn data(call: &Call) -> Handled {
    let token = match parse_bearer(call.authorization()) {
        Ok(t) => t,
        Err(e) => {
            return Ok(json(StatusCode::BAD_REQUEST, &json!({"status": "error", "message": e.0})));
        }
    };
    let services = &call.app.services;
    let not_found = || json(StatusCode::NOT_FOUND, &json!({"status": "error", "message": "Token not found"}));
    let Some(access) = services.find_access_token(token).await? else {
        return Ok(not_found());
    };
    let user = services.store.user(access.user_id).await?;
    let basic = match &user {
        Some(u) if u.active && !u.is_deleted() => json!({
            "id": u.id,
            "email": u.email,
            "created_at": u.created_at.timestamp(),
            "confirmed_at": u.confirmed_at.map(|t| t.timestamp()),
            "hashed_id": services.hashed_id(u.id).await?,
            "locale": u.locale,
            "uuid": u.uuid,
        }),
        _ => json!([]),
    };
    let user_meta: Vec<Value> = match &user {
        Some(u) => services.public_meta(u.id).await?.into_iter().map(|(k, v)| json!({ k: v })).collect(),
        None => vec![],
    };
    Ok(json(StatusCode::OK, &json!({"basic": basic, "user_meta": user_meta, "user_stats": []})))
}

/// `user/delete`: anonymizes the authorized user.
pub(super) async fn delete(call: &Call) -> Handled {
    let Some(user) = call.user() else {
        return Ok(json(
            StatusCode::FORBIDDEN,
            &json!({"status": "error", "error": "no_authorization", "message": "Cannot authorize user"}),
        ));
    };
    call.app.services.delete_user(user).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `users/get-device-token`: always a new device token, paired with the access token if given.
pub(super) async fn device_token(call: &Call) -> Handled {
    if let Some(missing) = call.missing_params(&["device_id"]) {
        return Ok(missing);
    }
    let p = &call.params;
    let services = &call.app.services;
    let access = match p.non_empty("access_token") {
        Some(plain) => match services.find_access_token(plain).await? {
            Some(a) => Some(a),
            None => {
                return Ok(json(
                    StatusCode::BAD_REQUEST,
                    &json!({"status": "error", "message": "Access token not valid"}),
                ));
            }
        },
        None => None,
    };
    let device_id: String = p.get("device_id").unwrap_or_default().chars().take(255).collect();
    let token = services.new_device_token(&device_id, access.as_ref()).await?;
    Ok(json(StatusCode::OK, &json!({"device_token": token})))
}
