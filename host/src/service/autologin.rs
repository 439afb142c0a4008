//! Autologin tokens: issued for a user with a validity window and a use count, redeemed by
//! `users/autologin-token-login` through the authenticator chain at REMP's priority 800.

use super::{
    Services,
    auth::{AttemptOf, Authenticator, Credentials},
};
use crate::domain::{
    Error, Result, Timestamp,
    attempt::LoginStatus,
    error::AuthReason,
    now,
    secret::{TokenDigest, looks_like_token, new_token},
    token::{AutologinToken, ClientInfo},
    user::{Role, User, UserId},
};
use crate::store::{Batch, Change};
use async_trait::async_trait;

/// Validity of a token when the request does not say (REMP's links are short-lived).
pub const DEFAULT_VALIDITY: chrono::Duration = chrono::Duration::minutes(10);
/// Longest validity a token may get.
pub const MAX_VALIDITY: chrono::Duration = chrono::Duration::days(366);
/// Most uses one token may allow.
pub const MAX_USES: u32 = 10_000;

/// Who an autologin token is for.
#[derive(Debug, Clone)]
pub enum TokenOwner {
    Email(String),
    Id(UserId),
}

/// A request for an autologin token.
#[derive(Debug, Clone)]
pub struct AutologinRequest {
    pub owner: TokenOwner,
    pub valid_from: Option<Timestamp>,
    pub valid_to: Option<Timestamp>,
    pub max_count: Option<u32>,
}

/// An issued token: the plain text (shown once) and its terms.
#[derive(Debug, Clone)]
pub struct IssuedAutologin {
    pub token: String,
    pub user: User,
    pub valid_from: Timestamp,
    pub valid_to: Timestamp,
    pub max_count: u32,
}

impl Services {
    /// Issue an autologin token.
    pub async fn create_autologin_token(&self, req: AutologinRequest) -> Result<IssuedAutologin> {
        let user = match &req.owner {
            TokenOwner::Email(e) => self.store.user_by_email(e).await?,
            TokenOwner::Id(id) => self.store.user(*id).await?,
        }
        .filter(|u| !u.is_deleted())
        .ok_or_else(|| Error::NotFound("User not found".into()))?;
        let valid_from = req.valid_from.unwrap_or_else(now);
        let valid_to = req.valid_to.unwrap_or(valid_from + DEFAULT_VALIDITY);
        if valid_to <= valid_from {
            return Err(Error::invalid("invalid_input", "valid_to", "valid_to must be after valid_from"));
        }
        if valid_to - valid_from > MAX_VALIDITY {
            return Err(Error::invalid("invalid_input", "valid_to", "a token may be valid for at most 366 days"));
        }
        let max_count = req.max_count.unwrap_or(1);
        if !(1..=MAX_USES).contains(&max_count) {
            return Err(Error::invalid("invalid_input", "max_count", format!("max_count must be 1 to {MAX_USES}")));
        }
        let token = new_token()?;
        self.store
            .apply(Batch(vec![Change::InsertAutologinToken {
                digest: token.digest,
                user_id: user.id,
                email: user.email.clone(),
                valid_from,
                valid_to,
                max_count,
            }]))
            .await?;
        Ok(IssuedAutologin { token: token.plain, user, valid_from, valid_to, max_count })
    }
}

impl Services {
    /// Revoke one of the user's autologin tokens by its id.
    pub async fn revoke_autologin_token(&self, user_id: UserId, token_id: u64) -> Result<AutologinToken> {
        let token = self
            .store
            .autologin_tokens_of_user(user_id)
            .await?
            .into_iter()
            .find(|t| t.id == token_id)
            .ok_or_else(|| Error::NotFound(format!("Autologin token {token_id} not found")))?;
        self.store.apply(Batch(vec![Change::DeleteAutologinToken(token.digest)])).await?;
        Ok(token)
    }
}

/// REMP's `AutoLoginTokenAuthenticator`.
#[derive(Debug)]
pub struct AutologinAuthenticator;

#[async_trait]
impl Authenticator for AutologinAuthenticator {
    fn priority(&self) -> i32 {
        800
    }

    fn method(&self) -> String {
        "autologin-token".into()
    }

    async fn authenticate(&self, svc: &Services, creds: &Credentials, client: &ClientInfo) -> Result<Option<User>> {
        let Some(plain) = creds.autologin_token.as_deref() else {
            return Ok(None);
        };
        let invalid = || Error::auth(AuthReason::IdentityNotFound, "Invalid token");
        let found =
            if looks_like_token(plain) { svc.store.autologin_token(&TokenDigest::of(plain)).await? } else { None };
        let Some(token) = found else {
            return Err(invalid());
        };
        let of = AttemptOf { email: &token.email, source: &creds.source, client };
        let Some(user) = svc.store.user(token.user_id).await?.filter(|u| !u.is_deleted()) else {
            svc.record_login_attempt(&of, None, LoginStatus::NotFoundEmail, Some("Invalid token")).await?;
            return Err(invalid());
        };
        if user.role == Role::Admin {
            return Err(Error::auth(AuthReason::NotApproved, "Autologin for this account is disabled"));
        }
        let at = now();
        if !(token.valid_from < at && at < token.valid_to) {
            svc.record_login_attempt(&of, Some(&user), LoginStatus::TokenDateExpired, Some("Invalid token")).await?;
            return Err(invalid());
        }
        const SPENT: &str = "Token reached max users count";
        if token.used_count >= token.max_count {
            svc.record_login_attempt(&of, Some(&user), LoginStatus::TokenCountExpired, Some(SPENT)).await?;
            return Err(Error::auth(AuthReason::IdentityNotFound, SPENT));
        }
        match svc.store.apply(Batch(vec![Change::UseAutologinToken(token.digest)])).await {
            Ok(_) => {}
            Err(Error::Conflict { .. }) => {
                svc.record_login_attempt(&of, Some(&user), LoginStatus::TokenCountExpired, Some(SPENT)).await?;
                return Err(Error::auth(AuthReason::IdentityNotFound, SPENT));
            }
            Err(e) => return Err(e),
        }
        svc.record_login_attempt(&of, Some(&user), LoginStatus::TokenOk, None).await?;
        Ok(Some(user))
    }
}
