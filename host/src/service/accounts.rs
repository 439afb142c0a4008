//! Account use cases: registration (with unclaimed users), updates, confirmation, deletion by
//! anonymization, disabling, and listing.

use super::Services;
use crate::domain::{
    Error, Result,
    attempt::{PasswordChangeKind, RegistrationStatus},
    event::DomainEvent,
    meta::{NEWSLETTERS_SUBSCRIBE, UNCLAIMED_USER},
    now,
    secret::{generate_password, new_token},
    token::ClientInfo,
    user::{GDPR_REMOVAL, MAX_EMAIL_LEN, MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, NewUser, Role, User, UserId},
};
use crate::store::{AccessTokenDraft, Batch, Change, UserScan};

/// `users/list` pages hold this many users (REMP's `LIMIT 1000`).
pub const LIST_PAGE_SIZE: usize = 1000;

/// A registration request (REMP `users/create`).
#[derive(Debug, Clone, Default)]
pub struct Registration {
    pub email: String,
    pub password: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub ext_id: Option<i64>,
    pub source: Option<String>,
    pub referer: Option<String>,
    pub note: Option<String>,
    pub send_email: bool,
    pub check_email: bool,
    pub device_token: Option<String>,
    pub unclaimed: bool,
    pub newsletters_subscribe: bool,
    pub locale: Option<String>,
}

/// The outcome of a registration.
#[derive(Debug, Clone)]
pub struct Registered {
    pub user: User,
    pub access_token: Option<String>,
}

/// A change to an existing user (REMP `users/update`).
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    pub user_id: UserId,
    pub email: Option<String>,
    pub password: Option<String>,
    pub ext_id: Option<i64>,
    pub locale: Option<String>,
    pub check_email: bool,
}

/// A user created by an operator (`crm-users user add`).
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: String,
    pub password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub admin: bool,
    pub active: bool,
}

/// One page of `users/list`.
#[derive(Debug, Clone)]
pub struct UserPage {
    pub users: Vec<User>,
    pub total_count: u64,
    pub total_pages: u64,
}

fn invalid_email() -> Error {
    Error::invalid("invalid_email", "email", "Invalid email")
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

impl Services {
    /// Register a user, or claim an existing unclaimed one, as REMP's `users/create` does.
    /// Every outcome is recorded as a registration attempt.
    pub async fn register(&self, reg: Registration, client: &ClientInfo) -> Result<Registered> {
        let attempt = |user_id: Option<UserId>, status: RegistrationStatus| Change::InsertRegistrationAttempt {
            user_id,
            email: reg.email.chars().take(MAX_EMAIL_LEN).collect(),
            status,
            source: reg.source.clone(),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        };
        let record =
            |user_id, status| async move { self.store.apply(Batch(vec![attempt(user_id, status)])).await.map(|_| ()) };
        if reg.email.len() > MAX_EMAIL_LEN || !crate::domain::email::is_email(&reg.email) {
            record(None, RegistrationStatus::InvalidEmail).await?;
            return Err(invalid_email());
        }
        let existing = self.store.user_by_email(&reg.email).await?;
        let existing_unclaimed = match &existing {
            Some(u) => self.is_unclaimed(u).await?,
            None => false,
        };
        if existing.is_some() && (reg.unclaimed || !existing_unclaimed) {
            record(None, RegistrationStatus::TakenEmail).await?;
            return Err(Error::Conflict { code: "email_taken", message: "Email is already taken".into() });
        }
        let source = non_empty(&reg.source).unwrap_or("api").to_owned();
        let device = match non_empty(&reg.device_token) {
            Some(plain) => match self.find_device_token(plain).await? {
                Some(d) => Some(d),
                None => {
                    record(None, RegistrationStatus::DeviceTokenNotFound).await?;
                    return Err(Error::invalid(
                        "device_token_doesnt_exist",
                        "device_token",
                        "Device token doesn't exist",
                    ));
                }
            },
            None => None,
        };
        if let Some(p) = &reg.password
            && p.len() > MAX_PASSWORD_LEN
        {
            return Err(Error::invalid(
                "invalid_password",
                "password",
                format!("Password must be at most {MAX_PASSWORD_LEN} characters"),
            ));
        }

        let (user, token, events) = match existing {
            Some(user) => self.claim_unclaimed(user, &reg, &source, client).await?,
            None if reg.unclaimed => self.create_unclaimed(&reg, &source).await?,
            None => {
                if reg.check_email && !self.email_is_valid(&reg.email).await? {
                    record(None, RegistrationStatus::InvalidEmail).await?;
                    return Err(invalid_email());
                }
                self.create_registered(&reg, &source, client).await?
            }
        };
        self.events.publish_all(events);
        if let (Some(device), Some(plain)) = (&device, &token)
            && let Some(access) = self.find_access_token(plain).await?
        {
            self.pair(&access, device).await?;
        }
        record(Some(user.id), RegistrationStatus::Ok).await?;
        Ok(Registered { user, access_token: token })
    }

    /// REMP's post-registration update: names, ext_id and note, where given and non-empty.
    fn apply_profile(user: &mut User, reg: &Registration) {
        if let Some(v) = non_empty(&reg.first_name) {
            user.first_name = Some(v.to_owned());
        }
        if let Some(v) = non_empty(&reg.last_name) {
            user.last_name = Some(v.to_owned());
        }
        if let Some(v) = reg.ext_id.filter(|v| *v != 0) {
            user.ext_id = Some(v);
        }
        if let Some(v) = non_empty(&reg.note) {
            user.note = Some(v.to_owned());
        }
    }

    async fn create_registered(
        &self,
        reg: &Registration,
        source: &str,
        client: &ClientInfo,
    ) -> Result<(User, Option<String>, Vec<DomainEvent>)> {
        let (password, generated) = match &reg.password {
            Some(p) if !p.is_empty() => {
                if p.chars().count() < MIN_PASSWORD_LEN {
                    return Err(Error::invalid(
                        "invalid_password",
                        "password",
                        format!("Password must be at least {MIN_PASSWORD_LEN} characters"),
                    ));
                }
                (p.clone(), None)
            }
            _ => {
                let p = generate_password()?;
                (p.clone(), Some(p))
            }
        };
        let token = new_token()?;
        let draft = self.new_user_draft(reg, source, self.passwords.hash(&password).await?);
        let meta = if reg.newsletters_subscribe {
            vec![(NEWSLETTERS_SUBSCRIBE.to_owned(), "1".to_owned(), false)]
        } else {
            vec![]
        };
        let (user, access) = self
            .store
            .create_user(
                draft,
                meta.clone(),
                Some(AccessTokenDraft {
                    digest: token.digest,
                    user_id: 0,
                    device_token_id: None,
                    source: Some(source.to_owned()),
                    method: None,
                    ip: client.ip.clone(),
                    user_agent: client.user_agent.clone(),
                }),
            )
            .await?;
        let mut events = vec![DomainEvent::NewUser { user_id: user.id }];
        events.extend(meta.into_iter().map(|(key, value, _)| DomainEvent::UserMeta {
            user_id: user.id,
            key,
            value: Some(value),
        }));
        events.push(DomainEvent::UserRegistered { user_id: user.id, send_email: reg.send_email, password: generated });
        if let Some(t) = access {
            events.push(DomainEvent::NewAccessToken { user_id: user.id, token_id: t.id });
        }
        Ok((user, Some(token.plain), events))
    }

    async fn create_unclaimed(
        &self,
        reg: &Registration,
        source: &str,
    ) -> Result<(User, Option<String>, Vec<DomainEvent>)> {
        let hash = self.passwords.hash(&generate_password()?).await?;
        let draft = self.new_user_draft(reg, source, hash);
        let mut meta = vec![(UNCLAIMED_USER.to_owned(), "1".to_owned(), false)];
        if reg.newsletters_subscribe {
            meta.push((NEWSLETTERS_SUBSCRIBE.to_owned(), "1".to_owned(), false));
        }
        let (user, _) = self.store.create_user(draft, meta.clone(), None).await?;
        let mut events = vec![DomainEvent::NewUser { user_id: user.id }];
        events.extend(meta.into_iter().map(|(key, value, _)| DomainEvent::UserMeta {
            user_id: user.id,
            key,
            value: Some(value),
        }));
        Ok((user, None, events))
    }

    /// REMP's `makeUnclaimedUserRegistered`: the unclaimed user becomes a regular one in place.
    async fn claim_unclaimed(
        &self,
        mut user: User,
        reg: &Registration,
        source: &str,
        client: &ClientInfo,
    ) -> Result<(User, Option<String>, Vec<DomainEvent>)> {
        let (password, generated) = match non_empty(&reg.password) {
            Some(p) => (p.to_owned(), None),
            None => {
                let p = generate_password()?;
                (p.clone(), Some(p))
            }
        };
        user.password_hash = self.passwords.hash(&password).await?;
        if let Some(r) = non_empty(&reg.referer) {
            user.referer = Some(r.to_owned());
        }
        if let Some(s) = non_empty(&reg.source) {
            user.source = s.to_owned();
        }
        Self::apply_profile(&mut user, reg);
        user.modified_at = now();
        let token = new_token()?;
        let mut batch = Batch::new();
        batch
            .push(Change::DeleteMeta { user_id: user.id, key: UNCLAIMED_USER.into(), value: None })
            .push(Change::PutUser(Box::new(user.clone())))
            .push(Change::InsertAccessToken(AccessTokenDraft {
                digest: token.digest,
                user_id: user.id,
                device_token_id: None,
                source: Some(source.to_owned()),
                method: None,
                ip: client.ip.clone(),
                user_agent: client.user_agent.clone(),
            }));
        if reg.newsletters_subscribe {
            batch.push(Change::PutMeta {
                user_id: user.id,
                key: NEWSLETTERS_SUBSCRIBE.into(),
                value: "1".into(),
                is_public: false,
            });
        }
        let applied = self.store.apply(batch).await?;
        let mut events = vec![
            DomainEvent::UserMeta { user_id: user.id, key: UNCLAIMED_USER.into(), value: None },
            DomainEvent::UserUpdated { user_id: user.id },
            DomainEvent::UserRegistered { user_id: user.id, send_email: reg.send_email, password: generated },
        ];
        if let Some(t) = applied.access_tokens().next() {
            events.push(DomainEvent::NewAccessToken { user_id: user.id, token_id: t.id });
        }
        Ok((user, Some(token.plain), events))
    }

    fn new_user_draft(&self, reg: &Registration, source: &str, password_hash: String) -> NewUser {
        NewUser {
            email: reg.email.clone(),
            password_hash,
            first_name: non_empty(&reg.first_name).map(str::to_owned),
            last_name: non_empty(&reg.last_name).map(str::to_owned),
            role: Role::User,
            active: true,
            source: source.to_owned(),
            referer: non_empty(&reg.referer).map(str::to_owned),
            registration_channel: "crm".into(),
            locale: non_empty(&reg.locale).map(str::to_owned).unwrap_or_else(|| self.config.default_locale.clone()),
            ext_id: reg.ext_id.filter(|v| *v != 0),
            note: non_empty(&reg.note).map(str::to_owned),
        }
    }

    /// Create a user as an operator (`crm-users user add`), REMP's `user:add`.
    pub async fn add_account(&self, account: NewAccount) -> Result<User> {
        if account.email.len() > MAX_EMAIL_LEN || !crate::domain::email::is_email(&account.email) {
            return Err(Error::invalid("invalid_email", "email", format!("'{}' is not a valid email", account.email)));
        }
        let len = account.password.chars().count();
        if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
            return Err(Error::invalid(
                "invalid_password",
                "password",
                format!("the password must have {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"),
            ));
        }
        let draft = NewUser {
            email: account.email,
            password_hash: self.passwords.hash(&account.password).await?,
            first_name: account.first_name.filter(|v| !v.is_empty()),
            last_name: account.last_name.filter(|v| !v.is_empty()),
            role: if account.admin { Role::Admin } else { Role::User },
            active: account.active,
            source: "cli".into(),
            referer: None,
            registration_channel: "crm".into(),
            locale: self.config.default_locale.clone(),
            ext_id: None,
            note: None,
        };
        let (user, _) = self.store.create_user(draft, vec![], None).await?;
        self.events.publish(DomainEvent::NewUser { user_id: user.id });
        Ok(user)
    }

    /// REMP's `users/update`.
    pub async fn update_user(&self, change: UserUpdate) -> Result<User> {
        let Some(mut user) = self.store.user(change.user_id).await? else {
            return Err(Error::NotFound("User not found".into()));
        };
        let mut events = Vec::new();
        let mut batch = Batch::new();
        if let Some(email) = non_empty(&change.email) {
            if email.len() > MAX_EMAIL_LEN
                || !crate::domain::email::is_email(email)
                || (change.check_email && !self.email_is_valid(email).await?)
            {
                return Err(invalid_email());
            }
            if email != user.email {
                events.push(user.change_email(email));
            }
        }
        if let Some(ext_id) = change.ext_id.filter(|v| *v != 0) {
            user.ext_id = Some(ext_id);
        }
        if let Some(locale) = non_empty(&change.locale) {
            user.locale = locale.to_owned();
        }
        if let Some(password) = non_empty(&change.password) {
            if password.len() > MAX_PASSWORD_LEN {
                return Err(Error::invalid("invalid_password", "password", "Password is too long"));
            }
            if self.passwords.verify(password, &user.password_hash).await? == super::passwords::Verified::No {
                self.stage_password_change(&mut user, password, PasswordChangeKind::Change, &mut batch).await?;
                events.push(DomainEvent::UserChangePassword { user_id: user.id, notify: true });
            }
        }
        user.modified_at = now();
        batch.push(Change::PutUser(Box::new(user.clone())));
        self.store.apply(batch).await?;
        events.push(DomainEvent::UserUpdated { user_id: user.id });
        self.events.publish_all(events);
        Ok(user)
    }

    /// Hash a new password into `user` and add its password-change log entry to `batch`; the
    /// caller writes the user in the same batch and publishes `UserChangePassword`.
    pub(super) async fn stage_password_change(
        &self,
        user: &mut User,
        password: &str,
        kind: PasswordChangeKind,
        batch: &mut Batch,
    ) -> Result<()> {
        let new_hash = self.passwords.hash(password).await?;
        batch.push(Change::InsertPasswordChange {
            user_id: user.id,
            kind,
            from_hash: std::mem::replace(&mut user.password_hash, new_hash.clone()),
            to_hash: new_hash,
        });
        Ok(())
    }

    /// REMP's `confirmUser`: sets `confirmed_at` once; a confirmed user stays as it is.
    pub async fn confirm(&self, email: &str) -> Result<User> {
        let Some(mut user) = self.store.user_by_email(email).await? else {
            return Err(Error::NotFound("User not found".into()));
        };
        if user.confirmed_at.is_none() {
            user.confirmed_at = Some(now());
            user.modified_at = now();
            self.store.apply(Batch(vec![Change::PutUser(Box::new(user.clone()))])).await?;
            self.events.publish_all([
                DomainEvent::UserUpdated { user_id: user.id },
                DomainEvent::UserConfirmed { user_id: user.id, by_admin: false },
            ]);
        }
        Ok(user)
    }

    /// `user/delete`: anonymize the user as REMP's data providers do, drop public meta, login
    /// attempts, autologin tokens and connected accounts, and revoke every access token (REMP leaves them; a deleted account that
    /// keeps working tokens is a surprise nobody wants).
    pub async fn delete_user(&self, user: &User) -> Result<()> {
        let mut anon = user.clone();
        let suffix = crate::domain::secret::new_key()?
            .iter()
            .take(10)
            .map(|b| char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[*b as usize % 36]))
            .collect::<String>();
        anon.email = format!("GDPR_removal@{}{}", now().timestamp(), suffix);
        anon.first_name = Some(GDPR_REMOVAL.into());
        anon.last_name = Some(GDPR_REMOVAL.into());
        anon.public_name = GDPR_REMOVAL.into();
        anon.password_hash = GDPR_REMOVAL.into();
        anon.current_sign_in_ip = Some(GDPR_REMOVAL.into());
        anon.referer = Some(GDPR_REMOVAL.into());
        anon.ext_id = None;
        anon.active = false;
        anon.deleted_at = Some(now());
        anon.modified_at = now();
        let public_keys: Vec<String> =
            self.store.user_meta(user.id).await?.into_iter().filter(|m| m.is_public).map(|m| m.key).collect();
        let tokens = self.store.access_tokens_of_user(user.id).await?;
        let mut batch = Batch::new();
        batch
            .push(Change::PutUser(Box::new(anon)))
            .push(Change::DeletePublicMeta { user_id: user.id })
            .push(Change::DeleteLoginAttemptsOf { user_id: user.id })
            .push(Change::DeleteAutologinTokensOf { user_id: user.id })
            .push(Change::DeleteConnectedAccountsOf { user_id: user.id });
        for t in &tokens {
            batch.push(Change::DeleteAccessToken(t.digest));
        }
        let applied = self.store.apply(batch).await?;
        let mut events = vec![DomainEvent::UserUpdated { user_id: user.id }];
        events.extend(public_keys.into_iter().map(|key| DomainEvent::UserMeta { user_id: user.id, key, value: None }));
        events.extend(applied.removed_access_tokens.iter().map(|t| DomainEvent::RemovedAccessToken {
            user_id: t.user_id,
            token_id: t.id,
            source: t.source.clone(),
        }));
        events.push(DomainEvent::UserDeleted { user_id: user.id });
        self.events.publish_all(events);
        Ok(())
    }

    /// REMP's `user:disable`: deactivate and remove every access token. `Ok(false)` when the
    /// user was already inactive.
    pub async fn disable_user(&self, email: &str) -> Result<bool> {
        let Some(mut user) = self.store.user_by_email(email).await?.filter(|u| !u.is_deleted()) else {
            return Err(Error::NotFound("User not found".into()));
        };
        if !user.active {
            return Ok(false);
        }
        user.active = false;
        user.modified_at = now();
        let tokens = self.store.access_tokens_of_user(user.id).await?;
        let mut batch = Batch(vec![Change::PutUser(Box::new(user.clone()))]);
        batch.0.extend(tokens.iter().map(|t| Change::DeleteAccessToken(t.digest)));
        let applied = self.store.apply(batch).await?;
        let mut events: Vec<DomainEvent> = applied
            .removed_access_tokens
            .iter()
            .map(|t| DomainEvent::RemovedAccessToken { user_id: t.user_id, token_id: t.id, source: t.source.clone() })
            .collect();
        events.push(DomainEvent::UserUpdated { user_id: user.id });
        events.push(DomainEvent::UserDisabled { user_id: user.id });
        self.events.publish_all(events);
        Ok(true)
    }

    /// REMP's `users/list`: non-deleted users in id order, 1,000 a page, optionally only the
    /// given ids and only active ones.
    pub async fn list_users(&self, ids: Option<&[UserId]>, page: u64, include_inactive: bool) -> Result<UserPage> {
        let scan = UserScan { after: None, include_inactive, include_deleted: false };
        let offset = (page.saturating_sub(1) as usize).saturating_mul(LIST_PAGE_SIZE);
        let (users, total_count) = match ids {
            Some(ids) => {
                let mut ids = ids.to_vec();
                ids.sort_unstable();
                ids.dedup();
                let mut found = Vec::new();
                for id in ids {
                    if let Some(u) = self.store.user(id).await?
                        && !u.is_deleted()
                        && (include_inactive || u.active)
                    {
                        found.push(u);
                    }
                }
                let total = found.len() as u64;
                (found.into_iter().skip(offset).take(LIST_PAGE_SIZE).collect(), total)
            }
            None => {
                let total = self.store.count_users(&scan).await?;
                let page_users = if (offset as u64) < total {
                    self.store.scan_users(&scan, offset, LIST_PAGE_SIZE).await?
                } else {
                    Vec::new()
                };
                (page_users, total)
            }
        };
        Ok(UserPage { users, total_count, total_pages: total_count.div_ceil(LIST_PAGE_SIZE as u64) })
    }

    /// REMP's deprecated `hashed_id`: HMAC-SHA256 of the user id under a server key.
    pub async fn hashed_id(&self, user_id: UserId) -> Result<String> {
        use hmac::{Hmac, Mac};
        let key = self.store.server_secret("hashed_id").await?;
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).map_err(|e| Error::Internal(e.into()))?;
        mac.update(user_id.to_string().as_bytes());
        Ok(hex::encode(mac.finalize().into_bytes()))
    }
}
