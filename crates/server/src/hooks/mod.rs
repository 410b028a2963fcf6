//! What DraftStore tells, and asks, other services: the confirm hook that may veto a promotion, and (signed the same
//! way) the events that follow. The draft service calls these; the protocol adapters never do.

mod confirm;
mod events;
mod settings;
pub mod signing;

pub use confirm::{ConfirmHook, Verdict};
pub use events::{Deliverer, EventType, Outbox, Subject};
pub use settings::HookSettings;
pub use signing::WebhookSecret;

/// Most bytes of an answer read from the confirm hook or the event receiver; a longer answer is not read.
pub const MAX_ANSWER: usize = 64 * 1024;

/// The HTTP client of the confirm hook and the event worker. It follows no redirect: a signed body is sent to the
/// configured URL and nowhere else, and a `3xx` is an answer like any other (no decision, no delivery).
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        // As `reqwest::Client::new()`, which fails only when the TLS backend cannot start.
        .expect("the HTTP client builds")
}

/// Reads an answer's body, at most [`MAX_ANSWER`] bytes: `Err` when it is longer or breaks off (`who` names the
/// receiver in the message).
pub async fn read_capped(mut response: reqwest::Response, who: &str) -> Result<bytes::Bytes, String> {
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e, who, None))? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(format!("{who} answered more than {} KiB; its answer was not read", MAX_ANSWER / 1024));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Why a call to `who` failed, in words that never hold its URL: reqwest's own text names the URL, and with it any
/// token in its query or credentials in it. The causes below reqwest's error (a refused connection, a TLS failure)
/// name no URL and are kept.
pub fn describe(error: &reqwest::Error, who: &str, timeout: Option<std::time::Duration>) -> String {
    if error.is_timeout() {
        return match timeout {
            Some(timeout) => format!("{who} did not answer within HOOK_TIMEOUT ({} s)", timeout.as_secs_f64()),
            None => format!("{who} did not answer in time"),
        };
    }
    let what = if error.is_connect() { "could not be reached" } else { "failed" };
    let mut causes = Vec::new();
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        causes.push(error.to_string());
        cause = error.source();
    }
    match causes.last() {
        Some(cause) => format!("the call to {who} {what}: {cause}"),
        None => format!("the call to {who} {what}"),
    }
}

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
