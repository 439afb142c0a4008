//! Fixture: an authenticator driven by request parameters. `magic=<email>` signs in (creating
//! if needed) the user with that email, with `first_name`/`last_name` parameters as names;
//! `magic_user_id=<id>` signs in that existing user; anything else is skipped.

use crm_users_guest::{Authenticator, Credentials, Failure, NewUser, Outcome, User, export_authenticator};

struct Provisioner;

impl Authenticator for Provisioner {
    fn authenticate(credentials: Credentials) -> Result<Outcome, Failure> {
        if let Some(email) = credentials.extra_param("magic") {
            let first = credentials.extra_param("first_name").unwrap_or_default();
            let last = credentials.extra_param("last_name").unwrap_or_default();
            return Ok(Outcome::Provision(NewUser::new(email).with_name(first, last)));
        }
        if let Some(id) = credentials.extra_param("magic_user_id") {
            return id
                .parse()
                .map(Outcome::Existing)
                .map_err(|_| Failure::invalid_credential(format!("not a user id: {id}")));
        }
        Ok(Outcome::Skip)
    }

    fn user_info(_user: User) -> Option<String> {
        Some(r#"{"magic":true}"#.to_owned())
    }
}

export_authenticator!(Provisioner);
