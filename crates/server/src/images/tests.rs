//! The pipeline on images made by real encoders at test time: ImageMagick's `convert`, libvips' `vips`, and
//! `exiftool` writing a camera's GPS position and orientation (Debian's imagemagick, libvips-tools and
//! libimage-exiftool-perl, which scripts/test installs). A missing tool fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use image::{DynamicImage, GenericImageView};

use super::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    images: ImageSettings,
}

fn pipeline(args: &[&str]) -> ImagePipeline {
    let cli = Cli::try_parse_from(std::iter::once("draftstore").chain(args.iter().copied())).expect("valid settings");
    ImagePipeline::new(&cli.images, 100_000_000)
}

/// Runs a tool, failing the test when it is missing or fails; its standard output.
fn run(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|error| {
        panic!("{tool} could not run ({error}): install Debian's imagemagick, libvips-tools, libimage-exiftool-perl")
    });
    assert!(output.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn file(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let text = path.to_str().expect("a UTF-8 path").to_owned();
    (path, text)
}

fn read(path: &Path) -> Bytes {
    Bytes::from(std::fs::read(path).expect("the file is readable"))
}

/// A 300 × 200 camera-style JPEG, blue with a red square in its stored top-left corner, with a GPS position and
/// orientation 6 (shown turned a quarter clockwise: the red square at the top right) written by exiftool.
fn camera_jpeg(dir: &Path) -> (PathBuf, String) {
    let (path, text) = file(dir, "camera.jpg");
    run("convert", &["-size", "300x200", "xc:blue", "-fill", "red", "-draw", "rectangle 0,0 59,59", &text]);
    run(
        "exiftool",
        &[
            "-q",
            "-overwrite_original",
            "-n",
            "-Orientation=6",
            "-Make=Camera",
            "-GPSLatitude=48.8584",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=2.2945",
            "-GPSLongitudeRef=E",
            &text,
        ],
    );
    (path, text)
}

fn decode(bytes: &[u8]) -> DynamicImage {
    image::load_from_memory(bytes).expect("the bytes decode")
}

fn is_red(pixel: [u8; 4]) -> bool {
    pixel[0] > 200 && pixel[1] < 60 && pixel[2] < 60
}

fn is_blue(pixel: [u8; 4]) -> bool {
    pixel[0] < 60 && pixel[1] < 60 && pixel[2] > 200
}

#[tokio::test]
async fn variants_of_an_imagemagick_jpeg_have_the_declared_sizes_fits_and_types() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (path, text) = file(dir.path(), "photo.jpg");
    run("convert", &["-size", "800x600", "gradient:red-blue", "-quality", "90", &text]);
    let images = pipeline(&[
        "--image-variants",
        "thumb=256x256,cover,webp;preview=400x400,contain,jpeg,q70;icon=64x32,contain,png;big=2000x2000,contain,png",
    ]);
    let made = images.process(read(&path)).await.expect("the image is processed");
    assert_eq!((made.width, made.height), (800, 600));
    assert_eq!(made.content_type, "image/jpeg");
    let sizes: Vec<_> = made.variants.iter().map(|v| (v.name.as_str(), v.content_type, v.width, v.height)).collect();
    assert_eq!(
        sizes,
        [
            ("thumb", "image/webp", 256, 256),
            ("preview", "image/jpeg", 400, 300),
            ("icon", "image/png", 43, 32),
            ("big", "image/png", 800, 600),
        ]
    );
    for variant in &made.variants {
        let format = image::guess_format(&variant.bytes).expect("a known format");
        assert_eq!(format.to_mime_type(), variant.content_type);
        assert_eq!(decode(&variant.bytes).dimensions(), (variant.width, variant.height));
    }
    // The placeholder is a ThumbHash that says the aspect ratio.
    let hash = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, &made.placeholder).expect("base64");
    let ratio = thumbhash::thumb_hash_to_approximate_aspect_ratio(&hash).expect("a ThumbHash");
    assert!((ratio - 4.0 / 3.0).abs() < 0.1, "{ratio}");
}

#[tokio::test]
async fn libvips_webp_png_and_tiff_and_imagemagick_bmp_and_gif_decode() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (_, source) = file(dir.path(), "source.png");
    run("convert", &["-size", "320x240", "gradient:green-yellow", &source]);
    let mut made = Vec::new();
    for (tool, name) in [
        ("vips", "vips.webp"),
        ("vips", "vips.png"),
        ("vips", "vips.tif"),
        ("convert", "im.bmp"),
        ("convert", "im.gif"),
    ] {
        let (path, text) = file(dir.path(), name);
        if tool == "vips" {
            run("vips", &["copy", &source, &text])
        } else {
            run("convert", &[&source, &text])
        };
        made.push((name, pipeline(&["--image-variants", "t=100x100,cover,jpeg"]).process(read(&path)).await));
    }
    for (name, result) in made {
        let made = result.unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!((made.width, made.height), (320, 240), "{name}");
        assert_eq!((made.variants[0].width, made.variants[0].height), (100, 100), "{name}");
    }
}

#[tokio::test]
async fn a_camera_jpeg_is_shown_upright_and_its_original_loses_the_gps_position_only() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (path, text) = camera_jpeg(dir.path());
    assert!(!run("exiftool", &["-gps:all", &text]).is_empty(), "the test image has a GPS position");
    let upload = read(&path);
    let made = pipeline(&["--image-variants", "v=100x150,contain,png"])
        .process(upload.clone())
        .await
        .expect("the image is processed");
    assert_eq!((made.width, made.height), (200, 300), "the size as shown, after orientation 6");
    let variant = decode(&made.variants[0].bytes).to_rgba8();
    assert_eq!(variant.dimensions(), (100, 150));
    assert!(is_red(variant.get_pixel(97, 2).0), "the red corner is at the top right");
    assert!(is_blue(variant.get_pixel(2, 2).0), "the top left is blue");
    assert!(is_blue(variant.get_pixel(97, 147).0));

    let stripped = made.stripped.expect("the GPS position was removed");
    let (out, out_text) = file(dir.path(), "stripped.jpg");
    std::fs::write(&out, &stripped).expect("the file is written");
    assert_eq!(run("exiftool", &["-gps:all", &out_text]), "", "exiftool finds no GPS tag");
    assert_eq!(run("exiftool", &["-s3", "-n", "-Orientation", "-Make", &out_text]), "6\nCamera\n");
    assert_eq!(decode(&stripped).as_bytes(), decode(&upload).as_bytes(), "the pixels are the upload's");
}

#[tokio::test]
async fn strip_all_keeps_the_icc_profile_and_the_orientation_only() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (_, camera) = camera_jpeg(dir.path());
    let (path, text) = file(dir.path(), "profiled.jpg");
    // libvips copies the EXIF record and embeds its own sRGB profile; exiftool adds XMP and IPTC.
    run("vips", &["copy", &camera, &format!("{text}[profile=srgb]")]);
    run("exiftool", &["-q", "-overwrite_original", "-XMP-dc:Creator=Someone", "-IPTC:City=Paris", &text]);
    let upload = read(&path);
    let made =
        pipeline(&["--image-metadata", "strip-all"]).process(upload.clone()).await.expect("the image is processed");
    let stripped = made.stripped.expect("the original was stripped");
    let (out, out_text) = file(dir.path(), "stripped.jpg");
    std::fs::write(&out, &stripped).expect("the file is written");
    assert_eq!(run("exiftool", &["-s3", "-icc_profile:ProfileDescription", &out_text]), "sRGB\n");
    assert_eq!(run("exiftool", &["-s3", "-n", "-Orientation", &out_text]), "6\n");
    assert_eq!(run("exiftool", &["-s3", "-xmp:all", "-iptc:all", "-gps:all", "-Make", &out_text]), "");
    assert_eq!(decode(&stripped).as_bytes(), decode(&upload).as_bytes());
}

#[tokio::test]
async fn the_gps_position_is_removed_from_png_webp_and_tiff_with_the_pixels_kept() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for name in ["gps.png", "gps.webp", "gps.tif"] {
        let (path, text) = file(dir.path(), name);
        run("convert", &["-size", "64x48", "gradient:white-black", &text]);
        run("exiftool", &["-q", "-overwrite_original", "-GPSLatitude=1.5", "-GPSLatitudeRef=N", "-Make=Cam", &text]);
        assert!(!run("exiftool", &["-gps:all", &text]).is_empty(), "{name} has a GPS position");
        let upload = read(&path);
        let made = pipeline(&[]).process(upload.clone()).await.expect("the image is processed");
        let stripped = made.stripped.unwrap_or_else(|| panic!("{name} was stripped"));
        let (out, out_text) = file(dir.path(), &format!("stripped-{name}"));
        std::fs::write(&out, &stripped).expect("the file is written");
        assert_eq!(run("exiftool", &["-gps:all", &out_text]), "", "{name}");
        assert_eq!(run("exiftool", &["-s3", "-Make", &out_text]), "Cam\n", "{name}");
        assert_eq!(decode(&stripped).as_bytes(), decode(&upload).as_bytes(), "{name}");
    }
}

/// What exiftool finds of a position anywhere in a file (`-ee`: embedded documents too), one line per tag.
fn positions(path: &str) -> String {
    run("exiftool", &["-a", "-ee", "-G1", "-s", "-*GPS*", path])
}

/// Processes `upload` with the default policy and checks the promoted bytes: no position anywhere, the pixels the
/// upload's.
async fn assert_no_position_left(dir: &Path, name: &str, upload: Bytes) -> Bytes {
    let made = pipeline(&[]).process(upload.clone()).await.expect("the image is processed");
    let stripped = made.stripped.unwrap_or_else(|| panic!("{name} was stripped"));
    let (out, out_text) = file(dir, &format!("stripped-{name}"));
    std::fs::write(&out, &stripped).expect("the file is written");
    assert_eq!(positions(&out_text), "", "{name}: a position is left");
    assert_eq!(decode(&stripped).as_bytes(), decode(&upload).as_bytes(), "{name}: the pixels changed");
    stripped
}

#[tokio::test]
async fn a_position_in_xmp_goes_from_tiff_and_gif_too() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for name in ["xmp.tif", "xmp.gif"] {
        let (path, text) = file(dir.path(), name);
        run("convert", &["-size", "40x30", "gradient:red-blue", &text]);
        run(
            "exiftool",
            &["-q", "-overwrite_original", "-XMP-exif:GPSLatitude=48.8584", "-XMP-exif:GPSLongitude=2.2945", &text],
        );
        assert!(!positions(&text).is_empty(), "{name} has a position in its XMP");
        assert_no_position_left(dir.path(), name, read(&path)).await;
    }
}

#[tokio::test]
async fn what_follows_a_jpeg_s_end_and_the_records_it_cannot_read_go() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (plain, plain_text) = file(dir.path(), "plain.jpg");
    run("convert", &["-size", "40x30", "gradient:red-blue", "-strip", &plain_text]);
    let (camera, _) = camera_jpeg(dir.path());
    // A second picture with a position after the first's end, as a motion photo or a vendor's trailer has it.
    let trailed = [std::fs::read(&plain).expect("read"), std::fs::read(&camera).expect("read")].concat();
    let stripped = assert_no_position_left(dir.path(), "trailed.jpg", Bytes::from(trailed)).await;
    assert_eq!(stripped, read(&plain), "the first picture, to its end, and nothing after");

    // Photoshop's APP13 holding XMP with a position, and an APP1 whose EXIF header a reader tolerates.
    let (path, text) = file(dir.path(), "records.jpg");
    std::fs::copy(&plain, &path).expect("copy");
    let mut bytes = std::fs::read(&path).expect("read");
    let xmp = b"<x:xmpmeta xmlns:x='adobe:ns:meta/'><exif:GPSLatitude>48,51.5N</exif:GPSLatitude></x:xmpmeta>";
    let app13 = [b"Photoshop 3.0\0".as_slice(), b"8BIM\x04\x24\0\0", &(xmp.len() as u32).to_be_bytes(), xmp].concat();
    let odd_exif = [b"Exif\0\xff".as_slice(), b"MM\0\x2a\0\0\0\x08\0\0\0\0\0\0"].concat();
    for (marker, body) in [(0xed, app13), (0xe1, odd_exif)] {
        let mut segment = vec![0xff, marker];
        segment.extend_from_slice(&u16::try_from(body.len() + 2).expect("a short segment").to_be_bytes());
        segment.extend_from_slice(&body);
        bytes.splice(2..2, segment);
    }
    std::fs::write(&path, &bytes).expect("write");
    assert!(!positions(&text).is_empty(), "exiftool reads the position in the Photoshop record");
    let stripped = assert_no_position_left(dir.path(), "records.jpg", Bytes::from(bytes)).await;
    assert!(!stripped.windows(3).any(|w| w == b"GPS"), "no unread record is kept");
}

#[tokio::test]
async fn keep_and_an_image_without_metadata_leave_the_original_as_it_is() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (path, _) = camera_jpeg(dir.path());
    assert!(
        pipeline(&["--image-metadata", "keep"])
            .process(read(&path))
            .await
            .expect("the image is processed")
            .stripped
            .is_none()
    );
    let (path, text) = file(dir.path(), "plain.png");
    run("convert", &["-size", "10x10", "xc:red", "-strip", &text]);
    assert!(pipeline(&[]).process(read(&path)).await.expect("the image is processed").stripped.is_none());
}

/// A PNG of `width` × `height` by its header, with one tiny IDAT: the bytes a bomb's header shows.
fn png_header_of(width: u32, height: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut png, &ihdr);
    chunk(&mut png, b"IDAT\x78\x9c\x03\x00\x00\x00\x00\x01");
    chunk(&mut png, b"IEND");
    png
}

fn chunk(png: &mut Vec<u8>, kind_and_body: &[u8]) {
    png.extend_from_slice(&u32::try_from(kind_and_body.len() - 4).expect("a small chunk").to_be_bytes());
    png.extend_from_slice(kind_and_body);
    let (kind, body) = kind_and_body.split_at(4);
    png.extend_from_slice(&super::metadata::crc32_of(kind, body).to_be_bytes());
}

#[tokio::test]
async fn headers_declaring_huge_images_are_refused_before_any_decode() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (path, text) = file(dir.path(), "small.jpg");
    run("convert", &["-size", "64x64", "xc:gray", &text]);
    // JPEG's sides are 16-bit: 65,500 × 65,500 is the largest a JPEG can declare.
    let mut jpeg = std::fs::read(&path).expect("the file is readable");
    let sof = jpeg.windows(2).position(|w| w == [0xff, 0xc0]).expect("a baseline SOF");
    jpeg[sof + 5..sof + 9].copy_from_slice(&[0xff, 0xdc, 0xff, 0xdc]);
    // Even where MAX_IMAGE_PIXELS would allow them, the decoders' own limits refuse them.
    let lenient =
        ImagePipeline::new(&Cli::try_parse_from(["d"]).expect("defaults are valid").images, 1_000_000_000_000);
    for (name, bytes) in [("png", png_header_of(100_000, 100_000)), ("jpeg", jpeg)] {
        for images in [pipeline(&[]), lenient.clone()] {
            let started = Instant::now();
            let error = images.process(Bytes::from(bytes.clone())).await.expect_err("the image is refused");
            assert!(matches!(error, ImageError::TooLarge { .. }), "{name}: {error}");
            assert!(started.elapsed() < Duration::from_secs(1), "{name}: {:?}", started.elapsed());
        }
    }
}

#[tokio::test]
async fn a_gif_of_ten_thousand_frames_is_read_to_its_first_frame_only() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (path, text) = file(dir.path(), "two.gif");
    run("convert", &["-size", "64x64", "xc:red", "xc:blue", &text]);
    // ImageMagick's two frames, the blue one repeated: a red frame, then 9,999 blue ones.
    let two = std::fs::read(path).expect("readable");
    let (header, frames) = gif_frames(&two);
    assert_eq!(frames.len(), 2);
    let mut gif = two[..header].to_vec();
    gif.extend_from_slice(frames[0]);
    for _ in 1..10_000 {
        gif.extend_from_slice(frames[1]);
    }
    gif.push(0x3b);
    let started = Instant::now();
    let made = pipeline(&["--image-variants", "t=16x16,cover,png"]).process(Bytes::from(gif)).await;
    let made = made.expect("the image is processed");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert!(is_red(decode(&made.variants[0].bytes).to_rgba8().get_pixel(8, 8).0), "the first frame, red");
}

/// The length of a GIF's header and global palette, and its frames: each its extensions and its image.
fn gif_frames(gif: &[u8]) -> (usize, Vec<&[u8]>) {
    let table = |flags: u8| if flags & 0x80 != 0 { 3 << ((flags & 7) + 1) } else { 0 };
    let sub_blocks = |mut at: usize| {
        while gif[at] != 0 {
            at += 1 + usize::from(gif[at]);
        }
        at + 1
    };
    let header = 13 + table(gif[10]);
    let (mut frames, mut start, mut at) = (Vec::new(), header, header);
    loop {
        match gif[at] {
            0x21 => at = sub_blocks(at + 2),
            0x2c => {
                at = sub_blocks(at + 10 + table(gif[at + 9]) + 1);
                frames.push(&gif[start..at]);
                start = at;
            }
            _ => return (header, frames),
        }
    }
}

#[tokio::test]
async fn a_truncated_jpeg_is_unreadable() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (path, text) = file(dir.path(), "full.jpg");
    run("convert", &["-size", "800x600", "gradient:red-blue", "-quality", "95", &text]);
    let full = std::fs::read(path).expect("the file is readable");
    for images in [pipeline(&[]), pipeline(&["--image-variants", "big=800x800,contain,png"])] {
        let error =
            images.process(Bytes::copy_from_slice(&full[..full.len() / 2])).await.expect_err("the image is refused");
        assert!(matches!(error, ImageError::Unreadable(_)), "{error}");
        assert!(error.to_string().contains("cut short"), "{error}");
    }
}

#[tokio::test]
async fn a_png_with_a_huge_ztxt_chunk_is_decoded_without_inflating_it() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (path, text) = file(dir.path(), "plain.png");
    run("convert", &["-size", "32x32", "xc:green", "-strip", &text]);
    // 1 GiB of zeros, compressed by zlib to about 1 MiB, as a zTXt chunk before the pixels.
    let (bomb, bomb_text) = file(dir.path(), "bomb.zlib");
    run(
        "python3",
        &["-c", "import sys,zlib; open(sys.argv[1],'wb').write(zlib.compress(bytes(1<<30), 9))", &bomb_text],
    );
    let png = std::fs::read(path).expect("the file is readable");
    let mut body = b"zTXtComment\0\0".to_vec();
    body.extend_from_slice(&std::fs::read(bomb).expect("readable"));
    let ihdr_end = 8 + 25;
    let mut with_bomb = png[..ihdr_end].to_vec();
    chunk(&mut with_bomb, &body);
    with_bomb.extend_from_slice(&png[ihdr_end..]);
    let started = Instant::now();
    let made = pipeline(&["--image-variants", "t=8x8,cover,png"])
        .process(Bytes::from(with_bomb))
        .await
        .expect("the image is processed");
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!((made.width, made.height), (32, 32));
    assert!(made.stripped.is_none(), "a comment is no location: the chunk is kept, not read");
}

#[tokio::test]
async fn a_timed_out_decode_keeps_its_worker_until_it_stops_and_others_are_told_busy() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (path, text) = file(dir.path(), "large.png");
    run("convert", &["-size", "2000x2000", "gradient:red-blue", &text]);
    // Forty full-size PNG encodes: far more than a second of work.
    let specs: Vec<String> = (0..40).map(|i| format!("v{i}=2000x2000,contain,png")).collect();
    let images = pipeline(&["--image-variants", &specs.join(";"), "--image-workers", "1", "--image-timeout", "1"]);
    let slow = tokio::spawn({
        let images = images.clone();
        let bytes = read(&path);
        async move { images.process(bytes).await }
    });
    // The second image asks once the first holds the one worker (a fixed sleep raced the first under load).
    let holding = Instant::now() + Duration::from_secs(30);
    while images.workers.available_permits() > 0 {
        assert!(Instant::now() < holding, "the first image never took the worker");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let busy = images.process(read(&path)).await.expect_err("the image is refused");
    assert!(matches!(busy, ImageError::Busy(_)), "{busy}");
    assert!(started.elapsed() >= Duration::from_millis(900));
    let timed_out = slow.await.expect("the task ends").expect_err("the image is refused");
    assert!(matches!(timed_out, ImageError::TimedOut(_)), "{timed_out}");
    assert_eq!(images.workers.available_permits(), 0, "the abandoned decode still holds its worker");
    // It stops at the next variant, and gives the worker back.
    let deadline = Instant::now() + Duration::from_secs(60);
    while images.workers.available_permits() == 0 {
        assert!(Instant::now() < deadline, "the worker was never given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The figure issue 42 asks for: a 256 px WebP and JPEG thumbnail of a 12 MP ImageMagick JPEG, against
/// `vipsthumbnail` on the same file. Run it with a release build:
/// `cargo test --release -p draftstore --lib images -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a timing, for a release build"]
async fn timing_of_a_256_px_thumbnail_of_a_12_mp_jpeg() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (path, text) = file(dir.path(), "12mp.jpg");
    run("convert", &["-size", "4000x3000", "-seed", "1", "plasma:", "-quality", "90", &text]);
    let bytes = read(&path);
    let best = |runs: Vec<Duration>| runs.into_iter().min().expect("five runs");
    for format in ["webp", "jpeg"] {
        let images =
            pipeline(&["--image-variants", &format!("thumb=256x256,contain,{format}"), "--image-metadata", "keep"]);
        let mut runs = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            images.process(bytes.clone()).await.expect("the image is processed");
            runs.push(started.elapsed());
        }
        let (out, out_text) = file(dir.path(), &format!("out.{format}"));
        let mut vips = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            run("vipsthumbnail", &[&text, "-s", "256", "-o", &out_text]);
            vips.push(started.elapsed());
        }
        assert!(out.exists());
        let (ours, theirs) = (best(runs), best(vips));
        println!(
            "256 px {format} of a 12 MP JPEG: pipeline {ours:?}, vipsthumbnail {theirs:?}, ratio {:.2}",
            ours.as_secs_f64() / theirs.as_secs_f64()
        );
    }
}
