//! The values that cross between crm-users and a plugin, as plain Rust types with constructors.
//! They mirror the WIT records one to one; the mapping to the generated bindings lives in
//! `convert.rs`, not here.

use std::fmt;

/// A user as plugins see it. Password hashes and tokens never cross into a plugin.
///
/// ```
/// # use crm_users_guest::User;
/// fn greeting(user: &User) -> String {
///     match &user.first_name {
///         Some(name) => format!("Hello {name}"),
///         None => format!("Hello {}", user.email),
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The numeric id (REMP `users.id`).
    pub id: u64,
    /// The public UUID.
    pub uuid: String,
    /// The email address, as stored.
    pub email: String,
    /// First name, when the user gave one.
    pub first_name: Option<String>,
    /// Last name, when the user gave one.
    pub last_name: Option<String>,
    /// `user` or `admin`.
    pub role: String,
    /// Whether the account may sign in at all.
    pub active: bool,
    /// Whether the user confirmed their email (REMP `confirmed_at` is set).
    pub confirmed: bool,
    /// The user's locale, e.g. `sk_SK`.
    pub locale: String,
    /// Where the user registered from (REMP `users.source`).
    pub source: String,
}

impl User {
    /// Whether the user's role is `admin`.
    ///
    /// ```
    /// # use crm_users_guest::{Decision, SignIn};
    /// fn check(event: &SignIn) -> Decision {
    ///     if event.user.is_admin() && event.method != "google" {
    ///         return Decision::deny("Admins sign in with Google");
    ///     }
    ///     Decision::allow()
    /// }
    /// ```
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

/// One user meta entry.
///
/// ```
/// # use crm_users_guest::MetaEntry;
/// let private = MetaEntry::new("last_plugin_check", "2025-01-01");
/// let public = MetaEntry::public("newsletter", "weekly");
/// assert!(!private.is_public && public.is_public);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaEntry {
    /// The meta key.
    pub key: String,
    /// The meta value.
    pub value: String,
    /// Whether REMP's public meta listings show the entry.
    pub is_public: bool,
}

impl MetaEntry {
    /// A private entry (REMP's default).
    ///
    /// ```
    /// # use crm_users_guest::MetaEntry;
    /// let entry = MetaEntry::new("legacy_auth", "1");
    /// ```
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self { key: key.into(), value: value.into(), is_public: false }
    }

    /// A public entry.
    ///
    /// ```
    /// # use crm_users_guest::MetaEntry;
    /// let entry = MetaEntry::public("newsletter", "weekly");
    /// ```
    pub fn public(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self { key: key.into(), value: value.into(), is_public: true }
    }
}

/// What the client sent to sign in.
///
/// `Debug` prints the password as `<redacted>`, so logging credentials does not leak it.
///
/// ```
/// # use crm_users_guest::Credentials;
/// fn wants_me(credentials: &Credentials) -> bool {
///     credentials.password.is_some() && credentials.source.starts_with("api")
/// }
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The `email` field of `users/login`.
    pub username: Option<String>,
    /// The password, when the client sent one.
    pub password: Option<String>,
    /// `api`, `api+<source>`, `web`, ...: the client's `source`, as REMP builds it.
    pub source: String,
    /// The client's IP address.
    pub ip: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
    /// Every other request parameter, for credentials of the plugin's own kind.
    pub extra: Vec<(String, String)>,
}

impl Credentials {
    /// The first value of the request parameter `name` among [`Credentials::extra`].
    ///
    /// ```
    /// # use crm_users_guest::{Credentials, Failure, Outcome};
    /// fn authenticate(credentials: Credentials) -> Result<Outcome, Failure> {
    ///     match credentials.extra_param("magic_user_id") {
    ///         Some(id) => id
    ///             .parse()
    ///             .map(Outcome::Existing)
    ///             .map_err(|_| Failure::invalid_credential("bad user id")),
    ///         None => Ok(Outcome::Skip),
    ///     }
    /// }
    /// ```
    pub fn extra_param(&self, name: &str) -> Option<&str> {
        self.extra.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("source", &self.source)
            .field("ip", &self.ip)
            .field("user_agent", &self.user_agent)
            .field("extra", &self.extra)
            .finish()
    }
}

/// A user to create on first sign-in; see [`Outcome::Provision`].
///
/// ```
/// # use crm_users_guest::{NewUser, Outcome};
/// let outcome = Outcome::Provision(
///     NewUser::new("ada@example.com").with_name("Ada", "Lovelace").with_meta("legacy_auth", "1"),
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewUser {
    /// The email to sign in, or to register when no user has it.
    pub email: String,
    /// First name for a newly created user.
    pub first_name: Option<String>,
    /// Last name for a newly created user.
    pub last_name: Option<String>,
    /// Meta entries to set on the new user (not public).
    pub meta: Vec<(String, String)>,
}

impl NewUser {
    /// A user known only by email.
    ///
    /// ```
    /// # use crm_users_guest::NewUser;
    /// let user = NewUser::new("ada@example.com");
    /// ```
    pub fn new(email: impl Into<String>) -> Self {
        Self { email: email.into(), ..Self::default() }
    }

    /// Sets first and last name; empty strings are left out.
    ///
    /// ```
    /// # use crm_users_guest::NewUser;
    /// let user = NewUser::new("ada@example.com").with_name("Ada", "");
    /// assert_eq!(user.last_name, None);
    /// ```
    pub fn with_name(mut self, first_name: impl Into<String>, last_name: impl Into<String>) -> Self {
        self.first_name = Some(first_name.into()).filter(|name| !name.is_empty());
        self.last_name = Some(last_name.into()).filter(|name| !name.is_empty());
        self
    }

    /// Adds a meta entry to set on the new user.
    ///
    /// ```
    /// # use crm_users_guest::NewUser;
    /// let user = NewUser::new("ada@example.com").with_meta("legacy_auth", "1");
    /// ```
    pub fn with_meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.push((key.into(), value.into()));
        self
    }
}

/// What an authenticator decided about credentials it did not refuse.
///
/// ```
/// # use crm_users_guest::{NewUser, Outcome};
/// let not_mine = Outcome::Skip;
/// let signed_in = Outcome::Existing(42);
/// let created = Outcome::Provision(NewUser::new("ada@example.com"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not credentials of this authenticator: the chain goes on.
    Skip,
    /// The user with this id is signed in.
    Existing(u64),
    /// Sign in the user with this email, creating it if it does not exist.
    Provision(NewUser),
}

/// REMP's authentication exception codes.
///
/// ```
/// # use crm_users_guest::{Failure, FailureKind};
/// let failure = Failure::new(FailureKind::NotApproved, "Use single sign-on");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Unknown identity or disabled account (code 1).
    IdentityNotFound,
    /// Wrong secret (code 2).
    InvalidCredential,
    /// Any other refusal (code 3).
    Failure,
    /// The account may not sign in this way (code 4).
    NotApproved,
}

/// An authenticator's refusal. The chain keeps the first refusal and goes on.
///
/// ```
/// # use crm_users_guest::{Failure, FailureKind};
/// let wrong_password = Failure::invalid_credential("Wrong email or password");
/// assert_eq!(wrong_password.kind, FailureKind::InvalidCredential);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which REMP code the refusal maps to.
    pub kind: FailureKind,
    /// Shown to the client.
    pub message: String,
}

impl Failure {
    /// A refusal of any kind.
    ///
    /// ```
    /// # use crm_users_guest::{Failure, FailureKind};
    /// let failure = Failure::new(FailureKind::Failure, "Directory unavailable");
    /// ```
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }

    /// Unknown identity or disabled account.
    ///
    /// ```
    /// # use crm_users_guest::Failure;
    /// let failure = Failure::identity_not_found("No such user");
    /// ```
    pub fn identity_not_found(message: impl Into<String>) -> Self {
        Self::new(FailureKind::IdentityNotFound, message)
    }

    /// Wrong secret.
    ///
    /// ```
    /// # use crm_users_guest::Failure;
    /// let failure = Failure::invalid_credential("Wrong email or password");
    /// ```
    pub fn invalid_credential(message: impl Into<String>) -> Self {
        Self::new(FailureKind::InvalidCredential, message)
    }

    /// Any other refusal ([`FailureKind::Failure`]), e.g. a backend that cannot be reached.
    ///
    /// ```
    /// # use crm_users_guest::Failure;
    /// let failure = Failure::other("Legacy directory unavailable");
    /// ```
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Failure, message)
    }

    /// The account may not sign in this way.
    ///
    /// ```
    /// # use crm_users_guest::Failure;
    /// let failure = Failure::not_approved("Sign in with Google");
    /// ```
    pub fn not_approved(message: impl Into<String>) -> Self {
        Self::new(FailureKind::NotApproved, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// A successful sign-in, before the access token is issued.
///
/// ```
/// # use crm_users_guest::SignIn;
/// fn from_google(event: &SignIn) -> bool {
///     event.method == "google"
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignIn {
    /// The user who signed in.
    pub user: User,
    /// `api`, `api+<source>`, `web+google_sso`, ...
    pub source: String,
    /// Which authenticator signed the user in: `password`, `autologin-token`, `google`,
    /// `apple`, or a plugin's name.
    pub method: String,
    /// The client's IP address.
    pub ip: String,
    /// The client's `User-Agent`.
    pub user_agent: String,
}

/// Whether a sign-in goes ahead.
///
/// ```
/// # use crm_users_guest::Verdict;
/// let verdict = Verdict::Deny("Not from this network".into());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The sign-in goes ahead.
    Allow,
    /// Refuse the sign-in; the reason is shown to the client.
    Deny(String),
}

/// A sign-in handler's answer: a verdict, and meta entries to set when it allows.
///
/// ```
/// # use crm_users_guest::{Decision, MetaEntry};
/// let allowed = Decision::allow().with_meta(MetaEntry::new("last_sign_in_check", "ok"));
/// let denied = Decision::deny("Admins must sign in with Google");
/// assert!(allowed.is_allowed() && !denied.is_allowed());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allow or deny.
    pub verdict: Verdict,
    /// Meta entries to set on the user when the sign-in is allowed.
    pub set_meta: Vec<MetaEntry>,
}

impl Decision {
    /// Let the sign-in go ahead.
    ///
    /// ```
    /// # use crm_users_guest::Decision;
    /// let decision = Decision::allow();
    /// ```
    pub fn allow() -> Self {
        Self { verdict: Verdict::Allow, set_meta: Vec::new() }
    }

    /// Refuse the sign-in with a reason shown to the client.
    ///
    /// ```
    /// # use crm_users_guest::Decision;
    /// let decision = Decision::deny("Sign-ins are closed for maintenance");
    /// ```
    pub fn deny(reason: impl Into<String>) -> Self {
        Self { verdict: Verdict::Deny(reason.into()), set_meta: Vec::new() }
    }

    /// Adds a meta entry to set on the user if the sign-in is allowed.
    ///
    /// ```
    /// # use crm_users_guest::{Decision, MetaEntry};
    /// let decision = Decision::allow().with_meta(MetaEntry::new("checked_by", "my-plugin"));
    /// ```
    pub fn with_meta(mut self, entry: MetaEntry) -> Self {
        self.set_meta.push(entry);
        self
    }

    /// Whether the verdict is [`Verdict::Allow`].
    ///
    /// ```
    /// # use crm_users_guest::Decision;
    /// assert!(Decision::allow().is_allowed());
    /// ```
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}

/// How an address type presents itself.
///
/// ```
/// # use crm_users_guest::TypeInfo;
/// let info = TypeInfo::new("invoice", "Invoice address").with_sorting(10);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeInfo {
    /// The type's key, e.g. `invoice`: lowercase letters, digits, `-` and `_`.
    pub name: String,
    /// A human title, e.g. `Invoice address`.
    pub title: String,
    /// Sort order among address types (REMP `sorting`).
    pub sorting: i32,
}

impl TypeInfo {
    /// A type with sort order 0.
    ///
    /// ```
    /// # use crm_users_guest::TypeInfo;
    /// let info = TypeInfo::new("invoice", "Invoice address");
    /// ```
    pub fn new(name: impl Into<String>, title: impl Into<String>) -> Self {
        Self { name: name.into(), title: title.into(), sorting: 0 }
    }

    /// Sets the sort order among address types.
    ///
    /// ```
    /// # use crm_users_guest::TypeInfo;
    /// let info = TypeInfo::new("invoice", "Invoice address").with_sorting(10);
    /// ```
    pub fn with_sorting(mut self, sorting: i32) -> Self {
        self.sorting = sorting;
        self
    }
}

/// An address as REMP's routes carry it; every field optional.
///
/// ```
/// # use crm_users_guest::Address;
/// let address = Address {
///     first_name: Some("Ada".into()),
///     city: Some("Bratislava".into()),
///     ..Address::default()
/// };
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Address {
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Company name.
    pub company_name: Option<String>,
    /// Street name.
    pub street: Option<String>,
    /// House number.
    pub number: Option<String>,
    /// Postal code.
    pub zip: Option<String>,
    /// City.
    pub city: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country_iso: Option<String>,
    /// Phone number.
    pub phone_number: Option<String>,
    /// Company registration number (IČO).
    pub company_id: Option<String>,
    /// Tax id (DIČ).
    pub company_tax_id: Option<String>,
    /// VAT id (IČ DPH).
    pub company_vat_id: Option<String>,
}

impl Address {
    /// REMP's `address_string`: `First Last, Street Number, Zip City, ISO`, leaving out empty
    /// parts. [`AddressType::format`](crate::AddressType::format) returns this by default.
    ///
    /// ```
    /// # use crm_users_guest::Address;
    /// let address = Address {
    ///     first_name: Some("Ada".into()),
    ///     last_name: Some("Lovelace".into()),
    ///     zip: Some("811 01".into()),
    ///     city: Some("Bratislava".into()),
    ///     country_iso: Some("SK".into()),
    ///     ..Address::default()
    /// };
    /// assert_eq!(address.remp_string(), "Ada Lovelace, 811 01 Bratislava, SK");
    /// ```
    pub fn remp_string(&self) -> String {
        let name = join_parts(" ", [self.first_name.as_deref(), self.last_name.as_deref()]);
        let street = join_parts(" ", [self.street.as_deref(), self.number.as_deref()]);
        let place = join_parts(" ", [self.zip.as_deref(), self.city.as_deref()]);
        join_parts(
            ", ",
            [Some(name.as_str()), Some(street.as_str()), Some(place.as_str()), self.country_iso.as_deref()],
        )
    }
}

/// Joins the parts that are not blank with `separator`, each trimmed.
fn join_parts<'a>(separator: &str, parts: impl IntoIterator<Item = Option<&'a str>>) -> String {
    parts.into_iter().flatten().map(str::trim).filter(|part| !part.is_empty()).collect::<Vec<_>>().join(separator)
}

/// One rejected address field.
///
/// ```
/// # use crm_users_guest::FieldError;
/// let error = FieldError::new("zip", "Enter a postal code");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The field's snake_case name, e.g. `company_vat_id`.
    pub field: String,
    /// What is wrong, shown to the client.
    pub message: String,
}

impl FieldError {
    /// An error for `field`.
    ///
    /// ```
    /// # use crm_users_guest::FieldError;
    /// let error = FieldError::new("city", "Enter a city");
    /// ```
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

/// A domain event, delivered after it happened.
///
/// ```
/// # use crm_users_guest::Event;
/// fn is_registration(event: &Event) -> bool {
///     event.name == "user_registered"
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// REMP's event code: `user_registered`, `user_sign_in`, `user_meta`, ...
    pub name: String,
    /// The user the event is about, when there is one.
    pub user_id: Option<u64>,
    /// When it happened, RFC 3339, UTC.
    pub at: String,
    /// The event's fields as a JSON object.
    pub payload: String,
}

/// Severity of a line written with [`host::log`](crate::host::log).
///
/// ```no_run
/// # use crm_users_guest::{host, LogLevel};
/// host::log(LogLevel::Debug, "cache warmed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// Something failed.
    Error,
}

/// Why a host call failed.
///
/// ```no_run
/// # use crm_users_guest::{host, HostError};
/// match host::kv::get("count") {
///     Ok(value) => { /* ... */ }
///     Err(HostError::Denied(why)) => host::error(format!("add \"kv\" to capabilities: {why}")),
///     Err(other) => host::warn(other.to_string()),
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The plugin's manifest was not granted the capability the call needs.
    Denied(String),
    /// The input was not acceptable (e.g. a key or value too large).
    Invalid(String),
    /// The host could not serve the call right now (storage failure); retrying may help.
    Unavailable(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Denied(why) => write!(f, "denied: {why}"),
            Self::Invalid(why) => write!(f, "invalid: {why}"),
            Self::Unavailable(why) => write!(f, "unavailable: {why}"),
        }
    }
}

impl std::error::Error for HostError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remp_string_skips_empty_parts() {
        let address = Address {
            first_name: Some("Ada".into()),
            last_name: Some(" ".into()),
            street: Some("Main".into()),
            number: Some("1".into()),
            city: Some("Brno".into()),
            ..Address::default()
        };
        assert_eq!(address.remp_string(), "Ada, Main 1, Brno");
        assert_eq!(Address::default().remp_string(), "");
    }

    #[test]
    fn credentials_debug_hides_the_password() {
        let credentials = Credentials {
            username: Some("a@b.c".into()),
            password: Some("hunter2".into()),
            source: "api".into(),
            ip: String::new(),
            user_agent: String::new(),
            extra: Vec::new(),
        };
        assert!(!format!("{credentials:?}").contains("hunter2"));
    }
}
