//! Images with variants, as the protocol and client tests use them: the variants a server declares, a camera-style
//! JPEG whose GPS position confirm strips, and what a variant's bytes decode to.

use std::path::Path;
use std::process::Command;

/// IMAGE_VARIANTS of the tests: a square WebP crop and a PNG that fits a box, both smaller than `photo.png`
/// (64 × 48), so that each is really resized.
pub const VARIANTS: &str = "thumb=32x32,cover,webp;preview=40x40,contain,png";

/// `serve` arguments that declare [`VARIANTS`].
pub const WITH_VARIANTS: [&str; 2] = ["--image-variants", VARIANTS];

/// The fixture `photo.jpg` with a GPS position written into its EXIF by `exiftool`, as a phone writes one.
pub fn located_jpeg(dir: &Path) -> Vec<u8> {
    let path = dir.join("located.jpg");
    std::fs::write(&path, super::fixture("photo.jpg")).expect("written");
    let output = Command::new("exiftool")
        .args(["-q", "-overwrite_original", "-GPSLatitude=48.8584", "-GPSLatitudeRef=N"])
        .args(["-GPSLongitude=2.2945", "-GPSLongitudeRef=E"])
        .arg(&path)
        .output()
        .expect("exiftool runs (Debian's libimage-exiftool-perl)");
    assert!(output.status.success(), "exiftool: {}", String::from_utf8_lossy(&output.stderr));
    std::fs::read(&path).expect("read")
}

/// The format and dimensions of an image's bytes, decoded in full.
pub fn decoded(bytes: &[u8]) -> (image::ImageFormat, u32, u32) {
    let format = image::guess_format(bytes).expect("a known image format");
    let image = image::load_from_memory_with_format(bytes, format).expect("decodes");
    (format, image.width(), image.height())
}
