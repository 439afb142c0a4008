//! Authenticator that checks email and password against a legacy HTTP directory and signs the
//! user in, creating them on first sign-in (meta `legacy_auth=1`). It is the usual way to move
//! users off an old system without a password migration. The directory's address is the
//! manifest's `url` config; the host only lets the request through to `allowed_hosts`.
//!
//! The directory is asked `POST <url>` with `{"email": .., "password": ..}` and answers
//! `200 {"ok": true, "email": .., "first_name": .., "last_name": ..}` to accept,
//! `200 {"ok": false}`, 401 or 403 to refuse. Anything else is an outage, not a refusal.

use crm_users_guest::{Authenticator, Credentials, Failure, NewUser, Outcome, User, export_authenticator, host, http};
use serde::{Deserialize, Serialize};

/// Shown to the client when the directory refuses the credentials.
const REFUSED: &str = "Wrong email or password";

/// Shown to the client when the directory cannot answer.
const UNAVAILABLE: &str = "Sign-in is temporarily unavailable";

/// Set on users this plugin created or signed in; `user_info` keys on it.
const META_KEY: &str = "legacy_auth";

struct LegacyAuthenticator;

#[derive(Serialize)]
struct Check<'a> {
    email: &'a str,
    password: &'a str,
}

#[derive(Deserialize)]
struct Answer {
    ok: bool,
    email: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
}

impl Authenticator for LegacyAuthenticator {
    fn authenticate(credentials: Credentials) -> Result<Outcome, Failure> {
        let (Some(email), Some(password)) = (&credentials.username, &credentials.password) else {
            return Ok(Outcome::Skip);
        };
        if email.is_empty() || password.is_empty() {
            return Ok(Outcome::Skip);
        }
        if let Some(suffix) = host::config("only_source").filter(|suffix| !suffix.is_empty())
            && !credentials.source.ends_with(&suffix)
        {
            return Ok(Outcome::Skip);
        }
        let Some(url) = host::config("url") else {
            host::error("config `url` is not set");
            return Err(Failure::other(UNAVAILABLE));
        };

        let body = serde_json::to_string(&Check { email, password })
            .map_err(|error| Failure::other(format!("cannot encode the request: {error}")))?;
        let response = http::post_json(&url, &body).map_err(|error| {
            host::warn(format!("legacy directory unreachable: {error}"));
            Failure::other(UNAVAILABLE)
        })?;
        decide(email, response.status, &response.body)
    }

    fn user_info(user: User) -> Option<String> {
        // Without `users:read` the meta is unknown, and so is whether the user came from here.
        let legacy = host::users::meta_value(user.id, META_KEY).ok().flatten()?;
        (legacy == "1").then(|| r#"{"legacy":true}"#.to_owned())
    }
}

export_authenticator!(LegacyAuthenticator);

/// Turns the directory's answer to a check of `email` into the plugin's outcome.
fn decide(email: &str, status: u16, body: &[u8]) -> Result<Outcome, Failure> {
    match status {
        200 => {}
        401 | 403 => return Err(Failure::invalid_credential(REFUSED)),
        other => {
            host::warn(format!("legacy directory answered {other}"));
            return Err(Failure::other(UNAVAILABLE));
        }
    }
    let answer: Answer = serde_json::from_slice(body).map_err(|error| {
        host::warn(format!("legacy directory sent an unreadable answer: {error}"));
        Failure::other(UNAVAILABLE)
    })?;
    if !answer.ok {
        return Err(Failure::invalid_credential(REFUSED));
    }
    let email = answer.email.filter(|e| !e.is_empty()).unwrap_or_else(|| email.to_owned());
    let user = NewUser::new(email)
        .with_name(answer.first_name.unwrap_or_default(), answer.last_name.unwrap_or_default())
        .with_meta(META_KEY, "1");
    Ok(Outcome::Provision(user))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_users_guest::FailureKind;

    fn kind(result: Result<Outcome, Failure>) -> FailureKind {
        result.expect_err("refused").kind
    }

    #[test]
    fn provisions_the_user_the_directory_accepts() {
        let body = br#"{"ok":true,"email":"ada@example.com","first_name":"Ada","last_name":null}"#;
        let outcome = decide("ADA@example.com", 200, body).expect("accepted");
        let expected = NewUser::new("ada@example.com").with_name("Ada", "").with_meta("legacy_auth", "1");
        assert_eq!(outcome, Outcome::Provision(expected));
    }

    #[test]
    fn refusals_are_invalid_credentials() {
        assert_eq!(kind(decide("a@b.c", 200, br#"{"ok":false}"#)), FailureKind::InvalidCredential);
        assert_eq!(kind(decide("a@b.c", 401, b"")), FailureKind::InvalidCredential);
        assert_eq!(kind(decide("a@b.c", 403, b"nope")), FailureKind::InvalidCredential);
    }
}
