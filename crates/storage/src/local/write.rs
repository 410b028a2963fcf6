//! The write path of uploads. A body is read on its async task; its bytes go to disk in short blocking sections, at
//! most one at a time per upload, each taking whatever arrived while the previous one wrote. An upload that waits
//! for its client holds no thread: a client that trickles a byte at a time costs a socket, a file and the bytes it
//! sent, not one of the runtime's blocking threads (which every other file operation needs). Nor does it touch the
//! disk: bytes are written once at least [`WRITE_MIN`] of them have arrived (or the body has ended), so hundreds of
//! trickled bodies leave no dirty pages that every other writer's fsync would have to flush first (ext4 and XFS
//! write the data of a journal transaction's files before committing it).

use std::io::{self, IoSlice, Seek, Write};
use std::num::NonZeroU64;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::SystemTime;

use bytes::Bytes;
use futures_util::Stream;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::write_error;
use crate::error::BoxError;
use crate::{Error, ObjectKey, Result};

/// Most bytes gathered from a body while the previous section writes; beyond it the body waits, and so, through
/// the socket, does its client. Also the most an upload holds in memory besides the section in flight.
const WRITE_BATCH: usize = 4 << 20;
/// Bytes gathered before a section writes them, unless the body has ended.
const WRITE_MIN: usize = 256 << 10;
/// Bytes written after which their writeback to the disk is started (without waiting for it), so that the disk
/// works while the body still arrives and the final fsync has only the tail left.
const WRITEBACK_EVERY: u64 = 8 << 20;
/// Buffers one `writev` takes at most (Linux's `IOV_MAX`).
const MAX_IOVECS: usize = 1024;

/// Streams `body` into `file` from its current position, then writes `trailer` and fsyncs. Refuses a body above
/// `max_size`. Returns the size, the SHA-256 of the body (when `hash`) and the file's modification time. A body
/// that fails, or this future dropped, leaves the file unfinished; the caller removes it.
pub(super) async fn stream_into<S, E>(
    mut file: std::fs::File,
    key: &ObjectKey,
    max_size: Option<u64>,
    hash: bool,
    trailer: Vec<u8>,
    body: S,
) -> Result<(u64, Option<[u8; 32]>, SystemTime)>
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send,
    E: Into<BoxError>,
{
    let start = file.stream_position().map_err(|e| write_error(key, e))?;
    // The file and the hash go back and forth between this task and the sections; `None` while one writes.
    let mut sink = Some(Sink { file, digest: hash.then(Sha256::new), start, written: 0, flushed: 0 });
    let mut writing: Option<JoinHandle<io::Result<Sink>>> = None;
    let mut batch = Batch::default();
    let (mut size, mut ended) = (0u64, false);
    let mut body = std::pin::pin!(body);
    let read: Result<()> = loop {
        let event = std::future::poll_fn(|cx| next_event(cx, &mut writing, body.as_mut(), ended, &batch)).await;
        let waiting = match event {
            Event::Written(done) => {
                writing = None;
                match done {
                    Ok(done) => sink = Some(done),
                    Err(e) => break Err(write_error(key, e)),
                }
                false
            }
            Event::Chunk(Some(Err(e))) => break Err(Error::other("the upload was interrupted", e)),
            Event::Chunk(Some(Ok(chunk))) => {
                size += chunk.len() as u64;
                if let Some(limit) = max_size
                    && size > limit
                {
                    break Err(Error::TooLarge { limit });
                }
                batch.push(chunk);
                false
            }
            Event::Chunk(None) => {
                ended = true;
                false
            }
            Event::Waiting => true,
        };
        if ended && writing.is_none() {
            break Ok(());
        }
        // The writer is free: what arrived goes to disk once the batch is full, or once it holds WRITE_MIN and nothing
        // more is there yet.
        if writing.is_none() && batch.len >= WRITE_MIN && (waiting || batch.len >= WRITE_BATCH) {
            let Some(free) = sink.take() else { break Err(write_error(key, io::Error::other("no file to write"))) };
            let chunks = std::mem::take(&mut batch).chunks;
            writing = Some(tokio::task::spawn_blocking(move || free.write(&chunks)));
        }
    };
    if let Err(e) = read {
        // The section in flight ends before the caller removes or reuses the file (a part's file is shared by
        // every part of its upload: a late write must not land after a retry's).
        if let Some(section) = writing.take() {
            let _ = section.await;
        }
        return Err(e);
    }
    let Some(sink) = sink else { return Err(write_error(key, io::Error::other("no file to finish"))) };
    let finished = tokio::task::spawn_blocking(move || sink.finish(&batch.chunks, &trailer))
        .await
        .map_err(|e| Error::other("the upload writer stopped", e))?;
    let (digest, modified) = finished.map_err(|e| write_error(key, e))?;
    Ok((size, digest, modified))
}

/// What the upload task waits for next.
enum Event<T> {
    /// The section in flight has written its batch (and hands the file back).
    Written(io::Result<Sink>),
    /// A chunk of the body, or its end.
    Chunk(Option<T>),
    /// The body has nothing more for now, the writer is free and at least [`WRITE_MIN`] bytes wait to be written.
    Waiting,
}

fn next_event<S: Stream>(
    cx: &mut Context<'_>,
    writing: &mut Option<JoinHandle<io::Result<Sink>>>,
    body: Pin<&mut S>,
    ended: bool,
    batch: &Batch,
) -> Poll<Event<S::Item>> {
    if let Some(task) = writing
        && let Poll::Ready(done) = Pin::new(task).poll(cx)
    {
        return Poll::Ready(Event::Written(done.map_err(io::Error::other).and_then(|written| written)));
    }
    if !ended && batch.len < WRITE_BATCH {
        if let Poll::Ready(chunk) = body.poll_next(cx) {
            return Poll::Ready(Event::Chunk(chunk));
        }
        if writing.is_none() && batch.len >= WRITE_MIN {
            return Poll::Ready(Event::Waiting);
        }
    }
    Poll::Pending
}

/// Chunks of a body not yet written, kept as they arrived (written with one `writev`, never copied).
#[derive(Debug, Default)]
struct Batch {
    chunks: Vec<Bytes>,
    len: usize,
}

impl Batch {
    fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
    }
}

/// The file an upload is written to, with the hash of what was written: moved into each section and back.
#[derive(Debug)]
struct Sink {
    file: std::fs::File,
    digest: Option<Sha256>,
    /// Where this upload's bytes begin in the file.
    start: u64,
    /// Bytes written since `start`.
    written: u64,
    /// Bytes since `start` whose writeback has been started.
    flushed: u64,
}

impl Sink {
    /// Writes a batch (blocking), hashing it when asked.
    fn write(mut self, chunks: &[Bytes]) -> io::Result<Self> {
        if let Some(digest) = &mut self.digest {
            for chunk in chunks {
                digest.update(chunk);
            }
        }
        write_all(&mut self.file, chunks)?;
        self.written += chunks.iter().map(|chunk| chunk.len() as u64).sum::<u64>();
        if self.written - self.flushed >= WRITEBACK_EVERY {
            // Starts the writeback of the range (and lets the kernel drop its pages once clean): a hint, whose
            // failure costs only speed.
            let range = NonZeroU64::new(self.written - self.flushed);
            let _ = rustix::fs::fadvise(&self.file, self.start + self.flushed, range, rustix::fs::Advice::DontNeed);
            self.flushed = self.written;
        }
        Ok(self)
    }

    /// Writes the last batch and the trailer, then makes the file durable. Returns the SHA-256 of the data (when
    /// asked) and the file's modification time.
    fn finish(self, chunks: &[Bytes], trailer: &[u8]) -> io::Result<(Option<[u8; 32]>, SystemTime)> {
        let mut sink = self.write(chunks)?;
        sink.file.write_all(trailer)?;
        sink.file.sync_all()?;
        let modified = sink.file.metadata()?.modified()?;
        Ok((sink.digest.map(|d| d.finalize().into()), modified))
    }
}

/// Writes every chunk, in order, with as few `writev` calls as the kernel allows.
fn write_all(file: &mut std::fs::File, chunks: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|chunk| IoSlice::new(chunk)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let end = slices.len().min(MAX_IOVECS);
        match file.write_vectored(&slices[..end]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
