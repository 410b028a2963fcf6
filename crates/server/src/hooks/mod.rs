//! What DraftStore tells, and asks, other services: the confirm hook that may veto a promotion, and (signed the same
//! way) the events that follow. The draft service calls these; the protocol adapters never do.

mod confirm;
mod events;
pub mod signing;

pub use confirm::{ConfirmHook, Verdict};
pub use events::{Deliverer, EventType, Outbox, Subject};
pub use signing::WebhookSecret;

/// A fresh Standard Webhooks message id: `msg_` and 128 random bits.
pub fn message_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the system has randomness");
    format!("msg_{}", hex::encode(bytes))
}
