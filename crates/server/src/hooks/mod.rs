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

/// A message id derived from what the message is about (`parts`), the same each time: a message that an operation
/// repeated after a crash records again keeps its id, and a receiver that deduplicates by `webhook-id` sees it once.
pub fn message_id_for(parts: &[&str]) -> String {
    use sha2::Digest;
    let mut digest = sha2::Sha256::new();
    for part in parts {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    format!("msg_{}", hex::encode(&digest.finalize()[..16]))
}
