//! Domain events: REMP's user events, carried by the in-process event bus to listeners (and
//! later to event-listener plugins). Events carry ids, never token plain text or password hashes.

use super::{Timestamp, user::UserId};
use serde::Serialize;

/// Something that happened to a user, after it was durably stored.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DomainEvent {
    /// Any new user, claimed or unclaimed (REMP `NewUserEvent`).
    NewUser {
        user_id: UserId,
    },
    /// A regular (not unclaimed) registration (REMP `UserRegisteredEvent`). `password` is set only
    /// when the service generated it, so a mailer can tell the user.
    UserRegistered {
        user_id: UserId,
        send_email: bool,
        password: Option<String>,
    },
    /// Any change to the user row (REMP `UserUpdatedEvent`).
    UserUpdated {
        user_id: UserId,
    },
    /// The email address changed (REMP's Hermes `email-changed`).
    EmailChanged {
        user_id: UserId,
        original_email: String,
        new_email: String,
    },
    UserConfirmed {
        user_id: UserId,
        by_admin: bool,
    },
    /// A meta value was set, or deleted (`value: None`).
    UserMeta {
        user_id: UserId,
        key: String,
        value: Option<String>,
    },
    UserSignIn {
        user_id: UserId,
        source: String,
        regenerate_token: bool,
    },
    UserSignOut {
        user_id: UserId,
    },
    LoginAttempt {
        user_id: Option<UserId>,
        email: String,
        source: String,
        status: String,
        message: Option<String>,
    },
    UserLastAccess {
        user_id: UserId,
        source: Option<String>,
        user_agent: String,
    },
    NewAccessToken {
        user_id: UserId,
        token_id: u64,
    },
    RemovedAccessToken {
        user_id: UserId,
        token_id: u64,
        source: Option<String>,
    },
    PairDeviceAccessTokens {
        device_token_id: u64,
        access_token_id: u64,
    },
    UnpairDeviceAccessTokens {
        device_token_id: u64,
        access_token_id: u64,
    },
    /// REMP `UserChangePasswordEvent`; a mailer may tell the user when `notify` is set.
    UserChangePassword {
        user_id: UserId,
        notify: bool,
    },
    UserEnabled {
        user_id: UserId,
    },
    UserDisabled {
        user_id: UserId,
    },
    /// `user/delete` anonymized the user.
    UserDeleted {
        user_id: UserId,
    },
    // Addresses (issue 4)
    /// An address was created (REMP `NewAddressEvent`); `admin` when an admin accepted it.
    NewAddress {
        address_id: u64,
        user_id: UserId,
        admin: bool,
    },
    /// An accepted change request changed an address (REMP `AddressChangedEvent`).
    AddressChanged {
        address_id: u64,
        user_id: UserId,
        admin: bool,
    },
    /// A change request was made (REMP `NewAddressChangeRequestEvent`).
    NewAddressChangeRequest {
        request_id: u64,
        user_id: UserId,
    },
}

impl DomainEvent {
    /// The user the event is about, when there is one.
    pub fn user_id(&self) -> Option<UserId> {
        use DomainEvent::*;
        match self {
            NewUser { user_id }
            | UserRegistered { user_id, .. }
            | UserUpdated { user_id }
            | EmailChanged { user_id, .. }
            | UserConfirmed { user_id, .. }
            | UserMeta { user_id, .. }
            | UserSignIn { user_id, .. }
            | UserSignOut { user_id }
            | UserLastAccess { user_id, .. }
            | NewAccessToken { user_id, .. }
            | RemovedAccessToken { user_id, .. }
            | UserChangePassword { user_id, .. }
            | UserEnabled { user_id }
            | UserDisabled { user_id }
            | UserDeleted { user_id }
            | NewAddress { user_id, .. }
            | AddressChanged { user_id, .. }
            | NewAddressChangeRequest { user_id, .. } => Some(*user_id),
            LoginAttempt { user_id, .. } => *user_id,
            PairDeviceAccessTokens { .. } | UnpairDeviceAccessTokens { .. } => None,
        }
    }

    /// The event's name, as REMP's event storage codes it.
    pub fn name(&self) -> &'static str {
        match self {
            DomainEvent::NewUser { .. } => "new_user",
            DomainEvent::UserRegistered { .. } => "user_registered",
            DomainEvent::UserUpdated { .. } => "user_updated",
            DomainEvent::EmailChanged { .. } => "email_changed",
            DomainEvent::UserConfirmed { .. } => "user_confirmed",
            DomainEvent::UserMeta { .. } => "user_meta",
            DomainEvent::UserSignIn { .. } => "user_sign_in",
            DomainEvent::UserSignOut { .. } => "user_sign_out",
            DomainEvent::LoginAttempt { .. } => "login_attempt",
            DomainEvent::UserLastAccess { .. } => "user_last_access",
            DomainEvent::NewAccessToken { .. } => "new_access_token",
            DomainEvent::RemovedAccessToken { .. } => "removed_access_token",
            DomainEvent::PairDeviceAccessTokens { .. } => "pair_device_access_tokens",
            DomainEvent::UnpairDeviceAccessTokens { .. } => "unpair_device_access_tokens",
            DomainEvent::UserChangePassword { .. } => "user_change_password",
            DomainEvent::UserEnabled { .. } => "user_enabled",
            DomainEvent::UserDisabled { .. } => "user_disabled",
            DomainEvent::UserDeleted { .. } => "user_deleted",
            DomainEvent::NewAddress { .. } => "new_address",
            DomainEvent::AddressChanged { .. } => "address_changed",
            DomainEvent::NewAddressChangeRequest { .. } => "new_address_change_request",
        }
    }
}

/// An event with the time it happened.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    pub at: Timestamp,
    #[serde(flatten)]
    pub event: DomainEvent,
}
