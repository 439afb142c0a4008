//! The user record and the rules that belong to it alone.

use super::Timestamp;
use serde::{Deserialize, Serialize};

/// Users are numbered from 1, as REMP's auto-increment ids are.
pub type UserId = u64;

/// REMP's `users.role`: admins get roles in sign-in responses and may not use autologin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    User,
    Admin,
}

/// What an anonymized user's text fields and password become (REMP's `GDPR Removal`).
pub const GDPR_REMOVAL: &str = "GDPR Removal";

/// A user as stored. The password is a PHC string (argon2id) or an imported REMP bcrypt hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub uuid: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub public_name: String,
    pub password_hash: String,
    pub role: Role,
    pub active: bool,
    pub confirmed_at: Option<Timestamp>,
    pub email_validated_at: Option<Timestamp>,
    pub current_sign_in_at: Option<Timestamp>,
    pub current_sign_in_ip: Option<String>,
    pub created_at: Timestamp,
    pub modified_at: Timestamp,
    pub source: String,
    pub referer: Option<String>,
    pub registration_channel: String,
    pub locale: String,
    pub ext_id: Option<i64>,
    pub note: Option<String>,
    pub deleted_at: Option<Timestamp>,
}

impl User {
    /// Whether the user was anonymized by `user/delete`.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }
}

/// The key under which emails are unique: REMP's MySQL collation compares case-insensitively.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Everything needed to create a user; the store assigns `id`.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub password_hash: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: Role,
    pub active: bool,
    pub source: String,
    pub referer: Option<String>,
    pub registration_channel: String,
    pub locale: String,
    pub ext_id: Option<i64>,
    pub note: Option<String>,
}

impl NewUser {
    /// The stored record for this user under `id`, created now.
    pub fn into_user(self, id: UserId, uuid: String, now: Timestamp) -> User {
        User {
            id,
            uuid,
            public_name: self.email.clone(),
            email: self.email,
            first_name: self.first_name,
            last_name: self.last_name,
            password_hash: self.password_hash,
            role: self.role,
            active: self.active,
            confirmed_at: None,
            email_validated_at: None,
            current_sign_in_at: None,
            current_sign_in_ip: None,
            created_at: now,
            modified_at: now,
            source: self.source,
            referer: self.referer,
            registration_channel: self.registration_channel,
            locale: self.locale,
            ext_id: self.ext_id,
            note: self.note,
            deleted_at: None,
        }
    }
}

/// Minimum password length for new registrations (REMP's `UserBuilder`).
pub const MIN_PASSWORD_LEN: usize = 6;

/// Longest password accepted anywhere. Argon2 takes any length, but hashing megabytes per
/// request is a cheap denial of service.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Longest email stored (REMP's `users.email` is varchar(255)).
pub const MAX_EMAIL_LEN: usize = 255;

impl User {
    /// Move the user to a new email, as REMP's `users/update` does: a public name that was the
    /// old email follows, and the new address is not validated yet. Returns the event to publish.
    pub fn change_email(&mut self, email: &str) -> super::event::DomainEvent {
        if self.public_name == self.email {
            self.public_name = email.to_owned();
        }
        let original_email = std::mem::replace(&mut self.email, email.to_owned());
        self.email_validated_at = None;
        super::event::DomainEvent::EmailChanged { user_id: self.id, original_email, new_email: email.to_owned() }
    }
}
