//! REMP's user-meta routes: `user-meta/upsert`, `user-meta/delete` and `user-meta/key-users`
//! (API token, JSON documents checked by `schema`), and `user-meta/list` (a user token, or an
//! API token acting for `user_id`), with REMP's exact bodies.

use super::schema::{Kind, Property, validate};
use super::{Call, Handled};
use crate::api::json;
use crate::domain::{
    Error,
    meta::{MAX_META_KEY_LEN, MAX_META_VALUE_LEN, is_truthy},
};
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Number, Value, json};

const USER_ID: Property = Property { name: "user_id", kind: Kind::Integer, required: true };
const KEY: Property = Property { name: "key", kind: Kind::String(MAX_META_KEY_LEN), required: true };

fn user_not_found(id: &Number) -> Response {
    json(StatusCode::NOT_FOUND, &json!({"status": "error", "message": format!("User not found: {id}")}))
}

fn text<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str)
}

/// The validated `user_id`, and the id it names when one can exist.
fn user_id(object: &Map<String, Value>) -> (Number, Option<u64>) {
    let number = object.get("user_id").and_then(|v| v.as_number()).cloned().unwrap_or_else(|| Number::from(0));
    let id = number.as_u64();
    (number, id)
}

/// `user-meta/upsert`: set one key of a user; `is_public` defaults to false and is overwritten
/// on update, as in REMP.
pub(super) async fn upsert(call: &Call) -> Handled {
    let schema = [
        USER_ID,
        KEY,
        Property { name: "value", kind: Kind::String(MAX_META_VALUE_LEN), required: true },
        Property { name: "is_public", kind: Kind::Boolean, required: false },
    ];
    let object = match validate(&call.params.raw_body, &schema) {
        Ok(o) => o,
        Err(refused) => return Ok(refused.into_response()),
    };
    let (number, id) = user_id(&object);
    let (key, value) = (text(&object, "key").unwrap_or_default(), text(&object, "value").unwrap_or_default());
    let is_public = object.get("is_public").and_then(Value::as_bool).unwrap_or(false);
    let Some(id) = id else {
        return Ok(user_not_found(&number));
    };
    match call.app.services.upsert_meta(id, key, value, is_public).await {
        Ok(()) => Ok(json(StatusCode::OK, &json!({"key": key, "value": value, "is_public": is_public}))),
        Err(Error::NotFound(_)) => Ok(user_not_found(&number)),
        Err(e) => Err(e.into()),
    }
}

/// `user-meta/delete`: remove one key of a user, only when it holds `value` if given; 204.
pub(super) async fn delete(call: &Call) -> Handled {
    let schema = [USER_ID, KEY, Property { name: "value", kind: Kind::String(MAX_META_VALUE_LEN), required: false }];
    let object = match validate(&call.params.raw_body, &schema) {
        Ok(o) => o,
        Err(refused) => return Ok(refused.into_response()),
    };
    let (number, id) = user_id(&object);
    let services = &call.app.services;
    let user = match id {
        Some(id) => services.store.user(id).await?,
        None => None,
    };
    let Some(user) = user else {
        return Ok(user_not_found(&number));
    };
    services.delete_meta(user.id, text(&object, "key").unwrap_or_default(), text(&object, "value")).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `user-meta/key-users`: every user holding `key` (public or not), and `value` when it is
/// truthy in PHP's sense (REMP ignores `""` and `"0"`).
pub(super) async fn key_users(call: &Call) -> Handled {
    let schema = [KEY, Property { name: "value", kind: Kind::String(MAX_META_VALUE_LEN), required: false }];
    let object = match validate(&call.params.raw_body, &schema) {
        Ok(o) => o,
        Err(refused) => return Ok(refused.into_response()),
    };
    let key = text(&object, "key").unwrap_or_default();
    let value = text(&object, "value").filter(|v| is_truthy(v));
    let users = call.app.services.users_with_meta(key, value).await?;
    let body: Vec<Value> =
        users.into_iter().map(|(user_id, value)| json!({"user_id": user_id, "value": value})).collect();
    Ok(json(StatusCode::OK, &Value::Array(body)))
}

/// `user-meta/list`: the public meta of the authorized user(s), optionally one `key`, newest
/// first.
pub(super) async fn list(call: &Call) -> Handled {
    let ids: Vec<u64> = call.users().iter().map(|u| u.id).collect();
    let entries = call.app.services.public_meta_entries(&ids, call.params.non_empty("key")).await?;
    let body: Vec<Value> =
        entries.into_iter().map(|m| json!({"user_id": m.user_id, "key": m.key, "value": m.value})).collect();
    Ok(json(StatusCode::OK, &Value::Array(body)))
}
