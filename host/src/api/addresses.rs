//! `/api/address-types` and `/api/address-change-requests/{id}/{accept,reject}`: setting up
//! address types and deciding change requests, for servers holding an API token whose
//! whitelist names the route. Also the JSON shapes and refusal bodies the REMP address routes
//! share with these.

use super::{ApiError, App, authz::require_api_token, json};
use crate::domain::{
    Error,
    address::{AddressChangeRequest, AddressFields, AddressRefusal},
};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Map, Value, json};

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/address-types", get(list_types).post(create_type))
        .route("/api/address-change-requests/{id}/accept", post(accept))
        .route("/api/address-change-requests/{id}/reject", post(reject))
}

/// The answer to a refused address: REMP's bodies where REMP has one, ours otherwise.
pub(crate) fn refusal_response(refusal: &AddressRefusal) -> Response {
    let remp = |status: StatusCode, message: &str| json(status, &json!({"status": "error", "message": message}));
    match refusal {
        AddressRefusal::UserNotFound => remp(StatusCode::NOT_FOUND, "User not found"),
        AddressRefusal::TypeNotFound => remp(StatusCode::BAD_REQUEST, "Address type not found"),
        AddressRefusal::CountryNotFound => remp(StatusCode::BAD_REQUEST, "Country not found"),
        AddressRefusal::ParentNotFound => remp(StatusCode::NOT_FOUND, "Parent address not found"),
        AddressRefusal::Invalid(errors) => {
            let mut by_field: Map<String, Value> = Map::new();
            for e in errors {
                let entry = by_field.entry(e.field.clone()).or_insert_with(|| json!([]));
                if let Value::Array(messages) = entry {
                    messages.push(json!(e.message));
                }
            }
            json(
                StatusCode::BAD_REQUEST,
                &json!({"status": "error", "message": "Invalid address", "code": "invalid_address", "errors": by_field}),
            )
        }
        AddressRefusal::TypeUnavailable(kind) => json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({
                "status": "error",
                "message": format!("Addresses of type '{kind}' cannot be checked right now; try again later"),
                "code": "address_type_unavailable",
            }),
        ),
    }
}

/// The fields under REMP's column names, `prefix`ed (`old_`), nulls kept.
pub(crate) fn fields_json(out: &mut Map<String, Value>, prefix: &str, f: &AddressFields) {
    let country = f.country();
    let pairs: [(&str, Value); 13] = [
        ("first_name", json!(f.first_name)),
        ("last_name", json!(f.last_name)),
        ("company_name", json!(f.company_name)),
        ("street", json!(f.street)),
        ("number", json!(f.number)),
        ("zip", json!(f.zip)),
        ("city", json!(f.city)),
        ("country_id", json!(f.country_id)),
        ("country_iso", json!(country.map(|c| c.iso_code))),
        ("phone_number", json!(f.phone_number)),
        ("company_id", json!(f.company_id)),
        ("company_tax_id", json!(f.company_tax_id)),
        ("company_vat_id", json!(f.company_vat_id)),
    ];
    for (key, value) in pairs {
        out.insert(format!("{prefix}{key}"), value);
    }
}

/// A change request as the resource API shows it.
pub(crate) fn change_request_json(app: &App, r: &AddressChangeRequest) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(r.id));
    out.insert("type".into(), json!(r.kind));
    out.insert("user_id".into(), json!(r.user_id));
    out.insert("address_id".into(), json!(r.address_id));
    out.insert("status".into(), json!(r.status.as_str()));
    fields_json(&mut out, "", &r.fields);
    fields_json(&mut out, "old_", &r.old);
    out.insert("created_at".into(), json!(app.date(r.created_at)));
    out.insert("updated_at".into(), json!(app.date(r.updated_at)));
    Value::Object(out)
}

fn bad_input(message: impl Into<String>) -> Response {
    json(StatusCode::BAD_REQUEST, &json!({"status": "error", "code": "invalid_input", "message": message.into()}))
}

async fn list_types(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "address-types/list").await {
        return refused;
    }
    let types = match app.services.address_types().await {
        Ok(t) => t,
        Err(e) => return ApiError(e).into_response(),
    };
    let list: Vec<Value> = types
        .iter()
        .map(|t| {
            json!({
                "type": t.kind.key,
                "title": t.kind.title,
                "sorting": t.kind.sorting,
                "source": t.source.as_str(),
                "plugin": t.plugin.as_ref().map(|p| p.manifest().name.clone()),
            })
        })
        .collect();
    json(StatusCode::OK, &json!({"status": "ok", "address_types": list}))
}

/// `{"type": T, "title": TITLE, "sorting"?: N}`.
async fn create_type(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "address-types/create").await {
        return refused;
    }
    let doc: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return bad_input("The body must be a JSON object with \"type\" and \"title\""),
        Err(e) => return bad_input(format!("Malformed JSON body: {e}")),
    };
    let (Some(key), Some(title)) = (doc["type"].as_str(), doc["title"].as_str()) else {
        return bad_input("\"type\" and \"title\" are required strings");
    };
    let sorting = match &doc["sorting"] {
        Value::Null => None,
        v => match v.as_i64().and_then(|n| i32::try_from(n).ok()) {
            Some(n) => Some(n),
            None => return bad_input("\"sorting\" must be an integer"),
        },
    };
    match app.services.add_address_type(key, title, sorting).await {
        Ok(kind) => json(
            StatusCode::CREATED,
            &json!({"status": "ok", "address_type": {
                "type": kind.key, "title": kind.title, "sorting": kind.sorting, "source": "stored",
            }}),
        ),
        Err(e) => ApiError(e).into_response(),
    }
}

fn not_found() -> Response {
    json(
        StatusCode::NOT_FOUND,
        &json!({"status": "error", "code": "not_found", "message": "Address change request not found"}),
    )
}

async fn accept(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "address-change-requests/accept").await {
        return refused;
    }
    let Ok(id) = id.parse::<u64>() else {
        return not_found();
    };
    // Deciding a request here is an admin's act (REMP's admin form accepts as admin).
    match app.services.accept_address_change_request(id, true).await {
        Ok(Ok(request)) => {
            json(StatusCode::OK, &json!({"status": "ok", "change_request": change_request_json(&app, &request)}))
        }
        Ok(Err(refusal)) => refusal_response(&refusal),
        Err(Error::NotFound(_)) => not_found(),
        Err(e) => ApiError(e).into_response(),
    }
}

async fn reject(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "address-change-requests/reject").await {
        return refused;
    }
    let Ok(id) = id.parse::<u64>() else {
        return not_found();
    };
    match app.services.reject_address_change_request(id).await {
        Ok(request) => {
            json(StatusCode::OK, &json!({"status": "ok", "change_request": change_request_json(&app, &request)}))
        }
        Err(Error::NotFound(_)) => not_found(),
        Err(e) => ApiError(e).into_response(),
    }
}
