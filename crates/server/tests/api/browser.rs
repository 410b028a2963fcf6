//! The unmodified Uppy uploader (`@uppy/aws-s3` 6, `signRequest` mode, the README's snippet) in a real headless
//! Chromium, on a page of another origin, against DraftStore on the local backend and on SeaweedFS with API keys.
//! `scripts/test` installs Chromium, playwright-core, esbuild and Uppy; a missing tool fails the test.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, on_both_backends};

fn api_keys() -> String {
    crate::helpers::api_keys(&crate::helpers::TENANTS)
}

use crate::helpers::free_port;

/// The bytes the page generates: byte i is (i × 31 + seed) mod 251.
fn bytes(size: usize, seed: u32) -> Vec<u8> {
    (0..size as u32).map(|i| (i.wrapping_mul(31).wrapping_add(seed) % 251) as u8).collect()
}

/// The files the page uploads: empty, 1 KiB, 3 MiB (one PUT) and 20 MiB (multipart).
fn files() -> Vec<(String, usize, u32, &'static str)> {
    [
        ("empty.txt", 0, 1, "text/plain"),
        ("one-kib.bin", 1024, 2, "application/octet-stream"),
        ("three-mib.jpg", 3 << 20, 3, "image/jpeg"),
        ("twenty-mib.mp4", 20 << 20, 4, "video/mp4"),
    ]
    .into_iter()
    .map(|(name, size, seed, kind)| (name.to_owned(), size, seed, kind))
    .collect()
}

/// Runs the page in Chromium; returns the runner's report.
/// Where playwright-core is installed: DRAFTSTORE_BROWSER_TOOLS, else the `.tools/browser` that scripts/test fills.
pub(crate) fn browser_tools() -> PathBuf {
    std::env::var_os("DRAFTSTORE_BROWSER_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/browser"))
}

/// Runs a Chromium runner of `tests/browser` with Node; the report it prints last. `what` names the run in a
/// failure.
pub(crate) async fn run_in_chromium<T: serde::de::DeserializeOwned>(
    runner: &str,
    args: &[&std::ffi::OsStr],
    tools: &std::path::Path,
    what: &str,
) -> T {
    let runner = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser").join(runner);
    let output = tokio::process::Command::new("node")
        .arg(runner)
        .args(args)
        .env("DRAFTSTORE_BROWSER_TOOLS", tools)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{what} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

async fn run_page(app: &TestApp, allowed: u16, other: u16) -> Value {
    let tools = browser_tools();
    assert!(
        tools.join("node_modules/playwright-core").is_dir(),
        "the browser tools are not installed in {}: run scripts/test, which installs them",
        tools.display()
    );
    let specs: Vec<Value> = files()
        .into_iter()
        .map(|(name, size, seed, kind)| json!({ "name": name, "size": size, "seed": seed, "type": kind }))
        .collect();
    let (allowed, other, specs) = (allowed.to_string(), other.to_string(), Value::Array(specs).to_string());
    let args = [app.address.as_str(), "key-of-alice", &allowed, &other, &specs].map(std::ffi::OsStr::new);
    run_in_chromium("run-uppy.mjs", &args, &tools, "the browser run").await
}

async fn uppy_in_chromium_uploads_through_draftstore(backend: Backend) {
    let (allowed, other) = (free_port(), free_port());
    let origin = format!("http://127.0.0.1:{allowed}");
    let keys = api_keys();
    let app = backend.spawn(&["--auth-mode", "api-key", "--api-keys", &keys, "--cors-allowed-origins", &origin]).await;
    let report = run_page(&app, allowed, other).await;
    let uploads = &report["uploads"];
    assert_eq!(uploads["failed"], json!([]), "{report}");
    let alice = app.as_caller("key-of-alice");
    for (name, size, seed, kind) in files() {
        let uploaded = successful_upload(&report, &name);
        // Uppy's own key, `<random id>-<file name>`: the object name, never the tenant's key.
        let key = uploaded["key"].as_str().expect("key");
        assert!(key.ends_with(&name) && !key.starts_with("alice/"), "{key}");
        alice.confirm(key).await.ok();
        let (content_type, body) = alice.download(key, Some("main")).await;
        assert_eq!(content_type, kind, "{name}");
        assert!(body == bytes(size, seed), "{name}: the confirmed object differs from what the page uploaded");
    }
    let blocked = report["blocked"].as_str().expect("blocked");
    assert!(blocked.starts_with("blocked"), "an origin outside CORS_ALLOWED_ORIGINS was let through: {blocked}");
}

on_both_backends!(uppy_in_chromium_uploads_through_draftstore);

/// Opens each URL in a page of its own in Chromium, as a person following a link; returns what happened to each
/// (`navigation`, `download`: the file name a download was saved under, `rendered`: the page it left, with
/// `scriptRan` when a script set `window.previewScriptRan`).
pub(crate) async fn open_in_chromium(urls: &[String]) -> Vec<Value> {
    let urls = json!(urls).to_string();
    run_in_chromium("run-preview.mjs", &[std::ffi::OsStr::new(&urls)], &browser_tools(), "the browser run").await
}

/// Runs a runner of the built-in page in Chromium, signed in as alice, with a scratch folder for its files; returns
/// the runner's report.
async fn run_builtin_page(runner: &str, app: &TestApp, scratch: &std::path::Path) -> Value {
    // Browse the page where its URLs are signed for (PUBLIC_URL, by default http://localhost:<port>), as a user
    // would: the page and the local backend's URLs then share one origin.
    let page_url = app.address.replace("127.0.0.1", "localhost");
    let args = [std::ffi::OsStr::new(&page_url), std::ffi::OsStr::new("key-of-alice"), scratch.as_os_str()];
    run_in_chromium(runner, &args, &browser_tools(), "the page run").await
}

/// The CORS a backend needs for the built-in page: its origin is DraftStore's own, and a store apart from DraftStore
/// must let it upload.
fn page_cors(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Local => &[],
        Backend::SeaweedFs => &["--cors-allowed-origins", "*"],
    }
}

async fn the_builtin_page_uploads_previews_confirms_and_discards(backend: Backend) {
    let keys = api_keys();
    let (app, main) = backend
        .spawn_with_bucket(&[&["--auth-mode", "api-key", "--api-keys", &keys], page_cors(backend)].concat())
        .await;
    // 55 confirmed objects already: more than a page of the confirmed side.
    let main = draftstore_storage::BucketName::parse(&main).expect("bucket");
    for i in 0..55 {
        let key = draftstore_storage::ObjectKey::parse(&format!("alice/archive/{i:02}.txt")).expect("key");
        app.storage.put_record(&main, &key, bytes::Bytes::from(format!("archived {i}")), false).await.expect("written");
    }
    let scratch = tempfile::tempdir().expect("scratch folder");
    let report = run_builtin_page("run-page.mjs", &app, scratch.path()).await;
    if let Some(keep) = std::env::var_os("DRAFTSTORE_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(scratch.path().join("page.png"), keep);
    }
    assert_eq!(report["errors"], json!([]), "{report}");
    for upload in report["uploads"].as_array().expect("uploads") {
        assert_eq!(upload["state"], json!("done"), "{report}");
        assert_eq!(upload["value"], upload["max"], "{report}");
    }
    let big = report["uploads"]
        .as_array()
        .expect("uploads")
        .iter()
        .find(|u| u["text"].as_str().is_some_and(|t| t.contains("big.bin")));
    assert!(big.expect("big.bin")["updates"].as_u64().unwrap_or_default() > 2, "progress was visible: {report}");
    assert_eq!(report["previewWidth"], json!(1), "the image preview rendered: {report}");
    // The page says what the checks found, and why a program named as an image was refused.
    assert_eq!(report["confirmed"], json!("pixel.png confirmed (image/png, 1 × 1)."), "{report}");
    let refused = report["refused"].as_str().unwrap_or_default();
    assert!(refused.starts_with("fake.png: content type mismatch: it was declared image/png"), "{report}");
    assert_eq!(report["left"], json!([]), "{report}");
    // The confirmed side, at desktop width: a page of 50, then the rest; every name, size, type and date on one
    // line; a draft confirmed under another name, downloaded under its file name, deleted.
    assert_eq!(report["firstPage"], json!(50), "{report}");
    let mut expected: Vec<String> = (0..55).map(|i| format!("archive/{i:02}.txt")).collect();
    expected.push("pixel.png".to_owned());
    assert_eq!(report["objects"], json!(expected), "{report}");
    assert_eq!(report["moreHidden"], json!(true), "{report}");
    for lines in ["draftLines", "objectLines"] {
        let counts = report[lines].as_array().expect("line counts");
        assert!(!counts.is_empty() && counts.iter().all(|n| n == 1), "{lines}: {report}");
    }
    assert_eq!(report["confirmedAs"], json!("notes.txt confirmed as archive/00-renamed été.txt."), "{report}");
    assert_eq!(report["downloadedAs"], json!("00-renamed été.txt"), "{report}");
    assert_eq!(report["downloaded"], json!("notes to keep\n"), "{report}");
    assert_eq!(report["deleted"], json!("archive/00-renamed été.txt deleted."), "{report}");
    // The store agrees: the image is confirmed, byte for byte; the other file is neither a draft nor confirmed.
    let alice = app.as_caller("key-of-alice");
    let png = std::fs::read(scratch.path().join("pixel.png")).expect("pixel");
    assert_eq!(alice.download("pixel.png", Some("main")).await, ("image/png".to_owned(), png));
    alice.download_url("big.bin", None).await.error(404, "OBJECT_NOT_FOUND");
    alice.download_url("fake.png", None).await.error(404, "OBJECT_NOT_FOUND");
    let drafts = alice.post("/api/v1/list-drafts", &json!({})).await.ok();
    let names: Vec<_> = drafts["drafts"].as_array().expect("drafts").iter().map(|d| d["object_name"].clone()).collect();
    assert_eq!(names, [json!("docs/report.pdf")]);
    alice
        .post("/api/v1/stat-object", &json!({"object_name": "archive/00-renamed été.txt"}))
        .await
        .error(404, "OBJECT_NOT_FOUND");
}

on_both_backends!(the_builtin_page_uploads_previews_confirms_and_discards);

/// The URL without its query: where it points, whatever its signature.
fn without_query(url: &str) -> &str {
    url.split('?').next().unwrap_or_default()
}

async fn the_builtin_page_shows_thumbnails_painted_from_placeholders(backend: Backend) {
    let keys = api_keys();
    let settings = ["--auth-mode", "api-key", "--api-keys", &keys, "--image-variants", "thumb=128x128,cover,webp"];
    let app = backend.spawn(&[&settings[..], page_cors(backend)].concat()).await;
    let scratch = tempfile::tempdir().expect("scratch folder");
    let report = run_builtin_page("run-page-images.mjs", &app, scratch.path()).await;
    if let Some(keep) = std::env::var_os("DRAFTSTORE_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(scratch.path().join("images.png"), keep);
    }
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(report["violations"], json!(""), "the Content-Security-Policy refused something: {report}");
    // Every thumbnail's bytes were asked for, and held until the page had been looked at.
    assert!(report["heldCount"].as_u64().unwrap_or_default() >= 2, "{report}");
    let hostile = "<img src=x onerror=window.injected=1>.png";
    let alice = app.as_caller("key-of-alice");
    for (name, (width, height)) in [("photo.png", (320, 200)), (hostile, (150, 240))] {
        let dimensions = format!("{width} × {height}");
        assert!(
            report["confirmed"]
                .as_array()
                .expect("confirmed")
                .contains(&json!(format!("{name} confirmed (image/png, {dimensions}).")))
        );
        // What the API says of the image: the page shows that.
        let stat = alice.post("/api/v1/stat-object", &json!({"object_name": name})).await.ok();
        assert_eq!(stat["image"]["width"], json!(width), "{stat}");
        assert_eq!(stat["image"]["height"], json!(height), "{stat}");
        assert_eq!(
            stat["image"]["variants"],
            json!([{"name": "thumb", "content_type": "image/webp", "width": 128, "height": 128, "size":
                stat["image"]["variants"][0]["size"]}]),
            "{stat}"
        );
        let signed = alice.post("/api/v1/download-url", &json!({"object_name": name, "variant": "thumb"})).await.ok();
        let variant_url = signed["download_url"].as_str().expect("download_url");
        // Before its bytes came: the thumbnail has its variant URL and its size, and the placeholder is painted
        // behind it as a PNG data URL, one that decodes, in the image's orientation.
        let before = &report["before"][name];
        assert_eq!(before["state"], json!("loading"), "{name}: {report}");
        assert_eq!(before["complete"], json!(false), "{name}: {report}");
        assert_eq!(before["alt"], json!(""), "{name}: {report}");
        assert_eq!((&before["width"], &before["height"]), (&json!(48), &json!(48)), "{name}: {report}");
        let src = before["src"].as_str().expect("src");
        assert_eq!(without_query(src), without_query(variant_url), "{name}: {report}");
        if backend == Backend::Local {
            let blobs = format!("{}/blobs/", app.address.replace("127.0.0.1", "localhost"));
            assert!(src.starts_with(&blobs), "{name}: DraftStore serves the variant itself: {src}");
        }
        let background = before["background"].as_str().expect("background");
        assert!(background.starts_with("url(\"data:image/png;base64,"), "{name}: {report}");
        let placeholder = &report["placeholders"][name];
        let (shown_width, shown_height) = (placeholder["width"].as_u64(), placeholder["height"].as_u64());
        let landscape = width > height;
        let (long, short) = if landscape { (shown_width, shown_height) } else { (shown_height, shown_width) };
        assert!(long == Some(32) && short.is_some_and(|s| s > 0 && s < 32), "{name}: {report}");
        // Once loaded: the 128 × 128 variant, the placeholder gone from behind it.
        let after = &report["after"][name];
        assert_eq!(after["state"], json!("loaded"), "{name}: {report}");
        assert_eq!((&after["naturalWidth"], &after["naturalHeight"]), (&json!(128), &json!(128)), "{report}");
        assert_eq!(after["src"], before["src"], "{name}: {report}");
        assert_eq!(after["background"], json!("none"), "{name}: {report}");
        // The name as text beside its one image, the type with the image's dimensions.
        let cells = &report["cells"][name];
        assert_eq!(cells["images"], json!(1), "{name}: {report}");
        assert_eq!(cells["texts"][0], json!(name), "{report}");
        assert_eq!(cells["texts"][2], json!(format!("image/png ({dimensions})")), "{report}");
    }
    // A file that is no image gets no thumbnail, and no dimensions.
    let notes = &report["cells"]["notes.txt"];
    assert_eq!(notes["images"], json!(0), "{report}");
    assert_eq!(notes["texts"][2], json!("text/plain"), "{report}");
    // The name made of HTML stayed text: no script ran, no image of its own appeared.
    assert_eq!(report["injected"], json!({"ran": false, "strayImages": 0}), "{report}");
}

on_both_backends!(the_builtin_page_shows_thumbnails_painted_from_placeholders);

/// The file `name` among an Uppy run's successful uploads.
pub(crate) fn successful_upload<'a>(report: &'a Value, name: &str) -> &'a Value {
    let successful = report["uploads"]["successful"].as_array().expect("successful");
    successful.iter().find(|f| f["name"] == json!(name)).unwrap_or_else(|| panic!("{name} was not uploaded: {report}"))
}
