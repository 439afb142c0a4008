//! Access tokens, device tokens and API tokens as stored (digests only, never plain text).

use super::{Timestamp, secret::TokenDigest, user::UserId};
use serde::{Deserialize, Serialize};

/// A user's access token (REMP `access_tokens`, version 3).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessToken {
    pub id: u64,
    pub digest: TokenDigest,
    pub user_id: UserId,
    pub device_token_id: Option<u64>,
    pub source: Option<String>,
    /// Which authenticator signed the user in: `password`, or a plugin's name.
    #[serde(default)]
    pub method: Option<String>,
    pub ip: String,
    pub user_agent: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// A device token (REMP `device_tokens`): a device's own credential that stands for the access
/// tokens paired with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceToken {
    pub id: u64,
    pub digest: TokenDigest,
    pub device_id: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// A server-to-server API token with its whitelist of route names.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiToken {
    pub id: u64,
    pub digest: TokenDigest,
    pub name: String,
    /// Route names such as `users/create`, or the single entry `*` for every route.
    pub allowed_routes: Vec<String>,
    pub active: bool,
    pub created_at: Timestamp,
}

impl ApiToken {
    /// Whether this token may call the route named `route`.
    pub fn allows(&self, route: &str) -> bool {
        self.allowed_routes.iter().any(|r| r == "*" || r == route)
    }
}

/// Where a request came from, recorded with tokens and login attempts.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: String,
    pub user_agent: String,
}

/// A one-time (or few-times) sign-in link token (REMP `autologin_tokens`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AutologinToken {
    pub id: u64,
    pub digest: TokenDigest,
    pub user_id: UserId,
    pub email: String,
    pub created_at: Timestamp,
    pub valid_from: Timestamp,
    pub valid_to: Timestamp,
    pub used_count: u32,
    pub max_count: u32,
}

/// A user's account at an identity provider (REMP `user_connected_accounts`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnectedAccount {
    pub id: u64,
    pub user_id: UserId,
    /// `google_sign_in` or `apple_sign_in`.
    pub kind: String,
    /// The provider's `sub`.
    pub external_id: String,
    pub email: Option<String>,
    pub created_at: Timestamp,
}
