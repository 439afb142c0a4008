//! Configuration: a TOML file (unknown keys rejected), overridden by `CRM_USERS_*` environment
//! variables and flags, validated once into [`Config`]. Everything after this sees valid values.

use crate::api::ApiSettings;
use crate::domain::address::{AddressType, DEFAULT_SORTING, MAX_TITLE_LEN, country_by_iso, is_type_key};
use crate::service::{DEFAULT_COUNTRY, LoginLimits, ServiceConfig, passwords::HashCost, sso::ProviderConfig};
use crate::store::StoreLocation;
use crate::store::postgres::{DEFAULT_POOL_SIZE, PostgresOptions};
use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where the service listens when nothing says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Where data lives when nothing says otherwise.
pub const DEFAULT_DATA: &str = "./data";
/// Where plugins are loaded from when nothing says otherwise.
pub const DEFAULT_PLUGINS: &str = "./plugins.d";

/// The config file as written. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on, e.g. `127.0.0.1:8080` (`127.0.0.1:0` picks a free port).
    pub listen: Option<String>,
    /// Data folder.
    pub data: Option<PathBuf>,
    /// Plugins folder: one subfolder per plugin with `plugin.toml` and its component.
    pub plugins: Option<PathBuf>,
    /// Reload plugins when the folder changes (default true); SIGHUP and the API always work.
    pub watch_plugins: Option<bool>,
    /// Storage backend: `sled` (embedded, in the data folder; the default) or `postgres`
    /// (several hosts on one database; the default when `database_url` is given).
    pub storage: Option<String>,
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` of the PostgreSQL database (storage = postgres).
    /// `?options=-csearch_path%3DNAME` keeps the tables in schema NAME, created if missing.
    pub database_url: Option<String>,
    /// Connections this host keeps to PostgreSQL for queries, and at most as many again for
    /// the per-account locks sign-ins hold while a password is checked. Default 16.
    pub database_pool_size: Option<usize>,
    /// How writes to sled become durable: `group` (default; concurrent writes share one
    /// flush) or `each-write` (every write flushes alone; slower, kept for comparison).
    pub commit: Option<String>,
    /// IANA zone dates are rendered in, e.g. `Europe/Bratislava`. Default `UTC`.
    pub timezone: Option<String>,
    /// Locale of users registered without one. Default `en_US`.
    pub default_locale: Option<String>,
    /// Largest request body in bytes. Default 1 MiB.
    pub max_body_bytes: Option<usize>,
    /// Trust `Client-IP` / `X-Forwarded-For` for the client address. Default false.
    pub trust_forwarded_headers: Option<bool>,
    /// Log lines as `text` (default) or `json`; read by the command line before logging starts.
    pub log_format: Option<String>,
    #[serde(default)]
    pub email: RawEmail,
    #[serde(default)]
    pub passwords: RawPasswords,
    #[serde(default)]
    pub login: RawLogin,
    #[serde(default)]
    pub sso: RawSso,
    /// ISO 3166-1 alpha-2 code of the country of addresses given without one. Default `SK`.
    pub default_country: Option<String>,
    /// `[[address_types]]`: address types known without storing them (REMP seeds rows).
    #[serde(default)]
    pub address_types: Vec<RawAddressType>,
}

/// `[sso.google]` and `[sso.apple]`: ID-token sign-in.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSso {
    pub google: Option<RawProvider>,
    pub apple: Option<RawProvider>,
}

/// One identity provider. Without `client_ids` its sign-in answers `sso_disabled`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// Accepted `aud` values (your OAuth client ids).
    #[serde(default)]
    pub client_ids: Vec<String>,
    /// Accepted `iss` values; the provider's own by default.
    pub issuers: Option<Vec<String>>,
    /// Where the signing keys are published; the provider's own by default.
    pub jwks_url: Option<String>,
    /// Google only: the OAuth token endpoint for `gsi_auth_code`.
    pub token_url: Option<String>,
    /// Google only: the OAuth client secret for `gsi_auth_code`.
    pub client_secret: Option<String>,
    /// Google only: the redirect URI registered for the non-popup `gsi_auth_code` flow.
    pub redirect_uri: Option<String>,
}

impl RawProvider {
    fn validate(self, name: &str, defaults: ProviderConfig) -> anyhow::Result<ProviderConfig> {
        let url_ok = |u: &str| u.starts_with("https://") || u.starts_with("http://");
        let jwks_url = self.jwks_url.unwrap_or(defaults.jwks_url);
        if !url_ok(&jwks_url) {
            bail!("[sso.{name}] jwks_url must be an http(s) URL");
        }
        let token_url = self.token_url.or(defaults.token_url);
        if token_url.as_deref().is_some_and(|u| !url_ok(u)) {
            bail!("[sso.{name}] token_url must be an http(s) URL");
        }
        let issuers = self.issuers.unwrap_or(defaults.issuers);
        if issuers.is_empty() {
            bail!("[sso.{name}] issuers must not be empty");
        }
        Ok(ProviderConfig {
            client_ids: self.client_ids.into_iter().filter(|c| !c.trim().is_empty()).collect(),
            issuers,
            jwks_url,
            token_url,
            client_secret: self.client_secret,
            redirect_uri: self.redirect_uri,
        })
    }
}

/// One `[[address_types]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAddressType {
    /// The key, e.g. `invoice`: 1 to 64 lowercase letters, digits, `-` and `_`.
    #[serde(rename = "type")]
    pub key: String,
    pub title: String,
    /// Order among types; default 100 as REMP's.
    pub sorting: Option<i32>,
}

/// `[email]`: the built-in validator chain.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    /// Domains rejected in addition to the shipped disposable-domain list.
    #[serde(default)]
    pub blocked_domains: Vec<String>,
    /// A file of further domains to reject, one per line.
    pub blocked_domains_file: Option<PathBuf>,
}

/// `[passwords]`: argon2id cost and the hashing pool.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPasswords {
    pub memory_kib: Option<u32>,
    pub iterations: Option<u32>,
    pub parallelism: Option<u32>,
    /// Concurrent hashes; default one per core.
    pub workers: Option<usize>,
}

/// `[login]`: brute-force limits.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLogin {
    pub max_failures: Option<usize>,
    pub failure_window_secs: Option<u64>,
    pub max_guesses_per_hour: Option<usize>,
}

/// Values given on the command line or in the environment; they win over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub plugins: Option<PathBuf>,
    pub storage: Option<String>,
    pub database_url: Option<String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data: PathBuf,
    pub plugins: PathBuf,
    pub watch_plugins: bool,
    /// Where the store lives: the data folder's `sled/`, or a PostgreSQL database.
    pub storage: StoreLocation,
    pub api: ApiSettings,
    pub service: ServiceConfig,
    pub hash_cost: HashCost,
    pub hash_workers: usize,
    pub extra_blocked_domains: Vec<String>,
    pub sso_google: ProviderConfig,
    pub sso_apple: ProviderConfig,
}

impl RawConfig {
    /// Read a config file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config {}", path.display()))
    }

    /// Apply overrides, fill defaults and check every value.
    pub fn validate(self, overrides: &Overrides) -> anyhow::Result<Config> {
        let listen_text = overrides.listen.clone().or(self.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen: SocketAddr = listen_text
            .parse()
            .with_context(|| format!("listen address '{listen_text}' is not HOST:PORT (e.g. 127.0.0.1:8080)"))?;
        let data = overrides.data.clone().or(self.data).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA));
        let plugins = overrides.plugins.clone().or(self.plugins).unwrap_or_else(|| PathBuf::from(DEFAULT_PLUGINS));
        let storage = storage_location(
            &data,
            overrides.storage.clone().or(self.storage),
            overrides.database_url.clone().or(self.database_url),
            self.database_pool_size,
            self.commit,
        )?;
        let timezone_name = self.timezone.unwrap_or_else(|| "UTC".into());
        let timezone: chrono_tz::Tz = timezone_name.parse().map_err(|_| {
            anyhow::anyhow!("timezone '{timezone_name}' is not an IANA zone name (e.g. Europe/Bratislava)")
        })?;
        let max_body_bytes = self.max_body_bytes.unwrap_or(1024 * 1024);
        if !(1024..=64 * 1024 * 1024).contains(&max_body_bytes) {
            bail!("max_body_bytes must be between 1 KiB and 64 MiB");
        }
        let default_locale = self.default_locale.unwrap_or_else(|| "en_US".into());
        if default_locale.is_empty() || default_locale.len() > 32 {
            bail!("default_locale must be a locale such as en_US");
        }

        let cost = HashCost {
            memory_kib: self.passwords.memory_kib.unwrap_or(HashCost::OWASP.memory_kib),
            iterations: self.passwords.iterations.unwrap_or(HashCost::OWASP.iterations),
            parallelism: self.passwords.parallelism.unwrap_or(HashCost::OWASP.parallelism),
        };
        if !cost.meets_owasp() {
            bail!(
                "[passwords] must be at least OWASP's argon2id parameters (memory_kib >= {}, iterations >= {})",
                HashCost::OWASP.memory_kib,
                HashCost::OWASP.iterations
            );
        }
        if cost.memory_kib > 1024 * 1024 || cost.iterations > 100 || cost.parallelism > 64 {
            bail!("[passwords] parameters are too large (memory_kib <= 1048576, iterations <= 100, parallelism <= 64)");
        }
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let hash_workers = self.passwords.workers.unwrap_or(cores);
        if !(1..=256).contains(&hash_workers) {
            bail!("[passwords] workers must be between 1 and 256");
        }

        let defaults = LoginLimits::default();
        let login_limits = LoginLimits {
            attempts: self.login.max_failures.unwrap_or(defaults.attempts),
            window: self.login.failure_window_secs.map(Duration::from_secs).unwrap_or(defaults.window),
            max_guesses_per_hour: self.login.max_guesses_per_hour.unwrap_or(defaults.max_guesses_per_hour),
        };
        if !(1..=1000).contains(&login_limits.attempts) {
            bail!("[login] max_failures must be between 1 and 1000");
        }
        if !(1..=100).contains(&login_limits.max_guesses_per_hour) {
            bail!("[login] max_guesses_per_hour must be between 1 and 100");
        }

        let mut extra_blocked_domains: Vec<String> =
            self.email.blocked_domains.iter().map(|d| d.trim().to_lowercase()).collect();
        if let Some(file) = &self.email.blocked_domains_file {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read [email] blocked_domains_file {}", file.display()))?;
            extra_blocked_domains
                .extend(text.lines().map(|l| l.trim().to_lowercase()).filter(|l| !l.is_empty() && !l.starts_with('#')));
        }

        let sso_google = self.sso.google.unwrap_or_default().validate("google", ProviderConfig::google_defaults())?;
        let sso_apple = self.sso.apple.unwrap_or_default().validate("apple", ProviderConfig::apple_defaults())?;
        let country_code = self.default_country.unwrap_or_else(|| DEFAULT_COUNTRY.to_owned());
        let default_country = country_by_iso(&country_code).ok_or_else(|| {
            anyhow::anyhow!("default_country '{country_code}' is not an ISO 3166-1 alpha-2 code we know (e.g. SK)")
        })?;
        let mut address_types: Vec<AddressType> = Vec::new();
        for raw in self.address_types {
            if !is_type_key(&raw.key) {
                bail!("[[address_types]] type '{}' must be 1 to 64 lowercase letters, digits, '-' or '_'", raw.key);
            }
            let title = raw.title.trim();
            if title.is_empty() || title.chars().count() > MAX_TITLE_LEN {
                bail!("[[address_types]] type '{}' needs a title of 1 to 255 characters", raw.key);
            }
            if address_types.iter().any(|t| t.key == raw.key) {
                bail!("[[address_types]] type '{}' is listed twice", raw.key);
            }
            address_types.push(AddressType {
                key: raw.key,
                title: title.to_owned(),
                sorting: raw.sorting.unwrap_or(DEFAULT_SORTING),
            });
        }

        Ok(Config {
            sso_google,
            sso_apple,
            listen,
            data,
            plugins,
            watch_plugins: self.watch_plugins.unwrap_or(true),
            storage,
            api: ApiSettings {
                timezone,
                max_body_bytes,
                trust_forwarded_headers: self.trust_forwarded_headers.unwrap_or(false),
            },
            service: ServiceConfig { default_locale, login_limits, default_country, address_types },
            hash_cost: cost,
            hash_workers,
            extra_blocked_domains,
        })
    }
}

/// The sled store's folder inside the data folder.
pub const SLED_FOLDER: &str = "sled";

/// Which backend, from `storage`, `database_url` and their sled- or PostgreSQL-only settings;
/// a setting of the backend not chosen is an error rather than silently ignored.
fn storage_location(
    data: &Path,
    storage: Option<String>,
    database_url: Option<String>,
    pool_size: Option<usize>,
    commit: Option<String>,
) -> anyhow::Result<StoreLocation> {
    let storage = storage.unwrap_or_else(|| if database_url.is_some() { "postgres" } else { "sled" }.to_owned());
    match storage.as_str() {
        "sled" => {
            if database_url.is_some() || pool_size.is_some() {
                bail!(
                    "database_url and database_pool_size are for storage = \"postgres\"; the sled store lives in the data folder"
                );
            }
            let commit = commit.as_deref().map(str::parse).transpose()?.unwrap_or_default();
            Ok(StoreLocation::Sled { dir: data.join(SLED_FOLDER), commit })
        }
        "postgres" => {
            let Some(url) = database_url else {
                bail!(
                    "storage = \"postgres\" needs database_url (or --database-url, CRM_USERS_DATABASE_URL), e.g. postgres://crm:secret@db.internal:5432/crm_users"
                );
            };
            if commit.is_some() {
                bail!("commit is a setting of the sled store; PostgreSQL commits are durable when they return");
            }
            PostgresOptions::parse_url(&url)?;
            let pool_size = pool_size.unwrap_or(DEFAULT_POOL_SIZE);
            if !(1..=1000).contains(&pool_size) {
                bail!("database_pool_size must be between 1 and 1000");
            }
            Ok(StoreLocation::Postgres(PostgresOptions { url, pool_size }))
        }
        other => bail!("storage '{other}' is not one of \"sled\", \"postgres\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_file() {
        let c = RawConfig::default().validate(&Overrides::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.data, PathBuf::from(DEFAULT_DATA));
        assert_eq!(c.hash_cost, HashCost::OWASP);
    }

    #[test]
    fn unknown_keys_are_rejected_by_name() {
        let err = toml::from_str::<RawConfig>("listen = \"127.0.0.1:1\"\nlistne = 1").unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
        let err = toml::from_str::<RawConfig>("[login]\nmax_fails = 3").unwrap_err();
        assert!(err.to_string().contains("max_fails"), "{err}");
    }

    #[test]
    fn overrides_win_and_bad_values_are_explained() {
        let raw: RawConfig = toml::from_str("listen = \"127.0.0.1:1\"\ntimezone = \"Europe/Bratislava\"").unwrap();
        let c = raw.validate(&Overrides { listen: Some("127.0.0.1:2".into()), ..Default::default() }).unwrap();
        assert_eq!(c.listen.port(), 2);
        let bad: RawConfig = toml::from_str("timezone = \"Mars/Olympus\"").unwrap();
        assert!(bad.validate(&Overrides::default()).unwrap_err().to_string().contains("Mars/Olympus"));
        let weak: RawConfig = toml::from_str("[passwords]\nmemory_kib = 1024").unwrap();
        assert!(weak.validate(&Overrides::default()).unwrap_err().to_string().contains("OWASP"));
    }

    #[test]
    fn storage_follows_database_url_and_refuses_the_other_backends_settings() {
        let c = RawConfig::default().validate(&Overrides::default()).unwrap();
        assert!(matches!(c.storage, StoreLocation::Sled { ref dir, .. } if dir.ends_with("data/sled")));
        let url = Overrides { database_url: Some("postgres://crm@db.internal/crm".into()), ..Default::default() };
        let c = RawConfig::default().validate(&url).unwrap();
        assert!(matches!(c.storage, StoreLocation::Postgres(ref o) if o.pool_size == DEFAULT_POOL_SIZE));
        let needs_url: RawConfig = toml::from_str("storage = \"postgres\"").unwrap();
        assert!(needs_url.validate(&Overrides::default()).unwrap_err().to_string().contains("needs database_url"));
        let sled_with_url: RawConfig = toml::from_str("storage = \"sled\"").unwrap();
        assert!(sled_with_url.validate(&url).unwrap_err().to_string().contains("for storage = \"postgres\""));
        let commit: RawConfig = toml::from_str("commit = \"group\"").unwrap();
        assert!(commit.validate(&url).unwrap_err().to_string().contains("sled store"));
        let bad_url = Overrides { database_url: Some("mysql://x".into()), ..Default::default() };
        assert!(RawConfig::default().validate(&bad_url).unwrap_err().to_string().contains("not a PostgreSQL"));
        let other: RawConfig = toml::from_str("storage = \"mongo\"").unwrap();
        assert!(other.validate(&Overrides::default()).unwrap_err().to_string().contains("'mongo'"));
    }

    #[test]
    fn address_settings_are_checked() {
        let c = RawConfig::default().validate(&Overrides::default()).unwrap();
        assert_eq!(c.service.default_country.iso_code, "SK");
        let cz: RawConfig = toml::from_str("default_country = \"cz\"").unwrap();
        assert_eq!(cz.validate(&Overrides::default()).unwrap().service.default_country.iso_code, "CZ");
        let bad: RawConfig = toml::from_str("default_country = \"XQ\"").unwrap();
        assert!(bad.validate(&Overrides::default()).unwrap_err().to_string().contains("'XQ'"));
        let types: RawConfig =
            toml::from_str("[[address_types]]\ntype = \"print\"\ntitle = \"Print\"\nsorting = 5").unwrap();
        let c = types.validate(&Overrides::default()).unwrap();
        assert_eq!(c.service.address_types[0].sorting, 5);
        let bad: RawConfig = toml::from_str("[[address_types]]\ntype = \"Print!\"\ntitle = \"P\"").unwrap();
        assert!(bad.validate(&Overrides::default()).unwrap_err().to_string().contains("Print!"));
    }
}
