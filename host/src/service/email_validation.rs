//! Whether a user's email address is known to be deliverable (`users.email_validated_at`), as
//! REMP's email-validation API sets it: one address at a time with a `UserUpdated` event (v1),
//! or in bulk as one raw update without events (v2). Unclaimed users are never touched.

use super::Services;
use crate::domain::{
    Error, Result,
    email::is_email,
    event::DomainEvent,
    now,
    user::{MAX_EMAIL_LEN, User},
};
use crate::store::{Batch, Change};

/// Set or clear the validation mark; `None` when it already is in the requested state.
/// Validating keeps an existing timestamp, as REMP only fills a NULL one.
fn marked(mut user: User, validated: bool) -> Option<User> {
    match (validated, user.email_validated_at) {
        (true, Some(_)) | (false, None) => None,
        (true, None) => {
            user.email_validated_at = Some(now());
            user.modified_at = now();
            Some(user)
        }
        (false, Some(_)) => {
            user.email_validated_at = None;
            user.modified_at = now();
            Some(user)
        }
    }
}

/// Whether `email` passes REMP's `Validators::isEmail` (and fits the column).
pub fn is_valid_address(email: &str) -> bool {
    email.len() <= MAX_EMAIL_LEN && is_email(email)
}

impl Services {
    /// The claimed user owning `email`, if any.
    async fn claimed_user_by_email(&self, email: &str) -> Result<Option<User>> {
        match self.store.user_by_email(email).await? {
            Some(user) if !self.is_unclaimed(&user).await? => Ok(Some(user)),
            _ => Ok(None),
        }
    }

    /// REMP v1: mark one address validated or not. Fails with not found when no claimed user
    /// owns it. Publishes `UserUpdated` when the mark changed.
    pub async fn set_email_validated(&self, email: &str, validated: bool) -> Result<User> {
        let Some(user) = self.claimed_user_by_email(email).await? else {
            return Err(Error::NotFound("Email isn't assigned to any user".into()));
        };
        let Some(changed) = marked(user.clone(), validated) else {
            return Ok(user);
        };
        self.store.apply(Batch(vec![Change::PutUser(Box::new(changed.clone()))])).await?;
        self.events.publish(DomainEvent::UserUpdated { user_id: changed.id });
        Ok(changed)
    }

    /// REMP v2: mark many addresses at once, in one atomic batch. Non-emails, unknown
    /// addresses and unclaimed users are skipped. No events, as REMP's raw bulk update emits
    /// none (and a bulk of thousands would push other events out of listeners' queues).
    /// Returns how many users changed.
    pub async fn set_emails_validated(&self, emails: &[String], validated: bool) -> Result<usize> {
        let mut batch = Batch::new();
        let mut seen = std::collections::HashSet::new();
        for email in emails.iter().filter(|e| is_valid_address(e)) {
            if let Some(user) = self.claimed_user_by_email(email).await?
                && seen.insert(user.id)
                && let Some(changed) = marked(user, validated)
            {
                batch.push(Change::PutUser(Box::new(changed)));
            }
        }
        let changed = batch.0.len();
        self.store.apply(batch).await?;
        Ok(changed)
    }
}
