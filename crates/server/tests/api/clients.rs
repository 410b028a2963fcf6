//! The Python and TypeScript clients (`clients/`), tested with their own runners (pytest, Node's test runner)
//! against the real server on the local backend and on SeaweedFS; their generated types kept in step with the
//! running server's `/openapi.json`; their packages built (`python -m build`, `npm pack`) and installed into a clean
//! folder that then runs one upload. The Python tools come from scripts/test (`.tools/clients-python`); the
//! TypeScript package builds itself as its page says (`npm ci && npm pack`, with the compiler its lockfile pins).

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::helpers::variants::WITH_VARIANTS;
use crate::helpers::{Backend, TENANTS, TestApp, api_keys, on_both_backends, spawn_app};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tools(variable: &str, folder: &str) -> PathBuf {
    let path = std::env::var_os(variable).map(PathBuf::from).unwrap_or_else(|| repo().join(".tools").join(folder));
    assert!(path.is_dir(), "{} is not installed at {}: run scripts/test", folder, path.display());
    path
}

fn python_tools() -> PathBuf {
    tools("DRAFTSTORE_CLIENTS_PYTHON", "clients-python")
}

async fn run(mut command: Command) -> Output {
    let shown = format!("{command:?}");
    let output = tokio::task::spawn_blocking(move || command.output()).await.expect("joined");
    output.unwrap_or_else(|e| panic!("{shown}: {e}"))
}

fn succeeded(what: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{what} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// Builds the TypeScript client as docs/client-typescript.md says, `npm ci && npm pack` in its folder, once per test
/// run: its devDependencies from its lockfile, `dist/` compiled by the prepack script, and the tarball, whose path
/// this returns.
async fn build_typescript() -> &'static PathBuf {
    static BUILT: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            let folder = repo().join("clients/typescript");
            let mut ci = Command::new("npm");
            ci.args(["ci", "--no-audit", "--no-fund"]).current_dir(&folder);
            succeeded("npm ci", &run(ci).await);
            let destination = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("typescript-client");
            std::fs::create_dir_all(&destination).expect("created");
            let mut pack = Command::new("npm");
            pack.args(["pack", "--pack-destination"]).arg(&destination).current_dir(&folder);
            let printed = succeeded("npm pack", &run(pack).await);
            destination.join(printed.lines().last().unwrap_or_default().trim())
        })
        .await
}

/// A program of the TypeScript client's devDependencies, installed by [`build_typescript`].
fn typescript_tool(path: &str) -> PathBuf {
    repo().join("clients/typescript/node_modules").join(path)
}

/// A server with API keys for the test tenants, and one more on the same backend with one request a second.
async fn servers(backend: Backend) -> (TestApp, TestApp) {
    let keys = api_keys(&TENANTS);
    // Alice is named an operator: the clients' tests make the operator call (draft-bucket) too. The images the
    // tests confirm are given the variants of the Rust tests.
    let with_keys =
        ["--auth-mode", "api-key", "--api-keys", &keys, "--admin-tenants", "alice", WITH_VARIANTS[0], WITH_VARIANTS[1]];
    let limited = [&with_keys[..], &["--rate-limit", "1", "--rate-limit-burst", "1"]].concat();
    (backend.spawn(&with_keys).await, backend.spawn(&limited).await)
}

fn with_servers(command: &mut Command, (app, limited): &(TestApp, TestApp)) {
    let keys: Vec<_> = TENANTS.iter().map(|(_, key)| *key).collect();
    command
        .env("DRAFTSTORE_URL", &app.address)
        .env("DRAFTSTORE_LIMITED_URL", &limited.address)
        .env("DRAFTSTORE_KEYS", keys.join(","))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(repo());
}

async fn the_python_client(backend: Backend) {
    let servers = servers(backend).await;
    let mut pytest = Command::new("python3");
    pytest.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "clients/python/tests"]);
    let path = std::env::join_paths([repo().join("clients/python/src"), python_tools()]).expect("paths join");
    pytest.env("PYTHONPATH", path);
    with_servers(&mut pytest, &servers);
    let report = succeeded("pytest", &run(pytest).await);
    let summary = report.lines().rev().find(|l| l.contains(" passed")).unwrap_or_default().to_owned();
    crate::helpers::report(&format!("python client ({}): {summary}", backend.label()));
    assert!(summary.contains("6 passed") && !summary.contains("failed") && !summary.contains("skipped"), "{report}");
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread")]
    the_python_client
);

async fn the_typescript_client(backend: Backend) {
    build_typescript().await;
    let servers = servers(backend).await;
    let mut node = Command::new("node");
    node.args(["--test", "clients/typescript/test/"]);
    with_servers(&mut node, &servers);
    let report = succeeded("node --test", &run(node).await);
    let count = |what: &str| {
        report.lines().find_map(|l| l.strip_prefix(&format!("# {what} "))).and_then(|n| n.trim().parse::<u32>().ok())
    };
    crate::helpers::report(&format!(
        "typescript client ({}): {} passed",
        backend.label(),
        count("pass").unwrap_or_default()
    ));
    assert_eq!((count("pass"), count("fail"), count("skipped")), (Some(6), Some(0), Some(0)), "{report}");
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread")]
    the_typescript_client
);

/// Both clients' generated parts are what their generators make of the running server's document (a server with
/// the default settings): a change to the API that is not regenerated fails here.
#[tokio::test(flavor = "multi_thread")]
async fn the_clients_generated_types_match_the_servers_document() {
    let app = spawn_app().await;
    let document = app.client.get(format!("{}/openapi.json", app.address)).send().await.expect("sent");
    let work = tempfile::tempdir().expect("tempdir");
    let path = work.path().join("openapi.json");
    std::fs::write(&path, document.bytes().await.expect("body")).expect("written");

    let mut python = Command::new("python3");
    python.arg(repo().join("clients/python/generate.py")).arg(&path);
    let generated = succeeded("generate.py", &run(python).await);
    let committed = std::fs::read_to_string(repo().join("clients/python/src/draftstore/_models.py")).expect("read");
    assert!(
        generated == committed,
        "clients/python/src/draftstore/_models.py is not what generate.py makes of /openapi.json: run \
         `python3 clients/python/generate.py openapi.json > clients/python/src/draftstore/_models.py`"
    );

    build_typescript().await;
    let out = work.path().join("schema.ts");
    let mut typescript = Command::new("node");
    typescript.arg(typescript_tool("openapi-typescript/bin/cli.js")).arg(&path).arg("-o").arg(&out);
    succeeded("openapi-typescript", &run(typescript).await);
    let committed = std::fs::read_to_string(repo().join("clients/typescript/src/schema.ts")).expect("read");
    assert!(
        std::fs::read_to_string(&out).expect("generated") == committed,
        "clients/typescript/src/schema.ts is not what openapi-typescript makes of /openapi.json: run `npm run \
         generate` in clients/typescript against a server with the default settings"
    );
}

/// `python -m build` and `npm pack` make packages that, installed into a clean folder of their own, import and
/// upload a file.
#[tokio::test(flavor = "multi_thread")]
async fn the_built_packages_install_and_upload() {
    let app = spawn_app().await;
    let work = tempfile::tempdir().expect("tempdir");
    let dist = work.path().join("dist");

    // Built from a copy: setuptools writes beside the sources.
    let source = work.path().join("python");
    let mut copy = Command::new("cp");
    copy.arg("-r").arg(repo().join("clients/python")).arg(&source);
    succeeded("cp", &run(copy).await);
    let mut build = Command::new("python3");
    build
        .args(["-m", "build", "--no-isolation", "--outdir"])
        .arg(&dist)
        .arg(&source)
        .env("PYTHONPATH", python_tools())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    succeeded("python -m build", &run(build).await);
    let wheel = std::fs::read_dir(&dist)
        .expect("built")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .expect("a wheel");
    assert!(
        std::fs::read_dir(&dist).expect("built").any(|e| e
            .expect("entry")
            .path()
            .to_string_lossy()
            .ends_with(".tar.gz"))
    );
    let site = work.path().join("site");
    let mut install = Command::new("python3");
    install
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-deps", "--target"])
        .arg(&site)
        .arg(&wheel);
    succeeded("pip install", &run(install).await);
    let file = work.path().join("hello.txt");
    std::fs::write(&file, b"hello from the wheel").expect("written");
    let mut python = Command::new("python3");
    python
        .args([
            "-c",
            "import sys, draftstore; print(draftstore.Client(sys.argv[1]).upload_file(sys.argv[2], 'py/hello.txt'))",
        ])
        .arg(&app.address)
        .arg(&file)
        // The package from the wheel; httpx, its one dependency, from the tools.
        .env("PYTHONPATH", std::env::join_paths([&site, &python_tools()]).expect("paths join"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(work.path());
    let printed = succeeded("the installed wheel", &run(python).await);
    assert!(printed.contains("'object_name': 'py/hello.txt'"), "{printed}");

    let tarball = build_typescript().await;
    let project = work.path().join("project");
    std::fs::create_dir_all(&project).expect("created");
    std::fs::write(project.join("package.json"), r#"{"name": "a-project", "private": true, "type": "module"}"#)
        .expect("written");
    let mut add = Command::new("npm");
    add.args(["install", "--silent", "--no-audit", "--no-fund", "--offline"]).arg(tarball).current_dir(&project);
    succeeded("npm install of the package", &run(add).await);
    let script = "import { DraftStore } from '@draftstore/client'\n\
                  import { signRequest } from '@draftstore/client/uppy'\n\
                  if (typeof signRequest !== 'function') throw new Error('no Uppy preset')\n\
                  const client = new DraftStore(process.argv[2])\n\
                  console.log(JSON.stringify(await client.uploadFile(process.argv[3], 'ts/hello.txt')))\n";
    std::fs::write(project.join("upload.mjs"), script).expect("written");
    let mut node = Command::new("node");
    node.arg("upload.mjs").arg(&app.address).arg(&file).current_dir(&project);
    let printed = succeeded("the installed package", &run(node).await);
    assert!(printed.contains(r#""objectName":"ts/hello.txt""#), "{printed}");
    let alice = app.download_url("py/hello.txt", Some("draft")).await.ok();
    assert!(alice["download_url"].is_string());
    app.download_url("ts/hello.txt", Some("draft")).await.ok();
}

/// The FastAPI example (examples/fastapi) end to end with its own tests, served by uvicorn, against the real server.
#[tokio::test(flavor = "multi_thread")]
async fn the_fastapi_example_publishes_a_post() {
    let app = spawn_app().await;
    let examples = tools("DRAFTSTORE_EXAMPLES_PYTHON", "examples-python");
    let mut pytest = Command::new("python3");
    pytest.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "test_app.py"]);
    let path = std::env::join_paths([
        repo().join("examples/fastapi"),
        repo().join("clients/python/src"),
        python_tools(),
        examples,
    ])
    .expect("paths join");
    pytest
        .env("PYTHONPATH", path)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("DRAFTSTORE_URL", &app.address)
        .current_dir(repo().join("examples/fastapi"));
    let report = succeeded("the FastAPI example's tests", &run(pytest).await);
    let summary = report.lines().rev().find(|l| l.contains(" passed")).unwrap_or_default().to_owned();
    crate::helpers::report(&format!("fastapi example: {summary}"));
    assert!(summary.contains("2 passed") && !summary.contains("failed"), "{report}");
}
