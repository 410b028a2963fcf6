//! A webhook receiver started by the test: it records every call and answers as told.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use draftstore::hooks::WebhookSecret;
use serde_json::{Value, json};

/// The webhook secret the tests configure, as `WEBHOOK_SECRET` takes it.
pub fn secret_text() -> String {
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode([42u8; 32]))
}

/// The webhook secret the tests configure.
pub fn secret() -> WebhookSecret {
    WebhookSecret::parse(&secret_text()).expect("a valid secret")
}

/// How the receiver answers.
#[derive(Debug, Clone)]
pub enum Mode {
    Accept,
    /// 200 with `{"accept": false, "reason": …}`.
    RejectInBody(&'static str),
    /// 422 with a reason in plain text.
    RejectWithStatus(&'static str),
    /// Answers after this long.
    Slow(Duration),
    /// 500 to every event about an object whose name starts with this; 200 to the others.
    FailNamed(&'static str),
}

/// One call the receiver got.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: String,
    timestamp: i64,
    signature: String,
    pub body: Bytes,
    /// What the receiver answered.
    pub status: u16,
    /// For a confirm hook call: the draft's bytes, read through the URL in the event.
    pub fetched: Option<Vec<u8>>,
}

impl Call {
    /// The event, parsed.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Whether the call's signature verifies with `secret`.
    pub fn verifies_with(&self, secret: &WebhookSecret) -> bool {
        secret.verify(&self.id, self.timestamp, &self.body, &self.signature)
    }
}

#[derive(Debug)]
struct Inner {
    mode: Mode,
    /// Answer 500 to this many calls first.
    failures_left: usize,
    calls: Vec<Call>,
}

/// An HTTP server that records every call.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// Starts on a free port.
    pub async fn start(mode: Mode) -> Self {
        Self::start_on(0, mode).await
    }

    /// Starts on this port, so that a receiver can come back at the address a server was given.
    pub async fn start_on(port: u16, mode: Mode) -> Self {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("address"));
        let inner = Arc::new(Mutex::new(Inner { mode, failures_left: 0, calls: Vec::new() }));
        let app = axum::Router::new().route("/hook", axum::routing::post(receive)).with_state(Arc::clone(&inner));
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the receiver serves");
        });
        Self { url, inner, task: Arc::new(task) }
    }

    /// Answers the next calls as `mode` says.
    pub fn set_mode(&self, mode: Mode) {
        self.inner.lock().expect("lock").mode = mode;
    }

    /// Answers the next `count` calls with 500, whatever the mode.
    pub fn fail_first(&self, count: usize) {
        self.inner.lock().expect("lock").failures_left = count;
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().expect("lock").calls.clone()
    }

    /// Waits until `done` holds of the calls so far.
    pub async fn wait_for(&self, what: &str, done: impl Fn(&[Call]) -> bool) -> Vec<Call> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let calls = self.calls();
            if done(&calls) {
                return calls;
            }
            assert!(Instant::now() < deadline, "the receiver never got {what}; it got {:#?}", summary(&calls));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops answering: the port refuses connections.
    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Each call's id, status and body, for a failure message.
pub fn summary(calls: &[Call]) -> Vec<(String, u16, String)> {
    calls.iter().map(|c| (c.id.clone(), c.status, String::from_utf8_lossy(&c.body).into_owned())).collect()
}

async fn receive(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut call = Call {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
        signature: header("webhook-signature"),
        body: body.clone(),
        status: 200,
        fetched: None,
    };
    let (mode, fail) = {
        let mut inner = inner.lock().expect("lock");
        let fail = inner.failures_left > 0;
        inner.failures_left = inner.failures_left.saturating_sub(1);
        (inner.mode.clone(), fail)
    };
    let event: Value = serde_json::from_slice(&body).unwrap_or_default();
    if let Some(url) = event["data"]["download_url"].as_str() {
        // The headers the URL was signed with (S3's `If-Match`, which binds it to the version checked).
        let mut get = reqwest::Client::new().get(url);
        for (name, value) in event["data"]["download_headers"].as_object().into_iter().flatten() {
            get = get.header(name.as_str(), value.as_str().unwrap_or_default());
        }
        let fetched = get.send().await.expect("the draft's URL answers");
        assert_eq!(fetched.status(), 200, "the hook could not read the draft");
        call.fetched = Some(fetched.bytes().await.expect("a body").to_vec());
    }
    let response = if fail {
        call.status = 500;
        (StatusCode::INTERNAL_SERVER_ERROR, "not now").into_response()
    } else {
        match mode {
            Mode::Accept => StatusCode::OK.into_response(),
            Mode::RejectInBody(reason) => axum::Json(json!({"accept": false, "reason": reason})).into_response(),
            Mode::RejectWithStatus(reason) => {
                call.status = 422;
                (StatusCode::UNPROCESSABLE_ENTITY, reason).into_response()
            }
            Mode::Slow(delay) => {
                tokio::time::sleep(delay).await;
                StatusCode::OK.into_response()
            }
            Mode::FailNamed(prefix) => {
                if event["data"]["object_name"].as_str().is_some_and(|name| name.starts_with(prefix)) {
                    call.status = 500;
                    (StatusCode::INTERNAL_SERVER_ERROR, "never this one").into_response()
                } else {
                    StatusCode::OK.into_response()
                }
            }
        }
    };
    inner.lock().expect("lock").calls.push(call);
    response
}
