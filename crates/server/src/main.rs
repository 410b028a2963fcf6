use std::process::ExitCode;

use clap::Parser;
use draftstore::config::{Cli, Command, ServeSettings, Settings};
use draftstore::startup::{Application, shutdown_signal};
use draftstore::telemetry;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let settings = match ServeSettings::try_from(&args) {
                Ok(settings) => settings,
                Err(e) => return config_error(&e),
            };
            telemetry::init(settings.common.log_format);
            let app = match Application::build(settings).await {
                Ok(app) => app,
                Err(e) => return fatal(&e),
            };
            match app.run_until_stopped(shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fatal(&e),
            }
        }
        Command::Clean(args) => {
            let settings = match Settings::try_from(&args.common) {
                Ok(settings) => settings,
                Err(e) => return config_error(&e),
            };
            telemetry::init(settings.log_format);
            eprintln!("draftstore clean: not implemented yet");
            ExitCode::FAILURE
        }
    }
}

fn config_error(error: &draftstore::config::ConfigError) -> ExitCode {
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
