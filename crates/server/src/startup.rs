//! Wiring: settings in, a running server out. `main` and the tests both go through [`Application::build`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use draftstore_storage::Store;
use draftstore_storage::local::{LocalConfig, LocalStorage};
use draftstore_storage::s3::S3Storage;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::watch;
use url::Url;

use crate::admission::Gate;
use crate::auth::{Authenticator, TenantNames};
use crate::cleaner::Cleaner;
use crate::config::{ServeSettings, Settings};
use crate::connections::{self, ConnectionSettings, HttpRouters, Slots};
use crate::error::Error;
use crate::grpc::{self, GrpcApi};
use crate::hooks::Deliverer;
use crate::http::{AppState, ReadyCache, Shared, reserve_router, router};
use crate::probe::{ProbeError, StartupProbe};
use crate::service::DraftService;
use crate::setting::ConfigError;
use crate::telemetry;

/// Pause between attempts to create the buckets while the store is unreachable.
const BUCKET_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen on {address}")]
    Bind { address: SocketAddr, source: io::Error },
    #[error("cannot open the storage backend")]
    Storage(#[source] draftstore_storage::Error),
    #[error("invalid configuration")]
    Config(#[source] ConfigError),
    #[error("cannot create the buckets")]
    Buckets(#[source] crate::error::Error),
    /// The store probe found the store breaking a promise signed URLs rely on (STORE_PROBE=enforce).
    #[error("{0}")]
    StoreProbe(String),
}

/// The storage backend's capabilities with, for the local one, the handle its blob routes need.
#[derive(Debug)]
pub struct Backend {
    pub store: Store,
    pub local: Option<Arc<LocalStorage>>,
}

/// Opens the configured backend. `public_url` is where clients reach this server (local backend only).
pub async fn open_backend(
    settings: &Settings,
    public_url: Url,
    signing_key: Option<Vec<u8>>,
) -> Result<Backend, StartupError> {
    match settings.storage.s3_config(settings.service.storage_timeout).map_err(StartupError::Config)? {
        None => {
            let root = settings.storage.data_dir.clone();
            let local = LocalStorage::open(LocalConfig { root, public_url, signing_key })
                .await
                .map_err(StartupError::Storage)?;
            let local = Arc::new(local);
            Ok(Backend { store: Store::without_rules(Arc::clone(&local)), local: Some(local) })
        }
        Some(config) => {
            let s3 = Arc::new(S3Storage::new(config).await.map_err(StartupError::Storage)?);
            Ok(Backend { store: Store::with_rules(s3), local: None })
        }
    }
}

/// A built server, listening on both ports, not yet serving.
#[derive(Debug)]
pub struct Application {
    http: TcpListener,
    http_address: SocketAddr,
    grpc: TcpListener,
    grpc_address: SocketAddr,
    health_interval: Duration,
    shutdown_timeout: Duration,
    cleaner: Option<(Cleaner, Duration)>,
    /// Delivers the event outbox, when EVENTS_URL is set.
    deliverer: Option<Deliverer>,
    state: AppState,
    /// What admits and observes the requests of both ports.
    gate: Arc<Gate>,
    connections: ConnectionSettings,
    /// Connections each port takes: MAX_CONNECTIONS, fitted to the open-file limit.
    connection_cap: usize,
}

async fn bind(address: SocketAddr) -> Result<(TcpListener, SocketAddr), StartupError> {
    let listener = TcpListener::bind(address).await.map_err(|source| StartupError::Bind { address, source })?;
    let address = listener.local_addr().map_err(|source| StartupError::Bind { address, source })?;
    Ok((listener, address))
}

impl Application {
    /// Binds the listener, opens the store and creates the buckets if missing.
    pub async fn build(settings: ServeSettings) -> Result<Self, StartupError> {
        let connection_cap = fit_connections(&settings.connections);
        let (http, http_address) = bind(SocketAddr::new(settings.bind_address(), settings.http_port)).await?;
        let (grpc, grpc_address) = bind(SocketAddr::new(settings.bind_address(), settings.grpc_port)).await?;
        let public_url = settings.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://localhost:{}", http_address.port())).expect("a localhost URL parses")
        });
        let signing_key = settings.signing_key.as_ref().map(|k| k.expose_secret().as_bytes().to_vec());
        telemetry::metrics();
        let common = &settings.common;
        let backend = open_backend(common, public_url.clone(), signing_key).await?;
        // The one bound on storage calls, shared by the service, the cleaner, the event deliverer and the probe.
        let calls = common.storage_calls();
        let probe = StartupProbe::new(
            Arc::clone(&backend.store.probe),
            &common.storage,
            &common.service,
            settings.probe.store_probe,
            calls,
        );
        let probe = Arc::new(probe);
        let service = common.service(backend.store, calls);
        let cleaner = settings.cleanup_interval.map(|every| (Cleaner::new(&service), every));
        let store_probe = probe.status();
        create_buckets(&service, probe).await?;
        let deliverer = service
            .outbox()
            .and_then(|outbox| Deliverer::new(outbox.clone(), &common.hooks, &common.service.buckets.main, calls));
        let readiness = Arc::new(ReadyCache::new(settings.ready_cache));
        let names = tenant_names(common, backend.local.is_some())?;
        let auth = Arc::new(Authenticator::from_settings(&settings.auth, names).map_err(StartupError::Config)?);
        auth.start(settings.auth.jwks_refresh_interval).await.map_err(StartupError::Config)?;
        if auth.is_open() {
            tracing::warn!(
                address = %settings.bind_address(),
                "AUTH_MODE=none: every caller is trusted; set AUTH_MODE=api-key or jwt in production"
            );
        }
        let limiter = settings.rate_limit.limit().map(|limit| Arc::new(crate::ratelimit::RateLimiter::new(limit)));
        let gate = Arc::new(Gate { auth: Arc::clone(&auth), limiter, proxies: settings.peers.trusted_proxies.clone() });
        let uploads = Arc::new(crate::http::UploadSlots::new(settings.connections.max_concurrent_uploads));
        let state =
            AppState::new(Shared { service, local: backend.local, readiness, auth, public_url, store_probe, uploads });
        Ok(Self {
            http,
            http_address,
            grpc,
            grpc_address,
            health_interval: settings.health_interval,
            shutdown_timeout: settings.shutdown_timeout,
            cleaner,
            deliverer,
            state,
            gate,
            connections: settings.connections,
            connection_cap,
        })
    }

    /// The store this server uses, every capability of it.
    pub fn store(&self) -> Store {
        self.state.service.store().clone()
    }

    /// The port the HTTP server listens on (the real one when 0 was asked for).
    pub fn http_port(&self) -> u16 {
        self.http_address.port()
    }

    /// The port the gRPC server listens on.
    pub fn grpc_port(&self) -> u16 {
        self.grpc_address.port()
    }

    /// Serves HTTP and gRPC until `shutdown` completes, then stops both together, letting requests in flight
    /// finish. If either server fails, the other is stopped too.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let signal = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            let _ = signal.send(true);
        });
        let mut deadline = stopped.clone();
        let shutdown_timeout = self.shutdown_timeout;
        let drained_or_timed_out = async move {
            let _ = deadline.wait_for(|stop| *stop).await;
            tokio::time::sleep(shutdown_timeout).await;
        };
        let until_stopped = move || {
            let mut stopped = stopped.clone();
            async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            }
        };

        let cleaner_task = self.cleaner.map(|(cleaner, every)| tokio::spawn(cleaner.run_every(every)));
        let deliverer_task = self.deliverer.map(|deliverer| tokio::spawn(deliverer.run()));
        let upkeep_task = tokio::spawn(telemetry::metrics_upkeep(telemetry::metrics()));
        let (reporter, health) = grpc::health_service().await;
        let health_task = tokio::spawn(grpc::track_health(reporter, self.state.service.clone(), self.health_interval));
        // Both versions of reflection, over the same descriptors: grpcurl asks v1, older clients v1alpha.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(draftstore_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1().map_err(io::Error::other)?;
        let reflection_v1alpha = reflection().build_v1alpha().map_err(io::Error::other)?;
        let connections = self.connections;
        let grpc_incoming =
            connections::grpc_incoming(self.grpc, Slots::new("grpc", self.connection_cap, 0), &connections);
        let grpc_server = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(connections::HTTP2_KEEPALIVE))
            .http2_keepalive_timeout(Some(connections::HTTP2_KEEPALIVE_TIMEOUT))
            .max_concurrent_streams(connections::HTTP2_MAX_STREAMS)
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(GrpcApi::server(self.state.service.clone(), Arc::clone(&self.gate)))
            .serve_with_incoming_shutdown(grpc_incoming, until_stopped());

        tracing::info!(http = %self.http_address, grpc = %self.grpc_address, "DraftStore listening");
        let routers = HttpRouters {
            reserve: reserve_router(self.state.clone(), Arc::clone(&self.gate)),
            full: router(self.state, self.gate),
        };
        let http_slots = Slots::new("http", self.connection_cap, connections::PROBE_RESERVE);
        let http_server = connections::serve_http(self.http, http_slots, routers, connections, until_stopped());
        let on_failure = |error: io::Error| {
            let _ = stop.send(true);
            error
        };
        let servers = async {
            tokio::try_join!(async { http_server.await.map_err(on_failure) }, async {
                grpc_server.await.map_err(|e| on_failure(io::Error::other(e)))
            },)
        };
        let result: io::Result<()> = tokio::select! {
            result = servers => result.map(drop),
            () = drained_or_timed_out => {
                tracing::warn!(
                    timeout_s = shutdown_timeout.as_secs(),
                    "requests still in flight after SHUTDOWN_TIMEOUT; stopping anyway"
                );
                Ok(())
            }
        };
        tracing::info!("DraftStore stopped");
        health_task.abort();
        upkeep_task.abort();
        if let Some(task) = deliverer_task {
            task.abort();
        }
        if let Some(task) = cleaner_task {
            task.abort();
        }
        result
    }
}

/// Which tenant names the store keeps apart: on the local backend, as DATA_DIR's filesystem does (probed).
fn tenant_names(settings: &Settings, local: bool) -> Result<TenantNames, StartupError> {
    if !local {
        return Ok(TenantNames::AsGiven);
    }
    let dir = &settings.storage.data_dir;
    let names = TenantNames::probe(dir).map_err(|e| {
        StartupError::Config(ConfigError::new("DATA_DIR", format!("cannot probe {} for case: {e}", dir.display())))
    })?;
    if names == TenantNames::LowerCaseAscii {
        tracing::warn!(
            data_dir = %dir.display(),
            "DATA_DIR is on a case-insensitive filesystem: tenant names must be lower-case ASCII, so that no two \
             tenants share a folder"
        );
    }
    Ok(names)
}

/// Raises the open-file limit and fits MAX_CONNECTIONS to it, saying what it did.
fn fit_connections(settings: &ConnectionSettings) -> usize {
    let files = connections::raise_open_file_limit();
    let cap = connections::connection_cap(settings.max_connections, files.soft);
    let shown = |limit: Option<u64>| limit.map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
    tracing::info!(
        soft = %shown(files.soft),
        hard = %shown(files.hard),
        was = %shown(files.was),
        connections_per_port = cap,
        "open-file limit"
    );
    if settings.max_connections != 0 && cap < settings.max_connections {
        tracing::warn!(
            max_connections = settings.max_connections,
            lowered_to = cap,
            open_files = %shown(files.soft),
            "MAX_CONNECTIONS lowered to fit the open-file limit (each connection needs descriptors of its own)"
        );
    }
    cap
}

/// Creates the buckets at start-up and probes the store. A store that is unreachable does not stop the server: it
/// starts unready (`/ready` answers 503) and keeps trying in the background, so that a storage outage never needs a
/// restart. A store the probe finds unsafe (STORE_PROBE=enforce) stops it.
async fn create_buckets(service: &DraftService, probe: Arc<StartupProbe>) -> Result<(), StartupError> {
    match prepare(service, &probe).await {
        Ok(()) => {
            finish_cut_off_sets(service).await;
            Ok(())
        }
        Err(Prepared::Refused(message)) => Err(StartupError::StoreProbe(message)),
        Err(Prepared::Failed(e)) => Err(StartupError::Buckets(e)),
        Err(Prepared::Unreachable(e)) => {
            tracing::warn!(error = %e.chain(), "storage unreachable at start-up; retrying in the background");
            let service = service.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(BUCKET_RETRY).await;
                    match prepare(&service, &probe).await {
                        Ok(()) => {
                            tracing::info!("buckets ready");
                            break finish_cut_off_sets(&service).await;
                        }
                        Err(Prepared::Refused(message)) => {
                            break tracing::error!(error = %message, "the store cannot be trusted: not ready");
                        }
                        Err(Prepared::Unreachable(e) | Prepared::Failed(e)) => {
                            tracing::warn!(error = %e.chain(), "still cannot create the buckets and probe the store");
                        }
                    }
                }
            });
            Ok(())
        }
    }
}

/// Why the buckets could not be made ready.
enum Prepared {
    Unreachable(Error),
    Failed(Error),
    Refused(String),
}

/// Creates the buckets, then probes the store.
async fn prepare(service: &DraftService, probe: &StartupProbe) -> Result<(), Prepared> {
    match service.create_buckets().await {
        Ok(()) => {}
        Err(e @ (Error::StorageUnavailable { .. } | Error::StorageTimeout { .. })) => {
            return Err(Prepared::Unreachable(e));
        }
        Err(e) => return Err(Prepared::Failed(e)),
    }
    probe.run().await.map_err(|e| match e {
        ProbeError::Unreachable(e) => Prepared::Unreachable(e),
        ProbeError::Refused(message) => Prepared::Refused(message),
    })
}

/// Finishes the sets a crash cut off (this replica's, or another's), before serving: confirmed whole or not at all.
async fn finish_cut_off_sets(service: &DraftService) {
    match service.recover_sets(time::OffsetDateTime::now_utc(), Duration::ZERO).await {
        Ok(recovery) if recovery.finished + recovery.failed > 0 => {
            tracing::info!(finished = recovery.finished, failed = recovery.failed, "sets cut off by a crash");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e.chain(), "failed to look for sets cut off by a crash; the cleaner will"),
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
