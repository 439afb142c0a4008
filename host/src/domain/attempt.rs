//! Login attempts, registration attempts and the password-change log (REMP's audit tables).

use super::{Timestamp, user::UserId};
use serde::{Deserialize, Serialize};

/// REMP's login attempt statuses (`LoginAttemptsRepository`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginStatus {
    Ok,
    ApiOk,
    NotFoundEmail,
    UnclaimedUser,
    WrongPass,
    InactiveUser,
    TokenDateExpired,
    TokenNotFound,
    TokenCountExpired,
    TokenOk,
    AccessTokenOk,
    LoginAfterSignUp,
    RateLimitExceeded,
    /// A sign-in handler refused an otherwise valid sign-in.
    SignInDenied,
}

impl LoginStatus {
    /// REMP's "OK statuses": any of them among the last attempts lifts the rate limit.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            LoginStatus::Ok
                | LoginStatus::ApiOk
                | LoginStatus::TokenOk
                | LoginStatus::AccessTokenOk
                | LoginStatus::LoginAfterSignUp
        )
    }

    /// The wire name, as stored in REMP's `login_attempts.status`.
    pub fn as_str(self) -> &'static str {
        match self {
            LoginStatus::Ok => "ok",
            LoginStatus::ApiOk => "api_ok",
            LoginStatus::NotFoundEmail => "not_found_email",
            LoginStatus::UnclaimedUser => "unclaimed_user",
            LoginStatus::WrongPass => "wrong_pass",
            LoginStatus::InactiveUser => "inactive_user",
            LoginStatus::TokenDateExpired => "token_date_expired",
            LoginStatus::TokenNotFound => "token_not_found",
            LoginStatus::TokenCountExpired => "token_count_expired",
            LoginStatus::TokenOk => "token_ok",
            LoginStatus::AccessTokenOk => "access_token_ok",
            LoginStatus::LoginAfterSignUp => "login_after_sign_up",
            LoginStatus::RateLimitExceeded => "rate_limit_exceeded",
            LoginStatus::SignInDenied => "sign_in_denied",
        }
    }
}

/// One sign-in attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginAttempt {
    pub id: u64,
    pub user_id: Option<UserId>,
    pub email: String,
    pub created_at: Timestamp,
    pub status: LoginStatus,
    pub source: String,
    pub ip: String,
    pub user_agent: String,
    pub message: Option<String>,
}

/// What the rate limiter needs to know about a recent attempt; kept in the per-IP and per-user
/// indexes so the limit check never loads whole attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptMark {
    pub at: Timestamp,
    pub ok: bool,
}

/// REMP's registration attempt statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationStatus {
    Ok,
    InvalidEmail,
    TakenEmail,
    DeviceTokenNotFound,
    RateLimitExceeded,
}

/// One registration attempt through `users/create`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistrationAttempt {
    pub id: u64,
    pub user_id: Option<UserId>,
    pub email: String,
    pub created_at: Timestamp,
    pub status: RegistrationStatus,
    pub source: Option<String>,
    pub ip: String,
    pub user_agent: String,
}

/// Why a password changed (REMP `change_passwords_logs.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordChangeKind {
    Change,
    Reset,
    Force,
    Suspicious,
    /// Set by REMP's gift flow (another module); only ever imported.
    Gift,
}

/// One password change, with the hashes before and after.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PasswordChange {
    pub id: u64,
    pub user_id: UserId,
    pub kind: PasswordChangeKind,
    pub created_at: Timestamp,
    pub from_hash: String,
    pub to_hash: String,
}
