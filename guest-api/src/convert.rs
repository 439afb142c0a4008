//! Mapping between the curated types in `types.rs` and the bindings in `wit.rs`. This is the
//! one place that changes when the bindings move to a new WIT version; it holds no rules of
//! its own.

use crate::types::*;
use crate::wit::address_type::exports::crm::users::addresses as wit_addresses;
use crate::wit::authenticator::crm::users::{host as wit_host, types as wit_types};
use crate::wit::authenticator::exports::crm::users::authentication as wit_auth;
use crate::wit::event_listener::exports::crm::users::events as wit_events;
use crate::wit::sign_in_handler::exports::crm::users::sign_in_handling as wit_sign_in;

pub(crate) fn user(user: wit_types::User) -> User {
    User {
        id: user.id,
        uuid: user.uuid,
        email: user.email,
        first_name: user.first_name,
        last_name: user.last_name,
        role: user.role,
        active: user.active,
        confirmed: user.confirmed,
        locale: user.locale,
        source: user.source,
    }
}

pub(crate) fn meta_entry(entry: wit_types::MetaEntry) -> MetaEntry {
    MetaEntry { key: entry.key, value: entry.value, is_public: entry.is_public }
}

fn meta_entry_to_wit(entry: MetaEntry) -> wit_types::MetaEntry {
    wit_types::MetaEntry { key: entry.key, value: entry.value, is_public: entry.is_public }
}

pub(crate) fn host_error(error: wit_types::HostError) -> HostError {
    match error {
        wit_types::HostError::Denied(why) => HostError::Denied(why),
        wit_types::HostError::Invalid(why) => HostError::Invalid(why),
        wit_types::HostError::Unavailable(why) => HostError::Unavailable(why),
    }
}

pub(crate) fn log_level_to_wit(level: LogLevel) -> wit_host::LogLevel {
    match level {
        LogLevel::Trace => wit_host::LogLevel::Trace,
        LogLevel::Debug => wit_host::LogLevel::Debug,
        LogLevel::Info => wit_host::LogLevel::Info,
        LogLevel::Warn => wit_host::LogLevel::Warn,
        LogLevel::Error => wit_host::LogLevel::Error,
    }
}

pub(crate) fn credentials(credentials: wit_auth::Credentials) -> Credentials {
    Credentials {
        username: credentials.username,
        password: credentials.password,
        source: credentials.source,
        ip: credentials.ip,
        user_agent: credentials.user_agent,
        extra: credentials.extra,
    }
}

pub(crate) fn outcome_to_wit(outcome: Outcome) -> wit_auth::Outcome {
    match outcome {
        Outcome::Skip => wit_auth::Outcome::Skip,
        Outcome::Existing(id) => wit_auth::Outcome::Existing(id),
        Outcome::Provision(user) => wit_auth::Outcome::Provision(wit_auth::NewUser {
            email: user.email,
            first_name: user.first_name,
            last_name: user.last_name,
            meta: user.meta,
        }),
    }
}

pub(crate) fn failure_to_wit(failure: Failure) -> wit_auth::Failure {
    let kind = match failure.kind {
        FailureKind::IdentityNotFound => wit_auth::FailureKind::IdentityNotFound,
        FailureKind::InvalidCredential => wit_auth::FailureKind::InvalidCredential,
        FailureKind::Failure => wit_auth::FailureKind::Failure,
        FailureKind::NotApproved => wit_auth::FailureKind::NotApproved,
    };
    wit_auth::Failure { kind, message: failure.message }
}

pub(crate) fn sign_in(event: wit_sign_in::SignIn) -> SignIn {
    SignIn {
        user: user(event.user),
        source: event.source,
        method: event.method,
        ip: event.ip,
        user_agent: event.user_agent,
    }
}

pub(crate) fn decision_to_wit(decision: Decision) -> wit_sign_in::Decision {
    wit_sign_in::Decision {
        verdict: match decision.verdict {
            Verdict::Allow => wit_sign_in::Verdict::Allow,
            Verdict::Deny(reason) => wit_sign_in::Verdict::Deny(reason),
        },
        set_meta: decision.set_meta.into_iter().map(meta_entry_to_wit).collect(),
    }
}

pub(crate) fn type_info_to_wit(info: TypeInfo) -> wit_addresses::TypeInfo {
    wit_addresses::TypeInfo { name: info.name, title: info.title, sorting: info.sorting }
}

pub(crate) fn address(address: wit_addresses::Address) -> Address {
    Address {
        first_name: address.first_name,
        last_name: address.last_name,
        company_name: address.company_name,
        street: address.street,
        number: address.number,
        zip: address.zip,
        city: address.city,
        country_iso: address.country_iso,
        phone_number: address.phone_number,
        company_id: address.company_id,
        company_tax_id: address.company_tax_id,
        company_vat_id: address.company_vat_id,
    }
}

pub(crate) fn address_to_wit(address: Address) -> wit_addresses::Address {
    wit_addresses::Address {
        first_name: address.first_name,
        last_name: address.last_name,
        company_name: address.company_name,
        street: address.street,
        number: address.number,
        zip: address.zip,
        city: address.city,
        country_iso: address.country_iso,
        phone_number: address.phone_number,
        company_id: address.company_id,
        company_tax_id: address.company_tax_id,
        company_vat_id: address.company_vat_id,
    }
}

pub(crate) fn field_error_to_wit(error: FieldError) -> wit_addresses::FieldError {
    wit_addresses::FieldError { field: error.field, message: error.message }
}

pub(crate) fn event(event: wit_events::Event) -> Event {
    Event { name: event.name, user_id: event.user_id, at: event.at, payload: event.payload }
}
