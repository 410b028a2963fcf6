//! The confirm hook's and the events' settings.

use std::time::Duration;

use clap::Args;
use url::Url;

use super::WebhookSecret;
use crate::setting::{self, ConfigError, Setting, Unset};

/// The confirm hook and the events.
#[derive(Debug, Clone, Args)]
#[command(mut_args = setting::by_convention)]
pub struct HookSettings {
    /// URL asked before a draft is promoted, with a signed `draft.confirming` event and a download URL of the
    /// draft: a 2xx accepts, a 422 (or `{"accept": false, "reason": …}`) rejects, anything else fails the confirm
    /// (503) and keeps the draft.
    #[arg(long = "confirm-hook-url", env = "CONFIRM_HOOK_URL", value_name = "URL")]
    #[arg(value_parser = setting::optional(setting::webhook_url()))]
    pub confirm_url: Unset<Url>,
    /// Seconds the confirm hook, and each event delivery, may take (1 to 300).
    #[arg(long = "hook-timeout", env = "HOOK_TIMEOUT", default_value = "10", value_name = "SECONDS")]
    #[arg(value_parser = setting::seconds(1, 300))]
    pub timeout: Duration,
    /// URL the events (`draft.confirmed`, `.rejected`, `.discarded`, `.expired`) are delivered to, signed, at least
    /// once; they wait in `<BUCKET_NAME>-events` until a 2xx.
    #[arg(long, env = "EVENTS_URL", value_name = "URL", value_parser = setting::optional(setting::webhook_url()))]
    pub events_url: Unset<Url>,
    /// Seconds an undelivered event is retried before it is dropped, with an error log and a metric (60 to
    /// 2592000).
    #[arg(long, env = "EVENTS_MAX_AGE", default_value = "86400", value_name = "SECONDS")]
    #[arg(value_parser = setting::seconds(60, 30 * 86400))]
    pub events_max_age: Duration,
    /// Standard Webhooks secret (`whsec_<base64>`, 24 to 64 bytes) that signs the hook calls and the events;
    /// required with either URL.
    #[arg(long = "webhook-secret", env = "WEBHOOK_SECRET", hide_env_values = true, value_name = "SECRET")]
    #[arg(value_parser = setting::optional(webhook_secret()))]
    pub secret: Unset<WebhookSecret>,
}

impl HookSettings {
    /// Checks that the URLs come with the secret that signs what is sent to them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.secret.is_none() && (self.confirm_url.is_some() || self.events_url.is_some()) {
            return Err(ConfigError::new(
                "WEBHOOK_SECRET",
                "is required with CONFIRM_HOOK_URL or EVENTS_URL: receivers verify every call with it \
                 (generate one with: echo whsec_$(head -c 32 /dev/urandom | base64))",
            ));
        }
        Ok(())
    }
}

/// A Standard Webhooks secret; the message does not show it.
fn webhook_secret() -> Setting<WebhookSecret> {
    Setting::new(|text| WebhookSecret::parse(text).map_err(|e| format!("is not a Standard Webhooks secret: {e}")))
}
