//! Standard Webhooks signatures (standardwebhooks.com): `webhook-id`, `webhook-timestamp` and
//! `webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed by a `whsec_<base64>` secret,
//! so that receivers verify DraftStore's calls with any Standard Webhooks library.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The shared secret of a Standard Webhooks sender and its receivers.
#[derive(Clone)]
pub struct WebhookSecret(Vec<u8>);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(…)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (the prefix may be left out) holding 24 to 64 bytes, as the specification asks.
    pub fn parse(value: &str) -> Result<Self, String> {
        let encoded = value.strip_prefix("whsec_").unwrap_or(value);
        let key = STANDARD.decode(encoded).map_err(|_| "expected whsec_ followed by base64".to_owned())?;
        if !(24..=64).contains(&key.len()) {
            return Err(format!("the secret holds {} bytes; Standard Webhooks asks for 24 to 64", key.len()));
        }
        Ok(Self(key))
    }

    /// The `webhook-signature` value of a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!("v1,{}", STANDARD.encode(self.mac(id, timestamp, body).finalize().into_bytes()))
    }

    /// Whether one of the space-separated signatures of a `webhook-signature` header is this secret's for the
    /// message (compared in constant time).
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header.split(' ').filter_map(|signature| signature.strip_prefix("v1,")).any(|signature| {
            STANDARD.decode(signature).is_ok_and(|tag| self.mac(id, timestamp, body).verify_slice(&tag).is_ok())
        })
    }

    /// The three headers of a signed message.
    pub fn headers(&self, id: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 3] {
        [
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", timestamp.to_string()),
            ("webhook-signature", self.sign(id, timestamp, body)),
        ]
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's published test vector.
    #[test]
    fn signs_the_standard_webhooks_test_vector() {
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("a valid secret");
        let (id, timestamp, body) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
        let signature = secret.sign(id, timestamp, body);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert!(secret.verify(id, timestamp, body, &format!("v1,bm9wZQ== {signature}")));
        assert!(!secret.verify(id, timestamp + 1, body, &signature));
        assert!(!secret.verify(id, timestamp, br#"{"test": 2432232315}"#, &signature));
        let other = WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 32]))).expect("valid");
        assert!(!other.verify(id, timestamp, body, &signature));
    }

    #[test]
    fn refuses_secrets_that_are_not_base64_or_too_short() {
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
        assert!(WebhookSecret::parse(&format!("whsec_{}", STANDARD.encode([1u8; 8]))).is_err());
        assert!(WebhookSecret::parse(&STANDARD.encode([1u8; 32])).is_ok());
    }
}
