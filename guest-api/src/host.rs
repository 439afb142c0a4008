//! What crm-users offers every plugin: logging, the manifest's `[config]`, a plugin-scoped
//! key-value store and user lookups. Each call is checked against the capabilities the
//! operator granted in the plugin's manifest; a call without its capability returns
//! [`HostError::Denied`]. Outbound HTTP is in [`crate::http`], not here.

use crate::convert;
use crate::types::{HostError, LogLevel, MetaEntry, User};
use crate::wit::authenticator::crm::users::host as wit;

/// Writes a line to the host's log, tagged with the plugin's name and version.
///
/// ```no_run
/// # use crm_users_guest::{host, LogLevel};
/// host::log(LogLevel::Debug, "cache warmed");
/// ```
pub fn log(level: LogLevel, message: impl AsRef<str>) {
    wit::log(convert::log_level_to_wit(level), message.as_ref());
}

/// Logs at [`LogLevel::Debug`].
///
/// ```no_run
/// # use crm_users_guest::host;
/// host::debug("looking the user up");
/// ```
pub fn debug(message: impl AsRef<str>) {
    log(LogLevel::Debug, message);
}

/// Logs at [`LogLevel::Info`].
///
/// ```no_run
/// # use crm_users_guest::host;
/// host::info(format!("{} domains blocked", 3));
/// ```
pub fn info(message: impl AsRef<str>) {
    log(LogLevel::Info, message);
}

/// Logs at [`LogLevel::Warn`].
///
/// ```no_run
/// # use crm_users_guest::host;
/// host::warn("config `url` is missing; skipping");
/// ```
pub fn warn(message: impl AsRef<str>) {
    log(LogLevel::Warn, message);
}

/// Logs at [`LogLevel::Error`].
///
/// ```no_run
/// # use crm_users_guest::host;
/// host::error("the legacy directory answered 500");
/// ```
pub fn error(message: impl AsRef<str>) {
    log(LogLevel::Error, message);
}

/// A value from the `[config]` table of the plugin's manifest. Needs no capability.
///
/// ```no_run
/// # use crm_users_guest::host;
/// let domains = host::config("domains").unwrap_or_default();
/// ```
pub fn config(key: impl AsRef<str>) -> Option<String> {
    wit::config_get(key.as_ref())
}

/// The plugin's own key-value store (capability `kv`). Keys up to 256 bytes, values up to
/// 64 KiB; other plugins cannot see them.
///
/// ```no_run
/// # use crm_users_guest::{host::kv, HostError};
/// # fn run() -> Result<(), HostError> {
/// let seen = kv::get("seen")?.map(|bytes| bytes.len()).unwrap_or(0);
/// kv::set("seen", "x".repeat(seen + 1))?;
/// # Ok(()) }
/// ```
pub mod kv {
    use super::{HostError, convert, wit};

    /// The value stored under `key`, if any.
    ///
    /// ```no_run
    /// # use crm_users_guest::host::kv;
    /// let last = kv::get("last_event")?;
    /// # Ok::<(), crm_users_guest::HostError>(())
    /// ```
    pub fn get(key: impl AsRef<str>) -> Result<Option<Vec<u8>>, HostError> {
        wit::kv_get(key.as_ref()).map_err(convert::host_error)
    }

    /// The value under `key` as UTF-8 text; a value that is not UTF-8 is an
    /// [`HostError::Invalid`].
    ///
    /// ```no_run
    /// # use crm_users_guest::host::kv;
    /// let count: u64 = kv::get_string("count")?.and_then(|s| s.parse().ok()).unwrap_or(0);
    /// # Ok::<(), crm_users_guest::HostError>(())
    /// ```
    pub fn get_string(key: impl AsRef<str>) -> Result<Option<String>, HostError> {
        get(key)?
            .map(|bytes| String::from_utf8(bytes).map_err(|_| HostError::Invalid("value is not UTF-8".into())))
            .transpose()
    }

    /// Stores `value` under `key`, replacing what was there.
    ///
    /// ```no_run
    /// # use crm_users_guest::host::kv;
    /// kv::set("count", 1.to_string())?;
    /// kv::set("raw", [0u8, 1, 2])?;
    /// # Ok::<(), crm_users_guest::HostError>(())
    /// ```
    pub fn set(key: impl AsRef<str>, value: impl AsRef<[u8]>) -> Result<(), HostError> {
        wit::kv_set(key.as_ref(), value.as_ref()).map_err(convert::host_error)
    }

    /// Removes `key`; removing a missing key is not an error.
    ///
    /// ```no_run
    /// # use crm_users_guest::host::kv;
    /// kv::delete("count")?;
    /// # Ok::<(), crm_users_guest::HostError>(())
    /// ```
    pub fn delete(key: impl AsRef<str>) -> Result<(), HostError> {
        wit::kv_delete(key.as_ref()).map_err(convert::host_error)
    }
}

/// User lookups (capability `users:read`).
///
/// ```no_run
/// # use crm_users_guest::host::users;
/// if let Some(user) = users::by_email("ada@example.com")? {
///     let meta = users::meta(user.id)?;
/// }
/// # Ok::<(), crm_users_guest::HostError>(())
/// ```
pub mod users {
    use super::{HostError, MetaEntry, User, convert, wit};

    /// The user with this id, if any.
    ///
    /// ```no_run
    /// # use crm_users_guest::host::users;
    /// let user = users::by_id(42)?;
    /// # Ok::<(), crm_users_guest::HostError>(())
    /// ```
    pub fn by_id(id: u64) -> Result<Option<User>, HostError> {
        wit::user_by_id(id).map(|user| user.map(convert::user)).map_err(convert::host_error)
    }

    /// The user with this email, if any.
    ///
    /// ```no_run
    /// # use crm_users_guest::host::users;
    /// let user = users::by_email("ada@example.com")?;
    /// # Ok::<(), crm_users_guest::HostError>(())
    /// ```
    pub fn by_email(email: impl AsRef<str>) -> Result<Option<User>, HostError> {
        wit::user_by_email(email.as_ref()).map(|user| user.map(convert::user)).map_err(convert::host_error)
    }

    /// Every meta entry of the user, public or not.
    ///
    /// ```no_run
    /// # use crm_users_guest::host::users;
    /// let public: Vec<_> = users::meta(42)?.into_iter().filter(|e| e.is_public).collect();
    /// # Ok::<(), crm_users_guest::HostError>(())
    /// ```
    pub fn meta(id: u64) -> Result<Vec<MetaEntry>, HostError> {
        wit::user_meta(id)
            .map(|entries| entries.into_iter().map(convert::meta_entry).collect())
            .map_err(convert::host_error)
    }

    /// The value of one meta key of the user, if set.
    ///
    /// ```no_run
    /// # use crm_users_guest::host::users;
    /// let allowed = users::meta_value(42, "secure_login_allowed")?.is_some_and(|v| v == "1");
    /// # Ok::<(), crm_users_guest::HostError>(())
    /// ```
    pub fn meta_value(id: u64, key: impl AsRef<str>) -> Result<Option<String>, HostError> {
        let key = key.as_ref();
        Ok(meta(id)?.into_iter().find(|entry| entry.key == key).map(|entry| entry.value))
    }
}
