//! Virus scanning with clamd: a draft's bytes streamed from the store to clamd's `INSTREAM` command, chunk by
//! chunk, before the draft is promoted. The only time a draft's bytes pass through DraftStore; memory stays bounded
//! by a chunk whatever the draft's size.
//!
//! clamd stops unpacking an archive at its limits (`MaxRecursion`, `MaxFiles`, `MaxFileSize`, `MaxScanSize`) and,
//! with its default `AlertExceedsMax no`, then answers `OK` for what it did not read: a file nested deeper than
//! `MaxRecursion` (17 by default) is passed unscanned. So before it trusts a clean verdict, DraftStore probes clamd
//! with an archive nested deeper than any such limit is set: a clamd that answers it `OK` would report a partly
//! scanned archive clean, and scans fail (503) until it is configured with `AlertExceedsMax yes`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clamav_client::tokio::{Socket, Tcp, TransportProtocol};
use draftstore_storage::{ByteChunks, Progress};
use futures_util::StreamExt;
use opentelemetry::trace::SpanKind;

use super::{CheckSettings, ScanOversize};
use crate::gateway::until_stalled;
use crate::telemetry;

/// Bytes sent to clamd in one `INSTREAM` chunk: the store's smaller chunks are gathered up to this size.
const CHUNK: usize = 256 << 10;

/// How deep the probe nests its archive: past clamd's `MaxRecursion` (17 by default) as it is set in practice.
const PROBE_DEPTH: usize = 64;

/// How long a passed probe holds: clamd may be restarted with another configuration.
const PROBE_EVERY: Duration = Duration::from_secs(600);

/// Where clamd listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    /// `host:port`.
    Tcp(String),
    /// A Unix socket's path.
    Unix(PathBuf),
}

impl ClamdAddress {
    /// `tcp://host:port` or `unix:/path/to/clamd.sock`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(address) = text.strip_prefix("tcp://") {
            let port = address.rsplit_once(':').and_then(|(host, port)| (!host.is_empty()).then_some(port));
            if port.and_then(|port| port.parse::<u16>().ok()).is_none_or(|port| port == 0) {
                return Err("expected tcp://host:port".to_owned());
            }
            return Ok(Self::Tcp(address.to_owned()));
        }
        if let Some(path) = text.strip_prefix("unix:")
            && path.starts_with('/')
        {
            return Ok(Self::Unix(path.into()));
        }
        Err("expected tcp://host:port or unix:/path/to/clamd.sock".to_owned())
    }
}

impl fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(address) => write!(f, "tcp://{address}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanVerdict {
    /// No signature matched; `engine` is clamd's version and signature database.
    Clean { engine: String },
    /// A signature matched.
    Infected { signature: String, engine: String },
}

/// Why a scan gave no verdict.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// clamd could not be reached, stalled or answered an error.
    #[error("{0}")]
    Scanner(String),
    /// Reading the draft from the store failed.
    #[error("reading the draft failed")]
    Store(#[source] draftstore_storage::Error),
}

/// Scans drafts with one clamd (CLAMD_ADDRESS).
#[derive(Debug, Clone)]
pub struct Scanner {
    address: ClamdAddress,
    timeout: Duration,
    max_size: u64,
    oversize: ScanOversize,
    /// When clamd last showed that it reports an archive beyond its limits (see the module's comment).
    limits_probed: std::sync::Arc<tokio::sync::Mutex<Option<Instant>>>,
}

impl Scanner {
    /// The scanner CLAMD_ADDRESS names, if it names one.
    pub fn from_settings(settings: &CheckSettings) -> Option<Self> {
        Some(Self {
            address: settings.clamd_address.clone()?,
            timeout: settings.scan_timeout,
            max_size: settings.scan_max_size,
            oversize: settings.scan_oversize,
            limits_probed: std::sync::Arc::default(),
        })
    }

    /// Largest draft scanned (SCAN_MAX_SIZE).
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// Whether drafts above SCAN_MAX_SIZE are promoted unscanned (SCAN_OVERSIZE=skip).
    pub fn skips_oversize(&self) -> bool {
        self.oversize == ScanOversize::Skip
    }

    /// Streams `chunks` to clamd and reads its verdict. Fails when clamd cannot be reached, answers an error
    /// (its `StreamMaxLength` exceeded included), or makes no progress for SCAN_TIMEOUT: taking no bytes, or not
    /// answering once it has them all.
    pub async fn scan(&self, chunks: ByteChunks) -> Result<ScanVerdict, ScanError> {
        let started = Instant::now();
        let scanned = AtomicU64::new(0);
        let failed = |result: &Result<ScanVerdict, ScanError>| result.as_ref().err().map(ToString::to_string);
        let exchange = self.exchange(chunks, &scanned);
        let result = telemetry::traced("scan", SpanKind::Client, Vec::new, failed, exchange).await;
        let outcome = match &result {
            Ok(ScanVerdict::Clean { .. }) => "clean",
            Ok(ScanVerdict::Infected { .. }) => "infected",
            Err(ScanError::Scanner(_)) => "unavailable",
            Err(ScanError::Store(_)) => "store_failed",
        };
        metrics::counter!("draftstore_scans_total", "outcome" => outcome).increment(1);
        metrics::histogram!("draftstore_scan_duration_seconds").record(started.elapsed().as_secs_f64());
        metrics::counter!("draftstore_scanned_bytes_total").increment(scanned.load(Ordering::Relaxed));
        result
    }

    async fn exchange(&self, chunks: ByteChunks, scanned: &AtomicU64) -> Result<ScanVerdict, ScanError> {
        let version = self.bounded("asking its version", None, self.version()).await?;
        self.probe_limits().await?;
        let progress = Progress::default();
        // Which side a stall is on: the store (a chunk awaited) or clamd (a chunk being sent, or the verdict).
        let awaiting_store = AtomicBool::new(false);
        let store_error = Mutex::new(None);
        // The store's chunks, gathered into chunks of about CHUNK bytes: fewer, larger writes to clamd.
        let input = futures_util::stream::unfold(Some(chunks), |chunks| async {
            let mut chunks = chunks?;
            let mut batch = bytes::BytesMut::new();
            loop {
                awaiting_store.store(true, Ordering::Relaxed);
                let item = chunks.next().await;
                awaiting_store.store(false, Ordering::Relaxed);
                match item {
                    Some(Ok(chunk)) => {
                        progress.step();
                        scanned.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        if batch.is_empty() && chunk.len() >= CHUNK {
                            return Some((Ok(chunk), Some(chunks)));
                        }
                        batch.extend_from_slice(&chunk);
                        if batch.len() >= CHUNK {
                            return Some((Ok(batch.freeze()), Some(chunks)));
                        }
                    }
                    Some(Err(e)) => {
                        *store_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(e);
                        return Some((Err(std::io::Error::other("the store's stream broke off")), None));
                    }
                    None if batch.is_empty() => return None,
                    None => return Some((Ok(batch.freeze()), None)),
                }
            }
        });
        let answer = match &self.address {
            ClamdAddress::Tcp(address) => {
                self.bounded("streaming the draft", Some(&progress), stream(input, Tcp { host_address: address })).await
            }
            ClamdAddress::Unix(path) => {
                self.bounded("streaming the draft", Some(&progress), stream(input, Socket { socket_path: path })).await
            }
        };
        if let Some(e) = store_error.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner) {
            return Err(ScanError::Store(e));
        }
        let answer = match answer {
            Err(ScanError::Scanner(_)) if awaiting_store.load(Ordering::Relaxed) => {
                return Err(ScanError::Store(draftstore_storage::Error::unavailable(
                    format!("the store sent nothing of the draft for {} s", self.timeout.as_secs()),
                    None,
                )));
            }
            other => other?,
        };
        verdict(&answer, version, scanned.load(Ordering::Relaxed))
    }

    /// Fails unless clamd reports an archive nested past its limits instead of answering it clean (at most once
    /// every [`PROBE_EVERY`] once it passed).
    async fn probe_limits(&self) -> Result<(), ScanError> {
        let mut probed = self.limits_probed.lock().await;
        if probed.is_some_and(|at| at.elapsed() < PROBE_EVERY) {
            return Ok(());
        }
        let archive = bytes::Bytes::from(nested_archive(PROBE_DEPTH, b"DraftStore's probe of clamd's limits"));
        let input = futures_util::stream::iter([Ok(archive)]);
        let doing = "probing its archive limits";
        let answer = match &self.address {
            ClamdAddress::Tcp(address) => self.bounded(doing, None, stream(input, Tcp { host_address: address })).await,
            ClamdAddress::Unix(path) => self.bounded(doing, None, stream(input, Socket { socket_path: path })).await,
        }?;
        let answer = text(&answer);
        match answer.strip_prefix("stream:").map(str::trim) {
            Some(result) if result.ends_with(" FOUND") => {
                *probed = Some(Instant::now());
                Ok(())
            }
            Some("OK") => Err(ScanError::Scanner(format!(
                "clamd at {} answers an archive nested {PROBE_DEPTH} deep (past its MaxRecursion) clean, so it would \
                 pass a partly scanned archive as clean: set `AlertExceedsMax yes` in its clamd.conf",
                self.address
            ))),
            _ => Err(ScanError::Scanner(format!("clamd at {} answered '{answer}' to an archive", self.address))),
        }
    }

    /// clamd's version and signature database, `ClamAV 1.4.2/27000/…`.
    async fn version(&self) -> std::io::Result<Vec<u8>> {
        match &self.address {
            ClamdAddress::Tcp(address) => clamav_client::tokio::get_version(Tcp { host_address: address }).await,
            ClamdAddress::Unix(path) => clamav_client::tokio::get_version(Socket { socket_path: path }).await,
        }
    }

    /// Runs one exchange with clamd, bounded by SCAN_TIMEOUT without progress.
    async fn bounded<T>(
        &self,
        doing: &str,
        progress: Option<&Progress>,
        exchange: impl Future<Output = std::io::Result<T>>,
    ) -> Result<T, ScanError> {
        let address = &self.address;
        match until_stalled(self.timeout, progress, exchange).await {
            Some(Ok(answer)) => Ok(answer),
            Some(Err(e)) => Err(ScanError::Scanner(format!("clamd at {address} failed while {doing}: {e}"))),
            None => Err(ScanError::Scanner(format!(
                "clamd at {address} made no progress for {} s (SCAN_TIMEOUT) while {doing}",
                self.timeout.as_secs()
            ))),
        }
    }
}

/// Sends a stream to clamd's `INSTREAM` and reads the answer.
async fn stream<S, T>(input: S, connection: T) -> std::io::Result<Vec<u8>>
where
    S: futures_util::Stream<Item = std::io::Result<bytes::Bytes>>,
    T: TransportProtocol,
{
    clamav_client::tokio::scan_stream(input, connection, Some(CHUNK)).await
}

/// Reads clamd's answer to `INSTREAM`: `stream: OK`, `stream: <signature> FOUND`, or `<message> ERROR`.
fn verdict(answer: &[u8], version: Vec<u8>, scanned: u64) -> Result<ScanVerdict, ScanError> {
    let engine = text(&version);
    let answer = text(answer);
    let result = answer.strip_prefix("stream:").map(str::trim);
    if let Some(signature) = result.and_then(|r| r.strip_suffix(" FOUND")) {
        return Ok(ScanVerdict::Infected { signature: signature.trim().to_owned(), engine });
    }
    if result == Some("OK") {
        return Ok(ScanVerdict::Clean { engine });
    }
    if answer.is_empty() {
        return Err(ScanError::Scanner(format!(
            "clamd closed the connection without a verdict after {scanned} bytes (is its StreamMaxLength below \
             the draft's size?)"
        )));
    }
    Err(ScanError::Scanner(format!("clamd answered '{answer}' after {scanned} bytes")))
}

/// A zip archive holding `data` nested `depth` deep: each level a stored (uncompressed) archive of the one below.
fn nested_archive(depth: usize, data: &[u8]) -> Vec<u8> {
    (0..depth).fold(data.to_vec(), |inner, level| zip_of(if level == 0 { "probe.txt" } else { "inner.zip" }, &inner))
}

/// A zip archive of one stored file: a local header and the data, one central directory entry, its end record.
fn zip_of(name: &str, data: &[u8]) -> Vec<u8> {
    let (crc, size, name_len) = (crc32(data), u32::try_from(data.len()).unwrap_or(u32::MAX), name.len() as u16);
    // Version 1.0, no flags, stored, 1980-01-01 00:00, the CRC and the sizes, the name's length, no extra field.
    let common = |out: &mut Vec<u8>| {
        for half in [10u16, 0, 0, 0, 0x21] {
            out.extend(half.to_le_bytes());
        }
        for word in [crc, size, size] {
            out.extend(word.to_le_bytes());
        }
        out.extend(name_len.to_le_bytes());
        out.extend(0u16.to_le_bytes());
    };
    let mut out = 0x0403_4b50u32.to_le_bytes().to_vec();
    common(&mut out);
    out.extend(name.as_bytes());
    out.extend(data);
    let directory = out.len() as u32;
    out.extend(0x0201_4b50u32.to_le_bytes());
    out.extend(20u16.to_le_bytes());
    common(&mut out);
    // No comment, disk 0, no attributes, the local header at offset 0.
    out.extend([0u8; 14]);
    out.extend(name.as_bytes());
    let directory_len = out.len() as u32 - directory;
    out.extend(0x0605_4b50u32.to_le_bytes());
    for half in [0u16, 0, 1, 1] {
        out.extend(half.to_le_bytes());
    }
    out.extend(directory_len.to_le_bytes());
    out.extend(directory.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// The CRC-32 of zip (reflected, polynomial 0x04C11DB7).
fn crc32(data: &[u8]) -> u32 {
    !data.iter().fold(!0u32, |crc, &byte| {
        (0..8).fold(crc ^ u32::from(byte), |crc, _| if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 })
    })
}

/// An answer of clamd's, without its terminator.
fn text(answer: &[u8]) -> String {
    String::from_utf8_lossy(answer).trim_end_matches(['\0', '\n']).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_tcp_or_unix() {
        assert_eq!(ClamdAddress::parse("tcp://127.0.0.1:3310"), Ok(ClamdAddress::Tcp("127.0.0.1:3310".to_owned())));
        assert_eq!(ClamdAddress::parse("tcp://clamav:3310").expect("host").to_string(), "tcp://clamav:3310");
        assert_eq!(ClamdAddress::parse("unix:/run/clamd.sock"), Ok(ClamdAddress::Unix("/run/clamd.sock".into())));
        for bad in ["127.0.0.1:3310", "tcp://host", "tcp://:3310", "tcp://h:0", "tcp://h:x", "unix:clamd.sock", ""] {
            assert!(ClamdAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_are_read() {
        let engine = || b"ClamAV 1.4.2/1/Thu Dec  3 08:00:00 2026\n".to_vec();
        let clean = verdict(b"stream: OK\0", engine(), 10).expect("verdict");
        assert_eq!(clean, ScanVerdict::Clean { engine: "ClamAV 1.4.2/1/Thu Dec  3 08:00:00 2026".to_owned() });
        let found = verdict(b"stream: Eicar-Test.UNOFFICIAL FOUND\0", engine(), 68).expect("verdict");
        assert!(matches!(found, ScanVerdict::Infected { signature, .. } if signature == "Eicar-Test.UNOFFICIAL"));
        let error = verdict(b"INSTREAM size limit exceeded. ERROR\0", engine(), 1 << 30).expect_err("error");
        assert!(error.to_string().contains("size limit exceeded"), "{error}");
        assert!(verdict(b"", engine(), 5).is_err());
    }

    #[test]
    fn the_probe_is_a_valid_zip_archive() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926, "the standard check value");
        let archive = zip_of("a.txt", b"hello");
        assert_eq!(&archive[..4], b"PK\x03\x04");
        assert_eq!(&archive[30..35], b"a.txt");
        assert_eq!(&archive[35..40], b"hello");
        assert_eq!(&archive[archive.len() - 22..archive.len() - 18], b"PK\x05\x06");
        assert!(nested_archive(PROBE_DEPTH, b"x").len() < 64 << 10, "small enough to send before every first scan");
    }
}
