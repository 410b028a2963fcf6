//! Wiring: settings in, a running server out. `main` and the tests both go through [`Application::build`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use draftstore_storage::Storage;
use draftstore_storage::local::{LocalConfig, LocalStorage};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use url::Url;

use crate::config::{ServeSettings, Settings, StorageSettings};
use crate::http::{AppState, router};
use crate::service::DraftService;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address}")]
    Bind { address: SocketAddr, source: io::Error },
    #[error("cannot open the storage backend")]
    Storage(#[source] draftstore_storage::Error),
    #[error("cannot create the buckets")]
    Buckets(#[source] crate::error::Error),
    #[error("STORAGE_TYPE={0} is not supported yet")]
    Unsupported(&'static str),
}

/// The storage backend with, for the local one, the handle its blob routes need.
#[derive(Debug)]
pub struct Backend {
    pub storage: Arc<dyn Storage>,
    pub local: Option<Arc<LocalStorage>>,
}

/// Opens the configured backend. `public_url` is where clients reach this server (local backend only).
pub async fn open_backend(
    settings: &Settings,
    public_url: Url,
    signing_key: Option<Vec<u8>>,
) -> Result<Backend, StartupError> {
    match &settings.storage {
        StorageSettings::Local { data_dir } => {
            let local = LocalStorage::open(LocalConfig { root: data_dir.clone(), public_url, signing_key })
                .await
                .map_err(StartupError::Storage)?;
            let local = Arc::new(local);
            Ok(Backend { storage: local.clone(), local: Some(local) })
        }
        StorageSettings::S3(s3) => Err(StartupError::Unsupported(s3.flavour)),
    }
}

/// A built server, listening, not yet serving.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    state: AppState,
}

impl Application {
    /// Binds the listener, opens the store and creates the buckets if missing.
    pub async fn build(settings: ServeSettings) -> Result<Self, StartupError> {
        let address = SocketAddr::new(settings.bind_address, settings.http_port);
        let listener = TcpListener::bind(address).await.map_err(|source| StartupError::Bind { address, source })?;
        let address = listener.local_addr().map_err(|source| StartupError::Bind { address, source })?;
        let public_url = settings.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://localhost:{}", address.port())).expect("a localhost URL parses")
        });
        let signing_key = settings.signing_key.as_ref().map(|k| k.expose_secret().as_bytes().to_vec());
        let common = &settings.common;
        let backend = open_backend(common, public_url, signing_key).await?;
        let service = DraftService::new(
            backend.storage,
            common.buckets.clone(),
            common.upload_ttl,
            common.download_ttl,
            common.storage_timeout,
        );
        service.create_buckets().await.map_err(StartupError::Buckets)?;
        Ok(Self { listener, address, state: AppState { service, local: backend.local } })
    }

    /// The port the HTTP server listens on (the real one when 0 was asked for).
    pub fn http_port(&self) -> u16 {
        self.address.port()
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        tracing::info!(address = %self.address, "DraftStore HTTP server listening");
        axum::serve(self.listener, router(self.state)).with_graceful_shutdown(shutdown).await
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(signal) => signal,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = interrupt.await;
            return;
        }
    };
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT received, shutting down"),
        _ = terminate.recv() => tracing::info!("SIGTERM received, shutting down"),
    }
}
