//! From one REMP row to the record crm-users stores: column conversions (MySQL's text values,
//! zero dates, local `DATETIME`s) and the per-table rules. A row that cannot be taken gives
//! the reason as an `Err(String)`; nothing here reads or writes anything.

use crate::domain::{
    Timestamp,
    address::{
        Address, AddressChangeRequest, AddressFields, AddressType, ChangeRequestStatus, MAX_TITLE_LEN, is_type_key,
    },
    attempt::{LoginAttempt, LoginStatus, PasswordChange, PasswordChangeKind},
    group::Group,
    meta::{MAX_META_KEY_LEN, MAX_META_VALUE_LEN, MetaEntry},
    secret::{TokenDigest, looks_like_token},
    token::{AccessToken, ApiToken, AutologinToken, ConnectedAccount, DeviceToken},
    user::{MAX_EMAIL_LEN, Role, User},
};
use chrono::{NaiveDateTime, TimeZone};
use mysql::Value;
use std::collections::HashMap;

/// A row read from MySQL, by column name. A column the table does not have reads as NULL, so
/// older REMP schemas (before `uuid`, `is_default`, `street`) import too.
#[derive(Debug, Default)]
pub struct Record(pub HashMap<String, Value>);

pub type Mapped<T> = std::result::Result<T, String>;

impl Record {
    pub fn from_row(row: mysql::Row) -> Self {
        let names: Vec<String> = row.columns_ref().iter().map(|c| c.name_str().into_owned()).collect();
        Record(names.into_iter().zip(row.unwrap()).collect())
    }

    fn value(&self, column: &str) -> &Value {
        self.0.get(column).unwrap_or(&Value::NULL)
    }

    /// Text, or `None` for NULL.
    pub fn text(&self, column: &str) -> Mapped<Option<String>> {
        Ok(match self.value(column) {
            Value::NULL => None,
            Value::Bytes(b) => {
                Some(String::from_utf8(b.clone()).map_err(|_| format!("`{column}` is not valid UTF-8"))?)
            }
            Value::Int(i) => Some(i.to_string()),
            Value::UInt(u) => Some(u.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Double(d) => Some(d.to_string()),
            other => Some(other.as_sql(true).trim_matches('\'').to_owned()),
        })
    }

    /// Text that must be there.
    pub fn req_text(&self, column: &str) -> Mapped<String> {
        self.text(column)?.ok_or_else(|| format!("`{column}` is missing"))
    }

    /// Text with empty values as absent (REMP converted empty strings to NULL in 2022).
    pub fn opt_text(&self, column: &str) -> Mapped<Option<String>> {
        Ok(self.text(column)?.filter(|s| !s.is_empty()))
    }

    pub fn int(&self, column: &str) -> Mapped<Option<i64>> {
        match self.value(column) {
            Value::NULL => Ok(None),
            Value::Int(i) => Ok(Some(*i)),
            Value::UInt(u) => i64::try_from(*u).map(Some).map_err(|_| format!("`{column}` is out of range")),
            Value::Bytes(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .map(Some)
                .ok_or_else(|| format!("`{column}` is not an integer")),
            _ => Err(format!("`{column}` is not an integer")),
        }
    }

    /// A positive id (auto-increment columns start at 1).
    pub fn id(&self, column: &str) -> Mapped<Option<u64>> {
        match self.int(column)? {
            None => Ok(None),
            Some(i) if i > 0 => Ok(Some(i as u64)),
            Some(i) => Err(format!("`{column}` is {i}, not a positive id")),
        }
    }

    pub fn req_id(&self, column: &str) -> Mapped<u64> {
        self.id(column)?.ok_or_else(|| format!("`{column}` is missing"))
    }

    /// A tinyint flag; NULL is `default`.
    pub fn flag(&self, column: &str, default: bool) -> Mapped<bool> {
        Ok(self.int(column)?.map(|i| i != 0).unwrap_or(default))
    }

    /// A `DATETIME` in the REMP server's time zone, as UTC; NULL and MySQL's zero date are
    /// absent.
    pub fn time(&self, column: &str, tz: chrono_tz::Tz) -> Mapped<Option<Timestamp>> {
        let naive = match self.value(column) {
            Value::NULL => return Ok(None),
            Value::Date(0, ..) => return Ok(None),
            Value::Date(y, mo, d, h, mi, s, us) => {
                chrono::NaiveDate::from_ymd_opt(i32::from(*y), (*mo).into(), (*d).into())
                    .and_then(|date| date.and_hms_micro_opt((*h).into(), (*mi).into(), (*s).into(), *us))
            }
            Value::Bytes(b) => {
                let text = std::str::from_utf8(b).unwrap_or_default();
                if text.starts_with("0000-00-00") {
                    return Ok(None);
                }
                NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok()
            }
            _ => None,
        };
        let naive = naive.ok_or_else(|| format!("`{column}` is not a date and time"))?;
        Ok(Some(local_to_utc(naive, tz)))
    }

    pub fn req_time(&self, column: &str, tz: chrono_tz::Tz) -> Mapped<Timestamp> {
        self.time(column, tz)?.ok_or_else(|| format!("`{column}` is missing"))
    }
}

/// A wall-clock time in `tz` as UTC. In the autumn overlap the earlier instant is taken; a time
/// in the spring gap (which no clock showed) is read an hour later.
fn local_to_utc(naive: NaiveDateTime, tz: chrono_tz::Tz) -> Timestamp {
    tz.from_local_datetime(&naive)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(naive + chrono::Duration::hours(1))).earliest())
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|| naive.and_utc())
}

/// What the mappers need to know besides the row.
#[derive(Debug, Clone)]
pub struct Context {
    /// The REMP server's time zone, in which its `DATETIME`s were written.
    pub tz: chrono_tz::Tz,
    /// For users without a locale.
    pub default_locale: String,
    /// REMP `countries.id` to the id of the same country (by ISO code) here.
    pub countries: HashMap<u64, u32>,
}

fn token_digest(record: &Record) -> Mapped<TokenDigest> {
    let token = record.req_text("token")?;
    if !looks_like_token(&token) {
        return Err("the token is not 32 hex characters, the only format crm-users accepts".into());
    }
    Ok(TokenDigest::of(&token))
}

fn country(ctx: &Context, record: &Record, column: &str) -> Mapped<Option<u32>> {
    match record.id(column)? {
        None => Ok(None),
        Some(id) => {
            ctx.countries.get(&id).copied().map(Some).ok_or_else(|| format!("`{column}` {id} is no known country"))
        }
    }
}

fn address_fields(ctx: &Context, r: &Record, prefix: &str) -> Mapped<AddressFields> {
    let col = |name: &str| format!("{prefix}{name}");
    // `street` was `address` before 2025-03.
    let street = match r.opt_text(&col("street"))? {
        Some(s) => Some(s),
        None => r.opt_text(&col("address"))?,
    };
    Ok(AddressFields {
        first_name: r.opt_text(&col("first_name"))?,
        last_name: r.opt_text(&col("last_name"))?,
        company_name: r.opt_text(&col("company_name"))?,
        street,
        number: r.opt_text(&col("number"))?,
        zip: r.opt_text(&col("zip"))?,
        city: r.opt_text(&col("city"))?,
        country_id: country(ctx, r, &col("country_id"))?,
        phone_number: r.opt_text(&col("phone_number"))?,
        company_id: r.opt_text(&col("company_id"))?,
        company_tax_id: r.opt_text(&col("company_tax_id"))?,
        company_vat_id: r.opt_text(&col("company_vat_id"))?,
    }
    .normalized())
}

/// `users`. A user without a uuid (rows older than 2024-02) gets an empty one; the importer
/// keeps the uuid an earlier import gave, or makes one.
pub fn user(ctx: &Context, r: &Record) -> Mapped<User> {
    let tz = ctx.tz;
    let raw = r.req_text("email")?;
    let email = raw.trim().to_owned();
    if email.is_empty() || email.len() > MAX_EMAIL_LEN {
        return Err(format!("email {raw:?} is empty or longer than {MAX_EMAIL_LEN} bytes"));
    }
    let role = match r.text("role")?.as_deref() {
        None | Some("user") => Role::User,
        Some("admin") => Role::Admin,
        Some(other) => return Err(format!("role {other:?} is neither user nor admin")),
    };
    let created_at = r.req_time("created_at", tz)?;
    Ok(User {
        id: r.req_id("id")?,
        uuid: r.opt_text("uuid")?.unwrap_or_default(),
        public_name: r.opt_text("public_name")?.unwrap_or_else(|| email.clone()),
        email,
        first_name: r.opt_text("first_name")?,
        last_name: r.opt_text("last_name")?,
        // Kept as REMP stored it: bcrypt verifies, and is rehashed to argon2id on sign-in.
        password_hash: r.text("password")?.unwrap_or_default(),
        role,
        active: r.flag("active", false)?,
        confirmed_at: r.time("confirmed_at", tz)?,
        email_validated_at: r.time("email_validated_at", tz)?,
        current_sign_in_at: r.time("current_sign_in_at", tz)?,
        current_sign_in_ip: r.opt_text("current_sign_in_ip")?,
        created_at,
        modified_at: r.time("modified_at", tz)?.unwrap_or(created_at),
        source: r.opt_text("source")?.unwrap_or_else(|| "unknown".into()),
        referer: r.opt_text("referer")?,
        registration_channel: r.opt_text("registration_channel")?.unwrap_or_else(|| "crm".into()),
        locale: r.opt_text("locale")?.unwrap_or_else(|| ctx.default_locale.clone()),
        ext_id: r.int("ext_id")?,
        note: r.opt_text("note")?,
        deleted_at: r.time("deleted_at", tz)?,
    })
}

/// `user_meta`.
pub fn meta(ctx: &Context, r: &Record) -> Mapped<MetaEntry> {
    let key = r.req_text("key")?;
    let value = r.text("value")?.unwrap_or_default();
    if key.is_empty() || key.len() > MAX_META_KEY_LEN {
        return Err(format!("key {key:?} is empty or longer than {MAX_META_KEY_LEN} bytes"));
    }
    if value.len() > MAX_META_VALUE_LEN {
        return Err(format!("the value of {key:?} is longer than {MAX_META_VALUE_LEN} bytes"));
    }
    let created_at = r.time("created_at", ctx.tz)?.unwrap_or_else(crate::domain::now);
    Ok(MetaEntry {
        user_id: r.req_id("user_id")?,
        key,
        value,
        is_public: r.flag("is_public", false)?,
        created_at,
        updated_at: r.time("updated_at", ctx.tz)?.unwrap_or(created_at),
    })
}

/// `address_types`.
pub fn address_type(r: &Record) -> Mapped<AddressType> {
    let key = r.req_text("type")?;
    if !is_type_key(&key) {
        return Err(format!("type {key:?} is not 1 to 64 of lowercase letters, digits, '-' or '_'"));
    }
    let title = r.opt_text("title")?.unwrap_or_else(|| key.clone());
    if title.chars().count() > MAX_TITLE_LEN {
        return Err(format!("the title is longer than {MAX_TITLE_LEN} characters"));
    }
    let sorting = r.int("sorting")?.unwrap_or(crate::domain::address::DEFAULT_SORTING.into());
    Ok(AddressType { key, title, sorting: i32::try_from(sorting).map_err(|_| "`sorting` is out of range")? })
}

/// `addresses`.
pub fn address(ctx: &Context, r: &Record) -> Mapped<Address> {
    let created_at = r.req_time("created_at", ctx.tz)?;
    Ok(Address {
        id: r.req_id("id")?,
        user_id: r.req_id("user_id")?,
        kind: r.req_text("type")?,
        is_default: r.flag("is_default", false)?,
        title: r.opt_text("title")?,
        fields: address_fields(ctx, r, "")?,
        created_at,
        updated_at: r.time("updated_at", ctx.tz)?.unwrap_or(created_at),
        deleted_at: r.time("deleted_at", ctx.tz)?,
    })
}

/// `address_change_requests`.
pub fn change_request(ctx: &Context, r: &Record) -> Mapped<AddressChangeRequest> {
    let status = match r.req_text("status")?.as_str() {
        "new" => ChangeRequestStatus::New,
        "accepted" => ChangeRequestStatus::Accepted,
        "rejected" => ChangeRequestStatus::Rejected,
        other => return Err(format!("status {other:?} is not new, accepted or rejected")),
    };
    let created_at = r.req_time("created_at", ctx.tz)?;
    Ok(AddressChangeRequest {
        id: r.req_id("id")?,
        user_id: r.req_id("user_id")?,
        kind: r.req_text("type")?,
        address_id: r.id("address_id")?,
        status,
        fields: address_fields(ctx, r, "")?,
        old: address_fields(ctx, r, "old_")?,
        created_at,
        updated_at: r.time("updated_at", ctx.tz)?.unwrap_or(created_at),
    })
}

/// `groups`.
pub fn group(ctx: &Context, r: &Record) -> Mapped<Group> {
    let name = crate::domain::group::group_name(&r.req_text("name")?).map_err(|e| e.to_string())?;
    let created_at = r.time("created_at", ctx.tz)?.unwrap_or_else(crate::domain::now);
    let sorting = r.int("sorting")?.unwrap_or(crate::domain::group::DEFAULT_SORTING.into());
    Ok(Group {
        id: r.req_id("id")?,
        name,
        sorting: i32::try_from(sorting).map_err(|_| "`sorting` is out of range")?,
        created_at,
        updated_at: r.time("updated_at", ctx.tz)?.unwrap_or(created_at),
    })
}

/// `device_tokens`.
pub fn device_token(ctx: &Context, r: &Record) -> Mapped<DeviceToken> {
    Ok(DeviceToken {
        id: r.req_id("id")?,
        digest: token_digest(r)?,
        device_id: r.text("device_id")?.unwrap_or_default(),
        created_at: r.req_time("created_at", ctx.tz)?,
        last_used_at: r.time("last_used_at", ctx.tz)?,
    })
}

/// `access_tokens`. The pairing with a device token is kept as REMP's id; the importer drops
/// it when that device token was not imported (REMP's `ON DELETE SET NULL`).
pub fn access_token(ctx: &Context, r: &Record) -> Mapped<AccessToken> {
    Ok(AccessToken {
        id: r.req_id("id")?,
        digest: token_digest(r)?,
        user_id: r.req_id("user_id")?,
        device_token_id: r.id("device_token_id")?,
        source: r.opt_text("source")?,
        method: None,
        ip: r.text("ip")?.unwrap_or_default(),
        user_agent: r.text("user_agent")?.unwrap_or_default(),
        created_at: r.req_time("created_at", ctx.tz)?,
        last_used_at: r.time("last_used_at", ctx.tz)?,
    })
}

/// `autologin_tokens`.
pub fn autologin_token(ctx: &Context, r: &Record) -> Mapped<AutologinToken> {
    let count = |column: &str, default: u32| -> Mapped<u32> {
        match r.int(column)? {
            None => Ok(default),
            Some(n) => u32::try_from(n).map_err(|_| format!("`{column}` is {n}, not a count")),
        }
    };
    let created_at = r.time("created_at", ctx.tz)?.unwrap_or_else(crate::domain::now);
    Ok(AutologinToken {
        id: r.req_id("id")?,
        digest: token_digest(r)?,
        user_id: r.id("user_id")?.ok_or("the token belongs to no user (`user_id` is NULL)")?,
        email: r.text("email")?.unwrap_or_default(),
        created_at,
        valid_from: r.time("valid_from", ctx.tz)?.unwrap_or(created_at),
        valid_to: r.req_time("valid_to", ctx.tz)?,
        used_count: count("used_count", 0)?,
        max_count: count("max_count", 1)?,
    })
}

/// `user_connected_accounts`.
pub fn connected_account(ctx: &Context, r: &Record) -> Mapped<ConnectedAccount> {
    let external_id = r.req_text("external_id")?;
    if external_id.is_empty() {
        return Err("`external_id` is empty".into());
    }
    Ok(ConnectedAccount {
        id: r.req_id("id")?,
        user_id: r.req_id("user_id")?,
        kind: r.req_text("type")?,
        external_id,
        email: r.opt_text("email")?,
        created_at: r.time("created_at", ctx.tz)?.unwrap_or_else(crate::domain::now),
    })
}

/// `login_attempts`.
pub fn login_attempt(ctx: &Context, r: &Record) -> Mapped<LoginAttempt> {
    let status = r.req_text("status")?;
    let status: LoginStatus = serde_json::from_value(serde_json::Value::String(status.clone()))
        .map_err(|_| format!("status {status:?} is not one of REMP's login statuses"))?;
    Ok(LoginAttempt {
        id: r.req_id("id")?,
        user_id: r.id("user_id")?,
        email: r.text("email")?.unwrap_or_default(),
        created_at: r.req_time("created_at", ctx.tz)?,
        status,
        source: r.text("source")?.unwrap_or_default(),
        ip: r.text("ip")?.unwrap_or_default(),
        user_agent: r.text("user_agent")?.unwrap_or_default(),
        message: r.opt_text("message")?,
    })
}

/// `change_passwords_logs`.
pub fn password_change(ctx: &Context, r: &Record) -> Mapped<PasswordChange> {
    let kind = match r.req_text("type")?.as_str() {
        "change" => PasswordChangeKind::Change,
        "reset" => PasswordChangeKind::Reset,
        "force" => PasswordChangeKind::Force,
        "suspicious" => PasswordChangeKind::Suspicious,
        "gift" => PasswordChangeKind::Gift,
        other => return Err(format!("type {other:?} is not change, reset, force, suspicious or gift")),
    };
    Ok(PasswordChange {
        id: r.req_id("id")?,
        user_id: r.req_id("user_id")?,
        kind,
        created_at: r.req_time("created_at", ctx.tz)?,
        from_hash: r.text("from_password")?.unwrap_or_default(),
        to_hash: r.text("to_password")?.unwrap_or_default(),
    })
}

/// REMP's API resources (`Module:HandlerClass` without `Handler`) and the route names they
/// open here. v1 and v2 handlers share a resource, as add and remove from group do.
pub const RESOURCE_ROUTES: &[(&str, &[&str])] = &[
    ("Users:UserInfo", &["user/info"]),
    ("Users:UsersLogin", &["users/login"]),
    ("Users:UsersLogout", &["users/logout"]),
    ("Users:UsersEmail", &["users/email"]),
    ("Users:UsersEmailCheck", &["users/email-check"]),
    ("Users:ValidateEmail", &["users/validate-email"]),
    ("Users:UsersCreate", &["users/create"]),
    ("Users:UsersUpdate", &["users/update"]),
    ("Users:UserGroupApi", &["users/add-to-group", "users/remove-from-group"]),
    ("Users:Addresses", &["users/addresses"]),
    ("Users:CreateAddress", &["users/address"]),
    ("Users:CreateAddressChangeRequest", &["users/change-address-request"]),
    ("Users:ListUsers", &["users/list"]),
    ("Users:UsersConfirmApi", &["users/confirm"]),
    ("Users:UserMetaList", &["user-meta/list"]),
    ("Users:UserMetaKeyUsers", &["user-meta/key-users"]),
    ("Users:UserMetaDelete", &["user-meta/delete"]),
    ("Users:UserMetaUpsert", &["user-meta/upsert"]),
    ("Users:AutoLoginTokenLoginApi", &["users/autologin-token-login"]),
    ("Users:GoogleTokenSignIn", &["users/google-token-sign-in"]),
    ("Users:AppleTokenSignIn", &["users/apple-token-sign-in"]),
    ("Users:DeleteUserApi", &["user/delete"]),
    ("Users:UserData", &["users/data"]),
    ("Users:GetDeviceTokenApi", &["users/get-device-token"]),
    ("Users:EmailValidationApi", &["users/set-email-validated", "users/set-email-invalidated"]),
    ("Users:UsersTouchApi", &["users/touch"]),
    ("Users:UserAddresses", &["user/addresses"]),
];

/// The route names a REMP resource opens, or `None` for another module's resource.
pub fn routes_of_resource(resource: &str) -> Option<&'static [&'static str]> {
    RESOURCE_ROUTES.iter().find(|(r, _)| *r == resource).map(|(_, routes)| *routes)
}

/// `api_tokens`, with the route names of the resources it was granted. A token limited to
/// some IPs is refused: crm-users cannot enforce that, and taking it without the limit would
/// widen what a leaked token can do.
pub fn api_token(ctx: &Context, r: &Record, routes: Vec<String>) -> Mapped<ApiToken> {
    let id = r.req_id("id")?;
    let restrictions = r.text("ip_restrictions")?.unwrap_or_default();
    if !matches!(restrictions.trim(), "" | "*") {
        return Err(format!(
            "ip_restrictions {restrictions:?} cannot be enforced by crm-users; create a new token for this integration"
        ));
    }
    Ok(ApiToken {
        id,
        digest: token_digest(r)?,
        name: r.opt_text("name")?.unwrap_or_else(|| format!("remp-{id}")),
        allowed_routes: routes,
        active: r.flag("active", true)?,
        created_at: r.time("created_at", ctx.tz)?.unwrap_or_else(crate::domain::now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pairs: &[(&str, Value)]) -> Record {
        Record(pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    fn text(s: &str) -> Value {
        Value::Bytes(s.as_bytes().to_vec())
    }

    fn ctx() -> Context {
        Context {
            tz: chrono_tz::Europe::Bratislava,
            default_locale: "sk_SK".into(),
            countries: HashMap::from([(7, 203)]),
        }
    }

    #[test]
    fn local_datetimes_become_utc_and_zero_dates_are_absent() {
        let r =
            record(&[("a", text("2025-08-20 10:20:30")), ("b", text("0000-00-00 00:00:00")), ("c", text("yesterday"))]);
        assert_eq!(
            r.time("a", chrono_tz::Europe::Bratislava).unwrap().unwrap().to_rfc3339(),
            "2025-08-20T08:20:30+00:00"
        );
        assert_eq!(r.time("b", chrono_tz::UTC).unwrap(), None);
        assert_eq!(r.time("missing", chrono_tz::UTC).unwrap(), None);
        assert_eq!(r.time("c", chrono_tz::UTC).unwrap_err(), "`c` is not a date and time");
        let typed = record(&[("d", Value::Date(2025, 1, 2, 3, 4, 5, 0))]);
        assert_eq!(typed.time("d", chrono_tz::UTC).unwrap().unwrap().to_rfc3339(), "2025-01-02T03:04:05+00:00");
    }

    #[test]
    fn users_keep_their_ids_hashes_and_defaults() {
        let hash = "$2y$10$abcdefghijklmnopqrstuuJ7y5tM4m8n1wS9wP8xJ0k4Z9bqS0f1e";
        let r = record(&[
            ("id", text("42")),
            ("email", text("jane@example.com")),
            ("password", text(hash)),
            ("role", text("admin")),
            ("active", text("1")),
            ("created_at", text("2024-01-01 12:00:00")),
            ("uuid", Value::NULL),
        ]);
        let u = user(&ctx(), &r).unwrap();
        assert_eq!((u.id, u.password_hash.as_str(), u.role, u.active), (42, hash, Role::Admin, true));
        assert_eq!(
            (u.public_name.as_str(), u.locale.as_str(), u.source.as_str()),
            ("jane@example.com", "sk_SK", "unknown")
        );
        assert_eq!(u.uuid, "");
        assert_eq!(u.modified_at, u.created_at);
        let bad = record(&[("id", text("1")), ("email", text(" ")), ("created_at", text("2024-01-01 12:00:00"))]);
        assert!(user(&ctx(), &bad).unwrap_err().contains("empty"));
        let role = record(&[("id", text("1")), ("email", text("a@b.sk")), ("role", text("root"))]);
        assert!(user(&ctx(), &role).unwrap_err().contains("role"));
    }

    #[test]
    fn tokens_must_have_remps_format() {
        let good = record(&[
            ("id", text("3")),
            ("token", text("0123456789abcdef0123456789abcdef")),
            ("user_id", text("1")),
            ("created_at", text("2024-01-01 00:00:00")),
        ]);
        let t = access_token(&ctx(), &good).unwrap();
        assert_eq!(t.digest, TokenDigest::of("0123456789abcdef0123456789abcdef"));
        let bad = record(&[("id", text("3")), ("token", text("short")), ("user_id", text("1"))]);
        assert!(access_token(&ctx(), &bad).unwrap_err().contains("32 hex"));
    }

    #[test]
    fn addresses_map_countries_and_the_old_street_column() {
        let r = record(&[
            ("id", text("5")),
            ("user_id", text("1")),
            ("type", text("invoice")),
            ("address", text("Main")),
            ("country_id", text("7")),
            ("company_id", text("12 34")),
            ("created_at", text("2024-01-01 00:00:00")),
        ]);
        let a = address(&ctx(), &r).unwrap();
        assert_eq!(a.fields.street.as_deref(), Some("Main"));
        assert_eq!(a.fields.country_id, Some(203));
        assert_eq!(a.fields.company_id.as_deref(), Some("1234"));
        let unknown = record(&[
            ("id", text("5")),
            ("user_id", text("1")),
            ("type", text("x")),
            ("country_id", text("9")),
            ("created_at", text("2024-01-01 00:00:00")),
        ]);
        assert!(address(&ctx(), &unknown).unwrap_err().contains("country"));
    }

    #[test]
    fn resources_map_to_route_names_and_ip_limited_tokens_are_refused() {
        assert_eq!(
            routes_of_resource("Users:UserGroupApi"),
            Some(&["users/add-to-group", "users/remove-from-group"][..])
        );
        assert_eq!(routes_of_resource("Subscriptions:Foo"), None);
        for (_, routes) in RESOURCE_ROUTES {
            for r in *routes {
                assert!(crate::service::tokens::ROUTE_NAMES.contains(r), "{r} is no route name");
            }
        }
        let r = record(&[
            ("id", text("2")),
            ("token", text("0123456789abcdef0123456789abcdef")),
            ("ip_restrictions", text("10.0.0.1")),
        ]);
        assert!(api_token(&ctx(), &r, vec![]).unwrap_err().contains("ip_restrictions"));
    }
}
