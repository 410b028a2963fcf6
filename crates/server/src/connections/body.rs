//! Request bodies that must keep coming: BODY_IDLE_TIMEOUT and BODY_MIN_RATE.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};

use super::ConnectionSettings;

/// What a request body must keep up while its reader waits for it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// BODY_IDLE_TIMEOUT: longest wait for a single byte.
    pub idle: Option<Duration>,
    /// BODY_MIN_RATE over BODY_RATE_WINDOW: bytes a window of waiting must bring.
    pub min_rate: Option<MinRate>,
}

/// A minimum rate: `bytes_per_second` on average over each `window` of waiting.
#[derive(Debug, Clone, Copy)]
pub struct MinRate {
    pub bytes_per_second: u64,
    pub window: Duration,
}

impl MinRate {
    /// Bytes a whole window must bring.
    fn needed(&self) -> u64 {
        let needed = u128::from(self.bytes_per_second) * self.window.as_millis() / 1000;
        u64::try_from(needed).unwrap_or(u64::MAX)
    }
}

impl BodyLimits {
    /// The limits of these settings; `None` when both are off.
    pub fn of(settings: &ConnectionSettings) -> Option<Self> {
        let min_rate = (settings.body_min_rate > 0)
            .then_some(MinRate { bytes_per_second: settings.body_min_rate, window: settings.body_rate_window });
        (settings.body_idle_timeout.is_some() || min_rate.is_some())
            .then_some(Self { idle: settings.body_idle_timeout, min_rate })
    }
}

/// A request body that fails once nothing has arrived for BODY_IDLE_TIMEOUT while its reader waits, or once a
/// window of waiting (BODY_RATE_WINDOW) has brought fewer bytes than BODY_MIN_RATE asks: a client that stops
/// sending, or trickles a byte now and then to keep the first limit away, is cut off, and what it sent is discarded
/// as for any interrupted upload. Only time the reader spends waiting for the client counts: time it spends
/// elsewhere (writing what it got to disk) does not count against the client.
#[derive(Debug)]
pub struct IdleBody {
    inner: Incoming,
    limits: BodyLimits,
    /// Made the first time the reader has to wait: a body that came with its headers never needs one.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// When the current wait began, while the reader waits.
    waiting_since: Option<tokio::time::Instant>,
    /// While the reader waits: from when its wait is not yet counted in `window_waited`.
    uncounted_since: Option<tokio::time::Instant>,
    /// Time waited, and bytes received, in the current rate window.
    window_waited: Duration,
    window_bytes: u64,
}

/// The error a stalled body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {} s (BODY_IDLE_TIMEOUT)", .0.as_secs())]
pub struct BodyStalled(pub Duration);

/// The error a trickled body ends with.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body sent {bytes} bytes in {} s of waiting, below {} bytes/s (BODY_MIN_RATE)",
    .window.as_secs(),
    .rate.bytes_per_second
)]
pub struct BodyTooSlow {
    pub bytes: u64,
    pub window: Duration,
    pub rate: MinRate,
}

impl IdleBody {
    pub fn new(inner: Incoming, limits: BodyLimits) -> Self {
        Self {
            inner,
            limits,
            timer: None,
            waiting_since: None,
            uncounted_since: None,
            window_waited: Duration::ZERO,
            window_bytes: 0,
        }
    }

    /// The error when the rate window, counted up to `now`, is whole and brought too little; a whole window that
    /// brought enough starts the next one.
    fn check_rate(&mut self, now: tokio::time::Instant) -> Option<BodyTooSlow> {
        let rate = self.limits.min_rate?;
        if let Some(since) = self.uncounted_since {
            self.window_waited += now.saturating_duration_since(since);
            self.uncounted_since = self.waiting_since.map(|_| now);
        }
        if self.window_waited < rate.window {
            return None;
        }
        if self.window_bytes < rate.needed() {
            return Some(BodyTooSlow { bytes: self.window_bytes, window: rate.window, rate });
        }
        (self.window_waited, self.window_bytes) = (Duration::ZERO, 0);
        None
    }
}

impl http_body::Body for IdleBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let now = tokio::time::Instant::now();
                this.waiting_since = None;
                if let Some(Ok(data)) = frame.as_ref().map(|frame| frame.as_ref().map(Frame::data_ref)) {
                    this.window_bytes += data.map_or(0, |data| data.len() as u64);
                }
                if frame.is_some()
                    && let Some(slow) = this.check_rate(now)
                {
                    return Poll::Ready(Some(Err(Box::new(slow))));
                }
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => loop {
                let now = tokio::time::Instant::now();
                let since = match this.waiting_since {
                    Some(since) => since,
                    None => {
                        // A wait begins: it counts towards the rate window from now.
                        (this.waiting_since, this.uncounted_since) = (Some(now), Some(now));
                        now
                    }
                };
                if let Some(slow) = this.check_rate(now) {
                    return Poll::Ready(Some(Err(Box::new(slow))));
                }
                if let Some(idle) = this.limits.idle
                    && now.saturating_duration_since(since) >= idle
                {
                    return Poll::Ready(Some(Err(Box::new(BodyStalled(idle)))));
                }
                // The wait ends at the first limit it reaches: the idle timeout, or the end of the rate window.
                let idle_end = this.limits.idle.map(|idle| since + idle);
                let window_end = this
                    .limits
                    .min_rate
                    .map(|rate| this.uncounted_since.unwrap_or(now) + rate.window.saturating_sub(this.window_waited));
                let Some(deadline) = idle_end.into_iter().chain(window_end).min() else { return Poll::Pending };
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                ready!(timer.as_mut().poll(cx));
                // A deadline reached: look again, which ends the body or arms the next deadline.
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
