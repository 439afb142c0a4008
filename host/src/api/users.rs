//! `/api/users`: the users resource. List with paging (offset and keyset), ordering, field
//! selection, search and filters; get by id, email or login; create; `PUT` create-or-replace;
//! `PATCH`; delete (anonymization); quick search; password administration. Every route needs
//! an API token whose whitelist names it (`users/index`, `users/show`, ...).

use super::{
    App, json,
    plugins::require_api_token,
    rest::{self, from_error, user_json},
};
use crate::domain::{
    Error,
    user::{Role, User},
};
use crate::service::directory::{
    DEFAULT_PER_PAGE, DEFAULT_TAKE, DirectoryQuery, MAX_PER_PAGE, MAX_TAKE, Order, Search, UserFilter,
};
use crate::service::user_admin::{Put, SetPassword, UserFields};
use axum::{
    Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::Response,
    routing::{get, put},
};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub fn router() -> Router<App> {
    Router::new()
        .route("/api/users", get(index).post(store))
        .route("/api/users/search", get(search))
        .route("/api/users/by-email/{email}", get(by_email))
        .route("/api/users/by-login/{login}", get(by_email))
        .route("/api/users/{id}", get(show).put(replace).patch(patch).delete(destroy))
        .route("/api/users/{id}/password", put(set_password))
}

/// The fields a user body may carry. `roles` (role ids) is applied after the user is written,
/// once every role is known to exist.
const BODY_FIELDS: &[&str] = &[
    "email",
    "password",
    "password_confirmation",
    "first_name",
    "last_name",
    "public_name",
    "locale",
    "timezone",
    "note",
    "ext_id",
    "active",
    "role",
    "source",
    "roles",
];

/// Read a user body into fields, keeping only `allowed` keys.
pub(super) fn user_fields(body: &Map<String, Value>, allowed: &[&str]) -> Result<UserFields, Error> {
    rest::only_keys(body, allowed)?;
    let ext_id = match body.get("ext_id") {
        None => None,
        Some(Value::Null) => Some(None),
        Some(v) => match v.as_i64() {
            Some(n) => Some(Some(n)),
            None => return Err(rest::invalid("ext_id must be an integer or null")),
        },
    };
    let role = match rest::string(body, "role")?.as_deref() {
        None => None,
        Some("user") => Some(Role::User),
        Some("admin") => Some(Role::Admin),
        Some(_) => return Err(rest::invalid("role is user or admin")),
    };
    Ok(UserFields {
        email: rest::string(body, "email")?.map(|e| e.trim().to_owned()),
        password: rest::string(body, "password")?,
        password_confirmation: rest::string(body, "password_confirmation")?,
        first_name: rest::nullable_string(body, "first_name")?,
        last_name: rest::nullable_string(body, "last_name")?,
        public_name: rest::string(body, "public_name")?,
        locale: rest::string(body, "locale")?,
        timezone: rest::nullable_string(body, "timezone")?,
        note: rest::nullable_string(body, "note")?,
        ext_id,
        active: rest::boolean(body, "active")?,
        role,
        source: rest::string(body, "source")?,
    })
}

fn bool_param(q: &HashMap<String, String>, name: &str) -> Result<Option<bool>, Error> {
    match q.get(name).map(|v| v.to_ascii_lowercase()).as_deref() {
        None | Some("") => Ok(None),
        Some("1" | "true") => Ok(Some(true)),
        Some("0" | "false") => Ok(Some(false)),
        Some(_) => Err(rest::invalid(format!("{name} is true or false"))),
    }
}

fn int_param(q: &HashMap<String, String>, name: &str) -> Result<Option<u64>, Error> {
    match q.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| rest::invalid(format!("{name} must be a non-negative integer"))),
    }
}

fn date_param(q: &HashMap<String, String>, name: &str) -> Result<Option<crate::domain::Timestamp>, Error> {
    match q.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => chrono::DateTime::parse_from_rfc3339(v)
            .map(|d| Some(d.with_timezone(&chrono::Utc)))
            .map_err(|_| rest::invalid(format!("{name} must be an RFC 3339 date such as 2026-01-31T12:00:00Z"))),
    }
}

fn order_param(q: &HashMap<String, String>) -> Result<Order, Error> {
    match q.get("order").filter(|v| !v.is_empty()) {
        None => Ok(Order::default()),
        Some(spec) => Order::parse(spec),
    }
}

fn search_param(q: &HashMap<String, String>) -> Result<Option<Search>, Error> {
    let Some(text) = q.get("q").filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let get = |k: &str| q.get(k).map(String::as_str);
    Search::parse(text, get("search_fields"), get("search_mode"), get("search_match")).map(Some)
}

fn filter_params(q: &HashMap<String, String>) -> Result<UserFilter, Error> {
    let role = match q.get("role").map(String::as_str) {
        None | Some("") => None,
        Some("user") => Some(Role::User),
        Some("admin") => Some(Role::Admin),
        Some(_) => return Err(rest::invalid("role is user or admin")),
    };
    let meta = match (q.get("meta_key").filter(|k| !k.is_empty()), q.get("meta_value")) {
        (Some(k), v) => Some((k.clone(), v.cloned())),
        (None, Some(_)) => return Err(rest::invalid("meta_value needs meta_key")),
        (None, None) => None,
    };
    Ok(UserFilter {
        email: q.get("email").filter(|e| !e.is_empty()).cloned(),
        active: bool_param(q, "active")?,
        confirmed: bool_param(q, "confirmed")?,
        group: int_param(q, "group")?,
        role,
        meta,
        created_from: date_param(q, "created_from")?,
        created_to: date_param(q, "created_to")?,
        search: search_param(q)?,
    })
}

async fn users_json(
    app: &App,
    users: &[crate::domain::user::User],
    select: Option<&[String]>,
) -> Result<Vec<Value>, Error> {
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        out.push(user_json(app, u, select).await?);
    }
    Ok(out)
}

async fn index(State(app): State<App>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "users/index").await {
        return refused;
    }
    let q = rest::query(raw.as_deref());
    let parsed = (|| {
        let per_page = int_param(&q, "per_page")?.unwrap_or(DEFAULT_PER_PAGE as u64);
        if per_page == 0 || per_page > MAX_PER_PAGE as u64 {
            return Err(rest::invalid(format!("per_page is 1 to {MAX_PER_PAGE}")));
        }
        let page = int_param(&q, "page")?;
        if page == Some(0) {
            return Err(rest::invalid("page starts at 1"));
        }
        let after = int_param(&q, "after")?;
        if after.is_some() && page.is_some() {
            return Err(rest::invalid("give page or after, not both"));
        }
        let query = DirectoryQuery {
            filter: filter_params(&q)?,
            order: order_param(&q)?,
            page: page.unwrap_or(1),
            per_page: per_page as usize,
            after,
        };
        Ok((query, rest::selection(q.get("select").map(String::as_str))?))
    })();
    let (query, select) = match parsed {
        Ok(p) => p,
        Err(e) => return from_error(e),
    };
    let page = match app.services.find_users(&query).await {
        Ok(p) => p,
        Err(e) => return from_error(e),
    };
    let data = match users_json(&app, &page.users, select.as_deref()).await {
        Ok(d) => d,
        Err(e) => return from_error(e),
    };
    let per_page = query.per_page as u64;
    json(
        StatusCode::OK,
        &json!({
            "data": data,
            "page": if query.after.is_some() { Value::Null } else { json!(query.page) },
            "per_page": per_page,
            "total": page.total,
            "total_pages": page.total.div_ceil(per_page),
            "next": page.next,
        }),
    )
}

async fn search(State(app): State<App>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "users/search").await {
        return refused;
    }
    let q = rest::query(raw.as_deref());
    let parsed = (|| {
        let search = search_param(&q)?.ok_or_else(|| rest::invalid("q is required"))?;
        let take = int_param(&q, "take")?.unwrap_or(DEFAULT_TAKE as u64);
        if take == 0 || take > MAX_TAKE as u64 {
            return Err(rest::invalid(format!("take is 1 to {MAX_TAKE}")));
        }
        Ok((search, order_param(&q)?, take as usize, rest::selection(q.get("select").map(String::as_str))?))
    })();
    let (search, order, take, select) = match parsed {
        Ok(p) => p,
        Err(e) => return from_error(e),
    };
    let users = match app.services.quick_search(search, order, take).await {
        Ok(u) => u,
        Err(e) => return from_error(e),
    };
    match users_json(&app, &users, select.as_deref()).await {
        Ok(data) => json(StatusCode::OK, &json!({"data": data})),
        Err(e) => from_error(e),
    }
}

async fn one_user(app: &App, user: crate::domain::Result<crate::domain::user::User>, status: StatusCode) -> Response {
    match user {
        Ok(u) => match user_json(app, &u, None).await {
            Ok(body) => json(status, &body),
            Err(e) => from_error(e),
        },
        Err(e) => from_error(e),
    }
}

async fn show(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "users/show").await {
        return refused;
    }
    match rest::user_id(&id) {
        Ok(id) => one_user(&app, app.services.live_user(id).await, StatusCode::OK).await,
        Err(e) => from_error(e),
    }
}

async fn by_email(State(app): State<App>, headers: HeaderMap, Path(email): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "users/show").await {
        return refused;
    }
    let user = match app.services.store.user_by_email(&email).await {
        Ok(Some(u)) if !u.is_deleted() => Ok(u),
        Ok(_) => Err(Error::NotFound("User not found".into())),
        Err(e) => Err(e),
    };
    one_user(&app, user, StatusCode::OK).await
}

/// The `roles` of a user body: role ids, each checked to exist before anything is written.
async fn body_roles(app: &App, body: &Map<String, Value>) -> Result<Option<Vec<u64>>, Error> {
    let Some(value) = body.get("roles") else {
        return Ok(None);
    };
    let ids: Vec<u64> = match value.as_array() {
        Some(items) => items.iter().map(Value::as_u64).collect::<Option<_>>(),
        None => None,
    }
    .ok_or_else(|| rest::invalid("roles is a list of role ids"))?;
    for id in &ids {
        if let Err(Error::NotFound(_)) = app.services.role(*id).await {
            return Err(Error::Invalid {
                code: "unknown_role",
                field: Some("roles".into()),
                message: format!("Role {id} does not exist"),
            });
        }
    }
    Ok(Some(ids))
}

/// Apply `roles` to a user just written.
async fn with_roles(app: &App, written: Result<User, Error>, roles: Option<Vec<u64>>) -> Result<User, Error> {
    let user = written?;
    if let Some(ids) = roles {
        app.services.set_user_roles(user.id, ids).await?;
    }
    Ok(user)
}

async fn store(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "users/store").await {
        return refused;
    }
    let parsed = match rest::object(&body) {
        Ok(b) => match (user_fields(&b, BODY_FIELDS), body_roles(&app, &b).await) {
            (Ok(f), Ok(r)) => Ok((f, r)),
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        Err(e) => Err(e),
    };
    let (fields, roles) = match parsed {
        Ok(p) => p,
        Err(e) => return from_error(e),
    };
    let created = with_roles(&app, app.services.create_user_resource(fields, None).await, roles).await;
    one_user(&app, created, StatusCode::CREATED).await
}

async fn replace(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "users/replace").await {
        return refused;
    }
    let parsed = rest::user_id(&id).and_then(|id| {
        let body = rest::object(&body)?;
        Ok((id, user_fields(&body, BODY_FIELDS)?, body))
    });
    let (id, fields, body) = match parsed {
        Ok(p) => p,
        Err(e) => return from_error(e),
    };
    let roles = match body_roles(&app, &body).await {
        Ok(r) => r,
        Err(e) => return from_error(e),
    };
    // Ids stay exact in JavaScript clients.
    if id > (1 << 53) {
        return from_error(rest::invalid("the user id is at most 2^53"));
    }
    match app.services.put_user(id, fields).await {
        Ok((user, put)) => {
            let status = if put == Put::Created { StatusCode::CREATED } else { StatusCode::OK };
            one_user(&app, with_roles(&app, Ok(user), roles).await, status).await
        }
        Err(e) => from_error(e),
    }
}

async fn patch(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "users/patch").await {
        return refused;
    }
    let parsed = rest::user_id(&id).and_then(|id| Ok((id, user_fields(&rest::object(&body)?, BODY_FIELDS)?)));
    match parsed {
        Ok((id, fields)) => one_user(&app, app.services.patch_user(id, fields).await, StatusCode::OK).await,
        Err(e) => from_error(e),
    }
}

async fn destroy(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "users/destroy").await {
        return refused;
    }
    let id = match rest::user_id(&id) {
        Ok(id) => id,
        Err(e) => return from_error(e),
    };
    let result = match app.services.live_user(id).await {
        Ok(user) => app.services.delete_user(&user).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => json(StatusCode::OK, &json!({"status": "ok", "id": id})),
        Err(e) => from_error(e),
    }
}

async fn set_password(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(refused) = require_api_token(&app, &headers, "users/set-password").await {
        return refused;
    }
    let parsed = rest::user_id(&id).and_then(|id| {
        let body = rest::object(&body)?;
        rest::only_keys(&body, &["password", "generate", "notify", "revoke_tokens"])?;
        Ok((
            id,
            SetPassword {
                password: rest::string(&body, "password")?,
                generate: rest::boolean(&body, "generate")?.unwrap_or(false),
                notify: rest::boolean(&body, "notify")?.unwrap_or(false),
                revoke_tokens: rest::boolean(&body, "revoke_tokens")?.unwrap_or(false),
            },
        ))
    });
    let (id, request) = match parsed {
        Ok(p) => p,
        Err(e) => return from_error(e),
    };
    match app.services.set_user_password(id, request).await {
        Ok(generated) => {
            let mut body = json!({"status": "ok", "id": id});
            if let Some(p) = generated {
                body["password"] = Value::String(p);
            }
            json(StatusCode::OK, &body)
        }
        Err(e) => from_error(e),
    }
}
