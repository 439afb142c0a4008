//! REMP's other ways to sign in: autologin tokens and Google and Apple ID tokens.

use super::{Call, Handled, error, meta_object};
use crate::api::json;
use crate::domain::{Error, error::AuthReason};
use crate::service::auth::Credentials;
use crate::service::sso::{IdTokenSignIn, Provider, SsoError};
use axum::http::StatusCode;
use serde_json::json;

/// `users/autologin-token-login`.
pub(super) async fn autologin(call: &Call) -> Handled {
    if let Some(missing) = call.missing_params(&["autologin_token"]) {
        return Ok(missing);
    }
    let p = &call.params;
    let services = &call.app.services;
    let device = match p.non_empty("device_token") {
        Some(plain) => match services.find_device_token(plain).await? {
            Some(d) => Some(d),
            None => {
                return Ok(json(
                    StatusCode::NOT_FOUND,
                    &json!({"status": "error", "error": "invalid_device_token", "message": format!("device token doesn't exist: {plain}")}),
                ));
            }
        },
        None => None,
    };
    let source = match p.non_empty("source") {
        Some(s) if s != "api" => format!("api+{s}"),
        _ => "api".to_owned(),
    };
    let creds =
        Credentials { autologin_token: p.get("autologin_token").map(str::to_owned), source, ..Default::default() };
    let signed_in = match services.sign_in(&creds, &call.client).await {
        Ok(s) => s,
        Err(Error::Auth { reason: AuthReason::Denied, message }) => {
            return Ok(json(
                StatusCode::FORBIDDEN,
                &json!({"status": "error", "code": "sign_in_denied", "message": message}),
            ));
        }
        Err(Error::Auth { reason, message }) => {
            let status =
                if reason == AuthReason::NotApproved { StatusCode::FORBIDDEN } else { StatusCode::UNAUTHORIZED };
            let message = if message.is_empty() { "Invalid token".to_owned() } else { message };
            return Ok(json(status, &json!({"status": "error", "error": "auth_failed", "message": message})));
        }
        Err(e) => return Err(e.into()),
    };
    let Some(token) = signed_in.access_token else {
        return Ok(json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"status": "error", "error": "missing_access_token", "message": "Missing access token for user"}),
        ));
    };
    if let (Some(device), Some(access)) = (&device, services.find_access_token(&token).await?) {
        services.pair(&access, device).await?;
    }
    let u = &signed_in.user;
    let mut user = json!({
        "id": u.id,
        "uuid": u.uuid,
        "email": u.email,
        "confirmed_at": call.app.date_json(u.confirmed_at),
        "public_name": u.public_name,
        "first_name": u.first_name,
        "last_name": u.last_name,
    });
    // Autologin refuses admins, so this stays empty today; kept so both logins agree (REMP).
    super::add_login_roles(&mut user, services.login_role_names(u).await?);
    Ok(json(StatusCode::OK, &json!({"status": "ok", "user": user, "access": {"token": token}})))
}

/// `users/google-token-sign-in`.
pub(super) async fn google(call: &Call) -> Handled {
    id_token(call, Provider::Google).await
}

/// `users/apple-token-sign-in`.
pub(super) async fn apple(call: &Call) -> Handled {
    id_token(call, Provider::Apple).await
}

async fn id_token(call: &Call, provider: Provider) -> Handled {
    if let Some(missing) = call.missing_params(&["id_token"]) {
        return Ok(missing);
    }
    let p = &call.params;
    let services = &call.app.services;
    let create_access_token = p.flag("create_access_token").unwrap_or(false);
    let device = match p.non_empty("device_token") {
        Some(_) if !create_access_token => {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                "There is no access token to pair with device token. Set parameter \"create_access_token=true\" in your request payload.",
                "no_access_token_to_pair_device_token",
            ));
        }
        Some(plain) => match services.find_device_token(plain).await? {
            Some(d) => Some(d),
            None => return Ok(error(StatusCode::NOT_FOUND, "Device token doesn't exist", "device_token_doesnt_exist")),
        },
        None => None,
    };
    let mut id_token = p.get("id_token").unwrap_or_default().to_owned();
    if provider == Provider::Google
        && let Some(code) = p.non_empty("gsi_auth_code")
        && let Some(exchanged) = services.exchange_google_code(code, p.flag("is_web").unwrap_or(false)).await
    {
        id_token = exchanged;
    }
    let req = IdTokenSignIn {
        id_token,
        create_access_token,
        source: p.owned("source"),
        locale: p.owned("locale"),
        nonce: p.owned("nonce"),
    };
    let signed_in = match services.sign_in_with_id_token(provider, &req, &call.client).await {
        Ok(s) => s,
        Err(SsoError::Disabled(name)) => {
            return Ok(error(StatusCode::BAD_REQUEST, &format!("{name} sign-in is not configured"), "sso_disabled"));
        }
        Err(SsoError::Invalid(why)) => {
            tracing::info!(provider = provider.title(), reason = %why, "ID token refused");
            return Ok(error(StatusCode::BAD_REQUEST, "Unable to verify ID token", "error_verifying_id_token"));
        }
        Err(SsoError::KeysUnavailable(why)) => {
            tracing::warn!(provider = provider.title(), reason = %why, "JWKS unavailable");
            return Ok(error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("Cannot reach {}'s signing keys to verify the ID token; try again later", provider.title()),
                "sso_unavailable",
            ));
        }
        Err(SsoError::AdminLink) => {
            let message = format!(
                "Unable to log in using {} account, because it cannot be linked to the CRM accountwith admin rights - this is forbidden for security reasons. Please contact support.",
                provider.title()
            );
            return Ok(error(StatusCode::FORBIDDEN, &message, "error_linking_admin_account"));
        }
        Err(SsoError::Other(Error::Auth { reason: AuthReason::Denied, message })) => {
            return Ok(json(
                StatusCode::FORBIDDEN,
                &json!({"status": "error", "code": "sign_in_denied", "message": message}),
            ));
        }
        Err(SsoError::Other(e)) => return Err(e.into()),
    };
    if let (Some(device), Some(token)) = (&device, &signed_in.access_token)
        && let Some(access) = services.find_access_token(token).await?
    {
        services.pair(&access, device).await?;
    }
    let u = &signed_in.user;
    let mut body = json!({
        "status": "ok",
        "user": {
            "id": u.id,
            "uuid": u.uuid,
            "email": u.email,
            "created_at": call.app.date(u.created_at),
            "confirmed_at": call.app.date_json(u.confirmed_at),
        },
        "user_meta": meta_object(services.public_meta(u.id).await?),
    });
    if let Some(token) = signed_in.access_token {
        body["access"] = json!({"token": token});
    }
    Ok(json(StatusCode::OK, &body))
}
