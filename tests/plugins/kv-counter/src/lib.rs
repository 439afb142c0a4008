//! Fixture: an event listener that counts events in its key-value store, in total under `count`
//! and per event under `event:<name>`, and logs each event's name. Tests read the counters to
//! check delivery and the store's isolation.

use crm_users_guest::{Event, EventListener, HostError, export_event_listener, host};

struct KvCounter;

impl EventListener for KvCounter {
    fn on_event(event: Event) {
        host::info(format!("event {}", event.name));
        for key in ["count".to_owned(), format!("event:{}", event.name)] {
            if let Err(error) = increment(&key) {
                host::error(format!("cannot count {key}: {error}"));
            }
        }
    }
}

export_event_listener!(KvCounter);

/// Adds one to the decimal counter under `key`; a missing or unreadable counter counts as 0.
fn increment(key: &str) -> Result<(), HostError> {
    let count: u64 = host::kv::get_string(key)?.and_then(|value| value.parse().ok()).unwrap_or(0);
    host::kv::set(key, (count + 1).to_string())
}
