//! Who is calling: the authenticator chain for sign-ins (REMP's `UserAuthenticator`), the
//! built-in password authenticator with its rate limits, and authorization of API tokens and
//! user tokens (access token, then device token).

use super::extensions::PluginAuthenticator;
use super::{Services, passwords::Verified};
use crate::domain::{
    Error, Result,
    attempt::LoginStatus,
    error::AuthReason,
    event::DomainEvent,
    now,
    secret::{TokenDigest, looks_like_token},
    token::{AccessToken, ApiToken, ClientInfo, DeviceToken},
    user::User,
};
use crate::store::{Batch, Change, LoginAttemptDraft};
use async_trait::async_trait;
use std::sync::Arc;

/// What a client offered to sign in with. Every authenticator sees all of it and decides for
/// itself whether the credentials are its kind (REMP passes one array to every authenticator).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub username: Option<String>,
    pub password: Option<String>,
    pub autologin_token: Option<String>,
    /// `api`, `api+<source>`, `web`, ... as REMP builds it.
    pub source: String,
    /// Every other request parameter, for plugin authenticators' own kinds of credentials.
    pub extra: Vec<(String, String)>,
}

/// One link of the authenticator chain.
#[async_trait]
pub trait Authenticator: Send + Sync {
    /// Higher runs first (REMP: autologin token 800, password 500, access token 200).
    fn priority(&self) -> i32;
    /// Whether a successful sign-in through this authenticator issues a new access token.
    fn regenerates_token(&self) -> bool {
        true
    }
    /// How sign-in handlers and tokens name this authenticator.
    fn method(&self) -> String;
    /// `Ok(None)`: not my credentials. `Err(Error::Auth{..})`: my credentials, refused.
    async fn authenticate(&self, svc: &Services, creds: &Credentials, client: &ClientInfo) -> Result<Option<User>>;
}

/// REMP's `UsersAuthenticator`: email and password, with both brute-force limits.
#[derive(Debug)]
pub struct PasswordAuthenticator;

const TOO_MANY_ATTEMPTS: &str = "Too many unsuccessful login attempts. Try it later.";
/// Recorded (never answered) when the hourly cap refuses a guess.
const ACCOUNT_LOCKED: &str = "Account locked: too many wrong passwords in the last hour.";

/// What became of one password guess against an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Guess {
    /// REMP's short throttle: refused unevaluated, and the client is told to pause.
    Throttled,
    /// The hourly cap: refused unevaluated; the caller answers as for a wrong password.
    Locked,
    Wrong,
    Right(Verified),
}

/// Whether a password is short enough to be hashed; a longer one is refused unhashed, by
/// every path alike.
fn hashable(password: &str) -> bool {
    password.len() <= crate::domain::user::MAX_PASSWORD_LEN
}

/// Password checks for one account run one at a time on this host, so guesses sent at once
/// cannot all pass the hourly cap before any is recorded (a store that several hosts share
/// adds a lock of its own, [`crate::store::Store::lock_account`]). Accounts share a fixed set of
/// locks by id: memory stays bounded, and two accounts rarely wait for each other.
#[derive(Debug)]
pub struct AccountLocks(Vec<tokio::sync::Mutex<()>>);

impl Default for AccountLocks {
    fn default() -> Self {
        AccountLocks((0..1024).map(|_| tokio::sync::Mutex::new(())).collect())
    }
}

impl AccountLocks {
    async fn lock(&self, user: crate::domain::user::UserId) -> tokio::sync::MutexGuard<'_, ()> {
        self.0[(user % self.0.len() as u64) as usize].lock().await
    }
}

#[async_trait]
impl Authenticator for PasswordAuthenticator {
    fn priority(&self) -> i32 {
        500
    }

    fn method(&self) -> String {
        "password".into()
    }

    async fn authenticate(&self, svc: &Services, creds: &Credentials, client: &ClientInfo) -> Result<Option<User>> {
        let (Some(email), Some(password)) = (&creds.username, &creds.password) else {
            return Ok(None);
        };
        svc.verify_credentials(email, password, &creds.source, client, true).await.map(Some)
    }
}

/// An account id no user has (users are numbered from 1 and never reach 2^62), one per email,
/// so that decoy guesses for different emails do not wait for each other's lock; bit 31 keeps
/// its low half, which a shared store's lock is keyed by, clear of the ids of real users.
fn decoy_account(email: &str) -> crate::domain::user::UserId {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    crate::domain::user::email_key(email).hash(&mut hasher);
    (1 << 62) | (1 << 31) | (hasher.finish() >> 34)
}

/// Who tried to sign in, how and from where: what every login attempt records.
#[derive(Debug, Clone, Copy)]
pub struct AttemptOf<'a> {
    pub email: &'a str,
    pub source: &'a str,
    pub client: &'a ClientInfo,
}

/// A successful sign-in.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub user: User,
    /// The new access token's plain text, when the authenticator issues one.
    pub access_token: Option<String>,
}

/// Who a user token stands for (REMP's `UserTokenAuthorization`).
#[derive(Debug, Clone)]
pub struct UserAuthorization {
    /// The access token used, or every access token paired with the device token used.
    pub access_tokens: Vec<AccessToken>,
    /// Distinct users of those tokens, in token order.
    pub users: Vec<User>,
    pub device: Option<DeviceToken>,
}

/// Who may call a resource-API route.
#[derive(Debug, Clone)]
pub enum ResourceCaller {
    /// An API token whose whitelist names the route.
    ApiToken(ApiToken),
    /// An admin user (by access token) whose roles grant the route.
    Admin(Box<User>),
}

/// Why a resource-API caller was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceRefusal {
    /// No usable token (401).
    Unauthenticated(String),
    /// A valid token without the permission (403); the message names it.
    Forbidden(String),
}

/// Why a token was refused: REMP's message after `Not authorized: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unauthorized(pub String);

/// Split an Authorization header into its token: exactly two space-separated parts, the first
/// `Bearer` in any case.
pub fn parse_bearer(header: Option<&str>) -> std::result::Result<&str, Unauthorized> {
    let header = header.ok_or_else(|| Unauthorized("Authorization header HTTP_Authorization is not set".into()))?;
    let parts: Vec<&str> = header.split(' ').collect();
    match parts.as_slice() {
        [scheme, token] if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => Ok(token),
        _ => Err(Unauthorized("Authorization header contains invalid structure".into())),
    }
}

impl Services {
    /// The authenticator chain for one sign-in: the built-ins and the current plugin set's
    /// authenticators, highest priority first. At equal priority a plugin runs first, as
    /// REMP bumps a later registration above a taken priority.
    fn authenticator_chain(&self) -> Vec<Arc<dyn Authenticator>> {
        let set = self.plugins.current();
        let mut chain: Vec<Arc<dyn Authenticator>> = set
            .of(crate::plugins::Kind::Authenticator)
            .map(|p| Arc::new(PluginAuthenticator(p.clone())) as Arc<dyn Authenticator>)
            .collect();
        chain.extend(self.authenticators.iter().cloned());
        chain.sort_by_key(|a| std::cmp::Reverse(a.priority()));
        chain
    }

    /// Run the authenticator chain with REMP's semantics, then the sign-in handlers, then
    /// issue the token.
    pub async fn sign_in(&self, creds: &Credentials, client: &ClientInfo) -> Result<SignedIn> {
        let mut first_failure: Option<Error> = None;
        let mut winner = None;
        for authenticator in self.authenticator_chain() {
            match authenticator.authenticate(self, creds, client).await {
                Ok(Some(user)) => {
                    // An unclaimed user never signs in; REMP treats it as "not mine".
                    if self.is_unclaimed(&user).await? {
                        continue;
                    }
                    winner = Some((user, authenticator.regenerates_token(), authenticator.method()));
                    break;
                }
                Ok(None) => {}
                Err(e @ Error::Auth { reason: AuthReason::RateLimited, .. }) => return Err(e),
                Err(e @ Error::Auth { .. }) => {
                    first_failure.get_or_insert(e);
                }
                Err(other) => return Err(other),
            }
        }
        let Some((user, regenerate, method)) = winner else {
            return Err(first_failure.unwrap_or_else(|| Error::auth(AuthReason::IdentityNotFound, "")));
        };
        self.complete_sign_in(user, &creds.source, &method, regenerate, client).await
    }

    /// Everything after a successful authentication, for every way of signing in: the
    /// sign-in handlers may refuse or set meta, then the sign-in event and the new token.
    pub async fn complete_sign_in(
        &self,
        user: User,
        source: &str,
        method: &str,
        regenerate: bool,
        client: &ClientInfo,
    ) -> Result<SignedIn> {
        if let Err(denied) = self.run_sign_in_handlers(&user, source, method, client).await {
            let of = AttemptOf { email: &user.email, source, client };
            let message = denied.to_string();
            self.record_login_attempt(&of, Some(&user), LoginStatus::SignInDenied, Some(&message)).await?;
            return Err(denied);
        }
        self.events.publish(DomainEvent::UserSignIn {
            user_id: user.id,
            source: source.to_owned(),
            regenerate_token: regenerate,
        });
        if !regenerate {
            return Ok(SignedIn { user, access_token: None });
        }
        let (user, token) = self.issue_sign_in_token(user, source, method, client).await?;
        Ok(SignedIn { user, access_token: Some(token) })
    }

    /// REMP's `SignEventHandler`: a new access token plus `current_sign_in_at/ip`, together.
    async fn issue_sign_in_token(
        &self,
        mut user: User,
        source: &str,
        method: &str,
        client: &ClientInfo,
    ) -> Result<(User, String)> {
        if user.is_deleted() {
            return Err(Error::auth(AuthReason::IdentityNotFound, "Account is disabled."));
        }
        let token = crate::domain::secret::new_token()?;
        user.current_sign_in_at = Some(now());
        user.current_sign_in_ip = Some(client.ip.clone());
        let mut batch = Batch::new();
        batch.push(Change::InsertAccessToken(crate::store::AccessTokenDraft {
            digest: token.digest,
            user_id: user.id,
            device_token_id: None,
            source: Some(source.to_owned()),
            method: Some(method.to_owned()),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        }));
        batch.push(Change::PutUser(Box::new(user.clone())));
        let applied = self.store.apply(batch).await?;
        if let Some(t) = applied.access_tokens().next() {
            self.events.publish(DomainEvent::NewAccessToken { user_id: user.id, token_id: t.id });
        }
        Ok((user, token.plain))
    }

    /// REMP's `UsernameAuthenticator::process`: checks in REMP's order, each failure recorded
    /// as a login attempt. `source` decides `ok` versus `api_ok`.
    pub async fn check_password(&self, email: &str, password: &str, source: &str, client: &ClientInfo) -> Result<User> {
        self.verify_credentials(email, password, source, client, false).await
    }

    /// [`Self::check_password`]; with `for_sign_in`, a hash due for an upgrade (bcrypt from
    /// REMP, weaker argon2 parameters) is replaced on the returned user, and the sign-in writes
    /// it in the same batch as the new token.
    async fn verify_credentials(
        &self,
        email: &str,
        password: &str,
        source: &str,
        client: &ClientInfo,
        for_sign_in: bool,
    ) -> Result<User> {
        let attempt = AttemptOf { email, source, client };
        if self.ip_is_limited(&client.ip).await? {
            self.record_login_attempt(&attempt, None, LoginStatus::RateLimitExceeded, Some(TOO_MANY_ATTEMPTS)).await?;
            return Err(Error::auth(AuthReason::RateLimited, TOO_MANY_ATTEMPTS));
        }
        // Every path below that answers "no" without checking the user's hash checks a decoy,
        // so an unknown email, an unclaimed account and a wrong password take the same time.
        let Some(user) = self.store.user_by_email(email).await?.filter(|u| !u.is_deleted()) else {
            self.pretend_to_guess(email, password, true).await?;
            self.record_login_attempt(&attempt, None, LoginStatus::NotFoundEmail, Some("Invalid email.")).await?;
            return Err(Error::auth(AuthReason::IdentityNotFound, "Invalid email."));
        };
        if self.is_unclaimed(&user).await? {
            self.pretend_to_guess(email, password, false).await?;
            self.record_login_attempt(&attempt, Some(&user), LoginStatus::UnclaimedUser, Some("Account is unclaimed."))
                .await?;
            return Err(Error::auth(AuthReason::NotApproved, "Account is unclaimed."));
        }
        let verified = match self.guess_password(&attempt, &user, password).await? {
            Guess::Throttled => return Err(Error::auth(AuthReason::RateLimited, TOO_MANY_ATTEMPTS)),
            // A locked account answers exactly as a wrong password does, even to the right
            // one: the answer must not tell an attacker that guessing has stopped counting.
            Guess::Locked | Guess::Wrong => {
                return Err(Error::auth(AuthReason::InvalidCredential, "Invalid password."));
            }
            Guess::Right(verified) => verified,
        };
        if !user.active {
            self.record_login_attempt(&attempt, Some(&user), LoginStatus::InactiveUser, Some("Account is disabled."))
                .await?;
            return Err(Error::auth(AuthReason::IdentityNotFound, "Account is disabled."));
        }
        let user =
            if for_sign_in && verified == Verified::YesRehash { self.rehash(user, password).await? } else { user };
        let status = if source.starts_with("ap") { LoginStatus::ApiOk } else { LoginStatus::Ok };
        self.record_login_attempt(&attempt, Some(&user), status, None).await?;
        Ok(user)
    }

    /// The one place a password is checked against an account's hash, under both limits:
    /// REMP's throttle (consecutive failures in a short window) and the hourly cap on
    /// evaluated guesses. Refusals and wrong passwords are recorded here, before the
    /// account's lock is released, so concurrent guesses each see the ones before them and
    /// the cap holds exactly, across hosts too. A success is recorded by the caller.
    pub(super) async fn guess_password(&self, attempt: &AttemptOf<'_>, user: &User, password: &str) -> Result<Guess> {
        let _one_at_a_time = self.account_locks.lock(user.id).await;
        // Hosts sharing the store take turns too; the local lock first, so that a storm of
        // guesses waits here rather than in the database, one connection per account.
        let _across_hosts = self.store.lock_account(user.id).await?;
        if self.user_is_throttled(user).await? {
            self.record_login_attempt(attempt, Some(user), LoginStatus::RateLimitExceeded, Some(TOO_MANY_ATTEMPTS))
                .await?;
            return Ok(Guess::Throttled);
        }
        if self.user_is_locked(user).await? {
            self.pretend_to_verify(password).await?;
            self.record_login_attempt(attempt, Some(user), LoginStatus::RateLimitExceeded, Some(ACCOUNT_LOCKED))
                .await?;
            return Ok(Guess::Locked);
        }
        let verified =
            if hashable(password) { self.passwords.verify(password, &user.password_hash).await? } else { Verified::No };
        if verified == Verified::No {
            self.record_login_attempt(attempt, Some(user), LoginStatus::WrongPass, Some("Invalid password.")).await?;
            return Ok(Guess::Wrong);
        }
        Ok(Guess::Right(verified))
    }

    async fn rehash(&self, mut user: User, password: &str) -> Result<User> {
        user.password_hash = self.passwords.hash(password).await?;
        Ok(user)
    }

    /// Store a login attempt and publish it (REMP's `LoginAttemptEvent` and its handler).
    pub async fn record_login_attempt(
        &self,
        of: &AttemptOf<'_>,
        user: Option<&User>,
        status: LoginStatus,
        message: Option<&str>,
    ) -> Result<()> {
        let AttemptOf { email, source, client } = *of;
        let draft = LoginAttemptDraft {
            user_id: user.map(|u| u.id),
            email: email.chars().take(crate::domain::user::MAX_EMAIL_LEN).collect(),
            status,
            source: source.to_owned(),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
            message: message.map(str::to_owned),
        };
        self.store.apply(Batch(vec![Change::InsertLoginAttempt(draft.clone())])).await?;
        self.metrics.record_login(status.as_str(), status == LoginStatus::RateLimitExceeded);
        self.events.publish(DomainEvent::LoginAttempt {
            user_id: draft.user_id,
            email: draft.email,
            source: draft.source,
            status: status.as_str().to_owned(),
            message: draft.message,
        });
        if let (true, Some(user)) = (status.is_ok(), user) {
            self.events.publish(DomainEvent::UserLastAccess {
                user_id: user.id,
                source: Some(source.to_owned()),
                user_agent: client.user_agent.clone(),
            });
        }
        Ok(())
    }

    /// REMP's rule over the latest attempts: limited when the last `attempts` all failed and
    /// the newest is within the window.
    fn limited(&self, marks: &[crate::domain::attempt::AttemptMark]) -> bool {
        let limits = self.config.login_limits;
        if marks.len() < limits.attempts || marks.iter().any(|m| m.ok) {
            return false;
        }
        let window = chrono::Duration::from_std(limits.window).unwrap_or(chrono::Duration::MAX);
        marks.first().is_some_and(|newest| newest.at > now() - window)
    }

    async fn ip_is_limited(&self, ip: &str) -> Result<bool> {
        let marks = self.store.recent_attempts_by_ip(ip, self.config.login_limits.attempts).await?;
        Ok(self.limited(&marks))
    }

    /// The work of checking a wrong password, for answers that have no hash to check.
    async fn pretend_to_verify(&self, password: &str) -> Result<()> {
        if hashable(password) { self.passwords.verify_decoy(password).await } else { Ok(()) }
    }

    /// Everything [`Self::guess_password`] does for a wrong password, against an account no
    /// one has: for answers that have no account to guess against, so that they take as long
    /// (B7). With a store across the network its lock and reads are round trips of their
    /// own, and leaving them out told an unknown email from a known one by several
    /// milliseconds. `unclaimed_check` adds the read of the unclaimed mark, which the path of
    /// a known account makes before its guess.
    async fn pretend_to_guess(&self, email: &str, password: &str, unclaimed_check: bool) -> Result<()> {
        let decoy = decoy_account(email);
        if unclaimed_check {
            self.store.meta_entry(decoy, crate::domain::meta::UNCLAIMED_USER).await?;
        }
        let _decoy_lock = self.store.lock_account(decoy).await?;
        self.store.recent_attempts_by_user(decoy, self.config.login_limits.attempts).await?;
        let hour_ago = now() - chrono::Duration::hours(1);
        self.store.wrong_passwords_since(decoy, hour_ago, self.config.login_limits.max_guesses_per_hour).await?;
        self.pretend_to_verify(password).await
    }

    /// REMP's per-user throttle: the last `attempts` attempts all failed, the newest recently.
    async fn user_is_throttled(&self, user: &User) -> Result<bool> {
        let marks = self.store.recent_attempts_by_user(user.id, self.config.login_limits.attempts).await?;
        Ok(self.limited(&marks))
    }

    /// The hourly cap: this many wrong passwords were evaluated for the account in the last hour.
    async fn user_is_locked(&self, user: &User) -> Result<bool> {
        let cap = self.config.login_limits.max_guesses_per_hour;
        let hour_ago = now() - chrono::Duration::hours(1);
        Ok(self.store.wrong_passwords_since(user.id, hour_ago, cap).await? >= cap)
    }

    /// Authorize an API token for a route (REMP's `BearerTokenAuthorization`).
    pub async fn authorize_api_token(
        &self,
        header: Option<&str>,
        route: &str,
    ) -> Result<std::result::Result<ApiToken, Unauthorized>> {
        let token = match parse_bearer(header) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        let found = if looks_like_token(token) { self.store.api_token(&TokenDigest::of(token)).await? } else { None };
        Ok(match found {
            None => Err(Unauthorized("Token doesn't exists".into())),
            Some(t) if !t.active => Err(Unauthorized("Token isn't active".into())),
            Some(t) if !t.allows(route) => Err(Unauthorized(format!("Token has no access to resource [{route}]"))),
            Some(t) => Ok(t),
        })
    }

    /// Authorize a resource-API call to `route`: an API token whose whitelist names it (exactly
    /// as for REMP's routes), else the access token of an admin user whose roles grant it or
    /// `*`. Device tokens stand for possibly several users and are not accepted here.
    pub async fn authorize_resource(
        &self,
        header: Option<&str>,
        route: &str,
    ) -> Result<std::result::Result<ResourceCaller, ResourceRefusal>> {
        let api = match self.authorize_api_token(header, route).await? {
            Ok(token) => return Ok(Ok(ResourceCaller::ApiToken(token))),
            Err(denied) => denied,
        };
        let found = match parse_bearer(header) {
            Ok(token) if looks_like_token(token) => self.store.access_token(&TokenDigest::of(token)).await?,
            _ => None,
        };
        let Some(access) = found else {
            // Not a user token either: the API token's answer (missing, unknown, inactive or
            // lacking the route) stands.
            return Ok(Err(if api.0.starts_with("Token has no access") {
                ResourceRefusal::Forbidden(api.0)
            } else {
                ResourceRefusal::Unauthenticated(api.0)
            }));
        };
        let Some(user) = self.store.user(access.user_id).await?.filter(|u| u.active && !u.is_deleted()) else {
            return Ok(Err(ResourceRefusal::Unauthenticated("The token's user is deactivated".into())));
        };
        if user.role != crate::domain::user::Role::Admin {
            return Ok(Err(ResourceRefusal::Forbidden(format!(
                "Missing permission [{route}]: only admin users may use user tokens here"
            ))));
        }
        if !self.has_permission(&user, route).await? {
            return Ok(Err(ResourceRefusal::Forbidden(format!(
                "Missing permission [{route}]: none of the user's roles grants it"
            ))));
        }
        Ok(Ok(ResourceCaller::Admin(Box::new(user))))
    }

    /// Authorize a user token: an access token, else a device token standing for the access
    /// tokens paired with it (REMP's `UserTokenAuthorization`).
    pub async fn authorize_user_token(
        &self,
        header: Option<&str>,
    ) -> Result<std::result::Result<UserAuthorization, Unauthorized>> {
        let token = match parse_bearer(header) {
            Ok(t) => t,
            Err(e) => return Ok(Err(e)),
        };
        if !looks_like_token(token) {
            return Ok(Err(Unauthorized("Device token doesn't exist".into())));
        }
        let digest = TokenDigest::of(token);
        // A token of a disabled or deleted user is refused whatever else revoked it (or did
        // not): the account's state is checked on every request.
        let usable = |user: &User| user.active && !user.is_deleted();
        if let Some(access) = self.store.access_token(&digest).await? {
            return Ok(match self.store.user(access.user_id).await?.filter(usable) {
                Some(user) => Ok(UserAuthorization { access_tokens: vec![access], users: vec![user], device: None }),
                None => Err(Unauthorized("Device token doesn't exist".into())),
            });
        }
        let Some(device) = self.store.device_token(&digest).await? else {
            return Ok(Err(Unauthorized("Device token doesn't exist".into())));
        };
        let mut access_tokens = self.store.access_tokens_of_device(device.id).await?;
        let mut users: Vec<User> = Vec::new();
        for t in &access_tokens {
            if users.iter().all(|u| u.id != t.user_id)
                && let Some(u) = self.store.user(t.user_id).await?.filter(usable)
            {
                users.push(u);
            }
        }
        access_tokens.retain(|t| users.iter().any(|u| u.id == t.user_id));
        self.store.apply(Batch(vec![Change::TouchDeviceToken { digest, at: now() }])).await?;
        Ok(Ok(UserAuthorization { access_tokens, users, device: Some(device) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing_follows_remp_with_the_scheme_checked() {
        assert_eq!(parse_bearer(Some("Bearer abc")), Ok("abc"));
        assert_eq!(parse_bearer(Some("bEARER abc")), Ok("abc"));
        let invalid = Err(Unauthorized("Authorization header contains invalid structure".into()));
        assert_eq!(parse_bearer(Some("Bearer")), invalid);
        assert_eq!(parse_bearer(Some("Bearer a b")), invalid);
        assert_eq!(parse_bearer(Some("Basic abc")), invalid);
        assert_eq!(parse_bearer(Some("Bearer ")), invalid);
        assert_eq!(parse_bearer(None), Err(Unauthorized("Authorization header HTTP_Authorization is not set".into())));
    }
}
