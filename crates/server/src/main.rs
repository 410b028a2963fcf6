use std::process::ExitCode;

use clap::Parser;
use draftstore::cli;
use draftstore::config::{Cli, Command, DoctorArgs, Settings};
use draftstore::startup::{Application, open_backend, shutdown_signal};
use draftstore::telemetry;
use time::OffsetDateTime;

/// mimalloc, not the system's allocator: the request path allocates a few dozen small objects, and with traces on the
/// exporter's thread frees what the request threads allocated; glibc's malloc made both cost about a tenth more.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The client commands drive a few transfers: one thread does (file reads and hashing run on blocking threads).
    let runtime = match cli.command {
        Command::Serve(_) | Command::Clean(_) => tokio::runtime::Builder::new_multi_thread().enable_all().build(),
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    match runtime {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => {
            if let Err(e) = args.validate() {
                return config_error(&e);
            }
            let settings = *args;
            let tracing = telemetry::init(settings.common.telemetry.log_format);
            let app = match Application::build(settings).await {
                Ok(app) => app,
                Err(e) => return fatal(&e),
            };
            let code = match app.run_until_stopped(shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fatal(&e),
            };
            tracing.shutdown().await;
            code
        }
        Command::Clean(args) => {
            if let Err(e) = args.common.validate() {
                return config_error(&e);
            }
            let settings = &args.common;
            let tracing = telemetry::init(settings.telemetry.log_format);
            let code = clean(settings, args.dry_run, args.install_lifecycle).await;
            tracing.shutdown().await;
            code
        }
        Command::Doctor(args) => {
            let tracing = telemetry::init(args.common.telemetry.log_format);
            let code = doctor(&args).await;
            tracing.shutdown().await;
            code
        }
        Command::Upload(args) => cli::upload(*args).await,
        Command::Download(args) => cli::download(*args).await,
        Command::Confirm(args) => cli::confirm(*args).await,
        Command::Discard(args) => cli::discard(*args).await,
        Command::Ls(args) => cli::ls(*args).await,
        Command::Objects(args) => cli::objects(*args).await,
        Command::Stat(args) => cli::stat(*args).await,
        Command::Delete(args) => cli::delete(*args).await,
    }
}

/// One cleaning pass: exit 0 when every expired draft was removed, 1 otherwise (after trying all of them).
async fn clean(settings: &Settings, dry_run: bool, install_lifecycle: bool) -> ExitCode {
    // The local backend's URLs are never signed by this command: any base will do.
    let unused_base = url::Url::parse("http://localhost").expect("a constant URL parses");
    let backend = match open_backend(settings, unused_base, None).await {
        Ok(backend) => backend,
        Err(e) => return fatal(&e),
    };
    let cleaner = settings.cleaner(backend.store).dry_run(dry_run);
    if install_lifecycle || settings.service.draft_lifecycle {
        match cleaner.install_lifecycle().await {
            Ok(true) => tracing::info!("lifecycle rule installed on the draft bucket"),
            Ok(false) => tracing::info!("this backend has no lifecycle rules; the cleaner alone removes drafts"),
            Err(e) => return fatal(&e),
        }
    }
    let report = cleaner
        .clean_once_reporting(OffsetDateTime::now_utc(), |object| {
            if dry_run {
                println!("would remove {} ({} bytes, last modified {})", object.key, object.size, object.last_modified);
            }
        })
        .await;
    report.log();
    println!("{}", report.summary());
    if report.succeeded() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `draftstore doctor`: exit 2 for bad settings, else what the probe says of the store they name.
async fn doctor(args: &DoctorArgs) -> ExitCode {
    let settings = &args.common;
    if let Err(e) = settings.validate() {
        return config_error(&e);
    }
    // The local backend's URLs are signed in-process, never served by this command: any base will do.
    let unused_base = url::Url::parse("http://localhost").expect("a constant URL parses");
    let backend = open_backend(settings, unused_base, None).await;
    let opened = match &backend {
        Ok(backend) => Ok(std::sync::Arc::clone(&backend.store.probe)),
        Err(e) => Err(e as &dyn std::error::Error),
    };
    let calls = settings.storage_calls();
    draftstore::probe::doctor(opened, &settings.storage, &settings.service, calls, args.json).await
}

fn config_error(error: &draftstore::setting::ConfigError) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(2)
}

/// Reports a start-up or serving failure with its whole cause chain.
fn fatal(error: &dyn std::error::Error) -> ExitCode {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    tracing::error!(error = %message, "DraftStore stopped");
    eprintln!("error: {message}");
    ExitCode::FAILURE
}
