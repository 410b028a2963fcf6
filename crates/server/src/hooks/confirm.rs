//! The confirm hook: before a draft that passed DraftStore's own checks is promoted, CONFIRM_HOOK_URL is asked,
//! with a signed `draft.confirming` event carrying a short-lived download URL of the draft. Only an explicit verdict
//! rejects: a `422`, or a 2xx whose body says `{"accept": false, "reason": …}`. Any other 2xx accepts. Anything
//! else leaves the decision open and confirm fails closed, the draft kept: a timeout, a refused connection, a
//! redirect (never followed: the signed body goes to CONFIRM_HOOK_URL only), an answer longer than 64 KiB, a 5xx,
//! and every other 4xx, which a gateway in front of the hook (a 401, a 404) gives as readily as the hook itself.

use std::time::{Duration, Instant};

use opentelemetry::trace::SpanKind;
use serde::Deserialize;
use url::Url;

use super::{WebhookSecret, message_id};
use crate::telemetry;

/// The hook's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Rejected, with the hook's reason.
    Reject(String),
}

/// What a hook may answer in its body.
#[derive(Debug, Default, Deserialize)]
struct Answer {
    accept: Option<bool>,
    reason: Option<String>,
}

/// Longest reason passed on to the client.
const MAX_REASON: usize = 500;

/// Calls CONFIRM_HOOK_URL.
#[derive(Debug, Clone)]
pub struct ConfirmHook {
    url: Url,
    timeout: Duration,
    secret: WebhookSecret,
    http: reqwest::Client,
}

impl ConfirmHook {
    pub fn new(url: Url, timeout: Duration, secret: WebhookSecret, http: reqwest::Client) -> Self {
        Self { url, timeout, secret, http }
    }

    /// How long a hook has to answer; the download URL it is given lives a minute longer.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Asks the hook about a draft. `Err` says why there is no decision.
    pub async fn ask(&self, payload: &serde_json::Value) -> Result<Verdict, String> {
        let started = Instant::now();
        let failed = |verdict: &Result<Verdict, String>| verdict.as_ref().err().cloned();
        let verdict = telemetry::traced("confirm_hook", SpanKind::Client, Vec::new, failed, self.call(payload)).await;
        let outcome = match &verdict {
            Ok(Verdict::Accept) => "accepted",
            Ok(Verdict::Reject(_)) => "rejected",
            Err(_) => "unavailable",
        };
        metrics::counter!("draftstore_hook_calls_total", "outcome" => outcome).increment(1);
        metrics::histogram!("draftstore_hook_duration_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        verdict
    }

    async fn call(&self, payload: &serde_json::Value) -> Result<Verdict, String> {
        let body = serde_json::to_vec(payload).expect("an event serializes");
        let id = message_id();
        let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
        let mut request = self.http.post(self.url.clone()).timeout(self.timeout).headers(telemetry::trace_headers());
        for (name, value) in self.secret.headers(&id, timestamp, &body) {
            request = request.header(name, value);
        }
        let response = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| super::describe(&e, "the confirm hook", Some(self.timeout)))?;
        let status = response.status();
        if !(status.is_success() || status == reqwest::StatusCode::UNPROCESSABLE_ENTITY) {
            let redirect = if status.is_redirection() { " (redirects are not followed)" } else { "" };
            return Err(format!("the confirm hook answered {status}{redirect}, which is no verdict"));
        }
        let text = super::read_capped(response, "the confirm hook").await?;
        let answer: Answer = serde_json::from_slice(&text).unwrap_or_default();
        if status.is_success() && answer.accept != Some(false) {
            return Ok(Verdict::Accept);
        }
        let text = String::from_utf8_lossy(&text);
        let reason = answer
            .reason
            .or_else(|| (!status.is_success()).then(|| text.trim().to_owned()).filter(|t| !t.is_empty()))
            .unwrap_or_else(|| format!("the confirm hook answered {status}"));
        Ok(Verdict::Reject(clean(&reason)))
    }
}

/// A reason fit for an error message: one line of printable text, not too long.
fn clean(reason: &str) -> String {
    let one_line: String = reason.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    match one_line.char_indices().nth(MAX_REASON) {
        Some((cut, _)) => format!("{}…", &one_line[..cut]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_one_bounded_line() {
        assert_eq!(clean("infected:\nEICAR"), "infected: EICAR");
        assert_eq!(clean(&"x".repeat(600)).chars().count(), MAX_REASON + 1);
    }
}
