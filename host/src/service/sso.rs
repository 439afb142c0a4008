//! Google and Apple ID-token sign-in: the token's signature is checked against the
//! provider's JWKS (fetched with timeouts and no redirects, cached, refreshed at most once a
//! minute for an unknown key id), then `iss`, `aud`, `exp` and `nbf` (and Apple's nonce);
//! the user is matched by connected account, then by email, or created.

use super::{Services, auth::SignedIn};
use crate::domain::{
    Error, Result,
    event::DomainEvent,
    meta::{UNCLAIMED_USER, is_truthy},
    secret::generate_password,
    token::ClientInfo,
    user::{MAX_EMAIL_LEN, NewUser, Role, User},
};
use crate::store::{Batch, Change};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// How long fetched keys are trusted before they are fetched again.
const JWKS_TTL: Duration = Duration::from_secs(3600);
/// An unknown key id triggers a refetch at most this often, so forged tokens with made-up
/// key ids cannot make us hammer the provider.
const JWKS_MIN_REFRESH: Duration = Duration::from_secs(60);
/// The whole JWKS request, connect included, must finish within this.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS document accepted.
const JWKS_MAX_BYTES: usize = 256 * 1024;
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;
/// Longest ID token accepted; real ones are about 1 KiB.
const MAX_ID_TOKEN_LEN: usize = 16 * 1024;

/// An identity provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Google,
    Apple,
}

impl Provider {
    /// `user_connected_accounts.type`.
    pub fn account_kind(self) -> &'static str {
        match self {
            Provider::Google => "google_sign_in",
            Provider::Apple => "apple_sign_in",
        }
    }
    /// Source of users created by this provider.
    pub fn user_source(self) -> &'static str {
        match self {
            Provider::Google => "google_sso",
            Provider::Apple => "apple_sso",
        }
    }
    /// Source of access tokens issued by this provider (and what sign-in handlers see).
    pub fn token_source(self) -> &'static str {
        match self {
            Provider::Google => "web+google_sso",
            Provider::Apple => "web+apple_sso",
        }
    }
    pub fn channel(self) -> &'static str {
        match self {
            Provider::Google => "google",
            Provider::Apple => "apple",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Provider::Google => "Google",
            Provider::Apple => "Apple",
        }
    }
}

/// A provider's settings, validated.
#[derive(Debug, Clone, Default)]
pub struct ProviderConfig {
    /// Accepted `aud` values; none means sign-in with this provider is off.
    pub client_ids: Vec<String>,
    pub issuers: Vec<String>,
    pub jwks_url: String,
    /// Google's OAuth token endpoint, for `gsi_auth_code`.
    pub token_url: Option<String>,
    pub client_secret: Option<String>,
    /// Where `gsi_auth_code` redirects outside the web popup flow.
    pub redirect_uri: Option<String>,
}

impl ProviderConfig {
    pub fn google_defaults() -> Self {
        ProviderConfig {
            client_ids: vec![],
            issuers: vec!["https://accounts.google.com".into(), "accounts.google.com".into()],
            jwks_url: "https://www.googleapis.com/oauth2/v3/certs".into(),
            token_url: Some("https://oauth2.googleapis.com/token".into()),
            client_secret: None,
            redirect_uri: None,
        }
    }

    pub fn apple_defaults() -> Self {
        ProviderConfig {
            client_ids: vec![],
            issuers: vec!["https://appleid.apple.com".into()],
            jwks_url: "https://appleid.apple.com/auth/keys".into(),
            token_url: None,
            client_secret: None,
            redirect_uri: None,
        }
    }
}

/// Why an ID token was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SsoError {
    #[error("{0} sign-in is not configured")]
    Disabled(&'static str),
    #[error("Unable to verify ID token")]
    Invalid(String),
    #[error("The identity provider's keys cannot be fetched right now")]
    KeysUnavailable(String),
    #[error("linking a secured admin account is forbidden")]
    AdminLink,
    #[error(transparent)]
    Other(#[from] Error),
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kid: Option<String>,
    kty: String,
    n: Option<String>,
    e: Option<String>,
}

#[derive(Debug, Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Default)]
struct CachedKeys {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

/// JWKS fetching and caching for one provider.
pub struct KeySource {
    config: ProviderConfig,
    http: reqwest::Client,
    cache: Mutex<CachedKeys>,
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySource").field("jwks_url", &self.config.jwks_url).finish_non_exhaustive()
    }
}

/// The claims we read.
#[derive(Debug, Deserialize)]
pub struct IdClaims {
    pub sub: String,
    pub email: Option<String>,
    pub nonce: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
}

impl KeySource {
    pub fn new(config: ProviderConfig) -> Result<Self> {
        // reqwest is built without a TLS backend of its own; ring is the one wasmtime already
        // brings. Installing twice is harmless (the first one stays).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(JWKS_TIMEOUT)
            .connect_timeout(Duration::from_secs(3))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(anyhow::anyhow!("HTTP client: {e}")))?;
        Ok(KeySource { config, http, cache: Mutex::new(CachedKeys::default()) })
    }

    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    async fn fetch(&self) -> std::result::Result<HashMap<String, DecodingKey>, SsoError> {
        let unavailable = |e: String| SsoError::KeysUnavailable(format!("{}: {e}", self.config.jwks_url));
        let response = self.http.get(&self.config.jwks_url).send().await.map_err(|e| unavailable(e.to_string()))?;
        if !response.status().is_success() {
            return Err(unavailable(format!("HTTP {}", response.status())));
        }
        let body = response.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        if body.len() > JWKS_MAX_BYTES {
            return Err(unavailable("the key set is too large".into()));
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| unavailable(format!("not a JWKS: {e}")))?;
        let mut keys = HashMap::new();
        for jwk in set.keys {
            if let (Some(kid), "RSA", Some(n), Some(e)) = (jwk.kid, jwk.kty.as_str(), jwk.n, jwk.e)
                && let Ok(key) = DecodingKey::from_rsa_components(&n, &e)
            {
                keys.insert(kid, key);
            }
        }
        Ok(keys)
    }

    /// The key for `kid`, from the cache or a (rate-limited) fetch.
    async fn key(&self, kid: &str) -> std::result::Result<DecodingKey, SsoError> {
        let mut cache = self.cache.lock().await;
        let stale = cache.fetched.is_none_or(|t| t.elapsed() > JWKS_TTL);
        let may_refresh = cache.fetched.is_none_or(|t| t.elapsed() > JWKS_MIN_REFRESH);
        if stale || (!cache.keys.contains_key(kid) && may_refresh) {
            match self.fetch().await {
                Ok(keys) => {
                    cache.keys = keys;
                    cache.fetched = Some(Instant::now());
                }
                // Keys we already hold keep working while the provider is unreachable.
                Err(e) if cache.keys.contains_key(kid) => tracing::warn!(error = %e, "JWKS refresh failed"),
                Err(e) => return Err(e),
            }
        }
        cache.keys.get(kid).cloned().ok_or_else(|| SsoError::Invalid(format!("unknown key id {kid}")))
    }

    /// Verify an ID token and return its claims.
    pub async fn verify(&self, id_token: &str) -> std::result::Result<IdClaims, SsoError> {
        let kid = id_token_key_id(id_token)?;
        let key = self.key(&kid).await?;
        verify_id_token_with(id_token, &key, &self.config)
    }
}

/// The key id an ID token names, after the checks that need no key: its length, a header that
/// decodes, and RS256 whatever the token claims (no `none`, no HMAC keyed with a public key).
pub fn id_token_key_id(id_token: &str) -> std::result::Result<String, SsoError> {
    if id_token.len() > MAX_ID_TOKEN_LEN {
        return Err(SsoError::Invalid("token too long".into()));
    }
    let header = jsonwebtoken::decode_header(id_token).map_err(|e| SsoError::Invalid(format!("header: {e}")))?;
    if header.alg != Algorithm::RS256 {
        return Err(SsoError::Invalid(format!("algorithm {:?} is not accepted", header.alg)));
    }
    header.kid.ok_or_else(|| SsoError::Invalid("no key id".into()))
}

/// The claims of an ID token signed by `key`: signature, `iss`, `aud`, `exp`, `nbf` and `sub`
/// checked against the provider's settings.
pub fn verify_id_token_with(
    id_token: &str,
    key: &DecodingKey,
    config: &ProviderConfig,
) -> std::result::Result<IdClaims, SsoError> {
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&config.client_ids);
    validation.set_issuer(&config.issuers);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.validate_nbf = true;
    validation.leeway = LEEWAY_SECS;
    jsonwebtoken::decode::<IdClaims>(id_token, key, &validation)
        .map(|data| data.claims)
        .map_err(|e| SsoError::Invalid(e.to_string()))
}

/// What an ID-token sign-in asks for.
#[derive(Debug, Clone, Default)]
pub struct IdTokenSignIn {
    pub id_token: String,
    pub create_access_token: bool,
    pub source: Option<String>,
    pub locale: Option<String>,
    pub nonce: Option<String>,
}

/// The outcome: the user, and the access token when one was asked for.
#[derive(Debug, Clone)]
pub struct SsoSignedIn {
    pub user: User,
    pub access_token: Option<String>,
}

/// Both providers' key sources.
#[derive(Debug)]
pub struct SsoProviders {
    pub google: KeySource,
    pub apple: KeySource,
}

impl SsoProviders {
    pub fn new(google: ProviderConfig, apple: ProviderConfig) -> Result<Arc<Self>> {
        Ok(Arc::new(SsoProviders { google: KeySource::new(google)?, apple: KeySource::new(apple)? }))
    }

    pub fn source(&self, provider: Provider) -> &KeySource {
        match provider {
            Provider::Google => &self.google,
            Provider::Apple => &self.apple,
        }
    }
}

impl Services {
    /// Google's `gsi_auth_code` flow: exchange the code for tokens at the configured endpoint.
    /// Failures are logged and the request's own `id_token` is used, as REMP does.
    pub async fn exchange_google_code(&self, code: &str, is_web: bool) -> Option<String> {
        let source = self.sso.source(Provider::Google);
        let config = source.config();
        let (Some(url), Some(client_id)) = (config.token_url.as_deref(), config.client_ids.first()) else {
            return None;
        };
        let redirect = if is_web { "postmessage".to_owned() } else { config.redirect_uri.clone().unwrap_or_default() };
        let form = [
            ("code", code),
            ("client_id", client_id.as_str()),
            ("client_secret", config.client_secret.as_deref().unwrap_or_default()),
            ("redirect_uri", redirect.as_str()),
            ("grant_type", "authorization_code"),
        ];
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let response =
            source.http.post(url).header("content-type", "application/x-www-form-urlencoded").body(body).send().await;
        #[derive(Deserialize)]
        struct Tokens {
            id_token: Option<String>,
        }
        match response {
            Ok(r) if r.status().is_success() => match r.json::<Tokens>().await {
                Ok(t) => t.id_token,
                Err(e) => {
                    tracing::warn!(error = %e, "gsi_auth_code exchange returned no usable JSON");
                    None
                }
            },
            Ok(r) => {
                tracing::warn!(status = %r.status(), "gsi_auth_code exchange refused");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "gsi_auth_code exchange failed");
                None
            }
        }
    }

    /// REMP's `getUserUsingIdToken` and `matchOrCreateUser`, then optionally a sign-in.
    pub async fn sign_in_with_id_token(
        &self,
        provider: Provider,
        req: &IdTokenSignIn,
        client: &ClientInfo,
    ) -> std::result::Result<SsoSignedIn, SsoError> {
        let keys = self.sso.source(provider);
        if keys.config().client_ids.is_empty() {
            return Err(SsoError::Disabled(provider.title()));
        }
        let claims = keys.verify(&req.id_token).await?;
        if provider == Provider::Apple
            && let Some(expected) = &req.nonce
            && claims.nonce.as_deref() != Some(expected.as_str())
        {
            return Err(SsoError::Invalid("nonce mismatch".into()));
        }
        let user = self.match_or_create(provider, &claims, req).await?;
        if !req.create_access_token {
            return Ok(SsoSignedIn { user, access_token: None });
        }
        let source = req.source.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| provider.token_source().to_owned());
        let SignedIn { user, access_token } =
            self.complete_sign_in(user, provider.token_source(), provider.channel(), true, client).await?;
        let of = super::auth::AttemptOf { email: &user.email, source: &source, client };
        self.record_login_attempt(&of, Some(&user), crate::domain::attempt::LoginStatus::ApiOk, None).await?;
        Ok(SsoSignedIn { user, access_token })
    }

    async fn match_or_create(
        &self,
        provider: Provider,
        claims: &IdClaims,
        req: &IdTokenSignIn,
    ) -> std::result::Result<User, SsoError> {
        let kind = provider.account_kind();
        if let Some(account) = self.store.connected_account(kind, &claims.sub).await?
            && let Some(user) = self.store.user(account.user_id).await?.filter(|u| !u.is_deleted())
        {
            return Ok(self.register_if_unclaimed(user).await?);
        }
        let email = claims
            .email
            .clone()
            .filter(|e| e.len() <= MAX_EMAIL_LEN && crate::domain::email::is_email(e))
            .ok_or_else(|| SsoError::Invalid("the token carries no usable email".into()))?;
        let user = match self.store.user_by_email(&email).await?.filter(|u| !u.is_deleted()) {
            Some(user) => {
                // REMP's SecuredAdminAccess: an admin with secure login may not be linked.
                let secured = user.role == Role::Admin
                    && self
                        .store
                        .meta_entry(user.id, "secure_login_allowed")
                        .await?
                        .is_some_and(|m| is_truthy(&m.value));
                if secured {
                    return Err(SsoError::AdminLink);
                }
                self.register_if_unclaimed(user).await?
            }
            None => self.create_sso_user(provider, &email, claims, req).await?,
        };
        self.store
            .apply(Batch(vec![Change::InsertConnectedAccount {
                user_id: user.id,
                kind: kind.to_owned(),
                external_id: claims.sub.clone(),
                email: Some(email),
            }]))
            .await?;
        Ok(user)
    }

    /// A matched unclaimed user becomes a regular one (REMP `makeUnclaimedUserRegistered`).
    async fn register_if_unclaimed(&self, user: User) -> Result<User> {
        if !self.is_unclaimed(&user).await? {
            return Ok(user);
        }
        self.store
            .apply(Batch(vec![Change::DeleteMeta { user_id: user.id, key: UNCLAIMED_USER.into(), value: None }]))
            .await?;
        self.events.publish_all([
            DomainEvent::UserMeta { user_id: user.id, key: UNCLAIMED_USER.into(), value: None },
            DomainEvent::UserRegistered { user_id: user.id, send_email: false, password: None },
        ]);
        Ok(user)
    }

    async fn create_sso_user(
        &self,
        provider: Provider,
        email: &str,
        claims: &IdClaims,
        req: &IdTokenSignIn,
    ) -> Result<User> {
        let draft = NewUser {
            email: email.to_owned(),
            password_hash: self.passwords.hash(&generate_password()?).await?,
            first_name: claims.given_name.clone(),
            last_name: claims.family_name.clone(),
            role: Role::User,
            active: true,
            // Apple's users always get apple_sso; REMP uses the source param for Google only.
            source: match provider {
                Provider::Google => {
                    req.source.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| provider.user_source().into())
                }
                Provider::Apple => provider.user_source().into(),
            },
            referer: None,
            registration_channel: provider.channel().into(),
            locale: req.locale.clone().filter(|l| !l.is_empty()).unwrap_or_else(|| self.config.default_locale.clone()),
            ext_id: None,
            note: None,
        };
        let (user, _) = match self.store.create_user(draft, vec![], None).await {
            Ok(created) => created,
            Err(Error::Conflict { .. }) => {
                // A concurrent sign-in created the user first.
                let user = self.store.user_by_email(email).await?;
                return user.ok_or_else(|| Error::Internal(anyhow::anyhow!("user vanished after a conflict")));
            }
            Err(e) => return Err(e),
        };
        self.events.publish_all([
            DomainEvent::NewUser { user_id: user.id },
            DomainEvent::UserRegistered { user_id: user.id, send_email: false, password: None },
        ]);
        Ok(user)
    }
}
