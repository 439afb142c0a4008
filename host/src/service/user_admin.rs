//! Writes of the resource API: create, create-or-replace, patch, profile changes and password
//! administration. Reads and listing are in [`super::directory`]; deletion reuses
//! [`Services::delete_user`], the anonymization of REMP's `user/delete`.
//!
//! Every email given here runs the full validator chain ([`Services::check_email`]), as REMP's
//! registration does; every password is hashed on the bounded pool and logged in the
//! password-change log.

use super::{Services, auth::AttemptOf};
use crate::domain::{
    Error, Result,
    attempt::PasswordChangeKind,
    event::DomainEvent,
    now,
    secret::{TokenDigest, generate_password},
    token::ClientInfo,
    user::{MAX_EMAIL_LEN, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, NewUser, Role, User, UserId},
};
use crate::store::{Batch, Change};

/// The private meta key holding a user's IANA time zone (the user record has no column).
pub const TIMEZONE_META: &str = "timezone";

/// Longest locale accepted (`en_US`, `pt_BR`, `zh_Hant_TW` fit easily).
const MAX_LOCALE_LEN: usize = 32;

/// Longest name, note or source accepted (REMP's varchar(255)).
const MAX_TEXT_LEN: usize = 255;

/// Field values for creating or changing a user. `None`: not given; for nullable fields
/// `Some(None)` clears the value.
#[derive(Debug, Clone, Default)]
pub struct UserFields {
    pub email: Option<String>,
    pub password: Option<String>,
    pub password_confirmation: Option<String>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub public_name: Option<String>,
    pub locale: Option<String>,
    pub timezone: Option<Option<String>>,
    pub note: Option<Option<String>>,
    pub ext_id: Option<Option<i64>>,
    pub active: Option<bool>,
    pub role: Option<Role>,
    pub source: Option<String>,
}

/// `PUT /api/users/{id}/password`.
#[derive(Debug, Clone, Default)]
pub struct SetPassword {
    /// The new password; `None` with `generate` makes one.
    pub password: Option<String>,
    pub generate: bool,
    /// Tell the user (a mailer plugin acts on `UserChangePassword { notify }`).
    pub notify: bool,
    /// Sign the user out everywhere.
    pub revoke_tokens: bool,
}

/// `PUT /api/profile/password`.
#[derive(Debug, Clone)]
pub struct OwnPasswordChange {
    pub old_password: String,
    pub password: String,
    pub password_confirmation: String,
    /// Revoke the user's access tokens except those of this request.
    pub revoke_other_tokens: bool,
}

/// Whether `PUT` created the user or replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    Created,
    Replaced,
}

fn check_text(field: &str, value: &str) -> Result<()> {
    if value.chars().count() > MAX_TEXT_LEN {
        return Err(Error::invalid("invalid_input", field, format!("{field} has at most {MAX_TEXT_LEN} characters")));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<()> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(Error::invalid(
            "invalid_password",
            "password",
            format!("the password must have {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"),
        ));
    }
    Ok(())
}

fn check_confirmation(password: &str, confirmation: Option<&str>) -> Result<()> {
    if confirmation != Some(password) {
        return Err(Error::invalid(
            "password_mismatch",
            "password_confirmation",
            "password_confirmation must equal password",
        ));
    }
    Ok(())
}

fn check_timezone(tz: &str) -> Result<()> {
    tz.parse::<chrono_tz::Tz>().map(|_| ()).map_err(|_| {
        Error::invalid(
            "invalid_timezone",
            "timezone",
            format!("'{tz}' is not an IANA time zone such as Europe/Bratislava"),
        )
    })
}

fn check_locale(locale: &str) -> Result<()> {
    let ok = !locale.is_empty()
        && locale.len() <= MAX_LOCALE_LEN
        && locale.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(Error::invalid("invalid_locale", "locale", "locale looks like en_US"));
    }
    Ok(())
}

fn missing(field: &str) -> Error {
    Error::invalid("missing_field", field, format!("{field} is required"))
}

impl UserFields {
    /// Checks that need no I/O, done before anything is hashed or written.
    fn check(&self) -> Result<()> {
        for (field, value) in [("first_name", &self.first_name), ("last_name", &self.last_name), ("note", &self.note)] {
            if let Some(Some(v)) = value {
                check_text(field, v)?;
            }
        }
        if let Some(v) = &self.public_name {
            check_text("public_name", v)?;
        }
        if let Some(v) = &self.source {
            check_text("source", v)?;
        }
        if let Some(l) = &self.locale {
            check_locale(l)?;
        }
        if let Some(Some(tz)) = &self.timezone {
            check_timezone(tz)?;
        }
        if let Some(p) = &self.password {
            check_password(p)?;
            check_confirmation(p, self.password_confirmation.as_deref())?;
        }
        Ok(())
    }
}

impl Services {
    /// Whether the email is well formed and passes the validator chain; `invalid_email` if not.
    pub async fn require_valid_email(&self, email: &str) -> Result<()> {
        if email.len() > MAX_EMAIL_LEN || !crate::domain::email::is_email(email) {
            return Err(Error::invalid("invalid_email", "email", "Invalid email"));
        }
        if let Err(validator) = self.check_email(email).await? {
            return Err(Error::invalid("invalid_email", "email", format!("Invalid email (refused by {validator})")));
        }
        Ok(())
    }

    /// A live (not anonymized) user, or not found.
    pub async fn live_user(&self, id: UserId) -> Result<User> {
        match self.store.user(id).await? {
            Some(u) if !u.is_deleted() => Ok(u),
            _ => Err(Error::NotFound("User not found".into())),
        }
    }

    /// `POST /api/users`, and `PUT` on a free id (`id` given). Email, password and its
    /// confirmation are required.
    pub async fn create_user_resource(&self, fields: UserFields, id: Option<UserId>) -> Result<User> {
        fields.check()?;
        let email = fields.email.clone().filter(|e| !e.trim().is_empty()).ok_or_else(|| missing("email"))?;
        let password = fields.password.clone().ok_or_else(|| missing("password"))?;
        self.require_valid_email(&email).await?;
        if self.store.user_by_email(&email).await?.is_some() {
            return Err(Error::Conflict { code: "email_taken", message: "Email is already taken".into() });
        }
        let draft = NewUser {
            email: email.clone(),
            password_hash: self.passwords.hash(&password).await?,
            first_name: fields.first_name.clone().flatten().filter(|v| !v.is_empty()),
            last_name: fields.last_name.clone().flatten().filter(|v| !v.is_empty()),
            role: fields.role.unwrap_or_default(),
            active: fields.active.unwrap_or(true),
            source: fields.source.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| "api".into()),
            referer: None,
            registration_channel: "crm".into(),
            locale: fields.locale.clone().unwrap_or_else(|| self.config.default_locale.clone()),
            ext_id: fields.ext_id.flatten(),
            note: fields.note.clone().flatten().filter(|v| !v.is_empty()),
        };
        let timezone = fields.timezone.clone().flatten();
        let meta: Vec<(String, String, bool)> =
            timezone.iter().map(|tz| (TIMEZONE_META.to_owned(), tz.clone(), false)).collect();
        let public_name = fields.public_name.clone().filter(|p| !p.is_empty());
        let user = match id {
            None => {
                let (mut user, _) = self.store.create_user(draft, meta.clone(), None).await?;
                if let Some(p) = public_name {
                    user.public_name = p;
                    self.store.apply(Batch(vec![Change::PutUser(Box::new(user.clone()))])).await?;
                }
                user
            }
            Some(id) => {
                let mut user = draft.into_user(id, uuid::Uuid::new_v4().to_string(), now());
                if let Some(p) = public_name {
                    user.public_name = p;
                }
                let mut batch = Batch(vec![Change::InsertUser(Box::new(user.clone()))]);
                batch.0.extend(meta.iter().map(|(key, value, is_public)| Change::PutMeta {
                    user_id: id,
                    key: key.clone(),
                    value: value.clone(),
                    is_public: *is_public,
                }));
                self.store.apply(batch).await?;
                user
            }
        };
        let mut events = vec![DomainEvent::NewUser { user_id: user.id }];
        events.extend(meta.into_iter().map(|(key, value, _)| DomainEvent::UserMeta {
            user_id: user.id,
            key,
            value: Some(value),
        }));
        self.events.publish_all(events);
        Ok(user)
    }

    /// `PUT /api/users/{id}`: replace every field of an existing user (fields not given take
    /// their defaults; the password stays unless given), or create the user under that id.
    pub async fn put_user(&self, id: UserId, fields: UserFields) -> Result<(User, Put)> {
        let existing = match self.store.user(id).await? {
            Some(u) if u.is_deleted() => {
                return Err(Error::Conflict {
                    code: "user_deleted",
                    message: format!("User {id} was deleted; its id is not reused"),
                });
            }
            other => other,
        };
        let Some(user) = existing else {
            return Ok((self.create_user_resource(fields, Some(id)).await?, Put::Created));
        };
        if fields.email.as_deref().is_none_or(|e| e.trim().is_empty()) {
            return Err(missing("email"));
        }
        let full = UserFields {
            first_name: Some(fields.first_name.clone().flatten()),
            last_name: Some(fields.last_name.clone().flatten()),
            public_name: Some(fields.public_name.clone().unwrap_or_else(|| fields.email.clone().unwrap_or_default())),
            locale: Some(fields.locale.clone().unwrap_or_else(|| self.config.default_locale.clone())),
            timezone: Some(fields.timezone.clone().flatten()),
            note: Some(fields.note.clone().flatten()),
            ext_id: Some(fields.ext_id.flatten()),
            active: Some(fields.active.unwrap_or(true)),
            role: Some(fields.role.unwrap_or_default()),
            ..fields
        };
        Ok((self.change_user(user, full).await?, Put::Replaced))
    }

    /// `PATCH /api/users/{id}` and `PUT /api/profile`: change the given fields only.
    pub async fn patch_user(&self, id: UserId, fields: UserFields) -> Result<User> {
        let user = self.live_user(id).await?;
        self.change_user(user, fields).await
    }

    async fn change_user(&self, mut user: User, fields: UserFields) -> Result<User> {
        fields.check()?;
        let mut events = Vec::new();
        let mut batch = Batch::new();
        if let Some(email) = fields.email.as_deref().filter(|e| *e != user.email) {
            self.require_valid_email(email).await?;
            // A public name given in the same request is applied below and wins.
            events.push(user.change_email(email));
        }
        if let Some(v) = fields.first_name {
            user.first_name = v.filter(|v| !v.is_empty());
        }
        if let Some(v) = fields.last_name {
            user.last_name = v.filter(|v| !v.is_empty());
        }
        if let Some(v) = fields.public_name.filter(|v| !v.is_empty()) {
            user.public_name = v;
        }
        if let Some(v) = fields.locale {
            user.locale = v;
        }
        if let Some(v) = fields.note {
            user.note = v.filter(|v| !v.is_empty());
        }
        if let Some(v) = fields.ext_id {
            user.ext_id = v;
        }
        let disabling = user.active && fields.active == Some(false);
        if let Some(v) = fields.active {
            user.active = v;
        }
        if disabling {
            // As REMP's `user:disable`: a disabled account keeps no session, so enabling it
            // again does not bring old tokens back to life.
            for t in self.store.access_tokens_of_user(user.id).await? {
                batch.push(Change::DeleteAccessToken(t.digest));
            }
            batch.push(Change::DeleteAutologinTokensOf { user_id: user.id });
            events.push(DomainEvent::UserDisabled { user_id: user.id });
        }
        if let Some(v) = fields.role {
            user.role = v;
        }
        if let Some(v) = fields.source.filter(|v| !v.is_empty()) {
            user.source = v;
        }
        if let Some(tz) = fields.timezone {
            let key = TIMEZONE_META.to_owned();
            batch.push(match &tz {
                Some(value) => {
                    Change::PutMeta { user_id: user.id, key: key.clone(), value: value.clone(), is_public: false }
                }
                None => Change::DeleteMeta { user_id: user.id, key: key.clone(), value: None },
            });
            events.push(DomainEvent::UserMeta { user_id: user.id, key, value: tz });
        }
        if let Some(password) = &fields.password {
            self.stage_password_change(&mut user, password, PasswordChangeKind::Force, &mut batch).await?;
            events.push(DomainEvent::UserChangePassword { user_id: user.id, notify: false });
        }
        user.modified_at = now();
        batch.push(Change::PutUser(Box::new(user.clone())));
        let applied = self.store.apply(batch).await?;
        events.extend(applied.removed_access_tokens.iter().map(|t| DomainEvent::RemovedAccessToken {
            user_id: t.user_id,
            token_id: t.id,
            source: t.source.clone(),
        }));
        events.push(DomainEvent::UserUpdated { user_id: user.id });
        self.events.publish_all(events);
        Ok(user)
    }

    /// Store a new password hash with its log entry, optionally revoking access tokens (all
    /// but `keep`), and publish `UserChangePassword`.
    async fn store_password(
        &self,
        mut user: User,
        password: &str,
        kind: PasswordChangeKind,
        notify: bool,
        revoke: Option<&[TokenDigest]>,
    ) -> Result<()> {
        let mut batch = Batch::new();
        self.stage_password_change(&mut user, password, kind, &mut batch).await?;
        user.modified_at = now();
        batch.push(Change::PutUser(Box::new(user.clone())));
        if let Some(keep) = revoke {
            for t in self.store.access_tokens_of_user(user.id).await? {
                if !keep.contains(&t.digest) {
                    batch.push(Change::DeleteAccessToken(t.digest));
                }
            }
        }
        let applied = self.store.apply(batch).await?;
        let mut events: Vec<DomainEvent> = applied
            .removed_access_tokens
            .iter()
            .map(|t| DomainEvent::RemovedAccessToken { user_id: t.user_id, token_id: t.id, source: t.source.clone() })
            .collect();
        events.push(DomainEvent::UserChangePassword { user_id: user.id, notify });
        events.push(DomainEvent::UserUpdated { user_id: user.id });
        self.events.publish_all(events);
        Ok(())
    }

    /// `PUT /api/users/{id}/password`: set or generate a password. Returns the generated
    /// password, which is shown once and never stored in plain text.
    pub async fn set_user_password(&self, id: UserId, request: SetPassword) -> Result<Option<String>> {
        let (password, generated, kind) = match (&request.password, request.generate) {
            (Some(_), true) => {
                return Err(Error::invalid("invalid_input", "generate", "give password or generate: true, not both"));
            }
            (Some(p), false) => {
                check_password(p)?;
                (p.clone(), None, PasswordChangeKind::Force)
            }
            (None, true) => {
                let p = generate_password()?;
                (p.clone(), Some(p), PasswordChangeKind::Reset)
            }
            (None, false) => return Err(missing("password")),
        };
        let user = self.live_user(id).await?;
        let revoke: Option<&[TokenDigest]> = request.revoke_tokens.then_some(&[]);
        self.store_password(user, &password, kind, request.notify, revoke).await?;
        Ok(generated)
    }

    /// `PUT /api/profile/password`: the user changes their own password. A wrong old password
    /// is recorded as a failed login, so guessing it here counts towards the sign-in limits.
    pub async fn change_own_password(
        &self,
        user: &User,
        change: OwnPasswordChange,
        current_tokens: &[TokenDigest],
        client: &ClientInfo,
    ) -> Result<()> {
        check_password(&change.password)?;
        check_confirmation(&change.password, Some(&change.password_confirmation))?;
        let attempt = AttemptOf { email: &user.email, source: "api-profile-password", client };
        match self.guess_password(&attempt, user, &change.old_password).await? {
            super::auth::Guess::Throttled | super::auth::Guess::Locked => {
                return Err(Error::RateLimited("Too many unsuccessful attempts. Try it later.".into()));
            }
            super::auth::Guess::Wrong => {
                return Err(Error::invalid("invalid_old_password", "old_password", "The old password is wrong"));
            }
            super::auth::Guess::Right(_) => {}
        }
        let revoke = change.revoke_other_tokens.then_some(current_tokens);
        self.store_password(user.clone(), &change.password, PasswordChangeKind::Change, false, revoke).await
    }
}
