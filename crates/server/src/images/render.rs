//! Variants and the placeholder made of a decoded image: the box a variant asks for turned into a crop and a size
//! (never larger than the original), resized by fast_image_resize, encoded without metadata.

use base64::Engine;
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{DynamicImage, ExtendedColorType, ImageEncoder};

use super::ImageError;
use super::settings::{Fit, Format};

/// The side of the box the placeholder is made from: ThumbHash encodes at most 100 × 100 pixels.
const PLACEHOLDER_SIDE: u32 = 100;

/// Where a variant comes from in the full-size upright image, and its size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    /// The region of the full-size image, left, top, width, height.
    pub crop: (f64, f64, f64, f64),
    pub width: u32,
    pub height: u32,
}

impl Plan {
    /// A box of `width` × `height` filled per `fit` from an image of `full_width` × `full_height`. Never upscaled:
    /// `contain` stops at the original size, and `cover` keeps the box's aspect ratio at the largest size the
    /// original holds.
    pub fn new(fit: Fit, width: u32, height: u32, full_width: u32, full_height: u32) -> Self {
        let (fw, fh) = (f64::from(full_width), f64::from(full_height));
        let (bw, bh) = (f64::from(width), f64::from(height));
        let side = |x: f64| (x.round() as u32).max(1);
        let (out_w, out_h) = match fit {
            Fit::Contain => {
                let scale = (bw / fw).min(bh / fh).min(1.0);
                (side(fw * scale), side(fh * scale))
            }
            Fit::Cover => {
                let scale = (bw / fw).max(bh / fh);
                if scale <= 1.0 {
                    (width, height)
                } else {
                    let shrink = (fw / bw).min(fh / bh);
                    (side((bw * shrink).floor()), side((bh * shrink).floor()))
                }
            }
        };
        // The middle of the original at the output's aspect ratio: all of it for `contain`.
        let (ow, oh) = (f64::from(out_w), f64::from(out_h));
        let crop_w = fw.min(fh * ow / oh);
        let crop_h = fh.min(fw * oh / ow);
        Self { crop: ((fw - crop_w) / 2.0, (fh - crop_h) / 2.0, crop_w, crop_h), width: out_w, height: out_h }
    }

    /// How many source pixels, across, make one of the output's.
    pub fn ratio(&self) -> f64 {
        self.crop.2 / f64::from(self.width)
    }

    /// The placeholder's plan.
    pub fn placeholder(full_width: u32, full_height: u32) -> Self {
        Self::new(Fit::Contain, PLACEHOLDER_SIDE, PLACEHOLDER_SIDE, full_width, full_height)
    }
}

/// By how much a JPEG may be decoded smaller (1, 2, 4 or 8) for plans whose least ratio is `ratio`. As libvips
/// does, the scaled decode leaves at least half the reduction to the resize filter: the DCT's own downscale is a
/// box filter, and alone it would alias.
pub fn shrink_factor(ratio: f64) -> u32 {
    [8, 4, 2].into_iter().find(|&factor| ratio >= f64::from(2 * factor)).unwrap_or(1)
}

/// `image` (upright, perhaps decoded smaller than `full_width` wide) resized per `plan`.
pub fn resize(
    resizer: &mut Resizer,
    image: &DynamicImage,
    full_width: u32,
    plan: &Plan,
) -> Result<DynamicImage, ImageError> {
    let (pixel_type, alpha) = match image {
        DynamicImage::ImageRgba8(_) => (PixelType::U8x4, true),
        _ => (PixelType::U8x3, false),
    };
    let failed = |error: &dyn std::fmt::Display| ImageError::Unreadable(format!("resizing failed: {error}"));
    let source = ImageRef::new(image.width(), image.height(), image.as_bytes(), pixel_type).map_err(|e| failed(&e))?;
    let mut target = Image::new(plan.width, plan.height, pixel_type);
    // The plan is in full-size pixels; the decoded image may be a fraction of that.
    let scale = f64::from(image.width()) / f64::from(full_width);
    let (left, top, width, height) = plan.crop;
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3)).crop(
        left * scale,
        top * scale,
        width * scale,
        height * scale,
    );
    resizer.resize(&source, &mut target, &options).map_err(|e| failed(&e))?;
    let (w, h, pixels) = (plan.width, plan.height, target.into_vec());
    let resized = if alpha {
        image::RgbaImage::from_raw(w, h, pixels).map(DynamicImage::from)
    } else {
        image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::from)
    };
    resized.ok_or_else(|| failed(&"the buffer has the wrong size"))
}

/// `image` encoded as `format`; nothing but pixels goes in, so a variant carries no metadata.
pub fn encode(image: &DynamicImage, format: Format, quality: Option<u8>) -> Result<Vec<u8>, ImageError> {
    let failed = |error: &dyn std::fmt::Display| ImageError::Unreadable(format!("encoding failed: {error}"));
    let (width, height) = (image.width(), image.height());
    let mut out = Vec::new();
    match format {
        Format::Jpeg => {
            // JPEG has no alpha: transparent parts go on white, as a browser shows them on a page.
            let rgb = match image {
                DynamicImage::ImageRgba8(rgba) => on_white(rgba),
                other => other.to_rgb8(),
            };
            JpegEncoder::new_with_quality(&mut out, quality.unwrap_or(82))
                .write_image(&rgb, width, height, ExtendedColorType::Rgb8)
                .map_err(|e| failed(&e))?;
        }
        Format::Png => {
            let color = if image.color().has_alpha() { ExtendedColorType::Rgba8 } else { ExtendedColorType::Rgb8 };
            PngEncoder::new(&mut out).write_image(image.as_bytes(), width, height, color).map_err(|e| failed(&e))?;
        }
        Format::Webp => {
            let encoder = match image {
                DynamicImage::ImageRgba8(rgba) => webp::Encoder::from_rgba(rgba.as_raw(), width, height),
                other => webp::Encoder::from_rgb(other.as_bytes(), width, height),
            };
            let quality = f32::from(quality.unwrap_or(80));
            out = encoder.encode_simple(false, quality).map_err(|e| failed(&format!("{e:?}")))?.to_vec();
        }
    }
    Ok(out)
}

fn on_white(rgba: &image::RgbaImage) -> image::RgbImage {
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let blend = |c: u8| ((u32::from(c) * u32::from(a) + 255 * (255 - u32::from(a)) + 127) / 255) as u8;
        image::Rgb([blend(r), blend(g), blend(b)])
    })
}

/// The ThumbHash of `small` (at most 100 × 100), in base64. ThumbHash rather than BlurHash: it encodes alpha and
/// the aspect ratio (BlurHash has neither, so a page cannot size the box from it), and it keeps more detail in
/// about as many bytes (~25); it needs no choice of component counts, and decodes without parameters.
pub fn placeholder(small: &DynamicImage) -> String {
    let rgba = small.to_rgba8();
    let hash = thumbhash::rgba_to_thumb_hash(rgba.width() as usize, rgba.height() as usize, rgba.as_raw());
    base64::engine::general_purpose::STANDARD.encode(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contain_fits_inside_and_never_upscales() {
        let plan = Plan::new(Fit::Contain, 256, 256, 4000, 3000);
        assert_eq!((plan.width, plan.height), (256, 192));
        assert_eq!(plan.crop, (0.0, 0.0, 4000.0, 3000.0));
        let plan = Plan::new(Fit::Contain, 1600, 1600, 300, 200);
        assert_eq!((plan.width, plan.height), (300, 200));
    }

    #[test]
    fn cover_fills_the_box_and_crops_the_middle() {
        let plan = Plan::new(Fit::Cover, 256, 256, 4000, 3000);
        assert_eq!((plan.width, plan.height), (256, 256));
        assert_eq!(plan.crop, (500.0, 0.0, 3000.0, 3000.0));
        let plan = Plan::new(Fit::Cover, 300, 100, 200, 400);
        assert_eq!((plan.width, plan.height), (200, 66), "the box's ratio at the most the original holds");
    }

    #[test]
    fn the_jpeg_shrink_leaves_half_the_reduction_to_the_filter() {
        assert_eq!(shrink_factor(11.7), 4);
        assert_eq!(shrink_factor(16.0), 8);
        assert_eq!(shrink_factor(3.9), 1);
        assert_eq!(shrink_factor(4.0), 2);
    }

    #[test]
    fn a_resize_of_a_crop_gives_the_planned_size() {
        let image = DynamicImage::from(image::RgbImage::from_pixel(400, 300, image::Rgb([10, 200, 30])));
        let plan = Plan::new(Fit::Cover, 64, 64, 800, 600);
        let resized = resize(&mut Resizer::new(), &image, 800, &plan).expect("the resize works");
        assert_eq!((resized.width(), resized.height()), (64, 64));
        assert_eq!(resized.to_rgb8().get_pixel(32, 32).0, [10, 200, 30]);
    }

    #[test]
    fn a_transparent_pixel_goes_on_white_in_a_jpeg() {
        let rgba = image::RgbaImage::from_pixel(1, 1, image::Rgba([0, 0, 0, 0]));
        assert_eq!(on_white(&rgba).get_pixel(0, 0).0, [255, 255, 255]);
    }
}
