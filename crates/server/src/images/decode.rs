//! Decoding of untrusted bytes: the format from the magic numbers, the dimensions from the header checked before a
//! pixel is decoded, decoders held to strict limits, a GIF read to its first frame only (`image`'s GIF decoder
//! reads one frame per call), and the result turned upright by its EXIF orientation.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use super::ImageError;

/// Widest or tallest image decoded, whatever MAX_IMAGE_PIXELS allows: a 1 × 100,000,000 strip is no photo, and
/// a decoder's buffers per row grow with the width.
pub const MAX_SIDE: u32 = 32_768;
/// Least and most memory one decode may allocate; between them, 4 bytes per pixel MAX_IMAGE_PIXELS allows.
const MIN_ALLOC: u64 = 64 << 20;
const MAX_ALLOC: u64 = 1 << 30;

/// What one decode may cost.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    /// MAX_IMAGE_PIXELS: width × height, from the header.
    pub max_pixels: u64,
    /// Bytes the decoder may allocate, its output included.
    pub max_alloc: u64,
}

impl DecodeLimits {
    /// The limits for images of at most `max_pixels` pixels.
    pub fn new(max_pixels: u64) -> Self {
        Self { max_pixels, max_alloc: max_pixels.saturating_mul(4).clamp(MIN_ALLOC, MAX_ALLOC) }
    }

    fn image(&self) -> Limits {
        let mut limits = Limits::default();
        limits.max_image_width = Some(MAX_SIDE);
        limits.max_image_height = Some(MAX_SIDE);
        limits.max_alloc = Some(self.max_alloc);
        limits
    }

    fn check(&self, width: u32, height: u32) -> Result<(), ImageError> {
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.max_pixels || width > MAX_SIDE || height > MAX_SIDE {
            return Err(ImageError::TooLarge { width, height });
        }
        Ok(())
    }
}

/// An image as decoded: 8-bit RGB or RGBA, upright.
#[derive(Debug)]
pub struct Decoded {
    pub format: ImageFormat,
    /// The pixels, upright, perhaps at a fraction of the full size (a JPEG decoded scaled).
    pub image: DynamicImage,
    /// The full size, upright.
    pub width: u32,
    pub height: u32,
}

/// The formats decoded; the others are refused as unreadable.
fn supported(format: ImageFormat) -> bool {
    matches!(
        format,
        ImageFormat::Png
            | ImageFormat::Jpeg
            | ImageFormat::WebP
            | ImageFormat::Gif
            | ImageFormat::Bmp
            | ImageFormat::Tiff
    )
}

fn unreadable(error: impl std::fmt::Display) -> ImageError {
    ImageError::Unreadable(error.to_string())
}

/// Whether an orientation swaps width and height.
fn turns(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

/// Decodes `bytes`. `shrink` is told the full upright size and answers by how much (1, 2, 4 or 8) the image may
/// be decoded smaller, which a JPEG does in the DCT domain.
pub fn decode(
    bytes: &[u8],
    limits: &DecodeLimits,
    shrink: impl FnOnce(u32, u32) -> u32,
) -> Result<Decoded, ImageError> {
    let format = image::guess_format(bytes)
        .ok()
        .filter(|&format| supported(format))
        .ok_or_else(|| unreadable("not a PNG, JPEG, WebP, GIF, BMP or TIFF image"))?;
    let reader = || {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        reader.limits(limits.image());
        reader
    };
    // The header only: the dimensions and the orientation, checked before any pixel is decoded. Building the
    // decoder checks the width and height against the limits and fails on a broken header.
    let mut decoder = reader().into_decoder().map_err(|error| match error {
        image::ImageError::Limits(_) => match imagesize::blob_size(bytes) {
            Ok(size) => ImageError::TooLarge {
                width: u32::try_from(size.width).unwrap_or(u32::MAX),
                height: u32::try_from(size.height).unwrap_or(u32::MAX),
            },
            Err(_) => unreadable(error),
        },
        other => unreadable(other),
    })?;
    let (width, height) = decoder.dimensions();
    limits.check(width, height)?;
    if format == ImageFormat::Jpeg && !super::metadata::jpeg_is_whole(bytes) {
        return Err(unreadable("the JPEG ends before its end-of-image marker: it was cut short"));
    }
    if decoder.total_bytes() > limits.max_alloc {
        return Err(unreadable(format!(
            "{width} × {height} pixels of its colour type need more than {} bytes",
            limits.max_alloc
        )));
    }
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let (upright_width, upright_height) = if turns(orientation) { (height, width) } else { (width, height) };
    let factor = shrink(upright_width, upright_height);
    if format == ImageFormat::Jpeg && factor > 1 {
        drop(decoder);
        if let Some(image) = jpeg_scaled(bytes, limits, factor) {
            return Ok(finish(format, image, orientation, upright_width, upright_height));
        }
        // A JPEG jpeg-decoder cannot read (CMYK, 16-bit, arithmetic coding) is read by `image` at full size.
        decoder = reader().into_decoder().map_err(unreadable)?;
    }
    let image = DynamicImage::from_decoder(decoder).map_err(unreadable)?;
    Ok(finish(format, image, orientation, upright_width, upright_height))
}

/// 8-bit RGB(A), upright.
fn finish(format: ImageFormat, image: DynamicImage, orientation: Orientation, width: u32, height: u32) -> Decoded {
    let mut image = match image {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => image,
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.to_rgba8()),
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    };
    image.apply_orientation(orientation);
    Decoded { format, image, width, height }
}

/// A JPEG decoded at 1/`factor` of its size by jpeg-decoder's scaled IDCT, which computes only the low
/// frequencies of each 8 × 8 block (at 1/8, just the DC coefficient) instead of decoding every pixel and throwing
/// most away. `None` when jpeg-decoder cannot read it, or gives a pixel format other than grey or RGB.
fn jpeg_scaled(bytes: &[u8], limits: &DecodeLimits, factor: u32) -> Option<DynamicImage> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.set_max_decoding_buffer_size(usize::try_from(limits.max_alloc).ok()?);
    decoder.read_info().ok()?;
    let info = decoder.info()?;
    let want = |side: u16| u16::try_from(u32::from(side).div_ceil(factor)).ok();
    let (width, height) = decoder.scale(want(info.width)?, want(info.height)?).ok()?;
    let pixels = decoder.decode().ok()?;
    let (width, height) = (u32::from(width), u32::from(height));
    match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => image::RgbImage::from_raw(width, height, pixels).map(DynamicImage::from),
        jpeg_decoder::PixelFormat::L8 => image::GrayImage::from_raw(width, height, pixels).map(DynamicImage::from),
        jpeg_decoder::PixelFormat::L16 | jpeg_decoder::PixelFormat::CMYK32 => None,
    }
}
