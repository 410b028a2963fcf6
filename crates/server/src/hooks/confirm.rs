//! The confirm hook: before a draft that passed DraftStore's own checks is promoted, CONFIRM_HOOK_URL is asked,
//! with a signed `draft.confirming` event carrying a short-lived download URL of the draft. A 2xx accepts (unless
//! its body says `{"accept": false, "reason": …}`), a 4xx rejects with its reason; anything else (a timeout, a
//! refused connection, a 5xx, 408 or 429) leaves the decision open, and confirm fails closed.

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
            .map_err(|e| describe(&e, self.timeout))?;
        let status = response.status();
        if status == reqwest::StatusCode::REQUEST_TIMEOUT || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(format!("the confirm hook answered {status}"));
        }
        if !(status.is_success() || status.is_client_error()) {
            return Err(format!("the confirm hook answered {status}"));
        }
        let text = response.text().await.map_err(|e| describe(&e, self.timeout))?;
        let answer: Answer = serde_json::from_str(&text).unwrap_or_default();
        if status.is_success() && answer.accept != Some(false) {
            return Ok(Verdict::Accept);
        }
        let reason = answer
            .reason
            .or_else(|| status.is_client_error().then(|| text.trim().to_owned()).filter(|t| !t.is_empty()))
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

fn describe(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        format!("the confirm hook did not answer within HOOK_TIMEOUT ({} s)", timeout.as_secs_f64())
    } else if error.is_connect() {
        "the confirm hook could not be reached".to_owned()
    } else {
        "the call to the confirm hook failed".to_owned()
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
