//! The `draftstore` client commands, run as the real binary against the real server on the local backend and on
//! SeaweedFS. Output is captured through pipes, so every run also checks that non-terminal output is plain lines.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::variants::{WITH_VARIANTS, decoded};
use crate::helpers::{
    Backend, TENANTS, TestApp, api_keys, fixture, on_both_backends, serve_settings, spawn, spawn_app_with,
};
use crate::proxy::Proxy;

const MIB: usize = 1024 * 1024;

/// What a run of the binary printed, and how it ended.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// A caller of the binary: the server to call, a token, a state folder and a working folder of its own.
struct Cli {
    url: String,
    token: Option<String>,
    dir: tempfile::TempDir,
}

impl Cli {
    fn new(app: &TestApp) -> Cli {
        Cli { url: app.address.clone(), token: app.bearer.clone(), dir: tempfile::tempdir().expect("tempdir") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_draftstore"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("DRAFTSTORE_URL", &self.url)
            .env("DRAFTSTORE_STATE_DIR", self.state())
            .env_remove("DRAFTSTORE_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(token) = &self.token {
            command.env("DRAFTSTORE_TOKEN", token);
        }
        command
    }

    async fn run(&self, args: &[&str]) -> Run {
        let output = self.command(args).output().await.expect("the binary runs");
        for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            assert!(
                bytes.iter().all(|&b| b == b'\n' || b >= 0x20 && b != 0x7f),
                "{stream} of `draftstore {}` holds control characters: {:?}",
                args.join(" "),
                String::from_utf8_lossy(bytes)
            );
        }
        Run {
            code: output.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(output.stdout).expect("utf-8"),
            stderr: String::from_utf8(output.stderr).expect("utf-8"),
        }
    }

    async fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(run.code, 0, "`draftstore {}` failed: {run:?}", args.join(" "));
        run
    }
}

/// Bytes that differ from part to part and from file to file.
fn content(len: usize, seed: u64) -> Vec<u8> {
    crate::helpers::pseudo_random_bytes(len, seed)
}

async fn on_seaweed_behind(proxy: &mut Proxy, extra: &[&str]) -> TestApp {
    let weed = crate::seaweed::shared().await;
    proxy.forward_to(weed.endpoint.trim_start_matches("http://").to_owned());
    let mut args = weed.s3_args(&crate::seaweed::unique_bucket());
    let endpoint = args.iter().position(|a| a == "--aws-endpoint-url").expect("endpoint argument") + 1;
    args[endpoint] = proxy.url();
    args.extend(extra.iter().map(|s| s.to_string()));
    spawn(serve_settings(&args.iter().map(String::as_str).collect::<Vec<_>>())).await
}

/// The local backend with its signed URLs pointing at the proxy.
async fn local_behind(proxy: &mut Proxy, extra: &[&str]) -> TestApp {
    let url = proxy.url();
    let mut args = vec!["--public-url", &url];
    args.extend_from_slice(extra);
    let app = spawn_app_with(&args).await;
    proxy.forward_to(app.address.trim_start_matches("http://").to_owned());
    app
}

/// A server on `backend` whose signed URLs point at a proxy to the store, which a test can cut.
async fn behind_a_proxy(backend: Backend) -> (TestApp, Proxy) {
    let mut proxy = Proxy::bind().await;
    let app = match backend {
        Backend::Local => local_behind(&mut proxy, &[]).await,
        Backend::SeaweedFs => on_seaweed_behind(&mut proxy, &[]).await,
    };
    (app, proxy)
}

async fn files_small_and_in_parts_round_trip(backend: Backend) {
    let (app, _proxy) = behind_a_proxy(backend).await;
    let cli = Cli::new(&app);
    let small = content(1024, 1);
    let large = content(12 * MIB + 5, 2);
    std::fs::write(cli.path("note.txt"), &small).expect("write");
    std::fs::write(cli.path("video.bin"), &large).expect("write");

    let run = cli
        .ok(&[
            "upload",
            "note.txt",
            "video.bin",
            "--prefix",
            "in/",
            "--confirm",
            "--multipart-threshold",
            "5MiB",
            "--part-size",
            "5MiB",
        ])
        .await;
    assert!(run.stdout.contains("uploaded in/note.txt (1.00 KiB)"), "{run:?}");
    assert!(run.stdout.contains("uploaded in/video.bin (12.00 MiB) in 3 parts"), "{run:?}");
    assert!(run.stdout.contains("confirmed in/note.txt to ") && run.stdout.contains("confirmed in/video.bin to "));
    // Confirmed, so no longer drafts; their types were guessed from the names.
    assert_eq!(cli.ok(&["ls", "--json"]).await.stdout.trim(), "[]");
    let (content_type, _) = app.download("in/note.txt", Some("main")).await;
    assert_eq!(content_type, "text/plain");

    for (name, bytes) in [("in/note.txt", &small), ("in/video.bin", &large)] {
        let run = cli.ok(&["download", name, "--stage", "main", "-o", "copy"]).await;
        assert!(run.stdout.contains(&format!("downloaded {name}")), "{run:?}");
        assert!(std::fs::read(cli.path("copy")).expect("downloaded") == *bytes, "{name} differs after the round trip");
    }
    // Standard output carries the bytes alone when asked.
    let output = cli.command(&["download", "in/note.txt", "-o", "-"]).output().await.expect("runs");
    assert_eq!(output.stdout, small);
    // A name without a file name of its own needs -o; a missing object is a failure naming it.
    let run = cli.run(&["download", "in/absent.txt"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("error: in/absent.txt:") && run.stderr.contains("OBJECT_NOT_FOUND"), "{run:?}");
    assert!(!cli.path("absent.txt").exists(), "a failed download leaves no file");
}

on_both_backends!(files_small_and_in_parts_round_trip);

async fn a_directory_uploads_recursively(backend: Backend) {
    let (app, _proxy) = behind_a_proxy(backend).await;
    let cli = Cli::new(&app);
    let tree = cli.path("site");
    for (file, bytes) in
        [("index.html", "<p>hi</p>"), ("css/main.css", "p{}"), ("img/logo/a.png", "png"), ("z.json", "{}")]
    {
        let path = tree.join(file);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, bytes).expect("write");
    }
    let run = cli.run(&["upload", "site"]).await;
    assert_eq!(run.code, 2, "a directory without --recursive is a usage error: {run:?}");
    cli.ok(&["upload", "--recursive", "site", "--prefix", "www/"]).await;

    let listed: Value = serde_json::from_str(&cli.ok(&["ls", "www/", "--json"]).await.stdout).expect("JSON");
    let mut names: Vec<_> = listed.as_array().expect("array").iter().map(|d| d["object_name"].clone()).collect();
    names.sort_by_key(|n| n.to_string());
    assert_eq!(
        names,
        [json!("www/css/main.css"), json!("www/img/logo/a.png"), json!("www/index.html"), json!("www/z.json")]
    );
    let html = listed.as_array().expect("array").iter().find(|d| d["object_name"] == "www/index.html").expect("listed");
    assert_eq!((html["size"].clone(), html["content_type"].clone()), (json!(9), json!("text/html")));

    let table = cli.ok(&["ls", "www/"]).await.stdout;
    let mut lines = table.lines();
    assert!(lines.next().expect("header").starts_with("NAME"), "{table}");
    assert_eq!(lines.count(), 4, "{table}");

    let run = cli.ok(&["discard", "www/z.json"]).await;
    assert!(run.stdout.contains("discarded www/z.json"));
    let run = cli.run(&["confirm", "www/index.html", "www/z.json"]).await;
    assert_eq!(run.code, 1, "one of two failed: {run:?}");
    assert!(run.stdout.contains("confirmed www/index.html"), "{run:?}");
    assert!(run.stderr.contains("error: www/z.json:") && run.stderr.contains("OBJECT_NOT_FOUND"), "{run:?}");
    let (_, bytes) = app.download("www/index.html", Some("main")).await;
    assert_eq!(bytes, b"<p>hi</p>");

    // A program named as an image is refused at confirm, and the CLI says why.
    std::fs::write(cli.path("evil.png"), crate::helpers::windows_program()).expect("write");
    let run = cli.run(&["upload", "evil.png", "--confirm"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("error: evil.png:") && run.stderr.contains("CONTENT_TYPE_MISMATCH"), "{run:?}");
    assert!(run.stderr.contains("declared image/png but its bytes are active content"), "{run:?}");
}

on_both_backends!(a_directory_uploads_recursively);

/// The one recorded upload in the state folder, once it lists part 1 and at least `parts` parts.
fn recorded_upload(state: &Path, parts: usize) -> Option<Value> {
    let dir = state.join("uploads");
    for entry in std::fs::read_dir(dir).ok()? {
        let path = entry.ok()?.path();
        if path.extension().is_some_and(|e| e == "json") {
            let recorded: Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
            let listed = recorded["parts"].as_object()?;
            if listed.len() >= parts && listed.contains_key("1") {
                return Some(recorded);
            }
        }
    }
    None
}

const PART: &str = "5MiB";
const FILE_SIZE: usize = 40 * MIB + 1234;

/// Starts an upload of `big.bin` in 5 MiB parts, slowed by the proxy, and kills the client (SIGKILL) once the
/// store holds two parts; returns the upload as recorded and the bytes of the parts the store holds.
async fn interrupted_upload(app: &TestApp, cli: &Cli, proxy: &Proxy) -> (Value, u64) {
    std::fs::write(cli.path("big.bin"), content(FILE_SIZE, 7)).expect("write");
    proxy.limit(4 * MIB as u64);
    let mut child = cli
        .command(&["upload", "big.bin", "--part-size", PART, "--multipart-threshold", PART, "--parallel", "2"])
        .spawn()
        .expect("starts");
    let deadline = Instant::now() + Duration::from_secs(60);
    let recorded = loop {
        if let Some(recorded) = recorded_upload(&cli.state(), 2) {
            break recorded;
        }
        assert!(child.try_wait().expect("status").is_none(), "the upload ended before it could be killed");
        assert!(Instant::now() < deadline, "no part was recorded within a minute");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    child.start_kill().expect("SIGKILL");
    let status = child.wait().await.expect("waits");
    assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9), "killed by SIGKILL");
    proxy.limit(0);
    let listed = app
        .post("/api/v1/multipart/list-parts", &json!({"object_name": "big.bin", "upload_id": recorded["upload_id"]}))
        .await
        .ok();
    let stored: u64 =
        listed["parts"].as_array().expect("parts").iter().map(|p| p["size"].as_u64().expect("size")).sum();
    assert!(stored >= 2 * 5 * MIB as u64, "the recorded parts are in the store: {listed}");
    (recorded, stored)
}

async fn a_killed_upload_resumes_without_resending_stored_parts(backend: Backend) {
    let (app, proxy) = behind_a_proxy(backend).await;
    let cli = Cli::new(&app);
    let (_, stored) = interrupted_upload(&app, &cli, &proxy).await;

    proxy.reset();
    let run = cli.ok(&["upload", "big.bin", "--part-size", PART, "--multipart-threshold", PART, "--confirm"]).await;
    let sent = proxy.sent();
    assert!(run.stdout.contains("already stored by an earlier run"), "{run:?}");
    println!(
        "resume ({}): {stored} of {FILE_SIZE} bytes stored before SIGKILL; the re-run sent {sent} bytes",
        backend.label()
    );
    assert!(sent < FILE_SIZE as u64, "the re-run sent {sent} bytes, the whole file is {FILE_SIZE}");
    assert!(
        sent <= FILE_SIZE as u64 - stored + MIB as u64,
        "the re-run sent {sent} bytes: more than the {} missing (plus 1 MiB of requests)",
        FILE_SIZE as u64 - stored
    );
    let (_, bytes) = app.download("big.bin", Some("main")).await;
    assert!(bytes == content(FILE_SIZE, 7), "the resumed object differs from the file");
    assert!(recorded_upload(&cli.state(), 0).is_none(), "a completed upload leaves no record behind");
}

on_both_backends!(a_killed_upload_resumes_without_resending_stored_parts);

/// A download killed half-way (SIGKILL) resumes with a range request: the re-run receives only what was missing,
/// and the file is whole.
async fn a_killed_download_resumes(backend: Backend) {
    let (app, proxy) = behind_a_proxy(backend).await;
    let cli = Cli::new(&app);
    let size = 24 * MIB;
    let bytes = content(size, 9);
    app.upload("movie.bin", None, &bytes).await;
    app.confirm("movie.bin").await.ok();
    proxy.limit_downloads(4 * MIB as u64);
    let mut child = cli.command(&["download", "movie.bin", "-o", "movie.bin"]).spawn().expect("starts");
    let partial = cli.path(".movie.bin.draftstore-partial");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&partial).map_or(0, |m| m.len()) < 4 * MIB as u64 {
        assert!(child.try_wait().expect("status").is_none(), "the download ended before it could be killed");
        assert!(Instant::now() < deadline, "the download wrote nothing within a minute");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.start_kill().expect("SIGKILL");
    child.wait().await.expect("waits");
    let had = std::fs::metadata(&partial).expect("the partial file is kept").len();
    assert!(had < size as u64, "killed half-way: {had} of {size} bytes");

    proxy.limit_downloads(0);
    proxy.reset();
    let run = cli.ok(&["download", "movie.bin", "-o", "movie.bin"]).await;
    let received = proxy.received();
    println!(
        "download resume ({}): {had} of {size} bytes kept after SIGKILL; the re-run received {received} bytes",
        backend.label()
    );
    assert!(received < (size as u64 - had) + 64 * 1024, "the re-run received {received} bytes: {run:?}");
    assert!(std::fs::read(cli.path("movie.bin")).expect("written") == bytes, "the resumed file differs");
    assert!(!partial.exists(), "no partial file is left behind");
}

on_both_backends!(a_killed_download_resumes);

async fn a_file_changed_between_runs_is_caught(backend: Backend) {
    let (app, proxy) = behind_a_proxy(backend).await;
    let cli = Cli::new(&app);
    interrupted_upload(&app, &cli, &proxy).await;
    // Part 1 is in the store; change a byte of it on disk, keeping the size and the rest.
    let mut changed = content(FILE_SIZE, 7);
    changed[100] ^= 0xff;
    std::fs::write(cli.path("big.bin"), &changed).expect("write");

    let run = cli.ok(&["upload", "big.bin", "--part-size", PART, "--multipart-threshold", PART, "--confirm"]).await;
    assert!(run.stderr.contains("big.bin: part 1 changed since it was sent; sending it again"), "{run:?}");
    let (_, bytes) = app.download("big.bin", Some("main")).await;
    assert!(bytes == changed, "the object is the file as it is now");

    // A file that changed size cannot keep its parts: the upload starts over, and still ends right.
    interrupted_upload(&app, &cli, &proxy).await;
    let longer = content(FILE_SIZE + 10, 8);
    std::fs::write(cli.path("big.bin"), &longer).expect("write");
    let run = cli.ok(&["upload", "big.bin", "--part-size", PART, "--multipart-threshold", PART]).await;
    assert!(run.stderr.contains("changed size since the interrupted upload; starting over"), "{run:?}");
    let (_, bytes) = app.download("big.bin", Some("draft")).await;
    assert!(bytes == longer);
}

on_both_backends!(a_file_changed_between_runs_is_caught);

#[tokio::test]
async fn a_wrong_token_fails_with_the_servers_message() {
    let app = spawn_app_with(&["--auth-mode", "api-key", "--api-keys", &api_keys(&TENANTS)]).await;
    let refused = app.as_caller("not-a-key").upload_url("a.txt", Some("text/plain")).await;
    refused.error(401, "ACCESS_DENIED");
    let message = refused.body["error_message"].as_str().expect("message").to_owned();

    let mut cli = Cli::new(&app.as_caller("not-a-key"));
    std::fs::write(cli.path("a.txt"), "a").expect("write");
    for args in [&["upload", "a.txt"][..], &["ls"], &["confirm", "a.txt"], &["download", "a.txt"]] {
        let run = cli.run(args).await;
        assert_eq!(run.code, 1, "{run:?}");
        assert!(run.stderr.contains(&message) && run.stderr.contains("ACCESS_DENIED"), "{args:?}: {run:?}");
    }
    assert!(cli.run(&["upload", "a.txt"]).await.stderr.contains("error: a.txt:"), "the failure names the file");

    cli.token = Some(TENANTS[0].1.to_owned());
    cli.ok(&["upload", "a.txt", "--quiet"]).await;
    let listed: Value = serde_json::from_str(&cli.ok(&["ls", "--json"]).await.stdout).expect("JSON");
    assert_eq!(listed[0]["object_name"], "a.txt", "names are the caller's own, without the tenant");
}

#[tokio::test]
async fn usage_errors_exit_2_and_quiet_prints_nothing() {
    let app = spawn_app_with(&[]).await;
    let cli = Cli::new(&app);
    std::fs::write(cli.path("a.txt"), "a").expect("write");
    std::fs::write(cli.path("b.txt"), "b").expect("write");
    for args in [
        &["upload"][..],
        &["upload", "a.txt", "--parallel", "0"],
        &["upload", "a.txt", "--part-size", "lots"],
        &["upload", "a.txt", "b.txt", "--name", "x"],
        &["upload", "a.txt", "--overwrite"],
        &["download", "a.txt", "--stage", "attic"],
        &["ls", "--url", "ftp://example.test"],
    ] {
        let run = cli.run(args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(!run.stderr.is_empty(), "{args:?} says why");
    }
    let run = cli.ok(&["upload", "a.txt", "b.txt", "--confirm", "--quiet"]).await;
    assert_eq!((run.stdout.as_str(), run.stderr.as_str()), ("", ""));
    // Without --overwrite, a confirmed object is not replaced.
    cli.ok(&["upload", "a.txt", "--quiet"]).await;
    let run = cli.run(&["confirm", "a.txt"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("OBJECT_ALREADY_EXISTS"), "{run:?}");
    cli.ok(&["confirm", "a.txt", "--overwrite"]).await;
    // A missing file fails, naming it, and the others still go.
    let run = cli.run(&["upload", "missing.txt", "b.txt", "--name", "c.txt"]).await;
    assert_eq!(run.code, 2, "--name with two files is a usage error: {run:?}");
    let run = cli.run(&["upload", "missing.txt", "b.txt", "--prefix", "more/"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("error: missing.txt:"), "{run:?}");
    assert!(run.stdout.contains("uploaded more/b.txt"), "{run:?}");
    // No server: a clear failure, not a hang.
    let unreachable = Cli { url: "http://127.0.0.1:9".to_owned(), token: None, dir: tempfile::tempdir().expect("dir") };
    std::fs::write(unreachable.path("a.txt"), "a").expect("write");
    let run = unreachable.run(&["upload", "a.txt"]).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("error: a.txt: could not reach http://127.0.0.1:9/"), "{run:?}");
}

/// Confirmed objects from the command line: a draft confirmed under another name with metadata, then listed,
/// described and deleted; `--as` names one object, `--meta` takes KEY=VALUE.
#[tokio::test]
async fn confirmed_objects_from_the_command_line() {
    let (app, _proxy) = behind_a_proxy(Backend::Local).await;
    let cli = Cli::new(&app);
    std::fs::write(cli.path("scan.pdf"), b"%PDF-1.4\n% a scanned receipt\n").expect("write");
    cli.ok(&["upload", "scan.pdf"]).await;
    let run = cli
        .ok(&["confirm", "scan.pdf", "--as", "orders/7/scan.pdf", "--meta", "owner-id=7", "--meta", "note=a=b"])
        .await;
    assert!(run.stdout.contains("confirmed orders/7/scan.pdf to "), "{run:?}");
    let listed: Value = serde_json::from_str(&cli.ok(&["objects", "orders/", "--json"]).await.stdout).expect("JSON");
    assert_eq!(listed[0]["object_name"], "orders/7/scan.pdf");
    assert_eq!(listed[0]["metadata"], json!({"owner-id": "7", "note": "a=b"}));
    let table = cli.ok(&["objects"]).await.stdout;
    assert!(table.starts_with("NAME") && table.contains("CONFIRMED") && table.contains("orders/7/scan.pdf"), "{table}");
    let stat: Value = serde_json::from_str(&cli.ok(&["stat", "orders/7/scan.pdf"]).await.stdout).expect("JSON");
    assert_eq!((stat["content_type"].as_str(), stat["size"].as_u64()), (Some("application/pdf"), Some(29)));
    assert_eq!(cli.ok(&["delete", "orders/7/scan.pdf"]).await.stdout.trim(), "deleted orders/7/scan.pdf");
    let run = cli.run(&["stat", "orders/7/scan.pdf"]).await;
    assert!(run.code == 1 && run.stderr.contains("OBJECT_NOT_FOUND"), "{run:?}");
    assert_eq!(cli.run(&["confirm", "a", "b", "--as", "c"]).await.code, 2, "--as names one object");
    assert_eq!(cli.run(&["confirm", "a", "--meta", "no-value"]).await.code, 2, "--meta takes KEY=VALUE");
}

/// An image confirmed from the command line shows what confirm made of it; `stat` lists its variants and `download
/// --variant` writes one, named after the object and the variant unless `-o` names the file.
async fn image_variants_from_the_command_line(backend: Backend) {
    let app = backend.spawn(&WITH_VARIANTS).await;
    let cli = Cli::new(&app);
    std::fs::write(cli.path("photo.png"), fixture("photo.png")).expect("write");
    let run = cli.ok(&["upload", "photo.png", "--prefix", "pics/", "--confirm"]).await;
    assert!(run.stdout.contains("confirmed pics/photo.png to "), "{run:?}");
    assert!(run.stdout.contains(", image 64x48, variants thumb (32x32 image/webp, "), "{run:?}");
    assert!(run.stdout.contains("preview (40x30 image/png, "), "{run:?}");

    let stat: Value = serde_json::from_str(&cli.ok(&["stat", "pics/photo.png"]).await.stdout).expect("JSON");
    assert_eq!((stat["image"]["width"].as_u64(), stat["image"]["height"].as_u64()), (Some(64), Some(48)));
    assert!(stat["image"]["placeholder"].as_str().is_some_and(|p| !p.is_empty()), "{stat}");
    let variants = stat["image"]["variants"].as_array().expect("variants");
    let named: Vec<_> = variants.iter().map(|v| (v["name"].as_str(), v["content_type"].as_str())).collect();
    assert_eq!(named, [(Some("thumb"), Some("image/webp")), (Some("preview"), Some("image/png"))]);

    let run = cli.ok(&["download", "pics/photo.png", "--variant", "thumb"]).await;
    assert!(run.stdout.contains("downloaded variant thumb of pics/photo.png ("), "{run:?}");
    let thumb = std::fs::read(cli.path("photo.thumb.webp")).expect("named after the object and the variant");
    assert_eq!(thumb.len() as u64, variants[0]["size"].as_u64().expect("size"));
    assert_eq!(decoded(&thumb), (image::ImageFormat::WebP, 32, 32));
    cli.ok(&["download", "pics/photo.png", "--variant", "preview", "--stage", "main", "-o", "small.png"]).await;
    assert_eq!(decoded(&std::fs::read(cli.path("small.png")).expect("written")), (image::ImageFormat::Png, 40, 30));
    cli.ok(&["download", "pics/photo.png", "-o", "original.png"]).await;
    assert_eq!(std::fs::read(cli.path("original.png")).expect("written"), fixture("photo.png"));

    // Refusals exit 1 with the server's message and code, and leave no file behind.
    let before = std::fs::read_dir(cli.dir.path()).expect("listed").count();
    let run = cli.run(&["download", "pics/photo.png", "--variant", "huge"]).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.contains("error: pics/photo.png: object 'pics/photo.png' has no variant 'huge' (VARIANT_NOT_FOUND)"),
        "{run:?}"
    );
    for (args, code) in [
        (&["--variant", "../thumb"][..], "INVALID_REQUEST"),
        (&["--variant", &"x".repeat(33)][..], "INVALID_REQUEST"),
        (&["--variant", "thumb", "--stage", "draft"][..], "VARIANT_NOT_FOUND"),
    ] {
        let run = cli.run(&[&["download", "pics/photo.png"][..], args].concat()).await;
        assert!(run.code == 1 && run.stderr.contains(&format!("({code})")), "{args:?}: {run:?}");
    }
    assert_eq!(std::fs::read_dir(cli.dir.path()).expect("listed").count(), before, "no file was written");

    let help = cli.ok(&["download", "--help"]).await.stdout;
    assert!(help.contains("--variant <VARIANT>") && help.contains("photo.thumb.webp"), "{help}");
}

on_both_backends!(image_variants_from_the_command_line);
