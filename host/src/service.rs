//! Use cases: registration, sign-in, tokens, account changes. Each takes domain values, works
//! through the store, and publishes events once the change is durable. HTTP and byte layouts
//! stay outside.

pub mod accounts;
pub mod addresses;
pub mod auth;
pub mod autologin;
pub mod dashboard;
pub mod directory;
pub mod email_validation;
pub mod events;
pub mod extensions;
pub mod groups;
pub mod meta;
pub mod passwords;
pub mod roles;
pub mod sso;
pub mod tokens;
pub mod user_admin;

use crate::domain::{
    Result,
    address::{AddressType, Country, countries, country_by_iso},
    email::EmailValidator,
    user::User,
};
use crate::plugins::PluginHost;
use crate::store::Store;
use auth::Authenticator;
use events::EventBus;
use passwords::PasswordHasher;
use std::sync::Arc;
use std::time::Duration;

/// REMP's brute-force rule (`IpRateLimit`, `WrongPasswordRateLimit`), bounded per hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    /// Consecutive failed attempts that trigger the limit (REMP: 10).
    pub attempts: usize,
    /// How long the limit holds after the latest attempt (REMP: 10 s).
    pub window: Duration,
    /// Wrong passwords evaluated per account per hour at most, whatever the pace; REMP's rule
    /// alone lets a patient attacker try 3,600 passwords an hour.
    pub max_guesses_per_hour: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits { attempts: 10, window: Duration::from_secs(10), max_guesses_per_hour: 100 }
    }
}

/// Settings the use cases need; validated before they get here.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Locale for users registered without one.
    pub default_locale: String,
    pub login_limits: LoginLimits,
    /// Country of addresses given without one (REMP `users.countries.default`).
    pub default_country: Country,
    /// Address types from the config file.
    pub address_types: Vec<AddressType>,
}

/// REMP's default country.
pub const DEFAULT_COUNTRY: &str = "SK";

impl Default for ServiceConfig {
    fn default() -> Self {
        // The shipped list holds SK (a unit test checks it); the fallback only keeps this total.
        let default_country = country_by_iso(DEFAULT_COUNTRY)
            .or_else(|| countries().first().copied())
            .unwrap_or(Country { id: 0, iso_code: DEFAULT_COUNTRY, name: "Slovakia" });
        ServiceConfig {
            default_locale: "en_US".into(),
            login_limits: LoginLimits::default(),
            default_country,
            address_types: Vec::new(),
        }
    }
}

/// Everything the use cases share. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub events: EventBus,
    pub passwords: PasswordHasher,
    pub email: Arc<EmailValidator>,
    pub config: Arc<ServiceConfig>,
    pub plugins: Arc<PluginHost>,
    /// Google and Apple key sources for ID-token sign-in.
    pub sso: Arc<sso::SsoProviders>,
    /// The built-in authenticators; plugin authenticators join them per sign-in.
    authenticators: Arc<Vec<Arc<dyn Authenticator>>>,
    /// Address types the current plugin set describes.
    plugin_types: Arc<addresses::PluginTypeCache>,
    /// Counters for `/metrics` (requests, sign-in outcomes).
    pub metrics: Arc<crate::metrics::Metrics>,
    /// One password check per account at a time (the hourly guess cap holds under concurrency).
    account_locks: Arc<auth::AccountLocks>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

impl Services {
    pub fn new(
        store: Arc<dyn Store>,
        passwords: PasswordHasher,
        email: EmailValidator,
        config: ServiceConfig,
        plugins: Arc<PluginHost>,
        sso: Arc<sso::SsoProviders>,
    ) -> Self {
        let authenticators: Vec<Arc<dyn Authenticator>> =
            vec![Arc::new(autologin::AutologinAuthenticator), Arc::new(auth::PasswordAuthenticator)];
        Services {
            store,
            events: EventBus::new(),
            passwords,
            email: Arc::new(email),
            config: Arc::new(config),
            plugins,
            sso,
            authenticators: Arc::new(authenticators),
            plugin_types: Arc::default(),
            metrics: Arc::default(),
            account_locks: Arc::default(),
        }
    }

    /// Whether the user is unclaimed (meta `unclaimed_user` truthy).
    pub async fn is_unclaimed(&self, user: &User) -> Result<bool> {
        Ok(self
            .store
            .meta_entry(user.id, crate::domain::meta::UNCLAIMED_USER)
            .await?
            .is_some_and(|m| crate::domain::meta::is_truthy(&m.value)))
    }

    /// The user's public meta as `(key, value)`, newest first (REMP sorts by `created_at DESC`).
    pub async fn public_meta(&self, user_id: u64) -> Result<Vec<(String, String)>> {
        Ok(self.public_meta_entries(&[user_id], None).await?.into_iter().map(|m| (m.key, m.value)).collect())
    }
}
