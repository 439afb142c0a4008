//! Where plugins join the use cases: plugin authenticators in the chain (with provisioning),
//! sign-in handlers, plugin email validators after the built-ins, `user/info` extras, and
//! event listeners fed from the event bus. Failure policies are applied here.

use super::{
    Services,
    auth::{Authenticator, Credentials},
};
use crate::domain::{
    Error, Result,
    error::AuthReason,
    event::DomainEvent,
    meta::MAX_META_KEY_LEN,
    secret::generate_password,
    token::ClientInfo,
    user::{MAX_EMAIL_LEN, NewUser, Role, User},
};
use crate::plugins::{
    Kind,
    calls::{AuthDecision, AuthRequest},
    loader::Plugin,
    manifest::FailurePolicy,
};
use crate::store::{Batch, Change};
use async_trait::async_trait;
use std::sync::Arc;

/// Longest meta value a plugin may set.
const MAX_PLUGIN_META_VALUE: usize = 64 * 1024;

/// A plugin in the authenticator chain. It fails closed: a broken authenticator refuses.
pub struct PluginAuthenticator(pub Arc<Plugin>);

#[async_trait]
impl Authenticator for PluginAuthenticator {
    fn priority(&self) -> i32 {
        self.0.manifest().priority
    }

    fn method(&self) -> String {
        self.0.manifest().name.clone()
    }

    async fn authenticate(&self, svc: &Services, creds: &Credentials, client: &ClientInfo) -> Result<Option<User>> {
        let plugin = &self.0;
        let request = AuthRequest {
            username: creds.username.clone(),
            password: creds.password.clone(),
            source: creds.source.clone(),
            client: client.clone(),
            extra: creds.extra.clone(),
        };
        let decision = match plugin.authenticate(&request).await {
            Ok(d) => d,
            Err(failure) => {
                tracing::warn!(error = %failure, "authenticator failed; the sign-in is refused by it");
                return Err(Error::auth(AuthReason::Failure, "Sign-in is temporarily unavailable. Try it later."));
            }
        };
        match decision {
            AuthDecision::Skip => Ok(None),
            AuthDecision::Refused { reason, message } => Err(Error::auth(reason, message)),
            AuthDecision::Existing(id) => match svc.store.user(id).await?.filter(|u| !u.is_deleted()) {
                Some(u) if u.active => Ok(Some(u)),
                Some(_) => Err(Error::auth(AuthReason::IdentityNotFound, "Account is disabled.")),
                None => Err(Error::auth(AuthReason::IdentityNotFound, "Invalid email.")),
            },
            AuthDecision::Provision { email, first_name, last_name, meta } => {
                svc.provision(plugin, &email, first_name, last_name, meta, &creds.source).await.map(Some)
            }
        }
    }
}

impl Services {
    /// The user a plugin authenticator vouches for: the existing one with that email, or a
    /// new one (a random password nobody knows; the plugin's meta set).
    async fn provision(
        &self,
        plugin: &Plugin,
        email: &str,
        first_name: Option<String>,
        last_name: Option<String>,
        meta: Vec<(String, String)>,
        source: &str,
    ) -> Result<User> {
        let name = &plugin.manifest().name;
        if !is_provisionable_email(email) {
            tracing::warn!(plugin = %name, "authenticator provisioned an invalid email; sign-in refused");
            return Err(Error::auth(AuthReason::Failure, "The sign-in service returned an invalid email"));
        }
        if let Some(user) = self.store.user_by_email(email).await?.filter(|u| !u.is_deleted()) {
            if !user.active {
                return Err(Error::auth(AuthReason::IdentityNotFound, "Account is disabled."));
            }
            return Ok(user);
        }
        let meta = acceptable_plugin_meta(meta.into_iter().map(|(k, v)| (k, v, false)).collect());
        let draft = NewUser {
            email: email.to_owned(),
            password_hash: self.passwords.hash(&generate_password()?).await?,
            first_name,
            last_name,
            role: Role::User,
            active: true,
            source: source.to_owned(),
            referer: None,
            registration_channel: name.clone(),
            locale: self.config.default_locale.clone(),
            ext_id: None,
            note: None,
        };
        let (user, _) = match self.store.create_user(draft, meta.clone(), None).await {
            Ok(created) => created,
            // Two first sign-ins raced; the other one created the user.
            Err(Error::Conflict { .. }) => {
                return self
                    .store
                    .user_by_email(email)
                    .await?
                    .ok_or_else(|| Error::auth(AuthReason::Failure, "Sign-in is temporarily unavailable."));
            }
            Err(e) => return Err(e),
        };
        let mut events = vec![DomainEvent::NewUser { user_id: user.id }];
        events.extend(meta.into_iter().map(|(key, value, _)| DomainEvent::UserMeta {
            user_id: user.id,
            key,
            value: Some(value),
        }));
        events.push(DomainEvent::UserRegistered { user_id: user.id, send_email: false, password: None });
        self.events.publish_all(events);
        Ok(user)
    }

    /// Sign-in handlers in priority order: the first deny refuses; meta they set is applied
    /// when all allow. A failing handler follows its failure policy (open by default).
    pub(super) async fn run_sign_in_handlers(
        &self,
        user: &User,
        source: &str,
        method: &str,
        client: &ClientInfo,
    ) -> Result<()> {
        let set = self.plugins.current();
        let mut meta = Vec::new();
        for handler in set.of(Kind::SignInHandler) {
            match handler.on_sign_in(user, source, method, client).await {
                Ok(decision) => {
                    if let Some(reason) = decision.deny {
                        let reason = if reason.trim().is_empty() { "Sign-in denied".to_owned() } else { reason };
                        return Err(Error::auth(AuthReason::Denied, reason));
                    }
                    meta.extend(decision.set_meta);
                }
                Err(failure) => match handler.failure_policy(Kind::SignInHandler) {
                    FailurePolicy::Open => {
                        tracing::warn!(error = %failure, "sign-in handler failed; allowed (fails open)")
                    }
                    FailurePolicy::Closed => {
                        tracing::warn!(error = %failure, "sign-in handler failed; refused (fails closed)");
                        return Err(Error::auth(AuthReason::Denied, "Sign-in could not be checked. Try it later."));
                    }
                },
            }
        }
        let meta = acceptable_plugin_meta(meta);
        if meta.is_empty() {
            return Ok(());
        }
        let batch = Batch(
            meta.iter()
                .map(|(key, value, is_public)| Change::PutMeta {
                    user_id: user.id,
                    key: key.clone(),
                    value: value.clone(),
                    is_public: *is_public,
                })
                .collect(),
        );
        self.store.apply(batch).await?;
        self.events.publish_all(meta.into_iter().map(|(key, value, _)| DomainEvent::UserMeta {
            user_id: user.id,
            key,
            value: Some(value),
        }));
        Ok(())
    }

    /// REMP's email validator chain, then the plugin validators in priority order. `Err`
    /// names the validator that refused: `regexp`, `blocked-domain` or `plugin:<name>`.
    pub async fn check_email(&self, email: &str) -> Result<std::result::Result<(), String>> {
        if email.len() > MAX_EMAIL_LEN {
            return Ok(Err("regexp".into()));
        }
        if let Err(rejection) = self.email.check(email) {
            return Ok(Err(rejection.validator_name().into()));
        }
        let set = self.plugins.current();
        for validator in set.of(Kind::EmailValidator) {
            let name = &validator.manifest().name;
            match validator.validate_email(email).await {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => {
                    tracing::debug!(plugin = %name, %reason, "email rejected by plugin");
                    return Ok(Err(format!("plugin:{name}")));
                }
                Err(failure) => match validator.failure_policy(Kind::EmailValidator) {
                    FailurePolicy::Closed => {
                        tracing::warn!(error = %failure, "email validator failed; email refused (fails closed)");
                        return Ok(Err(format!("plugin:{name}")));
                    }
                    FailurePolicy::Open => {
                        tracing::warn!(error = %failure, "email validator failed; ignored (fails open)")
                    }
                },
            }
        }
        Ok(Ok(()))
    }

    /// Whether an email passes every validator.
    pub async fn email_is_valid(&self, email: &str) -> Result<bool> {
        Ok(self.check_email(email).await?.is_ok())
    }

    /// `user/info` extras: the authenticator plugin that issued the token may add a JSON
    /// object about the user, shown under the plugin's name.
    pub async fn user_info_extras(&self, method: Option<&str>, user: &User) -> Option<(String, serde_json::Value)> {
        let set = self.plugins.current();
        let plugin = set.by_name(method?)?.clone();
        if !plugin.kinds.contains(&Kind::Authenticator) {
            return None;
        }
        match plugin.user_info(user).await {
            Ok(Some(text)) => match user_info_object(&text) {
                Some(value) => Some((plugin.manifest().name.clone(), value)),
                None => {
                    tracing::warn!(plugin = %plugin.manifest().name, "user-info returned something other than a JSON object; ignored");
                    None
                }
            },
            Ok(None) => None,
            Err(failure) => {
                tracing::warn!(error = %failure, "user-info failed; left out");
                None
            }
        }
    }

    /// Feed every domain event to the event-listener plugins, off the request path.
    pub fn start_event_listeners(&self) -> tokio::task::JoinHandle<()> {
        let mut rx = self.events.subscribe();
        let plugins = self.plugins.clone();
        tokio::spawn(async move {
            loop {
                let envelope = match rx.recv().await {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "event listeners fell behind; events dropped");
                        continue;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let set = plugins.current();
                let listeners: Vec<Arc<Plugin>> = set.of(Kind::EventListener).cloned().collect();
                if listeners.is_empty() {
                    continue;
                }
                let name = envelope.event.name();
                let user_id = envelope.event.user_id();
                let at = envelope.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                let payload = serde_json::to_string(&envelope.event).unwrap_or_else(|_| "{}".into());
                // Each listener gets events in order (its own state, e.g. counters in its
                // key-value store, stays consistent); different listeners run side by side.
                let calls = listeners.iter().map(|listener| {
                    let (at, payload) = (&at, &payload);
                    async move {
                        if let Err(failure) = listener.on_event(name, user_id, at, payload).await {
                            tracing::warn!(error = %failure, "event listener failed");
                        }
                    }
                });
                futures_util::future::join_all(calls).await;
            }
        })
    }
}

/// Whether an email an authenticator vouches for may become an account. REMP's email rule lets
/// any non-ASCII character through, C1 controls (U+0080–U+009F) included; a plugin's answer is
/// held to more than a REMP client's input, so those are refused here.
pub fn is_provisionable_email(email: &str) -> bool {
    email.len() <= MAX_EMAIL_LEN && !email.chars().any(char::is_control) && crate::domain::email::is_email(email)
}

/// The meta entries a plugin set (provisioning or a sign-in handler) that are stored: a
/// non-empty key within REMP's key length and a value of at most 64 KiB; the rest are dropped.
pub fn acceptable_plugin_meta(meta: Vec<(String, String, bool)>) -> Vec<(String, String, bool)> {
    meta.into_iter()
        .filter(|(k, v, _)| !k.is_empty() && k.len() <= MAX_META_KEY_LEN && v.len() <= MAX_PLUGIN_META_VALUE)
        .collect()
}

/// An authenticator's `user-info` text when it is a JSON object (what `user/info` can merge).
pub fn user_info_object(text: &str) -> Option<serde_json::Value> {
    serde_json::from_str::<serde_json::Value>(text).ok().filter(serde_json::Value::is_object)
}
