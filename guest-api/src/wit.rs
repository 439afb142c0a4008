//! Bindings generated from `wit/v0.1`, one module per world. Hidden from the docs: plugin
//! authors use the traits and types at the crate root instead.
//!
//! Every world imports the same `host` interface, so only the first module generates it and
//! the others map `types` and `host` onto it; a component that exports several worlds then
//! links one copy of the host imports.
//!
//! `pub_export_macro` makes wit-bindgen split each world's description in two: the imports are
//! described here (and dropped by the componentizer when unused), the exports only where the
//! export macro is expanded. That is what lets a plugin crate export exactly the worlds it
//! implements while all five are generated in this library.

#![allow(missing_docs)]

/// The `authenticator` world; also the home of the shared `types` and `host` interfaces.
pub mod authenticator {
    wit_bindgen::generate!({
        path: "../wit/v0.1",
        world: "crm:users/authenticator@0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_authenticator_world",
        default_bindings_module: "$crate::wit::authenticator",
    });
}

/// The `sign-in-handler` world.
pub mod sign_in_handler {
    wit_bindgen::generate!({
        path: "../wit/v0.1",
        world: "crm:users/sign-in-handler@0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_sign_in_handler_world",
        default_bindings_module: "$crate::wit::sign_in_handler",
        with: {
            "crm:users/types@0.1.0": crate::wit::authenticator::crm::users::types,
            "crm:users/host@0.1.0": crate::wit::authenticator::crm::users::host,
        },
    });
}

/// The `address-type` world.
pub mod address_type {
    wit_bindgen::generate!({
        path: "../wit/v0.1",
        world: "crm:users/address-type@0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_address_type_world",
        default_bindings_module: "$crate::wit::address_type",
        with: {
            "crm:users/types@0.1.0": crate::wit::authenticator::crm::users::types,
            "crm:users/host@0.1.0": crate::wit::authenticator::crm::users::host,
        },
    });
}

/// The `email-validator` world.
pub mod email_validator {
    wit_bindgen::generate!({
        path: "../wit/v0.1",
        world: "crm:users/email-validator@0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_email_validator_world",
        default_bindings_module: "$crate::wit::email_validator",
        with: {
            "crm:users/types@0.1.0": crate::wit::authenticator::crm::users::types,
            "crm:users/host@0.1.0": crate::wit::authenticator::crm::users::host,
        },
    });
}

/// The `event-listener` world.
pub mod event_listener {
    wit_bindgen::generate!({
        path: "../wit/v0.1",
        world: "crm:users/event-listener@0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_event_listener_world",
        default_bindings_module: "$crate::wit::event_listener",
        with: {
            "crm:users/types@0.1.0": crate::wit::authenticator::crm::users::types,
            "crm:users/host@0.1.0": crate::wit::authenticator::crm::users::host,
        },
    });
}
