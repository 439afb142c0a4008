//! REMP's `users/add-to-group` and `users/remove-from-group` (`UserGroupApiHandler`): form
//! params `email` and `group_id`, REMP's 404 bodies (without `code`), idempotent both ways.

use super::{Call, Handled};
use crate::api::json;
use axum::{http::StatusCode, response::Response};
use serde_json::json;

fn not_found(message: &str) -> Response {
    json(StatusCode::NOT_FOUND, &json!({"status": "error", "message": message}))
}

/// Add the user to the group (`member`), or remove them from it.
pub(super) async fn membership(call: &Call, member: bool) -> Handled {
    if let Some(missing) = call.missing_params(&["email", "group_id"]) {
        return Ok(missing);
    }
    let p = &call.params;
    let services = &call.app.services;
    let Some(user) = services.store.user_by_email(p.get("email").unwrap_or_default()).await? else {
        return Ok(not_found("User doesn't exists"));
    };
    let group = match p.get("group_id").unwrap_or_default().trim().parse::<u64>() {
        Ok(id) => services.store.group(id).await?,
        Err(_) => None,
    };
    let Some(group) = group else {
        return Ok(not_found("Group doesn't exists"));
    };
    services.set_group_membership(user.id, group.id, member).await?;
    Ok(json(StatusCode::OK, &json!({"status": "ok"})))
}
