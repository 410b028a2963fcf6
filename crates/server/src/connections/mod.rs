//! The listeners' defence against hostile and broken clients. Every connection, on either port, is admitted into a
//! bounded number of slots sized to the open-file limit. On the REST port a watchdog closes a connection that has had
//! no request in flight for HTTP_HEADER_TIMEOUT (half-sent headers or preface, idle keep-alives); on the gRPC port
//! the whole HTTP/2 preface must arrive within it. HTTP/2 connections are pinged, and request bodies are cut off
//! after BODY_IDLE_TIMEOUT without a byte. The REST port keeps a small reserve of slots beyond MAX_CONNECTIONS on
//! which it answers the probes, so that an orchestrator sees a saturated server as alive and ready, not dead.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use futures_util::Stream;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::TcpConnectInfo;
use tower_service::Service;

mod body;
mod settings;

pub use body::{BodyLimits, BodyStalled, BodyTooSlow, IdleBody, MinRate};
pub use settings::ConnectionSettings;

/// Connections beyond MAX_CONNECTIONS on which the REST port still answers the probes.
pub const PROBE_RESERVE: usize = 32;
/// How long a connection on the probe reserve may take to send its request: a probe sends at once.
const PROBE_HEADER_TIMEOUT: Duration = Duration::from_secs(2);
/// Open files kept free of connections, for the store's files and sockets, logs and the like.
const FILES_HEADROOM: u64 = 128;
/// Interval of the HTTP/2 pings that find dead peers, and how long an answer may take.
pub const HTTP2_KEEPALIVE: Duration = Duration::from_secs(30);
pub const HTTP2_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// Requests one HTTP/2 connection (a gRPC channel) may have in flight at once.
pub const HTTP2_MAX_STREAMS: u32 = 256;
/// How often, at most, running out of file descriptors is logged.
const ACCEPT_WARNING_EVERY: Duration = Duration::from_secs(10);

/// The open-file limit after start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFiles {
    /// The soft limit, raised to the hard one where it was lower; `None` is unlimited.
    pub soft: Option<u64>,
    pub hard: Option<u64>,
    /// What the soft limit was before.
    pub was: Option<u64>,
}

/// Raises the soft limit on open files to the hard limit, as servers do at start: the common soft default of 1,024
/// is a few hundred clients.
pub fn raise_open_file_limit() -> OpenFiles {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let was = limit.current;
    let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
    if limit.current != limit.maximum
        && let Err(e) = setrlimit(Resource::Nofile, raised)
    {
        tracing::warn!(error = %e, soft = ?was, hard = ?limit.maximum, "cannot raise the open-file limit");
        return OpenFiles { soft: was, hard: limit.maximum, was };
    }
    OpenFiles { soft: limit.maximum, hard: limit.maximum, was }
}

/// How many connections each port takes: MAX_CONNECTIONS (0: no number of its own), lowered so that every
/// connection can have its descriptor and one more (a local upload's file), with the probe reserve and some
/// headroom besides.
pub fn connection_cap(wanted: usize, files: Option<u64>) -> usize {
    let fit = files.map_or(usize::MAX, |files| {
        // Three descriptors per pair of connections, one a port, and a local upload's file for the REST one.
        let spare = files.saturating_sub(FILES_HEADROOM + PROBE_RESERVE as u64);
        usize::try_from(spare / 3).unwrap_or(usize::MAX).max(1)
    });
    if wanted == 0 { fit } else { wanted.min(fit) }
}

/// The slots of one port: connections hold one until they close.
#[derive(Debug, Clone)]
pub struct Slots {
    port: &'static str,
    open: Arc<Semaphore>,
    reserve: Arc<Reserve>,
}

/// The slot an admitted connection holds, counted in `draftstore_connections` until it is dropped.
#[derive(Debug)]
struct HeldSlot {
    port: &'static str,
    /// One of MAX_CONNECTIONS, served in full; `None` on the probe reserve.
    slot: Option<OwnedSemaphorePermit>,
}

impl Drop for HeldSlot {
    fn drop(&mut self) {
        metrics::gauge!("draftstore_connections", "port" => self.port).decrement(1.0);
    }
}

/// The probe reserve: connections served beyond MAX_CONNECTIONS, one request each, the probes answered and
/// everything else told the server is busy. When it is full the oldest is closed for the newest: a probe sends its
/// request the moment it connects, so clients that hold connections without sending cannot keep it out.
#[derive(Debug)]
struct Reserve {
    capacity: usize,
    held: std::sync::Mutex<std::collections::VecDeque<(u64, tokio::task::AbortHandle)>>,
    next: AtomicU64,
}

impl Reserve {
    fn new(capacity: usize) -> Self {
        Self { capacity, held: Default::default(), next: Default::default() }
    }

    /// A new connection's ticket, for [`Reserve::hold`] and [`Reserve::release`].
    fn ticket(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// Holds a connection's task, closing the oldest held when full.
    fn hold(&self, ticket: u64, task: tokio::task::AbortHandle) {
        let evicted = {
            let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let evicted = if held.len() >= self.capacity { held.pop_front() } else { None };
            held.push_back((ticket, task));
            evicted
        };
        // Aborted outside the lock: the task's drop takes it to release its own ticket.
        if let Some((_, oldest)) = evicted {
            oldest.abort();
            metrics::counter!("draftstore_connections_evicted_total").increment(1);
        }
    }

    fn release(&self, ticket: u64) {
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.retain(|(held, _)| *held != ticket);
    }
}

impl Slots {
    /// `cap` connections, and `reserve` more on which only the probes are answered.
    pub fn new(port: &'static str, cap: usize, reserve: usize) -> Self {
        Self { port, open: Arc::new(Semaphore::new(cap)), reserve: Arc::new(Reserve::new(reserve)) }
    }

    /// A slot of MAX_CONNECTIONS, else one on the reserve (which the caller must hold), else none.
    fn admit(&self) -> Option<HeldSlot> {
        let slot = match Arc::clone(&self.open).try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) if self.reserve.capacity > 0 => None,
            Err(_) => return None,
        };
        metrics::gauge!("draftstore_connections", "port" => self.port).increment(1.0);
        Some(HeldSlot { port: self.port, slot })
    }
}

/// Accepts connections for ever, handing each one admitted to `admitted`. Those beyond every slot are closed at
/// once (and counted), so that the backlog drains and a probe behind them is not kept waiting. Failures to accept
/// (out of descriptors above all) are counted, logged at most every ten seconds, and waited out with a backoff
/// instead of a busy loop.
async fn accept_loop(listener: TcpListener, slots: &Slots, mut admitted: impl FnMut(TcpStream, SocketAddr, HeldSlot)) {
    let mut errors = AcceptErrors::default();
    let mut backoff = Duration::ZERO;
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                backoff = Duration::ZERO;
                match slots.admit() {
                    Some(slot) => admitted(tcp, peer, slot),
                    None => {
                        metrics::counter!("draftstore_connections_refused_total", "port" => slots.port).increment(1)
                    }
                }
            }
            // The peer gave up before it was accepted: nothing is wrong here.
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset) => {}
            Err(e) => {
                if let Some(suppressed) = errors.record(slots.port, &e, Instant::now()) {
                    // `suppressed`: the failures since the last line, counted but not logged.
                    tracing::warn!(port = slots.port, error = %e, suppressed, "cannot accept connections; retrying");
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// Failures to accept, counted by kind; the log line is rate-limited.
#[derive(Debug, Default)]
struct AcceptErrors {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl AcceptErrors {
    /// Counts the failure; `Some(failures not logged since the last line)` when this one is to be logged.
    fn record(&mut self, port: &'static str, error: &io::Error, now: Instant) -> Option<u64> {
        // EMFILE and ENFILE: the process's or the system's descriptors are all in use.
        let kind = match error.raw_os_error() {
            Some(23 | 24) => "too_many_open_files",
            _ => "other",
        };
        metrics::counter!("draftstore_accept_errors_total", "port" => port, "kind" => kind).increment(1);
        if self.last_logged.is_some_and(|at| now.duration_since(at) < ACCEPT_WARNING_EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last_logged = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The HTTP/2 connection preface, which a gRPC client sends first.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads a connection's first bytes within `timeout`: the whole HTTP/2 preface, or as far as it takes to see it is
/// not one. A client that sends half of it is cut off here; tonic reads the bytes again (see [`Connection`]).
async fn read_preface(tcp: &mut TcpStream, timeout: Option<Duration>) -> io::Result<([u8; 24], usize)> {
    let mut prefix = [0u8; H2_PREFACE.len()];
    let mut filled = 0;
    let read = async {
        loop {
            let n = tcp.read(&mut prefix[filled..]).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before its preface"));
            }
            filled += n;
            if filled == prefix.len() || prefix[..filled] != H2_PREFACE[..filled] {
                return Ok(());
            }
        }
    };
    match timeout {
        Some(timeout) => tokio::time::timeout(timeout, read)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no preface within HTTP_HEADER_TIMEOUT"))??,
        None => read.await?,
    }
    Ok((prefix, filled))
}

/// The REST port's routers: the whole application, and what connections on the probe reserve are answered.
#[derive(Debug, Clone)]
pub struct HttpRouters {
    pub full: Router,
    pub reserve: Router,
}

/// Serves the REST port until `stop` completes, then lets the connections finish their requests.
pub async fn serve_http(
    listener: TcpListener,
    slots: Slots,
    routers: HttpRouters,
    settings: ConnectionSettings,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let graceful = GracefulShutdown::new();
    let builder = |keep_alive: bool| {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // The header timeout is the watchdog's (see `idle_watchdog`): hyper's would arm a timer for every request.
        builder.http1().timer(TokioTimer::new()).header_read_timeout(None).keep_alive(keep_alive);
        http2_limits(&mut builder);
        Arc::new(builder)
    };
    let (full, reserve) = (builder(true), builder(false));
    let accept = accept_loop(listener, &slots, |tcp, peer, slot| {
        let _ = tcp.set_nodelay(true);
        let on_reserve = slot.slot.is_none();
        let (router, builder, idle) = if on_reserve {
            let within = settings.header_timeout.map_or(PROBE_HEADER_TIMEOUT, |t| t.min(PROBE_HEADER_TIMEOUT));
            (routers.reserve.clone(), Arc::clone(&reserve), Idle { header: Some(within), keep_alive: Some(within) })
        } else {
            let idle = Idle { header: settings.header_timeout, keep_alive: settings.idle_timeout };
            (routers.full.clone(), Arc::clone(&full), idle)
        };
        let body_limits = BodyLimits::of(&settings);
        let write_stall = settings.write_stall_timeout;
        let watcher = graceful.watcher();
        let held = on_reserve.then(|| Released { reserve: Arc::clone(&slots.reserve), ticket: slots.reserve.ticket() });
        let ticket = held.as_ref().map(|held| held.ticket);
        let task = tokio::spawn(async move {
            let _release = held;
            let activity = Arc::new(Activity::new());
            let watched = Arc::clone(&activity);
            let mut connection = Connection::new(tcp, peer, slot);
            connection.activity = Some(Arc::clone(&activity));
            connection.write_stall = write_stall;
            let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                let in_flight = activity.started();
                request.extensions_mut().insert(ConnectInfo(peer));
                let request = request.map(|body| match body_limits {
                    Some(limits) => Body::new(IdleBody::new(body, limits)),
                    None => Body::new(body),
                });
                let mut router = router.clone();
                async move {
                    let response = router.call(request).await.unwrap_or_else(|never| match never {});
                    Ok::<_, Infallible>(response.map(|body| Tracked { body, _in_flight: in_flight }))
                }
            });
            let served = builder.serve_connection_with_upgrades(TokioIo::new(connection), service).into_owned();
            let served = watcher.watch(served);
            let result = match (idle.header, idle.keep_alive) {
                (None, None) => served.await,
                _ => tokio::select! {
                    result = served => result,
                    () = idle_watchdog(&watched, idle) => Ok(()),
                },
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection closed with an error");
            }
        });
        // A task that ended before it is held leaves a stale entry; it gives way like any other once the oldest.
        if let Some(ticket) = ticket {
            slots.reserve.hold(ticket, task.abort_handle());
        }
    });
    tokio::select! {
        () = accept => {}
        () = stop => {}
    }
    graceful.shutdown().await;
    Ok(())
}

/// What the watchdog of one connection sees: the requests in flight, and since when there has been none.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// When the last request ended, in nanoseconds since `opened`.
    idle_since: AtomicU64,
    /// A response has been sent: the connection is kept alive for the next request.
    served: AtomicBool,
    /// Bytes arrived since `idle_since`: a request has begun.
    heard: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            served: AtomicBool::new(false),
            heard: AtomicBool::new(false),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A request whose head has arrived; it is in flight until its response's body is sent or dropped.
    fn started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(self))
    }
}

/// A request in flight (see [`Activity::started`]).
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        // The idle time starts before the count falls, so a watchdog that sees none in flight sees when.
        self.0.idle_since.store(self.0.now(), Ordering::Release);
        self.0.heard.store(false, Ordering::Release);
        self.0.served.store(true, Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How long a REST connection may go without a request in flight.
#[derive(Debug, Clone, Copy)]
struct Idle {
    /// With a request begun or none yet (HTTP_HEADER_TIMEOUT): half-sent heads and prefaces, silent connections.
    header: Option<Duration>,
    /// Between requests, nothing sent since the last response (HTTP_IDLE_TIMEOUT): keep-alives.
    keep_alive: Option<Duration>,
}

/// Completes once the connection has had no request in flight for longer than its [`Idle`] limit: from the
/// connection's start and after every response, a client must send a complete request head (or, in HTTP/2, open a
/// stream) within HTTP_HEADER_TIMEOUT of beginning one, and begin one within HTTP_IDLE_TIMEOUT. One timer per
/// connection, re-armed only when it fires, instead of one per request.
async fn idle_watchdog(activity: &Activity, idle: Idle) {
    // Woken at least this often to look again; a limit that is off never closes.
    let look = idle.header.into_iter().chain(idle.keep_alive).min().unwrap_or(Duration::from_secs(60));
    let mut sleep = std::pin::pin!(tokio::time::sleep(look));
    loop {
        sleep.as_mut().await;
        let now = tokio::time::Instant::now();
        let limit = if activity.served.load(Ordering::Acquire) && !activity.heard.load(Ordering::Acquire) {
            idle.keep_alive
        } else {
            idle.header
        };
        let next = match limit {
            Some(limit) if activity.in_flight.load(Ordering::Acquire) == 0 => {
                let since = activity.idle_since.load(Ordering::Acquire);
                let idle_for = Duration::from_nanos(activity.now().saturating_sub(since));
                match limit.checked_sub(idle_for) {
                    Some(left) if !left.is_zero() => now + left.min(look),
                    _ => return,
                }
            }
            _ => now + look,
        };
        sleep.as_mut().reset(next);
    }
}

/// A response body that keeps its request in flight until it is sent or dropped.
#[derive(Debug)]
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Takes a connection off the reserve when its task ends.
struct Released {
    reserve: Arc<Reserve>,
    ticket: u64,
}

impl Drop for Released {
    fn drop(&mut self) {
        self.reserve.release(self.ticket);
    }
}

/// The HTTP/2 settings of both ports: dead peers found by pings, streams per connection bounded.
fn http2_limits(builder: &mut auto::Builder<TokioExecutor>) {
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HTTP2_KEEPALIVE)
        .keep_alive_timeout(HTTP2_KEEPALIVE_TIMEOUT)
        .max_concurrent_streams(HTTP2_MAX_STREAMS);
}

/// The gRPC port's connections, admitted as the REST port's are (without a probe reserve: gRPC probes go to the
/// REST port) and handed over once their preface is in, for tonic to serve; the accepting stops with the stream.
pub fn grpc_incoming(
    listener: TcpListener,
    slots: Slots,
    settings: &ConnectionSettings,
) -> impl Stream<Item = io::Result<Connection>> + Send + 'static {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Connection>(64);
    let within = settings.header_timeout;
    let write_stall = settings.write_stall_timeout;
    let accepting = tokio::spawn(async move {
        accept_loop(listener, &slots, move |tcp, peer, slot| {
            let _ = tcp.set_nodelay(true);
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut connection = Connection::new(tcp, peer, slot);
                // h2 copies a DATA frame's payload into its write buffer only below 256 bytes on a vectored writer
                // (1 KiB otherwise), and sends a payload it did not copy before anything queued after it. A reply
                // of a few hundred bytes then took two writes, its trailers alone in the second: a system call more
                // for every call. Without vectored writes, a reply below 1 KiB (an upload URL, SigV4's included, or
                // a confirm) is one write; a larger payload costs one write more.
                connection.vectored = false;
                connection.write_stall = write_stall;
                if let Ok((prefix, end)) = read_preface(&mut connection.tcp, within).await {
                    (connection.prefix, connection.end) = (prefix, end);
                    let _ = sender.send(connection).await;
                }
            });
        })
        .await;
    });
    let stop_accepting = AbortOnDrop(accepting);
    futures_util::stream::unfold((receiver, stop_accepting), |(mut receiver, stop)| async move {
        receiver.recv().await.map(|connection| (Ok(connection), (receiver, stop)))
    })
}

/// Aborts the task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An admitted connection, as the server reads it: on the gRPC port its preface, already read, is read again
/// (by tonic); on the REST port the bytes that arrive tell the watchdog (see [`Activity`]). It holds its slot until
/// closed.
#[derive(Debug)]
pub struct Connection {
    /// The first bytes, already read; `start..end` of them are still to be read again.
    prefix: [u8; 24],
    start: usize,
    end: usize,
    tcp: TcpStream,
    info: TcpConnectInfo,
    /// Told when bytes arrive (REST port).
    activity: Option<Arc<Activity>>,
    /// Whether writers may hand it several buffers at once; see [`grpc_incoming`] for why gRPC's do not.
    vectored: bool,
    /// WRITE_STALL_TIMEOUT: how long a write may wait for the client to read.
    write_stall: Option<Duration>,
    /// Armed when a write has to wait; a write that goes through disarms it.
    write_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    write_waiting: bool,
    _slot: HeldSlot,
}

impl Connection {
    fn new(tcp: TcpStream, peer: SocketAddr, slot: HeldSlot) -> Self {
        let info = TcpConnectInfo { local_addr: tcp.local_addr().ok(), remote_addr: Some(peer) };
        let vectored = tcp.is_write_vectored();
        Self {
            prefix: [0; 24],
            start: 0,
            end: 0,
            tcp,
            info,
            activity: None,
            vectored,
            write_stall: None,
            write_timer: None,
            write_waiting: false,
            _slot: slot,
        }
    }

    /// What became of a write: one that waits for the client to read longer than WRITE_STALL_TIMEOUT fails, which
    /// closes the connection and drops the response it was sending (its file with it).
    fn stalled<T>(&mut self, cx: &mut Context<'_>, written: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        let Some(stall) = self.write_stall else { return written };
        if written.is_ready() {
            self.write_waiting = false;
            return written;
        }
        let deadline = tokio::time::Instant::now() + stall;
        let timer = self.write_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.write_waiting {
            self.write_waiting = true;
            timer.as_mut().reset(deadline);
        }
        ready!(timer.as_mut().poll(cx));
        metrics::counter!("draftstore_write_stalls_total").increment(1);
        Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, WriteStalled(stall))))
    }
}

/// The error a response ends with when its client stops reading.
#[derive(Debug, thiserror::Error)]
#[error("the client read nothing for {} s (WRITE_STALL_TIMEOUT)", .0.as_secs())]
pub struct WriteStalled(pub Duration);

impl tonic::transport::server::Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.start < self.end {
            let n = (self.end - self.start).min(buf.remaining());
            buf.put_slice(&self.prefix[self.start..self.start + n]);
            self.start += n;
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.tcp).poll_read(cx, buf))?;
        if buf.filled().len() > before
            && let Some(activity) = &self.activity
        {
            activity.heard.store(true, Ordering::Relaxed);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.tcp).poll_write(cx, buf);
        self.stalled(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs);
        self.stalled(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_the_open_file_limit() {
        assert_eq!(connection_cap(4096, Some(1_048_576)), 4096);
        assert_eq!(connection_cap(4096, None), 4096);
        assert_eq!(connection_cap(4096, Some(1024)), (1024 - 128 - 32) / 3);
        assert_eq!(connection_cap(0, Some(1024)), (1024 - 128 - 32) / 3);
        assert_eq!(connection_cap(10, Some(1024)), 10);
        assert_eq!(connection_cap(4096, Some(16)), 1, "a tiny limit still takes one connection");
    }

    #[test]
    fn running_out_of_descriptors_is_logged_at_most_every_ten_seconds() {
        let mut errors = AcceptErrors::default();
        let emfile = io::Error::from_raw_os_error(24);
        let start = Instant::now();
        assert_eq!(errors.record("http", &emfile, start), Some(0), "the first failure is logged");
        for ms in 1..100 {
            assert_eq!(errors.record("http", &emfile, start + Duration::from_millis(ms * 10)), None);
        }
        assert_eq!(errors.record("http", &emfile, start + ACCEPT_WARNING_EVERY), Some(99), "then with the count");
        assert_eq!(errors.record("http", &emfile, start + ACCEPT_WARNING_EVERY + Duration::from_secs(1)), None);
    }

    #[tokio::test]
    async fn a_preface_is_read_again_whole_and_anything_else_is_told_at_its_first_byte() {
        use tokio::io::AsyncWriteExt;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = TcpStream::connect(listener.local_addr().expect("address")).await.expect("connect");
        let (mut tcp, peer) = listener.accept().await.expect("accept");
        client.write_all(&H2_PREFACE[..10]).await.expect("write");
        client.write_all(&H2_PREFACE[10..]).await.expect("write");
        client.write_all(b"then frames").await.expect("write");
        let (prefix, end) = read_preface(&mut tcp, Some(Duration::from_secs(5))).await.expect("the preface");
        let mut connection = Connection::new(tcp, peer, Slots::new("test", 1, 0).admit().expect("a slot"));
        (connection.prefix, connection.end) = (prefix, end);
        let mut all = vec![0u8; 24 + 11];
        connection.read_exact(&mut all).await.expect("read");
        assert_eq!(&all[..24], H2_PREFACE);
        assert_eq!(&all[24..], b"then frames");

        let mut other = TcpStream::connect(listener.local_addr().expect("address")).await.expect("connect");
        let (mut tcp, _) = listener.accept().await.expect("accept");
        other.write_all(b"G").await.expect("write");
        let (prefix, end) = read_preface(&mut tcp, Some(Duration::from_secs(5))).await.expect("told at once");
        assert_eq!((&prefix[..end], end), (&b"G"[..], 1));
    }

    #[tokio::test]
    async fn a_half_sent_preface_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let client = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut tcp = TcpStream::connect(address).await.expect("connect");
            tcp.write_all(&H2_PREFACE[..12]).await.expect("write");
            tcp
        });
        let (mut tcp, _) = listener.accept().await.expect("accept");
        let _client = client.await.expect("joined");
        let error = read_preface(&mut tcp, Some(Duration::from_millis(200))).await.expect_err("times out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
