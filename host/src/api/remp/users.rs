//! REMP routes for servers holding an API token: registration, updates, listing, confirmation,
//! `users/email-check` and `users/touch`.

use super::{Call, Handled, error};
use crate::api::{ApiError, json, params::php_int};
use crate::domain::{Error, user::MAX_EMAIL_LEN};
use crate::service::accounts::{Registration, UserUpdate};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

/// `users/email-check`: taken or available, without password checks or rate limits.
pub(super) async fn email_check(call: &Call) -> Handled {
    if let Some(missing) = call.missing_params(&["email"]) {
        return Ok(missing);
    }
    let email = call.params.get("email").unwrap_or_default();
    if email.len() > MAX_EMAIL_LEN {
        return Ok(error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid email format", "invalid_email"));
    }
    let services = &call.app.services;
    let user = services.store.user_by_email(email).await?.filter(|u| !u.is_deleted());
    let taken = match &user {
        Some(u) => !services.is_unclaimed(u).await?,
        None => false,
    };
    let body = match (taken, user) {
        (true, Some(u)) => json!({"email": email, "status": "taken", "id": u.id}),
        _ => json!({"email": email, "status": "available"}),
    };
    Ok(json(StatusCode::OK, &body))
}

/// `users/create`: registration, unclaimed users and claiming them.
pub(super) async fn create(call: &Call) -> Handled {
    let p = &call.params;
    let invalid_email = || error(StatusCode::NOT_FOUND, "Invalid email", "invalid_email");
    let Some(email) = p.non_empty("email") else {
        return Ok(invalid_email());
    };
    let reg = Registration {
        email: email.to_owned(),
        password: p.get("password").map(str::to_owned),
        first_name: p.owned("first_name"),
        last_name: p.owned("last_name"),
        ext_id: p.int("ext_id"),
        source: p.owned("source"),
        referer: p.owned("referer"),
        note: p.owned("note"),
        send_email: p.flag("send_email").unwrap_or(true),
        check_email: !matches!(p.get("disable_email_validation"), Some("1" | "true")),
        device_token: p.owned("device_token"),
        unclaimed: p.flag("unclaimed").unwrap_or(false),
        newsletters_subscribe: p.flag("newsletters_subscribe").unwrap_or(false),
        locale: p.owned("locale"),
    };
    let registered = match call.app.services.register(reg, &call.client).await {
        Ok(r) => r,
        Err(Error::Invalid { code: "invalid_email", .. }) => return Ok(invalid_email()),
        Err(Error::Conflict { code: "email_taken", .. }) => {
            return Ok(error(StatusCode::NOT_FOUND, "Email is already taken", "email_taken"));
        }
        Err(Error::Invalid { code: code @ ("device_token_doesnt_exist" | "invalid_password"), message, .. }) => {
            return Ok(error(StatusCode::BAD_REQUEST, &message, code));
        }
        Err(e) => return Err(e.into()),
    };
    let u = &registered.user;
    let mut user = json!({
        "id": u.id,
        "uuid": u.uuid,
        "email": u.email,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "confirmed_at": call.app.date_json(u.confirmed_at),
    });
    if let Some(ext_id) = u.ext_id.filter(|v| *v != 0) {
        user["ext_id"] = json!(ext_id);
    }
    let mut body = json!({"status": "ok", "user": user});
    if let Some(token) = registered.access_token {
        body["access"] = json!({"token": token});
    }
    Ok(json(StatusCode::OK, &body))
}

/// `users/update`: email, password, ext_id and locale of an existing user.
pub(super) async fn update(call: &Call) -> Handled {
    if let Some(missing) = call.missing_params(&["user_id"]) {
        return Ok(missing);
    }
    let p = &call.params;
    let user_not_found = || error(StatusCode::NOT_FOUND, "User not found", "user_not_found");
    let Ok(user_id) = p.get("user_id").unwrap_or_default().trim().parse::<u64>() else {
        return Ok(user_not_found());
    };
    let change = UserUpdate {
        user_id,
        email: p.owned("email"),
        password: p.owned("password"),
        ext_id: p.int("ext_id"),
        locale: p.owned("locale"),
        check_email: !p.flag("disable_email_validation").unwrap_or(false),
    };
    let user = match call.app.services.update_user(change).await {
        Ok(u) => u,
        Err(Error::NotFound(_)) => return Ok(user_not_found()),
        Err(Error::Invalid { code: "invalid_email", .. }) => {
            return Ok(error(StatusCode::BAD_REQUEST, "Invalid email", "invalid_email"));
        }
        Err(Error::Invalid { code: "invalid_password", message, .. }) => {
            return Ok(error(StatusCode::BAD_REQUEST, &message, "invalid_password"));
        }
        Err(Error::Conflict { code: "email_taken", .. }) => {
            return Ok(error(StatusCode::CONFLICT, "Email is already taken", "email_taken"));
        }
        Err(e) => return Err(e.into()),
    };
    let mut body = json!({"id": user.id, "email": user.email, "confirmed_at": call.app.date_json(user.confirmed_at)});
    if let Some(ext_id) = user.ext_id.filter(|v| *v != 0) {
        body["ext_id"] = json!(ext_id);
    }
    Ok(json(StatusCode::OK, &json!({"status": "ok", "user": body})))
}

/// `users/list`: ids and emails, 1,000 a page.
pub(super) async fn list(call: &Call) -> Handled {
    if let Some(missing) = call.missing_params(&["user_ids", "page"]) {
        return Ok(missing);
    }
    let p = &call.params;
    for name in ["user_ids", "page"] {
        if p.get(name) == Some("0") {
            return Ok(json(
                StatusCode::BAD_REQUEST,
                &json!({"status": "error", "error": "missing_param", "message": format!("missing required parameter: {name}")}),
            ));
        }
    }
    let bad_ids =
        || json(StatusCode::BAD_REQUEST, &json!({"status": "error", "message": "user_ids should be valid JSON array"}));
    let Ok(Value::Array(raw_ids)) = serde_json::from_str::<Value>(p.get("user_ids").unwrap_or_default()) else {
        return Ok(bad_ids());
    };
    let mut ids = Vec::with_capacity(raw_ids.len());
    for v in &raw_ids {
        let id = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match id {
            Some(id) => ids.push(id),
            // An id that cannot exist matches nobody, as in SQL's `IN (...)`.
            None if v.is_number() || v.is_string() => {}
            None => return Ok(bad_ids()),
        }
    }
    let page = php_int(p.get("page").unwrap_or_default());
    if page < 1 {
        return Ok(json(
            StatusCode::BAD_REQUEST,
            &json!({"status": "error", "message": "page should be a positive integer"}),
        ));
    }
    let include_inactive = p.flag("include_deactivated").unwrap_or(false);
    let with_uuid = p.flag("with_uuid").unwrap_or(false);
    // REMP: an empty array applies no id filter and lists everybody.
    let filter = if raw_ids.is_empty() { None } else { Some(ids.as_slice()) };
    let result = call.app.services.list_users(filter, page as u64, include_inactive).await?;
    let body = ListBody {
        status: "ok",
        page,
        total_pages: result.total_pages,
        total_count: result.total_count,
        users: UsersById { users: &result.users, with_uuid },
    };
    // Serialized straight from the users: a page of 1,000 built as `serde_json::Value`s first
    // cost more than reading them from the store.
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError(Error::Internal(e.into())))?;
    Ok((StatusCode::OK, [(axum::http::header::CONTENT_TYPE, crate::api::JSON_CONTENT_TYPE)], bytes).into_response())
}

/// The `users/list` body.
#[derive(serde::Serialize)]
struct ListBody<'a> {
    status: &'static str,
    page: i64,
    #[serde(rename = "totalPages")]
    total_pages: u64,
    #[serde(rename = "totalCount")]
    total_count: u64,
    users: UsersById<'a>,
}

/// `{"<id>": {"id", "email"[, "uuid"]}, ...}` in id order, or `[]` when there are none (PHP's
/// empty array).
struct UsersById<'a> {
    users: &'a [crate::domain::user::User],
    with_uuid: bool,
}

impl serde::Serialize for UsersById<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            id: u64,
            email: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            uuid: Option<&'a str>,
        }
        if self.users.is_empty() {
            return serializer.collect_seq(std::iter::empty::<()>());
        }
        serializer.collect_map(self.users.iter().map(|u| {
            let uuid = self.with_uuid.then_some(u.uuid.as_str());
            (u.id, Entry { id: u.id, email: &u.email, uuid })
        }))
    }
}

/// `users/confirm`, idempotent under `Idempotency-Key`.
pub(super) async fn confirm(call: &Call) -> Handled {
    let services = &call.app.services;
    let key = call
        .headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty() && k.len() <= 255 && call.method != Method::GET)
        .map(str::to_owned);
    let ok = || json(StatusCode::OK, &json!({"status": "ok"}));
    if let Some(key) = &key
        && services.store.idempotency_key_seen(call.route, key).await?
    {
        return Ok(ok());
    }
    if let Some(missing) = call.missing_params(&["email"]) {
        return Ok(missing);
    }
    match services.confirm(call.params.get("email").unwrap_or_default()).await {
        Ok(_) => {}
        Err(Error::NotFound(_)) => {
            return Ok(json(StatusCode::NOT_FOUND, &json!({"status": "error", "code": "user_not_found"})));
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(key) = key {
        services.remember_idempotency_key(call.route, &key).await?;
    }
    Ok(ok())
}

/// `users/touch`: REMP refreshes its cache here; our user data is never stale, so this checks
/// the user exists and answers as REMP does.
pub(super) async fn touch(call: &Call) -> Handled {
    if let Some(missing) = call.missing_params(&["id"]) {
        return Ok(missing);
    }
    let raw = call.params.get("id").unwrap_or_default();
    let user = match raw.trim().parse::<u64>() {
        Ok(id) => call.app.services.store.user(id).await?.filter(|u| !u.is_deleted()),
        Err(_) => None,
    };
    if user.is_none() {
        return Ok(json(
            StatusCode::NOT_FOUND,
            &json!({"status": "error", "code": "user_not_found", "message": format!("User not found: {raw}")}),
        ));
    }
    Ok(json(StatusCode::OK, &json!({"status": "ok", "message": "User touched"})))
}
