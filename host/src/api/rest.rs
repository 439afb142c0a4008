//! What the resource API's handlers share: its error bodies (`{"status": "error", "code",
//! "message"}`, with 400 for a request that cannot be read and 422 for one that reads but is
//! not acceptable), JSON body and query parsing, and the user's JSON shape.

use super::{ApiError, App, json};
use crate::domain::{Error, user::User};
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// An error response of the resource API.
pub fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json(status, &json!({"status": "error", "code": code, "message": message.into()}))
}

/// 400 `invalid_input`: the request cannot be read.
pub fn bad_request(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_input", message)
}

/// An `invalid_input` error: the request cannot be read (400).
pub fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid { code: "invalid_input", field: None, message: message.into() }
}

/// The resource API's mapping of the crate error.
pub fn from_error(e: Error) -> Response {
    match e {
        Error::NotFound(m) => error(StatusCode::NOT_FOUND, "not_found", m),
        Error::Conflict { code, message } => error(StatusCode::CONFLICT, code, message),
        Error::Invalid { code: "invalid_input", message, .. } => bad_request(message),
        Error::Invalid { code, message, .. } => error(StatusCode::UNPROCESSABLE_ENTITY, code, message),
        Error::Auth { message, .. } => error(StatusCode::UNAUTHORIZED, "unauthorized", message),
        other => ApiError(other).into_response(),
    }
}

/// Query parameters by name; the last occurrence wins.
pub fn query(raw: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect()
}

/// A JSON object body.
pub fn object(body: &[u8]) -> Result<Map<String, Value>, Error> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid("the body must be a JSON object")),
    }
}

/// Refuse keys outside `allowed`, so a typo is not silently ignored.
pub fn only_keys(body: &Map<String, Value>, allowed: &[&str]) -> Result<(), Error> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(format!("unknown field '{k}'; fields: {}", allowed.join(", ")))),
        None => Ok(()),
    }
}

/// An optional string field; `Err` when present with another type.
pub fn string(body: &Map<String, Value>, field: &str) -> Result<Option<String>, Error> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{field} must be a string"))),
    }
}

/// A nullable string field: absent `None`, `null` `Some(None)`.
pub fn nullable_string(body: &Map<String, Value>, field: &str) -> Result<Option<Option<String>>, Error> {
    match body.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(invalid(format!("{field} must be a string or null"))),
    }
}

/// An optional boolean field.
pub fn boolean(body: &Map<String, Value>, field: &str) -> Result<Option<bool>, Error> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(invalid(format!("{field} must be true or false"))),
    }
}

/// A user id from the path.
pub fn user_id(raw: &str) -> Result<u64, Error> {
    raw.parse::<u64>().ok().filter(|id| *id > 0).ok_or_else(|| invalid("the user id is a positive integer"))
}

/// Every field of the user JSON shape, in order; `select` picks among these.
pub const USER_FIELDS: &[&str] = &[
    "id",
    "uuid",
    "email",
    "first_name",
    "last_name",
    "public_name",
    "role",
    "active",
    "confirmed_at",
    "email_validated_at",
    "created_at",
    "modified_at",
    "locale",
    "timezone",
    "source",
    "ext_id",
    "note",
    "groups",
];

/// `select=first_name;id` (or a comma list): the chosen fields, each checked.
pub fn selection(spec: Option<&str>) -> Result<Option<Vec<String>>, Error> {
    let Some(spec) = spec.filter(|s| !s.trim().is_empty()) else {
        return Ok(None);
    };
    let mut fields = Vec::new();
    for f in spec.split([';', ',']).map(str::trim).filter(|f| !f.is_empty()) {
        if !USER_FIELDS.contains(&f) {
            return Err(invalid(format!("unknown field '{f}' in select; fields: {}", USER_FIELDS.join(", "))));
        }
        fields.push(f.to_owned());
    }
    Ok(Some(fields))
}

/// The user's JSON shape (never the password hash), limited to `select` when given.
pub async fn user_json(app: &App, user: &User, select: Option<&[String]>) -> Result<Value, Error> {
    let store = &app.services.store;
    let wants = |f: &str| select.is_none_or(|s| s.iter().any(|x| x == f));
    let groups = if wants("groups") { store.groups_of_user(user.id).await? } else { Vec::new() };
    let timezone = if wants("timezone") {
        store.meta_entry(user.id, crate::service::user_admin::TIMEZONE_META).await?.map(|m| m.value)
    } else {
        None
    };
    let full = json!({
        "id": user.id,
        "uuid": user.uuid,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "public_name": user.public_name,
        "role": user.role,
        "active": user.active,
        "confirmed_at": app.date_json(user.confirmed_at),
        "email_validated_at": app.date_json(user.email_validated_at),
        "created_at": app.date(user.created_at),
        "modified_at": app.date(user.modified_at),
        "locale": user.locale,
        "timezone": timezone,
        "source": user.source,
        "ext_id": user.ext_id,
        "note": user.note,
        "groups": groups,
    });
    Ok(match (select, full) {
        (Some(select), Value::Object(mut map)) => {
            Value::Object(select.iter().filter_map(|f| map.remove_entry(f.as_str())).collect())
        }
        (_, full) => full,
    })
}
