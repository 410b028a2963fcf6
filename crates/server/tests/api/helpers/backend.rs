//! The two backends a test runs on, and the one way of running a test on both.

use std::sync::Arc;

use draftstore::config::ServeSettings;

use super::{TestApp, serve_settings, spawn, spawn_app_with, spawn_on_seaweed};
use crate::seaweed;

/// The two backends a test runs on: the local one in a fresh folder, or fresh buckets on the shared SeaweedFS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Local,
    SeaweedFs,
}

impl Backend {
    /// The backend's name in a test's report: `local` or `SeaweedFS`.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Local => "local",
            Backend::SeaweedFs => "SeaweedFS",
        }
    }

    /// `serve` arguments for a fresh store on this backend, and the folder a local store lives in: the store lasts
    /// as long as the folder is held.
    pub async fn args(self) -> (Vec<String>, Option<tempfile::TempDir>) {
        match self {
            Backend::Local => {
                let dir = tempfile::tempdir().expect("tempdir");
                let data = dir.path().to_str().expect("utf-8").to_owned();
                (vec!["--storage-type".into(), "local".into(), "--data-dir".into(), data], Some(dir))
            }
            Backend::SeaweedFs => (seaweed::shared().await.s3_args(&seaweed::unique_bucket()), None),
        }
    }

    /// Starts the server on this backend with extra arguments.
    pub async fn spawn(self, extra: &[&str]) -> TestApp {
        self.spawn_with_bucket(extra).await.0
    }

    /// Starts the server on this backend with extra arguments; returns it and the settings it runs with.
    pub async fn spawn_with_settings(self, extra: &[&str]) -> (TestApp, ServeSettings) {
        let (mut args, temp) = self.args().await;
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        let settings = serve_settings(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut app = spawn(settings.clone()).await;
        if let Some(temp) = temp {
            app.data_dir = temp.path().to_owned();
            app._temp = Some(Arc::new(temp));
        }
        (app, settings)
    }

    /// Starts the server on this backend with extra arguments; returns it and its main bucket's name.
    pub async fn spawn_with_bucket(self, extra: &[&str]) -> (TestApp, String) {
        match self {
            Backend::Local => (spawn_app_with(extra).await, "main".to_owned()),
            Backend::SeaweedFs => spawn_on_seaweed(extra).await,
        }
    }
}

/// Runs each named `async fn(Backend)` as two tests, `<name>::local` and `<name>::seaweedfs`: the one way a test
/// says "on both backends". A test attribute other than `#[tokio::test]` may come first.
macro_rules! on_both_backends {
    (#[$test_attribute:meta] $($test:ident),+ $(,)?) => {$(
        mod $test {
            #[$test_attribute]
            async fn local() {
                super::$test($crate::helpers::Backend::Local).await;
            }

            #[$test_attribute]
            async fn seaweedfs() {
                super::$test($crate::helpers::Backend::SeaweedFs).await;
            }
        }
    )+};
    ($($test:ident),+ $(,)?) => {
        $crate::helpers::on_both_backends!(#[tokio::test] $($test),+);
    };
}
pub(crate) use on_both_backends;
