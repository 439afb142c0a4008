//! `GET /api/openapi.json`: an OpenAPI 3.1 document built from two route tables, one for REMP's
//! action routes ([`REMP_ROUTES`]) and one for the resource API ([`RESOURCE_ROUTES`]). A route
//! added to the server gets a row here; a unit test checks that every route name an API token
//! can be granted is documented. Fetching the document needs no token.
//!
//! REMP routes answer any method; the document describes GET (parameters in the query) and
//! POST (the same parameters as an urlencoded form, multipart form or JSON object), which is
//! how REMP clients call them, and POST alone for the routes that read a JSON document.

use super::{App, json};
use axum::{Router, http::StatusCode, response::Response, routing::get};
use serde_json::{Map, Value, json};

pub fn router() -> Router<App> {
    Router::new().route("/api/openapi.json", get(|| async { serve() }))
}

fn serve() -> Response {
    json(StatusCode::OK, &document())
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    Open,
    /// An API token whose whitelist names the route.
    ApiToken,
    /// A user's access or device token.
    UserToken,
    /// An API token acting for `user_id`, or a user token (REMP's `ServiceTokenAuthorization`).
    ApiOrUserToken,
    /// A resource route: an API token naming the route, or an admin's access token whose roles
    /// grant it.
    Resource,
}

/// How a REMP route takes its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// Query string, urlencoded or multipart form, or a JSON object of string fields.
    Params,
    /// One JSON document, checked against a schema (the `user-meta` and v2 email routes).
    JsonDocument,
}

/// A REMP route: every path it answers on, its whitelist name, parameters
/// (`name`, required) and the component schema of its 200 body.
struct RempRoute {
    paths: &'static [&'static str],
    name: &'static str,
    summary: &'static str,
    auth: Auth,
    input: Input,
    params: &'static [(&'static str, bool)],
    success: &'static str,
}

const ADDRESS_FIELDS: &[(&str, bool)] = &[
    ("email", true),
    ("type", true),
    ("first_name", false),
    ("last_name", false),
    ("street", false),
    ("address", false),
    ("number", false),
    ("zip", false),
    ("city", false),
    ("country_iso", false),
    ("company_name", false),
    ("company_id", false),
    ("tax_id", false),
    ("vat_id", false),
    ("phone_number", false),
];

/// REMP's users API (facts section 1), one row per route.
const REMP_ROUTES: &[RempRoute] = &[
    RempRoute {
        paths: &["/api/v1/user/info"],
        name: "user/info",
        summary: "The signed-in user",
        auth: Auth::UserToken,
        input: Input::Params,
        params: &[],
        success: "RempUserInfo",
    },
    RempRoute {
        paths: &["/api/v1/users/login"],
        name: "users/login",
        summary: "Sign in with email and password",
        auth: Auth::Open,
        input: Input::Params,
        params: &[("email", true), ("password", true), ("source", false), ("device_token", false)],
        success: "RempLogin",
    },
    RempRoute {
        paths: &["/api/v1/users/logout"],
        name: "users/logout",
        summary: "Revoke the access token (or every token of the device token)",
        auth: Auth::UserToken,
        input: Input::Params,
        params: &[],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/email", "/api/v2/users/email"],
        name: "users/email",
        summary: "Whether an email is taken (and the password matches)",
        auth: Auth::Open,
        input: Input::Params,
        params: &[("email", true), ("password", false)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/email-check"],
        name: "users/email-check",
        summary: "Whether an email is registered",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: &[("email", true)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/validate-email", "/api/v1/user/validate-email"],
        name: "users/validate-email",
        summary: "Run the email validators",
        auth: Auth::Open,
        input: Input::Params,
        params: &[("email", true)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/create"],
        name: "users/create",
        summary: "Register a user",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: &[
            ("email", true),
            ("password", false),
            ("first_name", false),
            ("last_name", false),
            ("ext_id", false),
            ("source", false),
            ("referer", false),
            ("note", false),
            ("send_email", false),
            ("disable_email_validation", false),
            ("device_token", false),
            ("unclaimed", false),
            ("newsletters_subscribe", false),
            ("locale", false),
        ],
        success: "RempUserWithAccess",
    },
    RempRoute {
        paths: &["/api/v1/users/update"],
        name: "users/update",
        summary: "Change a user's email, password or ext_id",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: &[
            ("user_id", true),
            ("email", false),
            ("password", false),
            ("ext_id", false),
            ("disable_email_validation", false),
            ("locale", false),
        ],
        success: "RempUserWithAccess",
    },
    RempRoute {
        paths: &["/api/v1/users/add-to-group"],
        name: "users/add-to-group",
        summary: "Add a user to a group",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: &[("email", true), ("group_id", true)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/remove-from-group"],
        name: "users/remove-from-group",
        summary: "Remove a user from a group",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: &[("email", true), ("group_id", true)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/addresses"],
        name: "users/addresses",
        summary: "A user's addresses by email",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: &[("email", true), ("type", false)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/address"],
        name: "users/address",
        summary: "Create an address",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: ADDRESS_FIELDS,
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/change-address-request"],
        name: "users/change-address-request",
        summary: "Request an address change",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: ADDRESS_FIELDS,
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/list"],
        name: "users/list",
        summary: "Users by id, paged",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: &[("user_ids", true), ("page", true), ("include_deactivated", false), ("with_uuid", false)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/confirm"],
        name: "users/confirm",
        summary: "Confirm a user",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: &[("email", true)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/user-meta/list"],
        name: "user-meta/list",
        summary: "A user's meta",
        auth: Auth::ApiOrUserToken,
        input: Input::Params,
        params: &[("user_id", false), ("key", false)],
        success: "RempAny",
    },
    RempRoute {
        paths: &["/api/v1/user-meta/key-users"],
        name: "user-meta/key-users",
        summary: "Users with a meta key (and value)",
        auth: Auth::ApiToken,
        input: Input::JsonDocument,
        params: &[("key", true), ("value", false)],
        success: "RempAny",
    },
    RempRoute {
        paths: &["/api/v1/user-meta/delete"],
        name: "user-meta/delete",
        summary: "Delete a meta entry",
        auth: Auth::ApiToken,
        input: Input::JsonDocument,
        params: &[("user_id", true), ("key", true), ("value", false)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/user-meta/upsert"],
        name: "user-meta/upsert",
        summary: "Set a meta entry",
        auth: Auth::ApiToken,
        input: Input::JsonDocument,
        params: &[("user_id", true), ("key", true), ("value", true), ("is_public", false)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/autologin-token-login"],
        name: "users/autologin-token-login",
        summary: "Sign in with an autologin token",
        auth: Auth::Open,
        input: Input::Params,
        params: &[("autologin_token", true), ("device_token", false), ("source", false)],
        success: "RempLogin",
    },
    RempRoute {
        paths: &["/api/v1/users/google-token-sign-in"],
        name: "users/google-token-sign-in",
        summary: "Sign in with a Google ID token",
        auth: Auth::Open,
        input: Input::Params,
        params: &[
            ("id_token", true),
            ("create_access_token", false),
            ("device_token", false),
            ("gsi_auth_code", false),
            ("is_web", false),
            ("source", false),
        ],
        success: "RempLogin",
    },
    RempRoute {
        paths: &["/api/v1/users/apple-token-sign-in"],
        name: "users/apple-token-sign-in",
        summary: "Sign in with an Apple ID token",
        auth: Auth::Open,
        input: Input::Params,
        params: &[("id_token", true), ("create_access_token", false), ("device_token", false), ("source", false)],
        success: "RempLogin",
    },
    RempRoute {
        paths: &["/api/v1/user/delete"],
        name: "user/delete",
        summary: "Delete (anonymize) the signed-in user",
        auth: Auth::UserToken,
        input: Input::Params,
        params: &[],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/data"],
        name: "users/data",
        summary: "Data of the users of a bearer token",
        auth: Auth::Open,
        input: Input::Params,
        params: &[],
        success: "RempAny",
    },
    RempRoute {
        paths: &["/api/v1/users/get-device-token"],
        name: "users/get-device-token",
        summary: "Issue a device token",
        auth: Auth::Open,
        input: Input::Params,
        params: &[("device_id", true), ("access_token", false)],
        success: "RempAny",
    },
    RempRoute {
        paths: &["/api/v1/users/set-email-validated"],
        name: "users/set-email-validated",
        summary: "Mark an email validated",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: &[("email", true)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/users/set-email-invalidated"],
        name: "users/set-email-invalidated",
        summary: "Mark an email invalidated",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: &[("email", true)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v2/users/set-email-validated"],
        name: "users/set-email-validated",
        summary: "Mark emails validated",
        auth: Auth::ApiToken,
        input: Input::JsonDocument,
        params: &[("emails", true)],
        success: "RempAny",
    },
    RempRoute {
        paths: &["/api/v2/users/set-email-invalidated"],
        name: "users/set-email-invalidated",
        summary: "Mark emails invalidated",
        auth: Auth::ApiToken,
        input: Input::JsonDocument,
        params: &[("emails", true)],
        success: "RempAny",
    },
    RempRoute {
        paths: &["/api/v1/users/touch"],
        name: "users/touch",
        summary: "Record that a user changed",
        auth: Auth::ApiToken,
        input: Input::Params,
        params: &[("id", true)],
        success: "RempOk",
    },
    RempRoute {
        paths: &["/api/v1/user/addresses"],
        name: "user/addresses",
        summary: "The signed-in user's addresses",
        auth: Auth::UserToken,
        input: Input::Params,
        params: &[("type", false)],
        success: "RempAny",
    },
];

/// A resource route: method, path (with `{param}`s, all numeric ids except where noted), the
/// route name (its permission), query parameters, the request body schema and the 2xx answer.
struct ResourceRoute {
    method: &'static str,
    path: &'static str,
    name: &'static str,
    summary: &'static str,
    auth: Auth,
    query: &'static [(&'static str, bool)],
    body: Option<&'static str>,
    success: (u16, &'static str),
    /// Error statuses besides 401/403 (which every authorized route has).
    errors: &'static [u16],
}

/// The resource API, one row per operation.
const RESOURCE_ROUTES: &[ResourceRoute] = &[
    ResourceRoute {
        method: "get",
        path: "/api/openapi.json",
        name: "openapi",
        summary: "This document",
        auth: Auth::Open,
        query: &[],
        body: None,
        success: (200, "OpenApiDocument"),
        errors: &[],
    },
    // Users, the current user and tokens
    ResourceRoute {
        method: "get",
        path: "/api/users",
        name: "users/index",
        summary: "List users: paging (page/per_page or keyset after), order, select, search and filters",
        auth: Auth::Resource,
        query: &[
            ("page", false),
            ("per_page", false),
            ("after", false),
            ("order", false),
            ("select", false),
            ("q", false),
            ("search_fields", false),
            ("search_mode", false),
            ("search_match", false),
            ("email", false),
            ("active", false),
            ("confirmed", false),
            ("group", false),
            ("role", false),
            ("meta_key", false),
            ("meta_value", false),
            ("created_from", false),
            ("created_to", false),
        ],
        body: None,
        success: (200, "UserPage"),
        errors: &[400],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/search",
        name: "users/search",
        summary: "Quick search without paging",
        auth: Auth::Resource,
        query: &[
            ("q", true),
            ("take", false),
            ("order", false),
            ("select", false),
            ("search_fields", false),
            ("search_mode", false),
            ("search_match", false),
        ],
        body: None,
        success: (200, "UserData"),
        errors: &[400],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/{id}",
        name: "users/show",
        summary: "A user by id",
        auth: Auth::Resource,
        query: &[("select", false)],
        body: None,
        success: (200, "User"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/by-email/{email}",
        name: "users/show",
        summary: "A user by email",
        auth: Auth::Resource,
        query: &[("select", false)],
        body: None,
        success: (200, "User"),
        errors: &[404],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/by-login/{login}",
        name: "users/show",
        summary: "A user by login (the email)",
        auth: Auth::Resource,
        query: &[("select", false)],
        body: None,
        success: (200, "User"),
        errors: &[404],
    },
    ResourceRoute {
        method: "post",
        path: "/api/users",
        name: "users/store",
        summary: "Create a user",
        auth: Auth::Resource,
        query: &[],
        body: Some("UserCreate"),
        success: (201, "User"),
        errors: &[400, 409, 422],
    },
    ResourceRoute {
        method: "put",
        path: "/api/users/{id}",
        name: "users/replace",
        summary: "Create a user under this id (201) or replace it (200)",
        auth: Auth::Resource,
        query: &[],
        body: Some("UserReplace"),
        success: (200, "User"),
        errors: &[400, 409, 422],
    },
    ResourceRoute {
        method: "patch",
        path: "/api/users/{id}",
        name: "users/patch",
        summary: "Change the given fields of a user",
        auth: Auth::Resource,
        query: &[],
        body: Some("UserPatch"),
        success: (200, "User"),
        errors: &[400, 404, 409, 422],
    },
    ResourceRoute {
        method: "delete",
        path: "/api/users/{id}",
        name: "users/destroy",
        summary: "Anonymize a user and revoke their tokens",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "IdOk"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "put",
        path: "/api/users/{id}/password",
        name: "users/set-password",
        summary: "Set or generate a user's password",
        auth: Auth::Resource,
        query: &[],
        body: Some("PasswordSet"),
        success: (200, "PasswordSetResult"),
        errors: &[400, 404, 422],
    },
    ResourceRoute {
        method: "get",
        path: "/api/me",
        name: "me",
        summary: "The token's user",
        auth: Auth::UserToken,
        query: &[],
        body: None,
        success: (200, "User"),
        errors: &[],
    },
    ResourceRoute {
        method: "put",
        path: "/api/profile",
        name: "profile",
        summary: "Change the token's user's profile",
        auth: Auth::UserToken,
        query: &[],
        body: Some("Profile"),
        success: (200, "User"),
        errors: &[400, 409, 422],
    },
    ResourceRoute {
        method: "put",
        path: "/api/profile/password",
        name: "profile/password",
        summary: "Change the token's user's password",
        auth: Auth::UserToken,
        query: &[],
        body: Some("ProfilePassword"),
        success: (200, "Ok"),
        errors: &[400, 422, 429],
    },
    ResourceRoute {
        method: "get",
        path: "/api/api-tokens",
        name: "api-tokens/list",
        summary: "Every API token, without its value",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "ApiTokenList"),
        errors: &[],
    },
    ResourceRoute {
        method: "post",
        path: "/api/api-tokens",
        name: "api-tokens/create",
        summary: "Create an API token (its value is shown once)",
        auth: Auth::Resource,
        query: &[],
        body: Some("ApiTokenCreate"),
        success: (201, "ApiTokenCreated"),
        errors: &[400, 422],
    },
    ResourceRoute {
        method: "delete",
        path: "/api/api-tokens/{id}",
        name: "api-tokens/revoke",
        summary: "Revoke an API token",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "ApiTokenRevoked"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/{id}/autologin-tokens",
        name: "autologin-tokens/list",
        summary: "A user's autologin tokens, without their values",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "AutologinTokenList"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "delete",
        path: "/api/users/{id}/autologin-tokens/{token_id}",
        name: "autologin-tokens/revoke",
        summary: "Revoke one of a user's autologin tokens",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "IdOk"),
        errors: &[400, 404],
    },
    // Groups
    ResourceRoute {
        method: "get",
        path: "/api/groups",
        name: "groups/list",
        summary: "Every group with its member count",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "GroupList"),
        errors: &[],
    },
    ResourceRoute {
        method: "post",
        path: "/api/groups",
        name: "groups/create",
        summary: "Create a group",
        auth: Auth::Resource,
        query: &[],
        body: Some("GroupCreate"),
        success: (200, "GroupCreated"),
        errors: &[400],
    },
    ResourceRoute {
        method: "get",
        path: "/api/groups/{id}",
        name: "groups/show",
        summary: "A group with its member ids",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "GroupShow"),
        errors: &[404],
    },
    ResourceRoute {
        method: "put",
        path: "/api/groups/{id}",
        name: "groups/update",
        summary: "Rename or re-sort a group",
        auth: Auth::Resource,
        query: &[],
        body: Some("GroupUpdate"),
        success: (200, "GroupShow"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "delete",
        path: "/api/groups/{id}",
        name: "groups/delete",
        summary: "Delete a group and its memberships",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "Ok"),
        errors: &[404],
    },
    ResourceRoute {
        method: "post",
        path: "/api/groups/{id}/members",
        name: "groups/members",
        summary: "Add a member (idempotent)",
        auth: Auth::Resource,
        query: &[],
        body: Some("MemberAdd"),
        success: (200, "Ok"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "delete",
        path: "/api/groups/{id}/members/{user_id}",
        name: "groups/members",
        summary: "Remove a member (idempotent)",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "Ok"),
        errors: &[404],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/{id}/groups",
        name: "groups/list",
        summary: "The groups of a user",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "UserGroups"),
        errors: &[404],
    },
    // Roles and permissions
    ResourceRoute {
        method: "get",
        path: "/api/roles",
        name: "roles/list",
        summary: "Every role with its user count",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "RoleList"),
        errors: &[],
    },
    ResourceRoute {
        method: "post",
        path: "/api/roles",
        name: "roles/create",
        summary: "Create a role",
        auth: Auth::Resource,
        query: &[],
        body: Some("RoleCreate"),
        success: (201, "RoleShow"),
        errors: &[400, 409],
    },
    ResourceRoute {
        method: "get",
        path: "/api/roles/{id}",
        name: "roles/show",
        summary: "A role",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "RoleShow"),
        errors: &[404],
    },
    ResourceRoute {
        method: "put",
        path: "/api/roles/{id}",
        name: "roles/update",
        summary: "Rename a role or replace its permissions",
        auth: Auth::Resource,
        query: &[],
        body: Some("RoleUpdate"),
        success: (200, "RoleShow"),
        errors: &[400, 404, 409],
    },
    ResourceRoute {
        method: "delete",
        path: "/api/roles/{id}",
        name: "roles/delete",
        summary: "Delete a role and its assignments",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "Ok"),
        errors: &[404],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/{id}/roles",
        name: "users/roles",
        summary: "The roles of a user",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "UserRoles"),
        errors: &[404],
    },
    ResourceRoute {
        method: "put",
        path: "/api/users/{id}/roles",
        name: "users/roles",
        summary: "Replace the roles of a user",
        auth: Auth::Resource,
        query: &[],
        body: Some("UserRolesSet"),
        success: (200, "UserRoles"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/{id}/permissioncheck",
        name: "users/permissioncheck",
        summary: "Whether a user holds each permission",
        auth: Auth::Resource,
        query: &[("permissions", true)],
        body: None,
        success: (200, "PermissionCheck"),
        errors: &[400, 404],
    },
    // Plugins, address types, change requests, autologin tokens (issue 4)
    ResourceRoute {
        method: "get",
        path: "/api/plugins",
        name: "plugins/list",
        summary: "Loaded plugins and their health",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "PluginList"),
        errors: &[],
    },
    ResourceRoute {
        method: "post",
        path: "/api/plugins/reload",
        name: "plugins/reload",
        summary: "Reload the plugins folder",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "PluginList"),
        errors: &[422],
    },
    ResourceRoute {
        method: "get",
        path: "/api/address-types",
        name: "address-types/list",
        summary: "Address types from config, store and plugins",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "AddressTypeList"),
        errors: &[],
    },
    ResourceRoute {
        method: "post",
        path: "/api/address-types",
        name: "address-types/create",
        summary: "Store an address type",
        auth: Auth::Resource,
        query: &[],
        body: Some("AddressTypeCreate"),
        success: (201, "AddressTypeCreated"),
        errors: &[400, 409],
    },
    ResourceRoute {
        method: "post",
        path: "/api/address-change-requests/{id}/accept",
        name: "address-change-requests/accept",
        summary: "Accept a change request",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "ChangeRequestShow"),
        errors: &[400, 404, 409, 422],
    },
    ResourceRoute {
        method: "post",
        path: "/api/address-change-requests/{id}/reject",
        name: "address-change-requests/reject",
        summary: "Reject a change request",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "ChangeRequestShow"),
        errors: &[404, 409],
    },
    ResourceRoute {
        method: "post",
        path: "/api/autologin-tokens",
        name: "autologin-tokens/create",
        summary: "Issue an autologin token",
        auth: Auth::Resource,
        query: &[],
        body: Some("AutologinTokenCreate"),
        success: (200, "AutologinToken"),
        errors: &[400, 404],
    },
    // Operations (issue 9): the admin console's reads and revocations, and metrics
    ResourceRoute {
        method: "get",
        path: "/api/stats/new-users",
        name: "stats/new-users",
        summary: "New users today, this month, last month to date, and per day (days: 1 to 366, default 31)",
        auth: Auth::Resource,
        query: &[("days", false)],
        body: None,
        success: (200, "NewUsers"),
        errors: &[400],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/{id}/login-attempts",
        name: "users/login-attempts",
        summary: "A user's sign-in attempts, newest first (limit: 1 to 1000, default 100)",
        auth: Auth::Resource,
        query: &[("limit", false)],
        body: None,
        success: (200, "LoginAttemptList"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/{id}/password-changes",
        name: "users/password-changes",
        summary: "A user's password changes (when and why), newest first",
        auth: Auth::Resource,
        query: &[("limit", false)],
        body: None,
        success: (200, "PasswordChangeList"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/{id}/access-tokens",
        name: "access-tokens/list",
        summary: "A user's access tokens (never their values) with the paired device token",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "AccessTokenList"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "delete",
        path: "/api/users/{id}/access-tokens/{token_id}",
        name: "access-tokens/revoke",
        summary: "Revoke one access token of a user",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "Revoked"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "delete",
        path: "/api/users/{id}/device-tokens/{device_token_id}",
        name: "access-tokens/revoke",
        summary: "Sign a device out: revoke every access token of the user paired with the device token",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "Revoked"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/{id}/meta",
        name: "users/meta",
        summary: "Every meta entry of a user, public or not",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "MetaList"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/{id}/addresses",
        name: "addresses/list",
        summary: "A user's addresses, each with address_string formatted by its type",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "AddressList"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "get",
        path: "/api/users/{id}/address-change-requests",
        name: "address-change-requests/list",
        summary: "A user's address change requests, newest first",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "ChangeRequestList"),
        errors: &[400, 404],
    },
    ResourceRoute {
        method: "get",
        path: "/metrics",
        name: "metrics",
        summary: "Prometheus metrics (text format); no token needed from loopback without forwarding headers",
        auth: Auth::Resource,
        query: &[],
        body: None,
        success: (200, "MetricsText"),
        errors: &[],
    },
];

fn security(auth: Auth) -> Value {
    match auth {
        Auth::Open => json!([]),
        Auth::ApiToken => json!([{"apiToken": []}]),
        Auth::UserToken => json!([{"userToken": []}]),
        Auth::ApiOrUserToken | Auth::Resource => json!([{"apiToken": []}, {"userToken": []}]),
    }
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_content(schema: &str) -> Value {
    json!({"application/json": {"schema": schema_ref(schema)}})
}

fn response(description: &str, schema: &str) -> Value {
    json!({"description": description, "content": json_content(schema)})
}

/// `remp_v1_users_login_post` from a path and method.
fn operation_id(prefix: &str, path: &str, method: &str) -> String {
    let slug: String =
        path.trim_start_matches("/api/").chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    format!("{prefix}_{}_{method}", slug.trim_matches('_'))
}

fn remp_params_schema(params: &[(&str, bool)]) -> Value {
    let properties: Map<String, Value> =
        params.iter().map(|(n, _)| (n.to_string(), json!({"type": "string"}))).collect();
    let required: Vec<&str> = params.iter().filter(|(_, r)| *r).map(|(n, _)| *n).collect();
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// The answers a REMP route gives besides 200, 400, 403 and 404, as REMP gives them.
fn remp_extra_statuses(route: &str) -> &'static [(u16, &'static str)] {
    match route {
        "users/email" => &[
            (401, "v2: the password does not match"),
            (422, "v2: not an email address"),
            (429, "v2: too many checks for this email"),
        ],
        "users/email-check" => &[(422, "Not an email address")],
        "users/update" => &[(409, "The new email is taken")],
        "users/login" | "users/autologin-token-login" => {
            &[(401, "The sign-in was refused"), (403, "Denied by a sign-in handler, or the account is not approved")]
        }
        "users/google-token-sign-in" | "users/apple-token-sign-in" => &[
            (401, "The ID token was refused"),
            (403, "Denied by a sign-in handler, or the account is not approved"),
            (503, "The provider's keys cannot be fetched right now"),
        ],
        "user/delete" | "user-meta/delete" => &[(204, "Done")],
        _ => &[],
    }
}

fn remp_operation(route: &RempRoute, path: &str, method: &str) -> Value {
    let mut responses = Map::new();
    responses.insert("200".into(), response("Success", route.success));
    responses.insert("400".into(), response("Missing or invalid parameters", "RempError"));
    if route.auth != Auth::Open {
        responses.insert("403".into(), response("Not authorized", "RempError"));
    }
    responses.insert("404".into(), response("Not found (user, token, address ...)", "RempError"));
    for &(status, description) in remp_extra_statuses(route.name) {
        if status == 204 {
            responses.insert("204".into(), json!({"description": description}));
        } else {
            responses.insert(status.to_string(), response(description, "RempError"));
        }
    }
    let mut op = json!({
        "operationId": operation_id("remp", path, method),
        "summary": route.summary,
        "tags": ["REMP"],
        "x-route-name": route.name,
        "security": security(route.auth),
        "responses": responses,
    });
    let mut parameters: Vec<Value> = Vec::new();
    if route.auth == Auth::ApiOrUserToken {
        parameters.push(json!({"name": "user_id", "in": "query", "required": false, "schema": {"type": "string"},
            "description": "With an API token: the user to act for"}));
    }
    if method == "get" {
        for (name, required) in route.params {
            if route.auth == Auth::ApiOrUserToken && *name == "user_id" {
                continue;
            }
            parameters.push(json!({"name": name, "in": "query", "required": required, "schema": {"type": "string"}}));
        }
    } else {
        let schema = match route.input {
            Input::Params => remp_params_schema(route.params),
            Input::JsonDocument => json!({"type": "object", "properties": route.params.iter()
                .map(|(n, _)| (n.to_string(), json!({})))
                .collect::<Map<String, Value>>(),
                "required": route.params.iter().filter(|(_, r)| *r).map(|(n, _)| *n).collect::<Vec<_>>()}),
        };
        let content = match route.input {
            Input::Params => json!({
                "application/x-www-form-urlencoded": {"schema": schema},
                "multipart/form-data": {"schema": schema},
                "application/json": {"schema": schema},
            }),
            Input::JsonDocument => json!({"application/json": {"schema": schema}}),
        };
        op["requestBody"] = json!({"required": route.input == Input::JsonDocument, "content": content});
    }
    if !parameters.is_empty() {
        op["parameters"] = json!(parameters);
    }
    op
}

fn status_description(status: u16) -> &'static str {
    match status {
        400 => "Invalid input",
        401 => "No usable token",
        403 => "The token lacks the permission (named in the message)",
        404 => "Not found",
        409 => "Conflict with stored data",
        422 => "Refused by a plugin or state",
        _ => "Error",
    }
}

fn resource_operation(route: &ResourceRoute) -> Value {
    let mut responses = Map::new();
    responses.insert(route.success.0.to_string(), response("Success", route.success.1));
    if route.success.1 == "MetricsText" {
        responses.insert(
            route.success.0.to_string(),
            json!({"description": "Prometheus text format 0.0.4", "content": {"text/plain": {"schema": schema_ref("MetricsText")}}}),
        );
    }
    let mut errors: Vec<u16> = route.errors.to_vec();
    if route.auth != Auth::Open {
        errors.extend([401, 403]);
    }
    errors.sort_unstable();
    for status in errors {
        responses.insert(status.to_string(), response(status_description(status), "Error"));
    }
    let mut parameters: Vec<Value> = Vec::new();
    for segment in route.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            parameters.push(
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}}),
            );
        }
    }
    for (name, required) in route.query {
        let mut parameter = json!({"name": name, "in": "query", "required": required, "schema": {"type": "string"}});
        if *name == "permissions" {
            parameter["description"] = json!("Comma-separated permission names");
        }
        parameters.push(parameter);
    }
    let tag = route.name.split('/').next().unwrap_or("resource");
    let mut op = json!({
        "operationId": operation_id("api", route.path, route.method),
        "summary": route.summary,
        "tags": [tag],
        "security": security(route.auth),
        "responses": responses,
    });
    // Only routes a token is granted by name carry one; user-token routes need no grant.
    if !matches!(route.auth, Auth::Open | Auth::UserToken) {
        op["x-route-name"] = json!(route.name);
    }
    if !parameters.is_empty() {
        op["parameters"] = json!(parameters);
    }
    if let Some(body) = route.body {
        op["requestBody"] = json!({"required": true, "content": json_content(body)});
    }
    op
}

/// Component schemas: the bodies the routes above take and answer.
fn schemas() -> Value {
    let date = json!({"type": "string", "format": "date-time"});
    let nullable_string = json!({"type": ["string", "null"]});
    let group = json!({"type": "object", "required": ["id", "name", "sorting", "created_at", "updated_at"], "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "sorting": {"type": "integer"},
        "created_at": date, "updated_at": date,
        "member_count": {"type": "integer"}, "members": {"type": "array", "items": {"type": "integer"}}}});
    let role = json!({"type": "object", "required": ["id", "name", "permissions", "created_at", "updated_at"], "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"},
        "permissions": {"type": "array", "items": {"type": "string"}, "description": "Route names, or '*' for all"},
        "created_at": date, "updated_at": date, "user_count": {"type": "integer"}}});
    let ok = |props: Value| {
        let mut p = props.as_object().cloned().unwrap_or_default();
        p.insert("status".into(), json!({"type": "string", "const": "ok"}));
        json!({"type": "object", "required": ["status"], "properties": p})
    };
    let remp_user = json!({"type": "object", "properties": {
        "id": {"type": "integer"}, "uuid": {"type": "string"}, "email": {"type": "string"},
        "first_name": nullable_string, "last_name": nullable_string, "public_name": nullable_string,
        "confirmed_at": {"type": ["string", "null"], "format": "date-time"},
        "roles": {"type": "array", "items": {"type": "string"}, "description": "An admin's role names; absent otherwise"}}});
    let entries: Vec<(&str, Value)> = vec![
        (
            "Error",
            json!({"type": "object", "required": ["status", "code", "message"], "properties": {
            "status": {"type": "string", "const": "error"}, "code": {"type": "string"}, "message": {"type": "string"}}}),
        ),
        ("Ok", ok(json!({}))),
        (
            "RempError",
            json!({"type": "object", "required": ["status"], "properties": {
            "status": {"type": "string", "const": "error"}, "message": {"type": "string"},
            "code": {"type": "string"}, "error": {"type": "string"},
            "errors": {"description": "By field (form routes); on JSON document routes, one `{field: problem}` per \
                problem, or the decoder's message for malformed JSON",
                "anyOf": [{"type": "object", "additionalProperties": true},
                          {"type": "array", "items": {"anyOf": [{"type": "string"},
                              {"type": "object", "additionalProperties": {"type": "string"}}]}}]}}}),
        ),
        (
            "RempOk",
            json!({"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}},
            "additionalProperties": true}),
        ),
        ("RempAny", json!({"description": "A JSON object or array, as REMP answers this route"})),
        ("RempUser", remp_user),
        ("RempUserInfo", ok(json!({"user": schema_ref("RempUser"), "user_meta": {"type": "object"}}))),
        (
            "RempLogin",
            ok(json!({"user": schema_ref("RempUser"),
            "user_meta": {"type": "object", "additionalProperties": {"type": "string"}},
            "access": {"type": "object", "properties": {"token": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}}})),
        ),
        (
            "RempUserWithAccess",
            ok(json!({"user": schema_ref("RempUser"),
            "access": {"type": "object", "properties": {"token": {"type": "string"}}}})),
        ),
        ("OpenApiDocument", json!({"type": "object", "required": ["openapi", "paths"]})),
        (
            "User",
            json!({"type": "object", "properties": {
            "id": {"type": "integer"}, "uuid": {"type": "string"}, "email": {"type": "string"},
            "first_name": nullable_string, "last_name": nullable_string, "public_name": {"type": "string"},
            "role": {"type": "string", "enum": ["user", "admin"]}, "active": {"type": "boolean"},
            "confirmed_at": {"type": ["string", "null"], "format": "date-time"},
            "email_validated_at": {"type": ["string", "null"], "format": "date-time"},
            "created_at": date, "modified_at": date, "locale": {"type": "string"},
            "timezone": nullable_string, "source": {"type": "string"}, "ext_id": {"type": ["integer", "null"]},
            "note": nullable_string, "groups": {"type": "array", "items": {"type": "integer"}}},
            "description": "With select=a;b only the named fields"}),
        ),
        (
            "UserData",
            json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": schema_ref("User")}}}),
        ),
        (
            "UserPage",
            json!({"type": "object", "required": ["data", "per_page", "total", "total_pages"], "properties": {
            "data": {"type": "array", "items": schema_ref("User")}, "page": {"type": ["integer", "null"]},
            "per_page": {"type": "integer"}, "total": {"type": "integer"}, "total_pages": {"type": "integer"},
            "next": {"type": ["integer", "null"], "description": "The keyset cursor for after=, null on the last page"}}}),
        ),
        (
            "UserCreate",
            json!({"type": "object", "required": ["email", "password", "password_confirmation"], "properties": {
            "email": {"type": "string"}, "password": {"type": "string"}, "password_confirmation": {"type": "string"},
            "first_name": {"type": "string"}, "last_name": {"type": "string"}, "public_name": {"type": "string"},
            "locale": {"type": "string"}, "timezone": {"type": "string"}, "note": {"type": "string"},
            "ext_id": {"type": "integer"}, "active": {"type": "boolean"}, "role": {"type": "string", "enum": ["user", "admin"]},
            "source": {"type": "string"}, "roles": {"type": "array", "items": {"type": "integer"}}}}),
        ),
        (
            "UserReplace",
            json!({"type": "object", "required": ["email"], "properties": {
            "email": {"type": "string"}, "password": {"type": "string"}, "password_confirmation": {"type": "string"},
            "first_name": {"type": "string"}, "last_name": {"type": "string"}, "public_name": {"type": "string"},
            "locale": {"type": "string"}, "timezone": {"type": "string"}, "note": {"type": "string"},
            "ext_id": {"type": "integer"}, "active": {"type": "boolean"}, "role": {"type": "string", "enum": ["user", "admin"]},
            "source": {"type": "string"}}}),
        ),
        (
            "UserPatch",
            json!({"type": "object", "minProperties": 1, "properties": {
            "email": {"type": "string"}, "password": {"type": "string"}, "password_confirmation": {"type": "string"},
            "first_name": nullable_string, "last_name": nullable_string, "public_name": {"type": "string"},
            "locale": {"type": "string"}, "timezone": nullable_string, "note": nullable_string,
            "ext_id": {"type": ["integer", "null"]}, "active": {"type": "boolean"}, "role": {"type": "string", "enum": ["user", "admin"]}}}),
        ),
        ("IdOk", ok(json!({"id": {"type": "integer"}}))),
        (
            "PasswordSet",
            json!({"type": "object", "properties": {
            "password": {"type": "string"}, "generate": {"type": "boolean"},
            "notify": {"type": "boolean"}, "revoke_tokens": {"type": "boolean"}}}),
        ),
        (
            "PasswordSetResult",
            ok(
                json!({"id": {"type": "integer"}, "password": {"type": "string", "description": "Only when generated"}}),
            ),
        ),
        (
            "Profile",
            json!({"type": "object", "additionalProperties": false, "properties": {
            "email": {"type": "string"}, "first_name": nullable_string, "last_name": nullable_string,
            "public_name": {"type": "string"}, "locale": {"type": "string"}, "timezone": nullable_string}}),
        ),
        (
            "ProfilePassword",
            json!({"type": "object", "required": ["old_password", "password", "password_confirmation"], "properties": {
            "old_password": {"type": "string"}, "password": {"type": "string"},
            "password_confirmation": {"type": "string"}, "revoke_other_tokens": {"type": "boolean"}}}),
        ),
        (
            "ApiToken",
            json!({"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
            "allowed_routes": {"type": "array", "items": {"type": "string"}}, "active": {"type": "boolean"},
            "created_at": date}}),
        ),
        (
            "ApiTokenList",
            json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": schema_ref("ApiToken")}}}),
        ),
        (
            "ApiTokenCreate",
            json!({"type": "object", "required": ["name", "allowed_routes"], "properties": {
            "name": {"type": "string"},
            "allowed_routes": {"oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string", "const": "*"}]}}}),
        ),
        (
            "ApiTokenCreated",
            json!({"type": "object", "description": "The token's fields and its value under token, shown once", "additionalProperties": true}),
        ),
        ("ApiTokenRevoked", ok(json!({"data": {"type": "array", "items": schema_ref("ApiToken")}}))),
        (
            "AutologinTokenList",
            json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "user_id": {"type": "integer"}, "email": {"type": "string"},
            "created_at": date, "valid_from": date, "valid_to": date,
            "used_count": {"type": "integer"}, "max_count": {"type": "integer"}}}}}}),
        ),
        ("MetricsText", json!({"type": "string"})),
        (
            "NewUsers",
            json!({"type": "object", "required": ["today", "this_month", "last_month_to_date", "per_day"], "properties": {
            "timezone": {"type": "string"}, "today": {"type": "integer"}, "this_month": {"type": "integer"},
            "last_month_to_date": {"type": "integer"},
            "per_day": {"type": "array", "items": {"type": "object", "properties": {
                "date": {"type": "string", "format": "date"}, "count": {"type": "integer"}}}}}}),
        ),
        (
            "LoginAttemptList",
            json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "created_at": date, "status": {"type": "string"}, "ok": {"type": "boolean"},
            "source": {"type": "string"}, "ip": {"type": "string"}, "user_agent": {"type": "string"}, "message": nullable_string}}}}}),
        ),
        (
            "PasswordChangeList",
            json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "created_at": date,
            "type": {"type": "string", "enum": ["change", "reset", "force", "suspicious", "gift"]}}}}}}),
        ),
        (
            "AccessTokenList",
            json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "source": nullable_string, "method": nullable_string, "ip": {"type": "string"},
            "user_agent": {"type": "string"}, "created_at": date, "last_used_at": {"type": ["string", "null"], "format": "date-time"},
            "device": {"type": ["object", "null"], "properties": {"id": {"type": "integer"}, "device_id": {"type": "string"},
                "created_at": date, "last_used_at": {"type": ["string", "null"], "format": "date-time"}}}}}}}}),
        ),
        (
            "Revoked",
            ok(
                json!({"revoked": {"type": "array", "items": {"type": "integer"}, "description": "Ids of the access tokens revoked"}}),
            ),
        ),
        (
            "MetaList",
            json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string"}, "value": {"type": "string"}, "is_public": {"type": "boolean"},
            "created_at": date, "updated_at": date}}}}}),
        ),
        (
            "AddressList",
            json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {"type": "object",
            "description": "id, type, type_title, is_default, title, REMP's address columns, address_string, created_at, updated_at",
            "properties": {"id": {"type": "integer"}, "type": {"type": "string"}, "type_title": nullable_string,
                "address_string": {"type": "string"}}, "additionalProperties": true}}}}),
        ),
        (
            "ChangeRequestList",
            json!({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {"type": "object", "additionalProperties": true,
            "description": "As change_request in ChangeRequestShow"}}}}),
        ),
        ("Group", group),
        ("GroupList", ok(json!({"groups": {"type": "array", "items": schema_ref("Group")}}))),
        ("GroupShow", ok(json!({"group": schema_ref("Group")}))),
        (
            "GroupCreated",
            json!({"type": "object", "required": ["id", "name"], "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}}}),
        ),
        (
            "GroupCreate",
            json!({"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 255}}}),
        ),
        (
            "GroupUpdate",
            json!({"type": "object", "additionalProperties": false, "minProperties": 1, "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 255}, "sorting": {"type": "integer"}}}),
        ),
        (
            "MemberAdd",
            json!({"type": "object", "required": ["user_id"], "additionalProperties": false, "properties": {
            "user_id": {"type": "integer", "minimum": 1}}}),
        ),
        (
            "UserGroups",
            ok(json!({"user_id": {"type": "integer"}, "groups": {"type": "array", "items": schema_ref("Group")}})),
        ),
        ("Role", role),
        ("RoleList", ok(json!({"roles": {"type": "array", "items": schema_ref("Role")}}))),
        ("RoleShow", ok(json!({"role": schema_ref("Role")}))),
        (
            "RoleCreate",
            json!({"type": "object", "required": ["name"], "additionalProperties": false, "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "permissions": {"type": "array", "items": {"type": "string"}}}}),
        ),
        (
            "RoleUpdate",
            json!({"type": "object", "additionalProperties": false, "minProperties": 1, "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "permissions": {"type": "array", "items": {"type": "string"}}}}),
        ),
        (
            "UserRoles",
            ok(json!({"user_id": {"type": "integer"}, "admin": {"type": "boolean",
            "description": "Roles grant permissions only to admin users"},
            "roles": {"type": "array", "items": schema_ref("Role")}})),
        ),
        (
            "UserRolesSet",
            json!({"type": "object", "required": ["roles"], "additionalProperties": false, "properties": {
            "roles": {"type": "array", "items": {"type": "integer"}}}}),
        ),
        (
            "PermissionCheck",
            ok(json!({"user_id": {"type": "integer"},
            "permissions": {"type": "object", "additionalProperties": {"type": "boolean"}}})),
        ),
        (
            "PluginList",
            ok(json!({"plugins": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "version": {"type": "string"}, "kinds": {"type": "array", "items": {"type": "string"}},
            "priority": {"type": "integer"}, "state": {"type": "string"},
            "capabilities": {"type": "array", "items": {"type": "string"}},
            "calls": {"type": "integer"}, "failures": {"type": "integer"}, "fuel_consumed": {"type": "integer"},
            "last_error": nullable_string}}}})),
        ),
        (
            "AddressType",
            json!({"type": "object", "properties": {"type": {"type": "string"}, "title": {"type": "string"},
            "sorting": {"type": "integer"}, "source": {"type": "string", "enum": ["config", "stored", "plugin"]},
            "plugin": nullable_string}}),
        ),
        ("AddressTypeList", ok(json!({"address_types": {"type": "array", "items": schema_ref("AddressType")}}))),
        (
            "AddressTypeCreate",
            json!({"type": "object", "required": ["type", "title"], "properties": {
            "type": {"type": "string"}, "title": {"type": "string"}, "sorting": {"type": "integer"}}}),
        ),
        ("AddressTypeCreated", ok(json!({"address_type": schema_ref("AddressType")}))),
        (
            "ChangeRequestShow",
            ok(json!({"change_request": {"type": "object", "additionalProperties": true,
            "properties": {"id": {"type": "integer"}, "type": {"type": "string"}, "user_id": {"type": "integer"},
            "address_id": {"type": ["integer", "null"]}, "status": {"type": "string"}}}})),
        ),
        (
            "AutologinTokenCreate",
            json!({"type": "object", "properties": {
            "email": {"type": "string"}, "user_id": {"type": "integer"},
            "valid_from": {"type": "string", "format": "date-time"}, "valid_to": {"type": "string", "format": "date-time"},
            "max_count": {"type": "integer", "minimum": 1}}}),
        ),
        (
            "AutologinToken",
            json!({"type": "object", "properties": {
            "token": {"type": "string"}, "user_id": {"type": "integer"},
            "valid_from": date, "valid_to": date, "max_count": {"type": "integer"}}}),
        ),
    ];
    Value::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// The whole document.
pub fn document() -> Value {
    let mut paths: Map<String, Value> = Map::new();
    for route in REMP_ROUTES {
        for path in route.paths {
            let mut item = Map::new();
            if route.input == Input::Params {
                item.insert("get".into(), remp_operation(route, path, "get"));
            }
            item.insert("post".into(), remp_operation(route, path, "post"));
            paths.insert(path.to_string(), Value::Object(item));
        }
    }
    for route in RESOURCE_ROUTES {
        let item = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        item[route.method] = resource_operation(route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "crm-users",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "REMP CRM users API (wire-compatible, /api/v1 and /api/v2: every route answers any \
                method) and the resource API under /api. Resource routes accept an API token whose whitelist \
                names the route (x-route-name) or '*', or the access token of an admin user whose roles grant it.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiToken": {"type": "http", "scheme": "bearer",
                    "description": "A server's API token (crm-users api-token create); its whitelist names routes"},
                "userToken": {"type": "http", "scheme": "bearer",
                    "description": "A user's access token (users/login) or device token"},
            },
            "schemas": schemas(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::tokens::ROUTE_NAMES;

    fn route_names(doc: &Value) -> Vec<String> {
        let mut out = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                if let Some(name) = op["x-route-name"].as_str() {
                    out.push(name.to_owned());
                }
            }
        }
        out
    }

    #[test]
    fn every_grantable_route_name_is_documented() {
        let names = route_names(&document());
        let missing: Vec<&&str> = ROUTE_NAMES.iter().filter(|n| !names.iter().any(|d| d == *n)).collect();
        assert!(missing.is_empty(), "add rows to REMP_ROUTES or RESOURCE_ROUTES for {missing:?}");
        let unknown: Vec<&String> = names.iter().filter(|n| !ROUTE_NAMES.contains(&n.as_str())).collect();
        assert!(unknown.is_empty(), "documented names that no token can be granted: {unknown:?}");
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document();
        let mut ids: Vec<&str> = Vec::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for op in item.as_object().unwrap().values() {
                ids.push(op["operationId"].as_str().unwrap());
            }
        }
        let before = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), before);
    }
}
