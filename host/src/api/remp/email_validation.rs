//! REMP's `users/set-email-validated` and `users/set-email-invalidated`: v1 takes one form
//! param `email` and answers per address; v2 takes `{"emails": [...]}` and always answers ok.
//! The action follows the route in both versions (REMP's v1 validates on both by mistake).

use super::schema::{Kind, Property, validate};
use super::{Call, Handled, error};
use crate::api::json;
use crate::domain::Error;
use crate::service::email_validation::is_valid_address;
use axum::{http::StatusCode, response::IntoResponse};
use serde_json::{Value, json};

/// Mark addresses validated (`validated`) or not.
pub(super) async fn set(call: &Call, validated: bool) -> Handled {
    if call.version == 2 {
        return bulk(call, validated).await;
    }
    if let Some(missing) = call.missing_params(&["email"]) {
        return Ok(missing);
    }
    let email = call.params.get("email").unwrap_or_default();
    if !is_valid_address(email) {
        return Ok(error(StatusCode::BAD_REQUEST, "Email is not valid", "invalid_param"));
    }
    match call.app.services.set_email_validated(email, validated).await {
        Ok(_) => {}
        Err(Error::NotFound(_)) => {
            return Ok(error(StatusCode::NOT_FOUND, "Email isn't assigned to any user", "email_not_found"));
        }
        Err(e) => return Err(e.into()),
    }
    let message = if validated { "Email has been validated" } else { "Email has been invalidated" };
    Ok(json(StatusCode::OK, &json!({"status": "ok", "message": message, "code": "success"})))
}

async fn bulk(call: &Call, validated: bool) -> Handled {
    let schema = [Property { name: "emails", kind: Kind::Strings, required: true }];
    let object = match validate(&call.params.raw_body, &schema) {
        Ok(o) => o,
        Err(refused) => return Ok(refused.into_response()),
    };
    let emails: Vec<String> = object
        .get("emails")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    call.app.services.set_emails_validated(&emails, validated).await?;
    Ok(json(StatusCode::OK, &json!({"status": "ok"})))
}
