//! One trait per extension point (WIT world) and the macros that export an implementation as
//! a component. The glue that adapts a trait to the generated bindings is here too, hidden;
//! the mapping of the values themselves is in `convert.rs`.
//!
//! A component exports the worlds whose macros it expands, and only those: the host tells what
//! a plugin does from its exports.

use crate::convert;
use crate::types::*;

/// Signs users in, in priority order together with the built-in authenticators (autologin
/// token 800, password 500, access token 200). Export with
/// [`export_authenticator!`](crate::export_authenticator).
///
/// ```no_run
/// use crm_users_guest::{export_authenticator, Authenticator, Credentials, Failure, Outcome};
///
/// struct StaffOnly;
///
/// impl Authenticator for StaffOnly {
///     fn authenticate(credentials: Credentials) -> Result<Outcome, Failure> {
///         match credentials.username.as_deref() {
///             Some(email) if email.ends_with("@example.com") => Ok(Outcome::Skip),
///             _ => Err(Failure::not_approved("Staff only")),
///         }
///     }
/// }
///
/// export_authenticator!(StaffOnly);
/// ```
pub trait Authenticator {
    /// Decide on a sign-in: [`Outcome::Skip`] when the credentials are not of this plugin's
    /// kind, a user to sign in, or a refusal. The chain keeps the first refusal and goes on.
    ///
    /// ```no_run
    /// # use crm_users_guest::{Authenticator, Credentials, Failure, Outcome};
    /// # struct Magic;
    /// impl Authenticator for Magic {
    ///     fn authenticate(credentials: Credentials) -> Result<Outcome, Failure> {
    ///         match credentials.extra_param("magic_user_id") {
    ///             Some(id) => Ok(Outcome::Existing(id.parse().map_err(|_| Failure::other("bad id"))?)),
    ///             None => Ok(Outcome::Skip),
    ///         }
    ///     }
    /// }
    /// ```
    fn authenticate(credentials: Credentials) -> Result<Outcome, Failure>;

    /// Extra data about a user signed in through this plugin, as a JSON object; `user/info`
    /// shows it under the plugin's name. None by default.
    ///
    /// ```no_run
    /// # use crm_users_guest::{Authenticator, Credentials, Failure, Outcome, User};
    /// # struct Magic;
    /// impl Authenticator for Magic {
    ///     # fn authenticate(_: Credentials) -> Result<Outcome, Failure> { Ok(Outcome::Skip) }
    ///     fn user_info(_user: User) -> Option<String> {
    ///         Some(r#"{"magic":true}"#.to_owned())
    ///     }
    /// }
    /// ```
    fn user_info(user: User) -> Option<String> {
        let _ = user;
        None
    }
}

/// Runs after a successful authentication and before the access token is issued, for every
/// way of signing in. Export with
/// [`export_sign_in_handler!`](crate::export_sign_in_handler).
///
/// ```no_run
/// use crm_users_guest::{export_sign_in_handler, Decision, SignIn, SignInHandler};
///
/// struct NoAdminsFromApi;
///
/// impl SignInHandler for NoAdminsFromApi {
///     fn on_sign_in(event: SignIn) -> Decision {
///         if event.user.is_admin() && event.source.starts_with("api") {
///             Decision::deny("Admins sign in on the web")
///         } else {
///             Decision::allow()
///         }
///     }
/// }
///
/// export_sign_in_handler!(NoAdminsFromApi);
/// ```
pub trait SignInHandler {
    /// Allow or deny the sign-in; an allowing decision may set user meta.
    ///
    /// ```no_run
    /// # use crm_users_guest::{Decision, MetaEntry, SignIn, SignInHandler};
    /// # struct Stamp;
    /// impl SignInHandler for Stamp {
    ///     fn on_sign_in(event: SignIn) -> Decision {
    ///         Decision::allow().with_meta(MetaEntry::new("last_sign_in_method", event.method))
    ///     }
    /// }
    /// ```
    fn on_sign_in(event: SignIn) -> Decision;
}

/// An address type with its own rules and formatting. Export with
/// [`export_address_type!`](crate::export_address_type).
///
/// ```no_run
/// use crm_users_guest::{export_address_type, AddressType, TypeInfo};
///
/// struct Shipping;
///
/// impl AddressType for Shipping {
///     fn describe() -> TypeInfo {
///         TypeInfo::new("shipping", "Shipping address")
///     }
/// }
///
/// export_address_type!(Shipping);
/// ```
pub trait AddressType {
    /// The type's key, title and sort order. Called once when the plugin loads.
    ///
    /// ```no_run
    /// # use crm_users_guest::{AddressType, TypeInfo};
    /// # struct Invoice;
    /// impl AddressType for Invoice {
    ///     fn describe() -> TypeInfo {
    ///         TypeInfo::new("invoice", "Invoice address").with_sorting(10)
    ///     }
    /// }
    /// ```
    fn describe() -> TypeInfo;

    /// Accept the address (possibly normalized) or reject it with one error per offending
    /// field. Accepts everything unchanged by default.
    ///
    /// ```no_run
    /// # use crm_users_guest::{Address, AddressType, FieldError, TypeInfo};
    /// # struct Shipping;
    /// impl AddressType for Shipping {
    ///     # fn describe() -> TypeInfo { TypeInfo::new("shipping", "Shipping address") }
    ///     fn validate(address: Address) -> Result<Address, Vec<FieldError>> {
    ///         match address.city.as_deref().map(str::trim) {
    ///             Some(city) if !city.is_empty() => Ok(address),
    ///             _ => Err(vec![FieldError::new("city", "Enter a city")]),
    ///         }
    ///     }
    /// }
    /// ```
    fn validate(address: Address) -> Result<Address, Vec<FieldError>> {
        Ok(address)
    }

    /// One line for `address_string`. REMP's `First Last, Street Number, Zip City, ISO` by
    /// default ([`Address::remp_string`]).
    ///
    /// ```no_run
    /// # use crm_users_guest::{Address, AddressType, TypeInfo};
    /// # struct Shipping;
    /// impl AddressType for Shipping {
    ///     # fn describe() -> TypeInfo { TypeInfo::new("shipping", "Shipping address") }
    ///     fn format(address: Address) -> String {
    ///         format!("{} (shipping)", address.remp_string())
    ///     }
    /// }
    /// ```
    fn format(address: Address) -> String {
        address.remp_string()
    }
}

/// An email check run after the built-in ones, wherever REMP runs its validator chain;
/// validators run in priority order and the first rejection wins. Export with
/// [`export_email_validator!`](crate::export_email_validator).
///
/// ```no_run
/// use crm_users_guest::{export_email_validator, EmailValidator};
///
/// struct NoExampleOrg;
///
/// impl EmailValidator for NoExampleOrg {
///     fn validate(email: String) -> Result<(), String> {
///         if email.to_lowercase().ends_with("@example.org") {
///             return Err("example.org addresses are not accepted".into());
///         }
///         Ok(())
///     }
/// }
///
/// export_email_validator!(NoExampleOrg);
/// ```
pub trait EmailValidator {
    /// `Ok` to accept; an error with a short reason, shown to the client, to reject.
    ///
    /// ```no_run
    /// # use crm_users_guest::EmailValidator;
    /// # struct NoPlus;
    /// impl EmailValidator for NoPlus {
    ///     fn validate(email: String) -> Result<(), String> {
    ///         if email.contains('+') { Err("No plus addressing".into()) } else { Ok(()) }
    ///     }
    /// }
    /// ```
    fn validate(email: String) -> Result<(), String>;
}

/// Receives every domain event after it happened. Runs asynchronously: it cannot block or
/// change a request. Export with
/// [`export_event_listener!`](crate::export_event_listener).
///
/// ```no_run
/// use crm_users_guest::{export_event_listener, host, Event, EventListener};
///
/// struct Audit;
///
/// impl EventListener for Audit {
///     fn on_event(event: Event) {
///         host::info(format!("{} for user {:?}", event.name, event.user_id));
///     }
/// }
///
/// export_event_listener!(Audit);
/// ```
pub trait EventListener {
    /// Handle one event.
    ///
    /// ```no_run
    /// # use crm_users_guest::{host, Event, EventListener};
    /// # struct Audit;
    /// impl EventListener for Audit {
    ///     fn on_event(event: Event) {
    ///         if event.name == "user_registered" {
    ///             host::info(event.payload);
    ///         }
    ///     }
    /// }
    /// ```
    fn on_event(event: Event);
}

/// Exports a type implementing [`Authenticator`]: the component then exports the
/// `crm:users/authentication@0.1.0` interface.
///
/// ```no_run
/// # use crm_users_guest::{export_authenticator, Authenticator, Credentials, Failure, Outcome};
/// struct Nobody;
///
/// impl Authenticator for Nobody {
///     fn authenticate(_: Credentials) -> Result<Outcome, Failure> {
///         Ok(Outcome::Skip)
///     }
/// }
///
/// export_authenticator!(Nobody);
/// ```
#[macro_export]
macro_rules! export_authenticator {
    ($plugin:ty) => {
        const _: () = {
            type __CrmUsersAuthenticator = $crate::__private::Glue<$plugin>;
            $crate::wit::authenticator::__export_authenticator_world!(
                __CrmUsersAuthenticator with_types_in $crate::wit::authenticator
            );
        };
    };
}

/// Exports a type implementing [`SignInHandler`]: the component then exports the
/// `crm:users/sign-in-handling@0.1.0` interface.
///
/// ```no_run
/// # use crm_users_guest::{export_sign_in_handler, Decision, SignIn, SignInHandler};
/// struct AllowAll;
///
/// impl SignInHandler for AllowAll {
///     fn on_sign_in(_: SignIn) -> Decision {
///         Decision::allow()
///     }
/// }
///
/// export_sign_in_handler!(AllowAll);
/// ```
#[macro_export]
macro_rules! export_sign_in_handler {
    ($plugin:ty) => {
        const _: () = {
            type __CrmUsersSignInHandler = $crate::__private::Glue<$plugin>;
            $crate::wit::sign_in_handler::__export_sign_in_handler_world!(
                __CrmUsersSignInHandler with_types_in $crate::wit::sign_in_handler
            );
        };
    };
}

/// Exports a type implementing [`AddressType`]: the component then exports the
/// `crm:users/addresses@0.1.0` interface.
///
/// ```no_run
/// # use crm_users_guest::{export_address_type, AddressType, TypeInfo};
/// struct Plain;
///
/// impl AddressType for Plain {
///     fn describe() -> TypeInfo {
///         TypeInfo::new("plain", "Plain address")
///     }
/// }
///
/// export_address_type!(Plain);
/// ```
#[macro_export]
macro_rules! export_address_type {
    ($plugin:ty) => {
        const _: () = {
            type __CrmUsersAddressType = $crate::__private::Glue<$plugin>;
            $crate::wit::address_type::__export_address_type_world!(
                __CrmUsersAddressType with_types_in $crate::wit::address_type
            );
        };
    };
}

/// Exports a type implementing [`EmailValidator`]: the component then exports the
/// `crm:users/email-validation@0.1.0` interface.
///
/// ```no_run
/// # use crm_users_guest::{export_email_validator, EmailValidator};
/// struct AcceptAll;
///
/// impl EmailValidator for AcceptAll {
///     fn validate(_: String) -> Result<(), String> {
///         Ok(())
///     }
/// }
///
/// export_email_validator!(AcceptAll);
/// ```
#[macro_export]
macro_rules! export_email_validator {
    ($plugin:ty) => {
        const _: () = {
            type __CrmUsersEmailValidator = $crate::__private::Glue<$plugin>;
            $crate::wit::email_validator::__export_email_validator_world!(
                __CrmUsersEmailValidator with_types_in $crate::wit::email_validator
            );
        };
    };
}

/// Exports a type implementing [`EventListener`]: the component then exports the
/// `crm:users/events@0.1.0` interface.
///
/// ```no_run
/// # use crm_users_guest::{export_event_listener, Event, EventListener};
/// struct Ignore;
///
/// impl EventListener for Ignore {
///     fn on_event(_: Event) {}
/// }
///
/// export_event_listener!(Ignore);
/// ```
#[macro_export]
macro_rules! export_event_listener {
    ($plugin:ty) => {
        const _: () = {
            type __CrmUsersEventListener = $crate::__private::Glue<$plugin>;
            $crate::wit::event_listener::__export_event_listener_world!(
                __CrmUsersEventListener with_types_in $crate::wit::event_listener
            );
        };
    };
}

/// Exports one type for several extension points at once: the component exports each named
/// world's interface, and the host runs the plugin for each of them. The names are
/// `authenticator`, `sign_in_handler`, `address_type`, `email_validator` and
/// `event_listener`; the type implements the matching traits. Same as expanding the single
/// export macros one after the other.
///
/// ```no_run
/// use crm_users_guest::{
///     export_plugin, Authenticator, Credentials, Decision, Failure, Outcome, SignIn,
///     SignInHandler,
/// };
///
/// struct Magic;
///
/// impl Authenticator for Magic {
///     fn authenticate(credentials: Credentials) -> Result<Outcome, Failure> {
///         Ok(Outcome::Skip)
///     }
/// }
///
/// impl SignInHandler for Magic {
///     fn on_sign_in(_: SignIn) -> Decision {
///         Decision::allow()
///     }
/// }
///
/// export_plugin!(Magic: authenticator, sign_in_handler);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty : $($world:ident),+ $(,)?) => {
        $( $crate::__export_world!($world, $plugin); )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_world {
    (authenticator, $plugin:ty) => {
        $crate::export_authenticator!($plugin);
    };
    (sign_in_handler, $plugin:ty) => {
        $crate::export_sign_in_handler!($plugin);
    };
    (address_type, $plugin:ty) => {
        $crate::export_address_type!($plugin);
    };
    (email_validator, $plugin:ty) => {
        $crate::export_email_validator!($plugin);
    };
    (event_listener, $plugin:ty) => {
        $crate::export_event_listener!($plugin);
    };
    ($other:ident, $plugin:ty) => {
        compile_error!(concat!(
            "unknown world `",
            stringify!($other),
            "`; expected one of authenticator, ",
            "sign_in_handler, address_type, email_validator, event_listener"
        ));
    };
}

/// Adapts the traits above to the generated `Guest` traits. The export macros name it from the
/// plugin crate, so it is public, but it is not API.
#[doc(hidden)]
pub struct Glue<T>(std::marker::PhantomData<T>);

mod glue {
    use super::*;
    use crate::wit::address_type::exports::crm::users::addresses as wit_addresses;
    use crate::wit::authenticator::crm::users::types as wit_types;
    use crate::wit::authenticator::exports::crm::users::authentication as wit_auth;
    use crate::wit::email_validator::exports::crm::users::email_validation as wit_email;
    use crate::wit::event_listener::exports::crm::users::events as wit_events;
    use crate::wit::sign_in_handler::exports::crm::users::sign_in_handling as wit_sign_in;

    impl<T: Authenticator> wit_auth::Guest for Glue<T> {
        fn authenticate(credentials: wit_auth::Credentials) -> Result<wit_auth::Outcome, wit_auth::Failure> {
            T::authenticate(convert::credentials(credentials))
                .map(convert::outcome_to_wit)
                .map_err(convert::failure_to_wit)
        }

        fn user_info(user: wit_types::User) -> Option<String> {
            T::user_info(convert::user(user))
        }
    }

    impl<T: SignInHandler> wit_sign_in::Guest for Glue<T> {
        fn on_sign_in(event: wit_sign_in::SignIn) -> wit_sign_in::Decision {
            convert::decision_to_wit(T::on_sign_in(convert::sign_in(event)))
        }
    }

    impl<T: AddressType> wit_addresses::Guest for Glue<T> {
        fn describe() -> wit_addresses::TypeInfo {
            convert::type_info_to_wit(T::describe())
        }

        fn validate(address: wit_addresses::Address) -> Result<wit_addresses::Address, Vec<wit_addresses::FieldError>> {
            T::validate(convert::address(address))
                .map(convert::address_to_wit)
                .map_err(|errors| errors.into_iter().map(convert::field_error_to_wit).collect())
        }

        fn format(address: wit_addresses::Address) -> String {
            T::format(convert::address(address))
        }
    }

    impl<T: EmailValidator> wit_email::Guest for Glue<T> {
        fn validate(email: String) -> Result<(), String> {
            T::validate(email)
        }
    }

    impl<T: EventListener> wit_events::Guest for Glue<T> {
        fn on_event(event: wit_events::Event) {
            T::on_event(convert::event(event))
        }
    }
}
