//! File transfers through presigned URLs: uploads (one PUT, or parallel parts for large files, resumable across
//! runs) and streamed downloads. File bytes go straight to the store; DraftStore only signs.
//!
//! Resuming: a multipart upload records its upload id and, for each part the store accepted, the part's ETag and
//! SHA-256 in a small JSON file under the resume folder. Run again on the same file and name, it asks the server
//! which parts the store holds and sends only the others, hashing every part again first: a part whose bytes
//! changed since it was sent (the file was edited between runs) is sent again, so the object always matches the
//! file as it is now. Each part's SHA-256 is signed into its URL, so the store also refuses a part that changes
//! while it is being sent.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use base64::Engine;
use futures_util::{StreamExt, TryStreamExt};
use reqwest::header::{CONTENT_LENGTH, ETAG};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use crate::api::{self, ErrorType, Stage, bare_etag};
use crate::client::{Client, Error, Result, signed_headers, store_message};

/// Files up to this size go in one PUT by default; larger ones in parts.
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Parts in flight at once by default.
pub const DEFAULT_PARALLEL: usize = 8;

const READ_BUFFER: usize = 256 * 1024;
/// Bytes per chunk of an upload's body.
const READ_CHUNK: u64 = 512 * 1024;

/// Told how a transfer advances; the command line draws bars with it. Calls come from several tasks at once.
pub trait Progress: Send + Sync {
    /// The transfer has this many bytes in all.
    fn start(&self, _total: u64) {}
    /// `bytes` more went to (or came from) the store.
    fn advance(&self, _bytes: u64) {}
    /// `bytes` already counted will be sent again (a part is retried).
    fn rewind(&self, _bytes: u64) {}
    /// `bytes` are in the store from an earlier run and are not sent again.
    fn resumed(&self, _bytes: u64) {}
    /// Something the user should know (a part sent again, an upload started over).
    fn notice(&self, _message: &str) {}
}

/// Progress nobody watches.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// How to upload a file.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// The draft's name.
    pub object_name: String,
    /// Its media type, signed into the URLs.
    pub content_type: String,
    /// Files larger than this go in parts.
    pub multipart_threshold: u64,
    /// Part size to ask for; the server's `MULTIPART_PART_SIZE` when `None`.
    pub part_size: Option<u64>,
    /// Parts in flight at once.
    pub parallel: usize,
    /// Where interrupted multipart uploads are recorded so that a later run resumes them; `None` never resumes.
    pub resume_dir: Option<PathBuf>,
}

impl UploadOptions {
    /// Defaults for a draft of this name and type.
    pub fn new(object_name: impl Into<String>, content_type: impl Into<String>) -> Self {
        Self {
            object_name: object_name.into(),
            content_type: content_type.into(),
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: None,
            parallel: DEFAULT_PARALLEL,
            resume_dir: None,
        }
    }
}

/// What an upload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadReport {
    pub object_name: String,
    pub size: u64,
    /// Parts of a multipart upload; 0 for a single PUT.
    pub parts: u32,
    /// Parts found in the store from an earlier run and not sent again.
    pub parts_resumed: u32,
    /// Bytes sent to the store by this run (retries included).
    pub bytes_sent: u64,
}

/// Uploads the file at `path` as a draft: one PUT with its size and SHA-256 signed in, or, above the threshold, a
/// multipart upload of parts sent `parallel` at a time, each with its SHA-256 signed in. Transient failures of a
/// part (no answer, 5xx, 429) are retried with backoff.
pub async fn upload_file(
    client: &Client,
    path: &Path,
    options: &UploadOptions,
    progress: &dyn Progress,
) -> Result<UploadReport> {
    let metadata = tokio::fs::metadata(path).await.map_err(Error::io(format!("cannot read {}", path.display())))?;
    if !metadata.is_file() {
        return Err(Error::Invalid(format!("{} is not a file", path.display())));
    }
    let size = metadata.len();
    progress.start(size);
    if size <= options.multipart_threshold {
        upload_single(client, path, size, options, progress).await
    } else {
        upload_multipart(client, path, size, options, progress).await
    }
}

async fn upload_single(
    client: &Client,
    path: &Path,
    size: u64,
    options: &UploadOptions,
    progress: &dyn Progress,
) -> Result<UploadReport> {
    let checksum = sha256_range(path, 0, size).await?;
    let sent = AtomicU64::new(0);
    let attempt = || async {
        let ticket = client
            .upload_url(&api::UploadUrlRequest {
                object_name: options.object_name.clone(),
                content_type: Some(options.content_type.clone()),
                content_length: Some(size),
                checksum_sha256: Some(checksum.clone()),
            })
            .await?;
        put_range(client, &ticket.method, &ticket.upload_url, &ticket.headers, path, 0, size, progress, &sent).await
    };
    attempt.retry(backoff()).when(Error::is_transient).await?;
    Ok(UploadReport {
        object_name: options.object_name.clone(),
        size,
        parts: 0,
        parts_resumed: 0,
        bytes_sent: sent.into_inner(),
    })
}

/// A multipart upload as recorded for resuming.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ResumeState {
    object_name: String,
    path: PathBuf,
    size: u64,
    upload_id: String,
    part_size: u64,
    /// Parts the store accepted: number → ETag and SHA-256 of the bytes sent.
    parts: BTreeMap<u32, SentPart>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
struct SentPart {
    etag: String,
    sha256: String,
}

/// Where the state of one upload is kept: named by a hash of the server, the object name and the file.
fn resume_file(dir: &Path, client: &Client, object_name: &str, path: &Path) -> PathBuf {
    let mut hash = Sha256::new();
    for field in [client.base_url().as_str().as_bytes(), object_name.as_bytes(), path.as_os_str().as_encoded_bytes()] {
        hash.update((field.len() as u64).to_le_bytes());
        hash.update(field);
    }
    dir.join(format!("{}.json", &hex(&hash.finalize())[..32]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn load_state(file: &Path) -> Option<ResumeState> {
    let bytes = std::fs::read(file).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes the state beside its final name, then renames: a crash leaves the old state or the new, never half.
fn save_state(file: &Path, state: &ResumeState) -> Result<()> {
    let context = || format!("cannot record the upload's progress in {}", file.display());
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(Error::io(context()))?;
    }
    let staging = file.with_extension("json.tmp");
    let bytes = serde_json::to_vec(state).map_err(|e| Error::Invalid(e.to_string()))?;
    std::fs::write(&staging, bytes).map_err(Error::io(context()))?;
    std::fs::rename(&staging, file).map_err(Error::io(context()))
}

async fn upload_multipart(
    client: &Client,
    path: &Path,
    size: u64,
    options: &UploadOptions,
    progress: &dyn Progress,
) -> Result<UploadReport> {
    let absolute = std::path::absolute(path).map_err(Error::io(format!("cannot resolve {}", path.display())))?;
    let state_file = options.resume_dir.as_deref().map(|dir| resume_file(dir, client, &options.object_name, &absolute));

    // An earlier run's upload, if the store still has it: the parts it holds, by number.
    let mut stored = BTreeMap::new();
    let mut state = None;
    if let Some(earlier) = state_file.as_deref().and_then(load_state) {
        let fits = earlier.object_name == options.object_name && earlier.path == absolute && earlier.size == size;
        let upload =
            api::UploadRequest { object_name: earlier.object_name.clone(), upload_id: earlier.upload_id.clone() };
        if !fits {
            progress.notice("the file changed size since the interrupted upload; starting over");
            let _ = client.abort_multipart(&upload).await;
        } else {
            match client.list_parts(&upload).await {
                Ok(listed) => {
                    stored = listed.parts.into_iter().map(|p| (p.part_number, (p.size, p.etag))).collect();
                    state = Some(earlier);
                }
                Err(e) if e.error_type() == Some(ErrorType::UploadNotFound) => {
                    progress.notice("the interrupted upload is no longer in the store; starting over");
                }
                Err(e) => return Err(e),
            }
        }
    }
    let state = match state {
        Some(state) => state,
        None => {
            let started = client
                .start_multipart(&api::StartMultipartRequest {
                    object_name: options.object_name.clone(),
                    content_type: Some(options.content_type.clone()),
                    content_length: Some(size),
                    checksum_sha256: None,
                    part_size: options.part_size,
                })
                .await?;
            let state = ResumeState {
                object_name: options.object_name.clone(),
                path: absolute.clone(),
                size,
                upload_id: started.upload_id,
                part_size: started.part_size,
                parts: BTreeMap::new(),
            };
            if let Some(file) = &state_file {
                save_state(file, &state)?;
            }
            state
        }
    };
    let part_size = state.part_size.max(1);
    let part_count = u32::try_from(size.div_ceil(part_size))
        .map_err(|_| Error::Invalid(format!("{} needs too many parts", path.display())))?;
    let upload_id = state.upload_id.clone();
    let state = Mutex::new(state);
    let sent = AtomicU64::new(0);
    let resumed = AtomicU64::new(0);

    let send_part = |number: u32| {
        let (state, stored, sent, resumed, state_file, upload_id) =
            (&state, &stored, &sent, &resumed, &state_file, &upload_id);
        async move {
            let offset = u64::from(number - 1) * part_size;
            let length = part_size.min(size - offset);
            let checksum = sha256_range(path, offset, length).await?;
            let recorded = state.lock().await.parts.get(&number).cloned();
            if let Some(recorded) = &recorded {
                let in_store = stored.get(&number).is_some_and(|(stored_size, etag): &(u64, String)| {
                    *stored_size == length && bare_etag(etag) == bare_etag(&recorded.etag)
                });
                if in_store && recorded.sha256 == checksum {
                    progress.resumed(length);
                    resumed.fetch_add(1, Ordering::Relaxed);
                    return Ok(api::PartToComplete { part_number: number.into(), etag: recorded.etag.clone() });
                }
                if in_store {
                    progress.notice(&format!("part {number} changed since it was sent; sending it again"));
                }
            }
            let attempt = || async {
                let signed = client
                    .sign_parts(&api::SignPartsRequest {
                        object_name: options.object_name.clone(),
                        upload_id: upload_id.clone(),
                        parts: vec![api::PartToSign {
                            part_number: number.into(),
                            checksum_sha256: Some(checksum.clone()),
                        }],
                    })
                    .await?;
                let part = signed.parts.into_iter().next().ok_or_else(|| Error::Unexpected {
                    status: 200,
                    url: client.base_url().to_string(),
                    body: "sign-parts answered no part".to_owned(),
                })?;
                put_range(client, &part.method, &part.upload_url, &part.headers, path, offset, length, progress, sent)
                    .await
            };
            let etag = attempt.retry(backoff()).when(Error::is_transient).await?.ok_or_else(|| Error::Store {
                operation: "part upload",
                status: 200,
                message: "the store answered no ETag (is ETag an exposed header?)".to_owned(),
            })?;
            let mut state = state.lock().await;
            state.parts.insert(number, SentPart { etag: etag.clone(), sha256: checksum });
            if let Some(file) = state_file {
                save_state(file, &state)?;
            }
            Ok::<_, Error>(api::PartToComplete { part_number: number.into(), etag })
        }
    };
    let mut parts: Vec<api::PartToComplete> = futures_util::stream::iter(1..=part_count)
        .map(send_part)
        .buffer_unordered(options.parallel.max(1))
        .try_collect()
        .await?;
    parts.sort_by_key(|p| p.part_number);
    let completion =
        api::CompleteMultipartRequest { object_name: options.object_name.clone(), upload_id: upload_id.clone(), parts };
    (|| client.complete_multipart(&completion)).retry(backoff()).when(Error::is_transient).await?;
    if let Some(file) = &state_file {
        let _ = std::fs::remove_file(file);
    }
    Ok(UploadReport {
        object_name: options.object_name.clone(),
        size,
        parts: part_count,
        parts_resumed: u32::try_from(resumed.into_inner()).unwrap_or(u32::MAX),
        bytes_sent: sent.into_inner(),
    })
}

fn backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(4)
        .with_jitter()
}

/// A reader of `length` bytes of the file from `offset`.
fn open_range(path: &Path, offset: u64, length: u64) -> std::io::Result<std::io::Take<std::fs::File>> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    Ok(file.take(length))
}

/// Base64 SHA-256 of `length` bytes of the file from `offset`, read off the async runtime.
async fn sha256_range(path: &Path, offset: u64, length: u64) -> Result<String> {
    let owned = path.to_owned();
    let digest = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
        let mut reader = open_range(&owned, offset, length)?;
        let mut hash = Sha256::new();
        let mut buffer = vec![0; READ_BUFFER * 4];
        let mut read = 0;
        loop {
            let n = reader.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hash.update(&buffer[..n]);
            read += n as u64;
        }
        if read != length {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the file got shorter while read"));
        }
        Ok(hash.finalize())
    })
    .await
    .map_err(|e| Error::Invalid(format!("hashing stopped: {e}")))?
    .map_err(Error::io(format!("cannot read {}", path.display())))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(digest))
}

/// PUTs `length` bytes of the file from `offset` to a presigned URL, streaming from disk. Returns the ETag.
#[allow(clippy::too_many_arguments)]
async fn put_range(
    client: &Client,
    method: &str,
    url: &str,
    headers: &BTreeMap<String, String>,
    path: &Path,
    offset: u64,
    length: u64,
    progress: &dyn Progress,
    sent: &AtomicU64,
) -> Result<Option<String>> {
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| Error::Invalid(format!("the server signed an unknown method {method:?}")))?;
    let mut headers = signed_headers(headers)?;
    headers.insert(CONTENT_LENGTH, length.into());
    // What this attempt counted, so that a failed attempt can take it back.
    let counted = Arc::new(AtomicU64::new(0));
    let body = {
        let counted = Arc::clone(&counted);
        // The progress callbacks borrow from the caller; the body must be 'static, so it counts into an atomic
        // that the caller reports from below.
        reqwest::Body::wrap_stream(file_chunks(path.to_owned(), offset, length).inspect_ok(move |chunk| {
            counted.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }))
    };
    let request = client.http().request(method, url).headers(headers).body(body).send();
    let response = report_while(request, &counted, progress).await;
    let done = counted.load(Ordering::Relaxed);
    sent.fetch_add(done, Ordering::Relaxed);
    let response = match response {
        Ok(response) => response,
        Err(source) => {
            progress.rewind(done);
            return Err(Error::Transport { url: strip_query(url), source });
        }
    };
    let status = response.status();
    if !status.is_success() {
        progress.rewind(done);
        let body = response.bytes().await.unwrap_or_default();
        return Err(Error::Store { operation: "upload", status: status.as_u16(), message: store_message(&body) });
    }
    Ok(response.headers().get(ETAG).and_then(|v| v.to_str().ok()).map(str::to_owned))
}

/// `length` bytes of the file from `offset`, read in large chunks by a blocking thread a few chunks ahead of the
/// sender (so memory stays bounded): cheaper than an async file, which hops to a blocking thread for every read.
fn file_chunks(
    path: PathBuf,
    offset: u64,
    length: u64,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let mut reader = match open_range(&path, offset, length) {
            Ok(reader) => reader,
            Err(e) => {
                let _ = sender.blocking_send(Err(e));
                return;
            }
        };
        let mut left = length;
        while left > 0 {
            let mut chunk = vec![0; READ_CHUNK.min(left) as usize];
            let result = reader.read_exact(&mut chunk).map(|()| chunk);
            let failed = result.is_err();
            left -= if failed { left } else { READ_CHUNK.min(left) };
            // The receiver is gone when the request ended early; stop reading then.
            if sender.blocking_send(result).is_err() || failed {
                return;
            }
        }
    });
    futures_util::stream::unfold(
        receiver,
        |mut receiver| async move { receiver.recv().await.map(|item| (item, receiver)) },
    )
}

/// Awaits `future`, reporting the bytes counted so far every 100 ms and once at the end.
async fn report_while<T>(
    future: impl std::future::Future<Output = T>,
    counted: &AtomicU64,
    progress: &dyn Progress,
) -> T {
    let mut reported = 0;
    let mut report = || {
        let now = counted.load(Ordering::Relaxed);
        progress.advance(now - reported);
        reported = now;
    };
    let mut future = std::pin::pin!(future);
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            output = &mut future => {
                report();
                return output;
            }
            _ = ticks.tick() => report(),
        }
    }
}

/// A presigned URL without its signature, for messages.
fn strip_query(url: &str) -> String {
    url.split('?').next().unwrap_or(url).to_owned()
}

/// Writes a response body to `out`, reporting progress; returns the bytes written.
async fn copy_body<B: AsRef<[u8]>>(
    mut body: impl futures_util::Stream<Item = reqwest::Result<B>> + Unpin,
    out: &mut (impl tokio::io::AsyncWrite + Unpin),
    url: &str,
    progress: &dyn Progress,
    context: &str,
) -> Result<u64> {
    let mut size = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| Error::Transport { url: url.to_owned(), source })?;
        let chunk = chunk.as_ref();
        out.write_all(chunk).await.map_err(Error::io(context))?;
        size += chunk.len() as u64;
        progress.advance(chunk.len() as u64);
    }
    Ok(size)
}

/// Where a download goes.
#[derive(Debug, Clone)]
pub enum Destination {
    /// A file, written beside its final name and renamed into place once complete.
    File(PathBuf),
    /// Standard output.
    Stdout,
}

/// Which bytes of an object a download reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Which bucket to read; `None`: the draft when one exists, else the confirmed object.
    pub stage: Option<Stage>,
    /// One of a confirmed image's variants (IMAGE_VARIANTS) instead of the object itself; the server answers
    /// `VARIANT_NOT_FOUND` when the object has none of that name, and refuses it with `Stage::Draft`.
    pub variant: Option<String>,
}

/// What a download did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadReport {
    pub object_name: String,
    pub stage: Stage,
    /// The variant read, when one was asked for.
    pub variant: Option<String>,
    pub size: u64,
}

/// Attempts at a download whose connection breaks off, each resuming where the last one stopped.
const DOWNLOAD_ATTEMPTS: usize = 5;

/// Downloads an object (the draft when one exists, else the confirmed object, unless `options.stage` says which),
/// or one of its image variants (`options.variant`).
///
/// A file is written beside its final name (`.<name>.draftstore-partial`, its ETag beside it) and renamed into
/// place once whole. A transfer cut off (the connection broke, the process was killed) resumes from what the
/// partial file holds, with a `Range` request bound by `If-Range` to the same version of the object: when the
/// object changed meanwhile, the store answers the whole object and the download starts over.
pub async fn download(
    client: &Client,
    object_name: &str,
    options: &DownloadOptions,
    destination: &Destination,
    progress: &dyn Progress,
) -> Result<DownloadReport> {
    let request = api::DownloadUrlRequest {
        object_name: object_name.to_owned(),
        stage: options.stage,
        variant: options.variant.clone(),
        ..Default::default()
    };
    let ticket = client.download_url(&request).await?;
    let url = strip_query(&ticket.download_url);
    let size = match destination {
        Destination::Stdout => {
            let response = get(client, &ticket.download_url, None).await?;
            if let Some(length) = response.content_length() {
                progress.start(length);
            }
            let mut out = tokio::io::stdout();
            let context = "cannot write to standard output";
            let size = copy_body(response.bytes_stream(), &mut out, &url, progress, context).await?;
            out.flush().await.map_err(Error::io(context))?;
            size
        }
        Destination::File(path) => download_file(client, &ticket.download_url, path, progress).await?,
    };
    Ok(DownloadReport { object_name: ticket.object_name, stage: ticket.stage, variant: options.variant.clone(), size })
}

/// Sends a GET to a signed URL, from byte `from` of the version `etag` when resuming; a store's refusal is an
/// error.
async fn get(client: &Client, url: &str, resume: Option<(u64, &str)>) -> Result<reqwest::Response> {
    let mut request = client.http().get(url);
    if let Some((from, etag)) = resume {
        request =
            request.header(reqwest::header::RANGE, format!("bytes={from}-")).header(reqwest::header::IF_RANGE, etag);
    }
    let response = request.send().await.map_err(|source| Error::Transport { url: strip_query(url), source })?;
    let status = response.status();
    if !status.is_success() && status != reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        let body = response.bytes().await.unwrap_or_default();
        return Err(Error::Store { operation: "download", status: status.as_u16(), message: store_message(&body) });
    }
    Ok(response)
}

/// Downloads into a partial file beside `path`, resuming what an earlier attempt left, then renames it into place.
async fn download_file(client: &Client, url: &str, path: &Path, progress: &dyn Progress) -> Result<u64> {
    let context = format!("cannot write {}", path.display());
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let partial = path.with_file_name(format!(".{file_name}.draftstore-partial"));
    let etag_file = path.with_file_name(format!(".{file_name}.draftstore-partial.etag"));
    let mut attempt = 0;
    loop {
        attempt += 1;
        let have = tokio::fs::metadata(&partial).await.map(|m| m.len()).unwrap_or(0);
        let etag = tokio::fs::read_to_string(&etag_file).await.ok().filter(|e| !e.is_empty());
        let resume = etag.as_deref().filter(|_| have > 0).map(|etag| (have, etag));
        let response = get(client, url, resume).await?;
        let status = response.status();
        let answered_etag = response.headers().get(ETAG).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        if status == reqwest::StatusCode::PARTIAL_CONTENT && etag.as_deref() != Some(answered_etag.as_str()) {
            // A store that ignores If-Range answered a range of another version: start over.
            let _ = tokio::fs::remove_file(&partial).await;
            continue;
        }
        let (mut file, from) = if status == reqwest::StatusCode::PARTIAL_CONTENT {
            let file =
                tokio::fs::OpenOptions::new().append(true).open(&partial).await.map_err(Error::io(context.clone()))?;
            (file, have)
        } else if status == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
            // The partial file is no start of this object: start over.
            let _ = tokio::fs::remove_file(&partial).await;
            continue;
        } else {
            // The whole object: a first attempt, or the object changed since the partial file was written.
            tokio::fs::write(&etag_file, &answered_etag).await.map_err(Error::io(context.clone()))?;
            let file = tokio::fs::File::create(&partial).await.map_err(Error::io(context.clone()))?;
            (file, 0)
        };
        let total = match status {
            reqwest::StatusCode::PARTIAL_CONTENT => content_range_total(&response).unwrap_or(from),
            _ => response.content_length().unwrap_or_default(),
        };
        progress.start(total);
        progress.advance(from);
        let url_shown = strip_query(url);
        let copied = copy_body(response.bytes_stream(), &mut file, &url_shown, progress, &context).await;
        file.sync_all().await.map_err(Error::io(context.clone()))?;
        drop(file);
        match copied {
            Ok(_) => {}
            Err(Error::Transport { .. }) if attempt < DOWNLOAD_ATTEMPTS => continue,
            Err(e) => return Err(e),
        }
        let size = tokio::fs::metadata(&partial).await.map_err(Error::io(context.clone()))?.len();
        tokio::fs::rename(&partial, path).await.map_err(Error::io(context.clone()))?;
        let _ = tokio::fs::remove_file(&etag_file).await;
        return Ok(size);
    }
}

/// The whole object's size from a `Content-Range: bytes a-b/size` answer.
fn content_range_total(response: &reqwest::Response) -> Option<u64> {
    let range = response.headers().get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    range.rsplit_once('/')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_files_differ_by_server_name_and_file() {
        let dir = Path::new("state");
        let a = Client::new("http://a.test", None).expect("valid");
        let b = Client::new("http://b.test", None).expect("valid");
        let one = resume_file(dir, &a, "x.bin", Path::new("/data/x.bin"));
        assert_eq!(one, resume_file(dir, &a, "x.bin", Path::new("/data/x.bin")));
        assert_ne!(one, resume_file(dir, &b, "x.bin", Path::new("/data/x.bin")));
        assert_ne!(one, resume_file(dir, &a, "y.bin", Path::new("/data/x.bin")));
        assert_ne!(one, resume_file(dir, &a, "x.bin", Path::new("/data/y.bin")));
    }

    #[tokio::test]
    async fn ranges_hash_to_the_sha256_of_their_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello world").expect("write");
        let whole = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"world"));
        assert_eq!(sha256_range(&path, 6, 5).await.expect("hash"), whole);
        assert!(sha256_range(&path, 6, 6).await.is_err(), "a range past the end is an error");
    }
}
