//! The crate's one error type. Variants are kinds, not call sites; each has a stable machine
//! `code()`. The REMP API layer maps them to REMP's exact bodies, the resource API to its own.

/// Convenient alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, by kind.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with existing data (e.g. an email already taken).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The input is not acceptable; `field` names the offending parameter when there is one.
    #[error("{message}")]
    Invalid { code: &'static str, field: Option<String>, message: String },
    /// A sign-in failed; `reason` carries REMP's authentication exception code.
    #[error("{message}")]
    Auth { reason: AuthReason, message: String },
    /// Too many attempts; try again later.
    #[error("{0}")]
    RateLimited(String),
    /// The service cannot take more work right now (e.g. the password-hashing queue is full).
    #[error("{0}")]
    Busy(String),
    /// The storage layer failed. The cause is logged, never shown to clients.
    #[error("storage failure: {0:#}")]
    Storage(anyhow::Error),
    /// Any other failure of ours. The cause is logged, never shown to clients.
    #[error("internal failure: {0:#}")]
    Internal(anyhow::Error),
}

impl Error {
    /// A stable machine-readable code for logs and the resource API.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound(_) => "not_found",
            Error::Conflict { code, .. } | Error::Invalid { code, .. } => code,
            Error::Auth { reason, .. } => reason.code(),
            Error::RateLimited(_) => "rate_limited",
            Error::Busy(_) => "busy",
            Error::Storage(_) => "storage_error",
            Error::Internal(_) => "internal_server_error",
        }
    }

    /// Shorthand for an `Invalid` error about one field.
    pub fn invalid(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid { code, field: Some(field.into()), message: message.into() }
    }

    /// Shorthand for a failed sign-in.
    pub fn auth(reason: AuthReason, message: impl Into<String>) -> Self {
        Error::Auth { reason, message: message.into() }
    }

    /// Shorthand for a storage failure.
    pub fn storage(err: impl Into<anyhow::Error>) -> Self {
        Error::Storage(err.into())
    }
}

/// Why a sign-in failed: REMP's `AuthenticationException` codes, plus its `RateLimitException`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthReason {
    /// Code 1: unknown identity, or a disabled account.
    IdentityNotFound,
    /// Code 2: wrong password.
    InvalidCredential,
    /// Code 3: any other failure.
    Failure,
    /// Code 4: the account may not sign in this way (unclaimed user, admin autologin).
    NotApproved,
    /// Too many attempts. Stops the authenticator chain at once.
    RateLimited,
    /// A sign-in handler refused the sign-in.
    Denied,
}

impl AuthReason {
    /// The machine code REMP's API derives from the exception.
    pub fn code(self) -> &'static str {
        match self {
            AuthReason::IdentityNotFound | AuthReason::NotApproved => "identity_not_found",
            AuthReason::InvalidCredential => "invalid_credential",
            AuthReason::Failure | AuthReason::RateLimited => "auth_failed",
            AuthReason::Denied => "sign_in_denied",
        }
    }
}
