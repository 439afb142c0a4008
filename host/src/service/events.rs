//! The in-process event bus. Services publish after the change is durable; listeners (event
//! listener plugins, metrics, tests) subscribe. Publishing never blocks a request: a listener
//! that falls behind loses the oldest events and is told how many.

use crate::domain::{event::DomainEvent, event::Envelope, now};
use std::sync::Arc;
use tokio::sync::broadcast;

/// How many events a slow subscriber may fall behind before it starts losing them.
const BUS_CAPACITY: usize = 4096;

/// A cheap-to-clone handle to the bus.
#[derive(Clone, Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Envelope>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    pub fn new() -> Self {
        EventBus { tx: broadcast::channel(BUS_CAPACITY).0 }
    }

    /// Publish an event to every current subscriber.
    pub fn publish(&self, event: DomainEvent) {
        tracing::debug!(event = event.name(), "event");
        // No subscribers is normal (e.g. CLI commands); nothing to do then.
        let _ = self.tx.send(Arc::new(Envelope { at: now(), event }));
    }

    /// Publish several events in order.
    pub fn publish_all(&self, events: impl IntoIterator<Item = DomainEvent>) {
        for e in events {
            self.publish(e);
        }
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.tx.subscribe()
    }
}
