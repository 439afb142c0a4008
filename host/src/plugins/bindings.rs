//! Host-side bindings of the WIT contract, one module per world of `crm:users@0.1.0`. The
//! `types` and `host` interfaces are generated once (with the authenticator world) and shared
//! by the others, so the host implements them once.

/// The exact WIT package version these bindings serve.
pub const WIT_VERSION: &str = "0.1.0";

pub mod authenticator {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "authenticator",
        imports: { default: async | trappable },
        exports: { default: async },
    });
}

pub mod sign_in_handler {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "sign-in-handler",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "crm:users/types": super::authenticator::crm::users::types,
            "crm:users/host": super::authenticator::crm::users::host,
        },
    });
}

pub mod address_type {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "address-type",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "crm:users/types": super::authenticator::crm::users::types,
            "crm:users/host": super::authenticator::crm::users::host,
        },
    });
}

pub mod email_validator {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "email-validator",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "crm:users/types": super::authenticator::crm::users::types,
            "crm:users/host": super::authenticator::crm::users::host,
        },
    });
}

pub mod event_listener {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1",
        world: "event-listener",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "crm:users/types": super::authenticator::crm::users::types,
            "crm:users/host": super::authenticator::crm::users::host,
        },
    });
}

pub use authenticator::crm::users::{host, types};
