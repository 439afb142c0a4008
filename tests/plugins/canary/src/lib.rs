//! Isolation fixture (E18): an authenticator, sign-in handler, event listener and email
//! validator that remembers what each call carried and says whether a later call can see it.
//!
//! Each call first looks for traces of earlier calls, in two places: a `static` holding the
//! previous call's data, and every byte of its linear memory, searched for a 64 KiB canary block
//! (a marker, the data, then filler) that earlier calls leave on the heap and never free. Then it
//! stores its own data both ways and logs, at info:
//! `canary <label> <function> got <label>:<data> previous=<label>:<data> or none leaked=<label>:<data> or none`.
//! `previous` shows an instance reused (warm); `leaked` shows memory reused without being
//! cleared, whether by the same instance or, worse, by another instance or plugin.
//! The authenticator skips, the sign-in handler allows and the validator accepts, so the host's
//! own behaviour is unchanged.

use crm_users_guest::{
    Authenticator, Credentials, Decision, EmailValidator, Event, EventListener, Failure, Outcome, SignIn,
    SignInHandler, export_authenticator, export_email_validator, export_event_listener, export_sign_in_handler, host,
};
use std::sync::Mutex;

/// The previous call's data, in this instance.
static PREVIOUS: Mutex<Option<String>> = Mutex::new(None);

/// Size of the block each call leaves on the heap.
const CANARY_BYTES: usize = 64 * 1024;
/// Longest data kept in a canary block.
const MAX_DATA: usize = 256;

/// The marker, each byte plus one, so the component's data segment never holds the marker
/// itself and a search finds only blocks written at run time.
const MARKER_SHIFTED: &[u8] = b"dsn.vtfst.dbobsz;";

fn marker() -> Vec<u8> {
    MARKER_SHIFTED.iter().map(|b| b - 1).collect()
}

/// The data in the first canary block found in linear memory, skipping `own` (the marker
/// buffer this search uses).
fn leaked(marker: &[u8], own: *const u8) -> Option<String> {
    let size = core::arch::wasm32::memory_size(0) * 65536;
    // Address 0 is never a marker: start at 1 so the slice does not begin at null.
    // SAFETY: the whole of linear memory is readable in wasm; nothing writes it during the search.
    #[allow(unsafe_code)]
    let memory: &[u8] = unsafe { core::slice::from_raw_parts(core::ptr::with_exposed_provenance::<u8>(1), size - 1) };
    let first = marker[0];
    let mut i = 0;
    while i + marker.len() <= memory.len() {
        if memory[i] == first && &memory[i..i + marker.len()] == marker && memory[i..].as_ptr() != own {
            let rest = &memory[i + marker.len()..memory.len().min(i + marker.len() + MAX_DATA)];
            let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
            return Some(String::from_utf8_lossy(&rest[..end]).into_owned());
        }
        i += 1;
    }
    None
}

/// Report what this call can see of earlier ones, then leave its own traces.
fn observe(function: &str, data: &str) {
    let label = host::config("label").unwrap_or_else(|| "canary".to_owned());
    // Traces carry the label, so a copy of this component under another label that found them
    // would show it.
    let data = &format!("{label}:{data}");
    let marker = marker();
    let leaked = leaked(&marker, marker.as_ptr());
    let previous = PREVIOUS.lock().map(|mut p| p.replace(data.to_owned())).unwrap_or(None);
    let mut block = Vec::with_capacity(CANARY_BYTES);
    block.extend_from_slice(&marker);
    block.extend(data.bytes().take(MAX_DATA).filter(|&b| b != 0));
    block.push(0);
    block.resize(CANARY_BYTES, b'#');
    // Never freed: the block stays in this instance's memory for as long as the instance lives.
    block.leak();
    host::info(format!(
        "canary {label} {function} got {data} previous={} leaked={}",
        previous.as_deref().unwrap_or("none"),
        leaked.as_deref().unwrap_or("none")
    ));
}

struct Canary;

impl Authenticator for Canary {
    fn authenticate(credentials: Credentials) -> Result<Outcome, Failure> {
        observe("authenticate", credentials.username.as_deref().unwrap_or_default());
        Ok(Outcome::Skip)
    }
}

impl SignInHandler for Canary {
    fn on_sign_in(event: SignIn) -> Decision {
        observe("on-sign-in", &event.user.email);
        Decision::allow()
    }
}

impl EventListener for Canary {
    fn on_event(event: Event) {
        observe("on-event", &format!("{}:{}", event.name, event.user_id.unwrap_or_default()));
    }
}

impl EmailValidator for Canary {
    fn validate(email: String) -> Result<(), String> {
        observe("validate", &email);
        Ok(())
    }
}

export_authenticator!(Canary);
export_sign_in_handler!(Canary);
export_event_listener!(Canary);
export_email_validator!(Canary);
