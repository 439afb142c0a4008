//! REMP's address routes: `users/addresses` and `users/address` and
//! `users/change-address-request` for servers, `user/addresses` for the signed-in user.

use super::{Call, Caller, Handled};
use crate::api::{addresses::refusal_response, json, params::Params};
use crate::domain::address::{Address, AddressFields};
use crate::service::addresses::AddressRequest;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

/// `users/addresses`: a user's addresses by email, optionally of one type.
pub(super) async fn list_for_email(call: &Call) -> Handled {
    if let Some(missing) = call.missing_params(&["email"]) {
        return Ok(missing);
    }
    let email = call.params.get("email").unwrap_or_default();
    let services = &call.app.services;
    let Some(user) = services.store.user_by_email(email).await?.filter(|u| !u.is_deleted()) else {
        return Ok(json(
            StatusCode::BAD_REQUEST,
            &json!({"status": "error", "message": format!("user doesn't exist: {email}")}),
        ));
    };
    let addresses = services.addresses(user.id, call.params.non_empty("type")).await?;
    let list: Vec<Value> = addresses
        .iter()
        .map(|a| {
            let f = &a.fields;
            json!({
                "user_id": a.user_id,
                "type": a.kind,
                "created_at": call.app.date(a.created_at),
                "email": user.email,
                "company_name": f.company_name,
                "phone_number": f.phone_number,
                "company_id": f.company_id,
                "tax_id": f.company_tax_id,
                "vat_id": f.company_vat_id,
                "first_name": f.first_name,
                "last_name": f.last_name,
                "street": f.street,
                "number": f.number,
                "zip": f.zip,
                "city": f.city,
                "country": f.country().map(|c| c.name),
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &json!({"status": "ok", "addresses": list})))
}

/// The request's values; `tax`/`vat` name the company tax and VAT id parameters of the route.
fn request(p: &Params, street: Option<String>, tax: &str, vat: &str) -> AddressRequest {
    AddressRequest {
        email: p.get("email").unwrap_or_default().to_owned(),
        kind: p.get("type").unwrap_or_default().to_owned(),
        fields: AddressFields {
            first_name: p.owned("first_name"),
            last_name: p.owned("last_name"),
            company_name: p.owned("company_name"),
            street,
            number: p.owned("number"),
            zip: p.owned("zip"),
            city: p.owned("city"),
            country_id: None,
            phone_number: p.owned("phone_number"),
            company_id: p.owned("company_id"),
            company_tax_id: p.owned(tax),
            company_vat_id: p.owned(vat),
        },
        country_iso: p.owned("country_iso"),
        country_id: None,
    }
}

/// `users/address`: a new address, accepted at once. `address` is taken as an alias of
/// `street` (REMP's README names it so).
pub(super) async fn create(call: &Call) -> Handled {
    if let Some(missing) = call.missing_params(&["email", "type"]) {
        return Ok(missing);
    }
    let p = &call.params;
    let street = p.owned("street").or_else(|| p.owned("address"));
    match call.app.services.create_address(request(p, street, "tax_id", "vat_id")).await? {
        Ok(address) => Ok(json(StatusCode::OK, &json!({"status": "ok", "address": {"id": address.id}}))),
        Err(refusal) => Ok(refusal_response(&refusal)),
    }
}

/// `users/change-address-request`: a `new` request against the newest address of the type.
/// The answer's `address.id` is the request's id, as in REMP; when nothing differs from the
/// parent no request is made and the id is `null` (what REMP's PHP answers in production).
pub(super) async fn change_request(call: &Call) -> Handled {
    if let Some(missing) = call.missing_params(&["email", "type"]) {
        return Ok(missing);
    }
    let p = &call.params;
    let mut input = request(p, p.owned("street"), "company_tax_id", "company_vat_id");
    input.country_id = p.owned("country_id");
    match call.app.services.request_address_change(input).await? {
        Ok(created) => Ok(json(StatusCode::OK, &json!({"status": "ok", "address": {"id": created.map(|r| r.id)}}))),
        Err(refusal) => Ok(refusal_response(&refusal)),
    }
}

/// `Address::toArray()` with `address_string`: null values left out, as REMP's trait does.
fn address_json(a: &Address, address_string: String) -> Value {
    let f = &a.fields;
    let mut out = Map::new();
    out.insert("id".into(), json!(a.id));
    out.insert("type".into(), json!(a.kind));
    let text = [
        ("first_name", &f.first_name),
        ("last_name", &f.last_name),
        ("street", &f.street),
        ("number", &f.number),
        ("city", &f.city),
        ("zip", &f.zip),
    ];
    for (key, value) in text {
        if let Some(v) = value {
            out.insert(key.into(), json!(v));
        }
    }
    if let Some(c) = f.country() {
        out.insert("country".into(), json!({"id": c.id, "name": c.name, "iso_code": c.iso_code}));
    }
    let company = [
        ("phone_number", &f.phone_number),
        ("company_name", &f.company_name),
        ("company_id", &f.company_id),
        ("company_tax_id", &f.company_tax_id),
        ("company_vat_id", &f.company_vat_id),
    ];
    for (key, value) in company {
        if let Some(v) = value {
            out.insert(key.into(), json!(v));
        }
    }
    out.insert("is_default".into(), json!(a.is_default));
    out.insert("address_string".into(), json!(address_string));
    Value::Object(out)
}

/// `user/addresses`: the signed-in user's addresses, most recently updated first, keyed by id.
pub(super) async fn list_own(call: &Call) -> Handled {
    // REMP requires exactly one authorized user and fails with a 500 otherwise (a device token
    // without or with several users); we answer as `user/info` does when it has no user.
    let user = match &call.caller {
        Caller::User(authz) if authz.users.len() == 1 => &authz.users[0],
        _ => {
            return Ok(json(
                StatusCode::FORBIDDEN,
                &json!({"status": "error", "error": "no_authorization", "message": "Cannot authorize user"}),
            ));
        }
    };
    let services = &call.app.services;
    let mut addresses = services.addresses(user.id, call.params.non_empty("type")).await?;
    addresses.sort_by_key(|a| std::cmp::Reverse((a.updated_at, a.id)));
    if addresses.is_empty() {
        return Ok(json(StatusCode::OK, &json!({"status": "ok", "addresses": []})));
    }
    let strings = services.format_addresses(&addresses).await?;
    let keyed: Map<String, Value> =
        addresses.iter().zip(strings).map(|(a, text)| (a.id.to_string(), address_json(a, text))).collect();
    Ok(json(StatusCode::OK, &json!({"status": "ok", "addresses": keyed})))
}
