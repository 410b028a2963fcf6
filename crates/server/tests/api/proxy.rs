//! A TCP proxy that counts the bytes clients send through it and can slow them down: tests put it before a
//! store (or the local backend's signed URLs) to see how many bytes an upload really sent.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// A running proxy; stops accepting when dropped.
pub struct Proxy {
    pub address: SocketAddr,
    sent: Arc<AtomicU64>,
    epoch: Arc<AtomicU64>,
    rate: Arc<AtomicU64>,
    /// Bytes sent back to clients, and their limit per second.
    received: Arc<AtomicU64>,
    download_rate: Arc<AtomicU64>,
    listener: Option<TcpListener>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    /// Binds a loopback port; nothing is forwarded until [`Proxy::forward_to`].
    pub async fn bind() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        Proxy {
            address: listener.local_addr().expect("address"),
            sent: Arc::default(),
            epoch: Arc::default(),
            rate: Arc::default(),
            received: Arc::default(),
            download_rate: Arc::default(),
            listener: Some(listener),
            task: None,
        }
    }

    /// `http://<address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Starts forwarding every connection to `target` (`host:port`).
    pub fn forward_to(&mut self, target: String) {
        let listener = self.listener.take().expect("forwarding starts once");
        let (sent, epoch, rate) = (Arc::clone(&self.sent), Arc::clone(&self.epoch), Arc::clone(&self.rate));
        let (received, download_rate) = (Arc::clone(&self.received), Arc::clone(&self.download_rate));
        self.task = Some(tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(upstream) = TcpStream::connect(&target).await else { continue };
                let counter = Counter {
                    sent: Arc::clone(&sent),
                    received: Arc::clone(&received),
                    epoch: Arc::clone(&epoch),
                    born: epoch.load(Ordering::SeqCst),
                };
                let rates = (Arc::clone(&rate), Arc::clone(&download_rate));
                tokio::spawn(pipe(client, upstream, counter, rates));
            }
        }));
    }

    /// Bytes clients sent through the proxy (request lines, headers and bodies) on connections opened since the
    /// last [`Proxy::reset`].
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Starts counting afresh: what older connections still send (a killed client's bytes draining from the
    /// kernel's buffers) is no longer counted.
    pub fn reset(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.sent.store(0, Ordering::SeqCst);
        self.received.store(0, Ordering::SeqCst);
    }

    /// Bytes sent back to clients (status lines, headers and bodies) since the last [`Proxy::reset`].
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }

    /// Limits what clients receive to `bytes_per_second` on each connection; 0 lifts the limit.
    pub fn limit_downloads(&self, bytes_per_second: u64) {
        self.download_rate.store(bytes_per_second, Ordering::Relaxed);
    }

    /// Limits what clients send to `bytes_per_second` on each connection; 0 lifts the limit.
    pub fn limit(&self, bytes_per_second: u64) {
        self.rate.store(bytes_per_second, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl Counter {
    /// Whether the connection was opened since the last reset.
    fn current(&self) -> bool {
        self.epoch.load(Ordering::SeqCst) == self.born
    }
}

/// Counts a connection's bytes while its epoch is the current one.
struct Counter {
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    epoch: Arc<AtomicU64>,
    born: u64,
}

async fn pipe(
    client: TcpStream,
    upstream: TcpStream,
    counter: Counter,
    (rate, download_rate): (Arc<AtomicU64>, Arc<AtomicU64>),
) {
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    tokio::join!(
        pump(client_read, upstream_write, &counter, &counter.sent, &rate),
        pump(upstream_read, client_write, &counter, &counter.received, &download_rate),
    );
}

/// Copies one direction of a connection until it ends, adding its bytes to `total` while the connection is of the
/// current epoch, at most `rate` bytes a second (0: no limit).
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, counter: &Counter, total: &AtomicU64, rate: &AtomicU64) {
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if counter.current() {
            total.fetch_add(n as u64, Ordering::SeqCst);
        }
        let limit = rate.load(Ordering::Relaxed);
        if limit > 0 {
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / limit as f64)).await;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
}
