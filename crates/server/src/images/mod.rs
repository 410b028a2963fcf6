//! The image pipeline (issue 42): an image's bytes in; its upright size, a placeholder, its named variants and its
//! original stripped of metadata out. Decoding untrusted bytes is the attack surface, so every decode is checked
//! from the header first, held to strict limits (`decode`), run in a pool of IMAGE_WORKERS threads, and given
//! IMAGE_TIMEOUT.
//!
//! The crates, and why: `image` for its pure-Rust decoders behind one `Limits`; `jpeg-decoder` for its scaled IDCT,
//! which `image`'s JPEG decoder (zune-jpeg) lacks and which makes a thumbnail of a 12 MP photo decode a sixteenth
//! of its pixels; `fast_image_resize` for SIMD convolution; `webp` (libwebp) to encode lossy WebP, which `image`
//! cannot; `thumbhash` for the placeholder. No ImageMagick, no process started.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fast_image_resize::Resizer;
use tokio::sync::Semaphore;

mod decode;
mod exif;
mod metadata;
mod render;
mod settings;
mod stored;
#[cfg(test)]
mod tests;

pub use decode::{DecodeLimits, MAX_SIDE};
pub use settings::{Fit, Format, ImageSettings, MetadataPolicy, Variant, VariantName, Variants};
pub use stored::{IMAGES, ImageKeys, ImageRecord};

/// Why an image was not processed.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The bytes are not an image of a supported format, or do not decode (the confirm's 422 IMAGE_UNREADABLE).
    #[error("the image cannot be decoded: {0}")]
    Unreadable(String),
    /// The header announces more pixels than MAX_IMAGE_PIXELS, or a side longer than the decoders take.
    #[error("its header announces {width} × {height} pixels, more than images may have")]
    TooLarge { width: u32, height: u32 },
    /// Decoding and making the variants took longer than IMAGE_TIMEOUT; the worker is released when the decode
    /// ends.
    #[error("the image took longer than IMAGE_TIMEOUT ({}s) to process", .0.as_secs())]
    TimedOut(Duration),
    /// No worker came free within IMAGE_TIMEOUT: the pool is busy with other images.
    #[error("no image worker was free within IMAGE_TIMEOUT ({}s)", .0.as_secs())]
    Busy(Duration),
}

/// A worker of the pool, held while an image is read and processed.
#[derive(Debug)]
pub struct Worker(tokio::sync::OwnedSemaphorePermit);

/// The media types the pipeline decodes: what confirm processes, when the draft's bytes are of that type.
pub const DECODED_TYPES: [&str; 6] = ["image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp", "image/tiff"];

/// One variant, made.
#[derive(Debug, Clone)]
pub struct RenderedVariant {
    pub name: VariantName,
    /// The media type of `bytes`.
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    /// The encoded image, without metadata.
    pub bytes: Bytes,
}

/// What the pipeline made of one image.
#[derive(Debug, Clone)]
pub struct ProcessedImage {
    /// The media type the bytes were decoded as.
    pub content_type: &'static str,
    /// The size as shown: after the EXIF orientation.
    pub width: u32,
    pub height: u32,
    /// The ThumbHash of the image, base64.
    pub placeholder: String,
    /// Every declared variant, in the declared order.
    pub variants: Vec<RenderedVariant>,
    /// The original with its metadata stripped per IMAGE_METADATA, or `None` when that changes no byte.
    pub stripped: Option<Bytes>,
}

/// Makes what IMAGE_VARIANTS and IMAGE_METADATA ask of images, a few at a time, each within IMAGE_TIMEOUT.
#[derive(Debug, Clone)]
pub struct ImagePipeline {
    work: Arc<Work>,
    /// One permit per worker. The permit moves into the blocking task, so a decode that timed out keeps its slot
    /// until it really ends: the pool never runs more than IMAGE_WORKERS decodes.
    workers: Arc<Semaphore>,
    timeout: Duration,
}

/// What every image gets.
#[derive(Debug)]
struct Work {
    variants: Vec<Variant>,
    policy: MetadataPolicy,
    limits: DecodeLimits,
}

impl ImagePipeline {
    /// A pipeline for `settings`, for images of at most `max_pixels` pixels (MAX_IMAGE_PIXELS).
    pub fn new(settings: &ImageSettings, max_pixels: u64) -> Self {
        let work = Work {
            variants: settings.variants.0.clone(),
            policy: settings.metadata,
            limits: DecodeLimits::new(max_pixels),
        };
        Self {
            work: Arc::new(work),
            workers: Arc::new(Semaphore::new(settings.worker_count())),
            timeout: settings.timeout,
        }
    }

    /// Processes an image whose bytes were read whole (after the caller checked MAX_IMAGE_PIXELS against the
    /// header, so that a bomb is not even read): waits at most IMAGE_TIMEOUT for a worker, then gives the work at
    /// most IMAGE_TIMEOUT.
    pub async fn process(&self, bytes: Bytes) -> Result<ProcessedImage, ImageError> {
        let worker = self.worker().await?;
        self.process_on(worker, bytes).await
    }

    /// A worker of the pool, waited for at most IMAGE_TIMEOUT: taken before an image's bytes are read, so that the
    /// memory images take is bounded by IMAGE_WORKERS, not by the confirms in flight.
    pub async fn worker(&self) -> Result<Worker, ImageError> {
        let permit = tokio::time::timeout(self.timeout, Arc::clone(&self.workers).acquire_owned())
            .await
            .map_err(|_| ImageError::Busy(self.timeout))?
            .map_err(|_| ImageError::Busy(self.timeout))?;
        Ok(Worker(permit))
    }

    /// The largest image file read whole for the pipeline: an encoded image is smaller than its pixels, which the
    /// decoders may allocate at most [`DecodeLimits::max_alloc`] for.
    pub fn max_file_size(&self) -> u64 {
        self.work.limits.max_alloc
    }

    /// Processes an image on a worker taken with [`ImagePipeline::worker`], within IMAGE_TIMEOUT.
    pub async fn process_on(&self, worker: Worker, bytes: Bytes) -> Result<ProcessedImage, ImageError> {
        let permit = worker.0;
        let abandoned = Arc::new(AtomicBool::new(false));
        let job = {
            let (work, abandoned) = (Arc::clone(&self.work), Arc::clone(&abandoned));
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                work.process(&bytes, &abandoned)
            })
        };
        match tokio::time::timeout(self.timeout, job).await {
            Ok(Ok(result)) => result,
            // A decoder that panics on hostile bytes has found them unreadable.
            Ok(Err(failed)) => Err(ImageError::Unreadable(format!("the decoder failed: {failed}"))),
            Err(_) => {
                // The decode cannot be interrupted; the steps after it are skipped.
                abandoned.store(true, Ordering::Relaxed);
                Err(ImageError::TimedOut(self.timeout))
            }
        }
    }
}

impl Work {
    fn process(&self, bytes: &Bytes, abandoned: &AtomicBool) -> Result<ProcessedImage, ImageError> {
        // Nobody waits for the answer of abandoned work: this error only ends it early.
        let timed_out = || ImageError::TimedOut(Duration::ZERO);
        let mut plans = Vec::new();
        let decoded = decode::decode(bytes, &self.limits, |width, height| {
            plans = self
                .variants
                .iter()
                .map(|variant| render::Plan::new(variant.fit, variant.width, variant.height, width, height))
                .collect();
            let placeholder = render::Plan::placeholder(width, height);
            let least = plans.iter().chain([&placeholder]).map(render::Plan::ratio).fold(f64::INFINITY, f64::min);
            render::shrink_factor(least)
        })?;
        let mut resizer = Resizer::new();
        let mut variants = Vec::with_capacity(self.variants.len());
        for (variant, plan) in self.variants.iter().zip(&plans) {
            if abandoned.load(Ordering::Relaxed) {
                return Err(timed_out());
            }
            let resized = render::resize(&mut resizer, &decoded.image, decoded.width, plan)?;
            let encoded = render::encode(&resized, variant.format, variant.quality)?;
            variants.push(RenderedVariant {
                name: variant.name.clone(),
                content_type: variant.format.content_type(),
                width: resized.width(),
                height: resized.height(),
                bytes: Bytes::from(encoded),
            });
        }
        let small = render::resize(
            &mut resizer,
            &decoded.image,
            decoded.width,
            &render::Plan::placeholder(decoded.width, decoded.height),
        )?;
        let stripped = metadata::strip(decoded.format, bytes, self.policy).map(Bytes::from);
        Ok(ProcessedImage {
            content_type: decoded.format.to_mime_type(),
            width: decoded.width,
            height: decoded.height,
            placeholder: render::placeholder(&small),
            variants,
            stripped,
        })
    }
}
