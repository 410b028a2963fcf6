//! Images for the image tests: fixtures made at test time by the encoders users' images come from (ImageMagick,
//! libvips, Chromium's canvas, a camera-style JPEG tagged by exiftool), hostile images written byte by byte, and
//! the tools that read an image back (`identify`, `convert`, `exiftool`), so that what the server made is judged by
//! decoders other than its own.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};

/// The scene every encoder draws: a gradient of `SCENE` pixels with a white square of `MARK` pixels in its top-left
/// corner, so that a turned or mirrored variant shows where the corner went.
pub const SCENE: (u32, u32) = (300, 200);
/// The side of the white square in the scene's top-left corner.
pub const MARK: u32 = 30;

/// A folder of fixtures, removed when dropped.
pub struct Fixtures {
    dir: tempfile::TempDir,
}

impl Fixtures {
    /// A fresh folder, with the scene drawn by ImageMagick as `scene.png`, the source of the other encoders.
    pub fn new() -> Fixtures {
        let fixtures = Fixtures { dir: tempfile::tempdir().expect("a temporary folder") };
        let (width, height) = SCENE;
        let mark = format!("rectangle 0,0 {},{}", MARK - 1, MARK - 1);
        let size = format!("{width}x{height}");
        let scene = fixtures.path("scene.png");
        run("convert", &["-size", &size, "gradient:#d02020-#2020d0", "-fill", "white", "-draw", &mark])
            .arg(&scene)
            .done();
        fixtures
    }

    /// A path in the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The scene as ImageMagick encodes it in the format of `extension` (`png`, `jpg`, `webp`, `gif`, `bmp`,
    /// `tiff`), with `-strip` so that it carries no metadata.
    pub fn by_imagemagick(&self, extension: &str) -> Vec<u8> {
        let out = self.path(&format!("magick.{extension}"));
        run("convert", &[]).arg(self.path("scene.png")).args(["-strip", "-quality", "90"]).arg(&out).done();
        read(&out)
    }

    /// The scene as libvips encodes it in the format of `extension` (`png`, `jpg`, `webp`), metadata stripped.
    pub fn by_vips(&self, extension: &str) -> Vec<u8> {
        let out = self.path(&format!("vips.{extension}"));
        let target = format!("{}[strip]", out.display());
        run("vips", &["copy"]).arg(self.path("scene.png")).arg(target).done();
        read(&out)
    }

    /// A camera-style JPEG: the scene stored as ImageMagick encodes it, tagged by exiftool with a GPS position,
    /// orientation 6 (shown turned 90° clockwise, so 200 × 300 with the mark top right), an XMP creator and IPTC
    /// keywords.
    pub fn camera_jpeg(&self) -> Vec<u8> {
        let out = self.path("camera.jpg");
        run("convert", &[]).arg(self.path("scene.png")).args(["-quality", "90"]).arg(&out).done();
        tag_with_location(&out, &["-Orientation=6", "-XMP:Creator=Ada", "-IPTC:Keywords=home"]);
        read(&out)
    }

    /// The scene as an ImageMagick PNG and a libvips WebP, each with a GPS position in its EXIF written by exiftool.
    pub fn located_png_and_webp(&self) -> [(&'static str, Vec<u8>); 2] {
        let png = self.path("located.png");
        run("convert", &[]).arg(self.path("scene.png")).arg("-strip").arg(&png).done();
        tag_with_location(&png, &[]);
        let webp = self.path("located.webp");
        run("vips", &["copy"]).arg(self.path("scene.png")).arg(format!("{}[strip]", webp.display())).done();
        tag_with_location(&webp, &[]);
        [("image/png", read(&png)), ("image/webp", read(&webp))]
    }

    /// A photo-like JPEG of `width` × `height` pixels of noise, which compresses badly: its file is large.
    pub fn noisy_jpeg(&self, width: u32, height: u32) -> Vec<u8> {
        let out = self.path(&format!("noise-{width}x{height}.jpg"));
        run("convert", &["-size", &format!("{width}x{height}"), "xc:gray", "+noise", "Random", "-quality", "92"])
            .arg(&out)
            .done();
        read(&out)
    }
}

/// Writes a GPS position (the Eiffel Tower's), and `more` tags, into the file with exiftool.
fn tag_with_location(file: &Path, more: &[&str]) {
    let location = ["-GPSLatitude=48.8584", "-GPSLatitudeRef=N", "-GPSLongitude=2.2945", "-GPSLongitudeRef=E"];
    run("exiftool", &["-q", "-n", "-overwrite_original"]).args(location).args(more).arg(file).done();
}

/// The scene drawn on a canvas in headless Chromium and exported by its own encoders (`toDataURL`) as PNG, JPEG and
/// WebP: pairs of the type asked for and the bytes.
pub async fn by_chromium() -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    // Where scripts/test installs playwright-core; a missing tool fails the run.
    let tools = std::env::var_os("DRAFTSTORE_BROWSER_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/browser"));
    let runner = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/run-canvas.mjs");
    let (width, height) = SCENE;
    let output = tokio::process::Command::new("node")
        .arg(runner)
        .args([width.to_string(), height.to_string(), MARK.to_string()])
        .env("DRAFTSTORE_BROWSER_TOOLS", tools)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "the canvas run failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let encoded: Map<String, Value> =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    encoded
        .into_iter()
        .map(|(content_type, data)| {
            let bytes = base64::engine::general_purpose::STANDARD.decode(data.as_str().expect("base64")).expect("b64");
            (content_type, bytes)
        })
        .collect()
}

/// A command to run, its failure a panic that shows what it printed.
struct Run(Command);

fn run(program: &str, args: &[&str]) -> Run {
    let mut command = Command::new(program);
    command.args(args);
    Run(command)
}

impl Run {
    fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Run {
        self.0.arg(arg);
        self
    }

    fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Run {
        self.0.args(args);
        self
    }

    /// Runs it to its end; what it printed on its standard output.
    fn done(mut self) -> Vec<u8> {
        let output = self.0.output().unwrap_or_else(|e| panic!("{:?} does not start: {e}", self.0));
        assert!(output.status.success(), "{:?} failed: {}", self.0, String::from_utf8_lossy(&output.stderr));
        output.stdout
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `f` on a temporary file holding `bytes`.
fn with_file<T>(bytes: &[u8], f: impl FnOnce(&Path) -> T) -> T {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), bytes).expect("written");
    f(file.path())
}

/// What ImageMagick's `identify` reads in an image's first frame: its format (`PNG`, `JPEG`, `WEBP`, …), width
/// and height as stored (before any EXIF orientation).
pub fn identify(bytes: &[u8]) -> (String, u32, u32) {
    let out =
        with_file(bytes, |file| run("identify", &["-format", "%m %w %h"]).arg(format!("{}[0]", file.display())).done());
    let text = String::from_utf8(out).expect("utf-8");
    let mut words = text.split_whitespace();
    let mut next = || words.next().unwrap_or_else(|| panic!("identify said: {text}")).to_owned();
    let format = next();
    (format, next().parse().expect("a width"), next().parse().expect("a height"))
}

/// An image's pixels as ImageMagick decodes them, as stored (no orientation applied): RGB, 8 bits a channel.
pub fn pixels(bytes: &[u8]) -> Vec<u8> {
    with_file(bytes, |file| {
        run("convert", &[]).arg(format!("{}[0]", file.display())).args(["-depth", "8", "rgb:-"]).done()
    })
}

/// The RGB colour of one pixel of an image as ImageMagick decodes it.
pub fn pixel_at(bytes: &[u8], x: u32, y: u32) -> [u8; 3] {
    let (_, width, _) = identify(bytes);
    let all = pixels(bytes);
    let at = ((y * width + x) * 3) as usize;
    [all[at], all[at + 1], all[at + 2]]
}

/// Every tag exiftool finds in an image, as `Group:Name` (family 1 groups: `GPS`, `IFD0`, `XMP-dc`, `IPTC`, …).
pub fn tags(bytes: &[u8]) -> Map<String, Value> {
    let out = with_file(bytes, |file| run("exiftool", &["-j", "-a", "-G1", "-n"]).arg(file).done());
    let parsed: Value = serde_json::from_slice(&out).expect("exiftool's JSON");
    parsed[0].as_object().expect("one file's tags").clone()
}

/// The tags of the groups that hold metadata about the picture rather than the file's own structure: EXIF, GPS,
/// XMP, IPTC and maker notes.
pub fn metadata_tags(bytes: &[u8]) -> Vec<String> {
    let structural = ["SourceFile", "ExifTool:", "System:", "File:", "JFIF:", "Composite:", "PNG:", "RIFF:", "ICC"];
    tags(bytes).keys().filter(|key| !structural.iter().any(|s| key.starts_with(s))).cloned().collect()
}

/// The CRC-32 of ISO 3309, as PNG chunks carry it.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A PNG chunk: its length, type, data and CRC.
fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut chunk = u32::try_from(data.len()).expect("a chunk's length").to_be_bytes().to_vec();
    chunk.extend_from_slice(kind);
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
    chunk
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A PNG whose header (a valid IHDR) announces `width` × `height` RGB pixels, followed by no image data.
pub fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut header = width.to_be_bytes().to_vec();
    header.extend_from_slice(&height.to_be_bytes());
    header.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut bytes = PNG_SIGNATURE.to_vec();
    bytes.extend(png_chunk(b"IHDR", &header));
    bytes
}

/// A PNG of 64 × 48 pixels by its header, then garbage where its image data should be: it passes the checks of the
/// header and no decoder can read it.
pub fn undecodable_png() -> Vec<u8> {
    let mut bytes = png_declaring(64, 48);
    bytes.extend(png_chunk(b"IDAT", &super::pseudo_random_bytes(4096, 42)));
    bytes.extend(png_chunk(b"IEND", &[]));
    bytes
}

/// `jpeg` with its frame header (SOF0 to SOF2) rewritten to announce `width` × `height` pixels (at most 65,535
/// each: the fields have 16 bits): a real JPEG, tables and scan included, that claims far more pixels than it holds.
pub fn jpeg_declaring(jpeg: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut bytes = jpeg.to_vec();
    let mut at = 2;
    while at + 9 < bytes.len() {
        assert_eq!(bytes[at], 0xff, "a marker at {at}");
        let marker = bytes[at + 1];
        if (0xc0..=0xc2).contains(&marker) {
            bytes[at + 5..at + 7].copy_from_slice(&height.to_be_bytes());
            bytes[at + 7..at + 9].copy_from_slice(&width.to_be_bytes());
            return bytes;
        }
        at += 2 + usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
    }
    panic!("no frame header before the scan");
}

/// The side of [`gif_of_frames`]'s screen: small, so that decoding one frame is quick and only playing them all
/// is not.
pub const GIF_SCREEN: u16 = 200;

/// A GIF of `frames` frames of 10 × 10 pixels each on a [`GIF_SCREEN`]-pixel square screen: about 120 bytes a
/// frame, each a full-screen composition for a decoder that plays them all. Its LZW data is literal codes of 8
/// bits with a clear code every 100, so that the code width never grows.
pub fn gif_of_frames(frames: u32) -> Vec<u8> {
    const SIDE: u16 = 10;
    const SCREEN: u16 = GIF_SCREEN;
    let mut bytes = b"GIF89a".to_vec();
    bytes.extend_from_slice(&SCREEN.to_le_bytes());
    bytes.extend_from_slice(&SCREEN.to_le_bytes());
    // A global colour table of 128 colours: LZW's minimum code size is 7, its clear code 128, its end 129.
    bytes.extend_from_slice(&[0xf6, 0, 0]);
    for i in 0..128u8 {
        bytes.extend_from_slice(&[i * 2, 255 - i * 2, i]);
    }
    let per_row = u32::from(SCREEN / SIDE);
    for frame in 0..frames {
        // A graphic control extension: a delay of 1/100 s.
        bytes.extend_from_slice(&[0x21, 0xf9, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00]);
        let left = (frame % per_row) as u16 * SIDE;
        let top = ((frame / per_row) % per_row) as u16 * SIDE;
        bytes.push(0x2c);
        for value in [left, top, SIDE, SIDE] {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        bytes.extend_from_slice(&[0x00, 7]);
        let mut codes = vec![128u8];
        codes.extend((0..u32::from(SIDE * SIDE)).map(|i| ((i + frame) % 128) as u8));
        codes.push(129);
        for block in codes.chunks(255) {
            bytes.push(block.len() as u8);
            bytes.extend_from_slice(block);
        }
        bytes.push(0);
    }
    bytes.push(0x3b);
    bytes
}

/// Bits written least significant first, as DEFLATE packs them.
struct Bits {
    bytes: Vec<u8>,
    pending: u32,
    count: u32,
}

impl Bits {
    fn put(&mut self, value: u32, width: u32) {
        for i in 0..width {
            self.pending |= ((value >> i) & 1) << self.count;
            self.count += 1;
            if self.count == 8 {
                self.bytes.push(self.pending as u8);
                (self.pending, self.count) = (0, 0);
            }
        }
    }

    /// A Huffman code: its most significant bit first.
    fn code(&mut self, code: u32, width: u32) {
        for i in (0..width).rev() {
            self.put((code >> i) & 1, 1);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.count > 0 {
            self.bytes.push(self.pending as u8);
        }
        self.bytes
    }
}

/// A zlib stream of about `size` bytes that inflates to about 1,032 times as many zero bytes (DEFLATE's largest
/// ratio), and the inflated length. One dynamic-Huffman block whose length code 285 (258 bytes) and distance code
/// 0 (1 back) have 1-bit codes: each 258 zeros cost 2 bits, so the bulk of the stream is zero bytes.
pub fn zlib_of_zeros(size: usize) -> (Vec<u8>, u64) {
    let mut bits = Bits { bytes: vec![0x78, 0xda], pending: 0, count: 0 };
    // The final block, dynamic Huffman codes; 286 literal/length codes, 2 distance codes, 18 code length codes.
    bits.put(1, 1);
    bits.put(2, 2);
    bits.put(286 - 257, 5);
    bits.put(2 - 1, 5);
    bits.put(18 - 4, 4);
    // The code length codes' lengths, in DEFLATE's order (16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2,
    // 14, 1): length 2 has 1 bit, length 1 and 18 (a run of zeros) have 2 bits, so that what comes before the
    // data has an even count of bits and the 2-bit copies then reach a byte boundary.
    for length in [0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2] {
        bits.put(length, 3);
    }
    // Their canonical codes: 2 is 0, 1 is 10, 18 is 11.
    let (run_of_zeros, one, two) = ((0b11, 2), (0b10, 2), (0, 1));
    // Literal 0: 2 bits; literals 1 to 255: none (138 + 117 zeros); end of block: 2 bits; lengths 257 to 284:
    // none; length 285: 1 bit; distances 0 and 1: 1 bit each.
    bits.code(two.0, two.1);
    for run in [138, 117] {
        bits.code(run_of_zeros.0, run_of_zeros.1);
        bits.put(run - 11, 7);
    }
    bits.code(two.0, two.1);
    bits.code(run_of_zeros.0, run_of_zeros.1);
    bits.put(28 - 11, 7);
    for _ in 0..3 {
        bits.code(one.0, one.1);
    }
    // The data: literal 0 (code 10), then copies of 258 bytes from 1 back (length 285: 0, distance 0: 0).
    bits.code(0b10, 2);
    let mut copies: u64 = 0;
    assert_eq!(bits.count % 2, 0, "the copies reach a byte boundary");
    while bits.count != 0 {
        bits.code(0, 2);
        copies += 1;
    }
    let bulk = size.saturating_sub(bits.bytes.len() + 8);
    bits.bytes.resize(bits.bytes.len() + bulk, 0);
    copies += 4 * bulk as u64;
    bits.code(0b11, 2);
    let inflated = 1 + 258 * copies;
    let mut bytes = bits.finish();
    // Adler-32 of zeros: its sum stays 1, its sum of sums counts the bytes.
    let adler = (((inflated % 65_521) as u32) << 16) | 1;
    bytes.extend_from_slice(&adler.to_be_bytes());
    (bytes, inflated)
}

/// `png` with a zTXt chunk holding `zlib` as its compressed text, put right after the header so that a decoder
/// meets it before any pixel.
pub fn png_with_ztxt(png: &[u8], zlib: &[u8]) -> Vec<u8> {
    assert!(png.starts_with(PNG_SIGNATURE), "a PNG");
    let after_header = PNG_SIGNATURE.len() + 8 + 13 + 4;
    assert_eq!(&png[PNG_SIGNATURE.len() + 4..PNG_SIGNATURE.len() + 8], b"IHDR");
    let mut text = b"Comment\0\0".to_vec();
    text.extend_from_slice(zlib);
    let mut bytes = png[..after_header].to_vec();
    bytes.extend(png_chunk(b"zTXt", &text));
    bytes.extend_from_slice(&png[after_header..]);
    bytes
}

/// `draftstore serve` as a child process on a fresh store of a backend, called over HTTP: its memory is its own,
/// to be measured.
pub struct ChildApp {
    pub server: super::Server,
    client: reqwest::Client,
    _store: Option<tempfile::TempDir>,
}

impl ChildApp {
    /// Starts the binary on a fresh store of `backend` with extra arguments, and waits until it is ready.
    pub async fn start(backend: super::Backend, extra: &[&str]) -> ChildApp {
        let (mut args, store) = backend.args().await;
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let mut server = super::Server::new(args);
        server.start().await;
        ChildApp { server, client: reqwest::Client::new(), _store: store }
    }

    /// POSTs a JSON body to an API route.
    pub async fn post(&self, route: &str, body: &Value) -> super::Answer {
        let request = self.client.post(format!("{}{route}", self.server.url())).json(body);
        super::answer(request.send().await.expect("request sent")).await
    }

    /// Uploads a draft through the URL the API hands out.
    pub async fn upload(&self, name: &str, content_type: &str, bytes: Vec<u8>) {
        let request = serde_json::json!({"object_name": name, "content_type": content_type});
        let ticket = self.post("/api/v1/upload-url", &request).await.ok();
        let status = super::signed_put(&self.client, &ticket).body(bytes).send().await.expect("uploaded").status();
        assert_eq!(status, 200, "upload of {name} refused");
    }

    /// Confirms a draft under its own name.
    pub async fn confirm(&self, name: &str) -> super::Answer {
        self.post("/api/v1/confirm-upload", &serde_json::json!({"object_name": name})).await
    }

    /// The most memory the server has held resident so far, in MiB.
    pub fn peak_rss_mib(&self) -> u64 {
        peak_rss_kib(self.server.pid()) / 1024
    }
}

/// The most memory a process has held resident (VmHWM), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process's status");
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("a VmHWM line");
    line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("a size in kB")
}

#[test]
fn the_hostile_images_are_what_they_claim() {
    // The zlib stream inflates, checksum and all, to the zeros it claims (Python's zlib, a decoder of its own).
    let (zlib, inflated) = zlib_of_zeros(10_000);
    let out = with_file(&zlib, |file| {
        let script = "import sys, zlib; d = zlib.decompress(open(sys.argv[1], 'rb').read()); print(len(d), d.count(0))";
        run("python3", &["-c", script]).arg(file).done()
    });
    assert_eq!(String::from_utf8(out).expect("utf-8").trim(), format!("{inflated} {inflated}"));
    assert!(inflated > 1_000 * 10_000, "{inflated}");

    let fixtures = Fixtures::new();
    let png = fixtures.by_imagemagick("png");
    let bombed = png_with_ztxt(&png, &zlib);
    assert_eq!(identify(&bombed), ("PNG".to_owned(), SCENE.0, SCENE.1));
    assert_eq!(pixels(&bombed), pixels(&png), "the zTXt chunk leaves the pixels as they were");

    let gif = gif_of_frames(50);
    let frames = with_file(&gif, |file| run("identify", &["-format", "%m %W %H\n"]).arg(file).done());
    let frames = String::from_utf8(frames).expect("utf-8");
    assert_eq!(frames.lines().collect::<Vec<_>>(), vec![format!("GIF {GIF_SCREEN} {GIF_SCREEN}"); 50]);

    assert_eq!(
        imagesize::blob_size(&png_declaring(100_000, 100_000)).map(|s| (s.width, s.height)).ok(),
        Some((100_000, 100_000))
    );
    assert_eq!(
        imagesize::blob_size(&jpeg_declaring(&fixtures.by_imagemagick("jpg"), 65_535, 65_535))
            .map(|s| (s.width, s.height))
            .ok(),
        Some((65_535, 65_535))
    );
    let unreadable = with_file(&undecodable_png(), |file| Command::new("convert").arg(file).arg("rgb:-").output());
    assert!(!unreadable.expect("convert runs").status.success(), "ImageMagick cannot decode it either");
}
