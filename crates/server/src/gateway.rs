//! Every call to the store, bounded by STORAGE_TIMEOUT, counted and put in the service's terms: the one place the
//! service, the cleaner and the event deliverer wait on the store.

use std::future::Future;
use std::time::{Duration, Instant};

use draftstore_storage::Progress;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;

use crate::error::{Error, Result};
use crate::telemetry;

/// Bounds storage calls by one timeout. Cheap to copy.
#[derive(Debug, Clone, Copy)]
pub struct StorageCalls {
    timeout: Duration,
}

impl StorageCalls {
    /// Calls bounded by `timeout` (STORAGE_TIMEOUT).
    pub fn new(timeout: Duration) -> Self {
        Self { timeout }
    }

    /// The bound.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Bounds a storage call by the timeout and puts its error in the service's terms.
    pub async fn call<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = draftstore_storage::Result<T>>,
    ) -> Result<T> {
        self.bounded(operation, None, Traced::Yes, call).await
    }

    /// Bounds a URL signing like a storage call (with credentials to refresh, it may reach a credential provider),
    /// without a span of its own in the traces: a signature is computed here, the store is not called.
    pub async fn sign<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = draftstore_storage::Result<T>>,
    ) -> Result<T> {
        self.bounded(operation, None, Traced::No, call).await
    }

    /// Bounds a long storage call by the timeout without progress: the call may take as long as it needs while
    /// `progress` moves (parts copied, answers from the store), and fails once it has not moved for a whole
    /// timeout. So a store that stalls is cut off, an object that is big is not.
    pub async fn call_with_progress<T>(
        &self,
        operation: &'static str,
        progress: &Progress,
        call: impl Future<Output = draftstore_storage::Result<T>>,
    ) -> Result<T> {
        self.bounded(operation, Some(progress), Traced::Yes, call).await
    }

    async fn bounded<T>(
        &self,
        operation: &'static str,
        progress: Option<&Progress>,
        traced: Traced,
        call: impl Future<Output = draftstore_storage::Result<T>>,
    ) -> Result<T> {
        let started = Instant::now();
        let bounded = async {
            match until_stalled(self.timeout, progress, call).await {
                Some(result) => result.map_err(|e| Error::from_storage(operation, e)),
                None => Err(Error::StorageTimeout { operation, after: self.timeout }),
            }
        };
        let result = match traced {
            Traced::Yes => {
                let attributes = || vec![KeyValue::new("operation", operation)];
                let failed = |result: &Result<T>| result.as_ref().err().map(ToString::to_string);
                telemetry::traced("storage", SpanKind::Client, attributes, failed, bounded).await
            }
            Traced::No => bounded.await,
        };
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.error_type().as_str(),
        };
        telemetry::STORAGE_CALLS.record(&[operation], outcome, Some(started.elapsed()));
        result
    }
}

/// Whether a call gets a span of its own in the traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Traced {
    Yes,
    No,
}

/// Runs `work` until it ends, or until it has gone a whole `timeout` without `progress` moving (without
/// `progress`: until `timeout`); `None` when it stalled.
pub async fn until_stalled<T>(
    timeout: Duration,
    progress: Option<&Progress>,
    work: impl Future<Output = T>,
) -> Option<T> {
    let mut work = std::pin::pin!(work);
    let mut seen = progress.map(Progress::marker);
    loop {
        match tokio::time::timeout(timeout, &mut work).await {
            Ok(result) => return Some(result),
            Err(_) => {
                let now = progress.map(Progress::marker);
                if now == seen {
                    return None;
                }
                seen = now;
            }
        }
    }
}
