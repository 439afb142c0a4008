//! Hostile fixture: an authenticator granted `http` for `127.0.0.1:1` only, which tries to reach
//! the host in its `target` config (`host:port` or a full URL). The host must refuse the
//! request. It always refuses the sign-in, with the HTTP error (or, if the request got
//! through, the status) in the message, so a test can tell which happened.

use crm_users_guest::{Authenticator, Credentials, Failure, Outcome, export_authenticator, host, http};

struct ForbiddenHost;

impl Authenticator for ForbiddenHost {
    fn authenticate(_credentials: Credentials) -> Result<Outcome, Failure> {
        let Some(target) = host::config("target") else {
            return Err(Failure::other("forbidden-host: config `target` is not set"));
        };
        let url = if target.contains("://") { target } else { format!("http://{target}/") };
        match http::get(&url) {
            Ok(response) => {
                Err(Failure::other(format!("forbidden-host: reached {url} with status {}", response.status)))
            }
            Err(error) => Err(Failure::other(format!("forbidden-host: {url}: {error}"))),
        }
    }
}

export_authenticator!(ForbiddenHost);
