//! Hostile fixture: one component exporting all five worlds, whose functions named in config
//! `trap` panic (a trap) on every call. The others answer harmlessly: `authenticate` provisions
//! extra `magic=<email>` (so a test can show the sign-in it would have let in) and skips
//! otherwise, `on-sign-in` allows, address `validate` accepts, `validate-email` accepts,
//! `on-event` does nothing. `describe` always answers (type `trapping`), so the address type
//! exists and its `validate` and `format` are called.

use crm_users_guest::{
    Address, AddressType, Authenticator, Credentials, Decision, EmailValidator, Event, EventListener, Failure,
    FieldError, NewUser, Outcome, SignIn, SignInHandler, TypeInfo, User, export_address_type, export_authenticator,
    export_email_validator, export_event_listener, export_sign_in_handler, host,
};

struct TrapEverywhere;

/// Panic if config `trap` names `function` (or is `all`).
fn maybe_trap(function: &str) {
    let trap = host::config("trap").unwrap_or_else(|| "all".to_owned());
    if trap.split(',').map(str::trim).any(|f| f == "all" || f == function) {
        panic!("trap-everywhere: {function} always panics");
    }
}

impl Authenticator for TrapEverywhere {
    fn authenticate(credentials: Credentials) -> Result<Outcome, Failure> {
        maybe_trap("authenticate");
        Ok(match credentials.extra_param("magic") {
            Some(email) => Outcome::Provision(NewUser::new(email)),
            None => Outcome::Skip,
        })
    }

    fn user_info(_user: User) -> Option<String> {
        maybe_trap("user-info");
        None
    }
}

impl SignInHandler for TrapEverywhere {
    fn on_sign_in(_event: SignIn) -> Decision {
        maybe_trap("on-sign-in");
        Decision::allow()
    }
}

impl AddressType for TrapEverywhere {
    fn describe() -> TypeInfo {
        TypeInfo::new("trapping", "Trapping address")
    }

    fn validate(address: Address) -> Result<Address, Vec<FieldError>> {
        maybe_trap("validate-address");
        Ok(address)
    }

    fn format(address: Address) -> String {
        maybe_trap("format");
        address.remp_string()
    }
}

impl EmailValidator for TrapEverywhere {
    fn validate(_email: String) -> Result<(), String> {
        maybe_trap("validate-email");
        Ok(())
    }
}

impl EventListener for TrapEverywhere {
    fn on_event(_event: Event) {
        maybe_trap("on-event");
    }
}

export_authenticator!(TrapEverywhere);
export_sign_in_handler!(TrapEverywhere);
export_address_type!(TrapEverywhere);
export_email_validator!(TrapEverywhere);
export_event_listener!(TrapEverywhere);
