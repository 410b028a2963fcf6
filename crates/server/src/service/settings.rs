//! The workflow's settings: its buckets, the lifetimes of URLs and drafts, the limits on uploads.

use std::time::Duration;

use clap::Args;
use draftstore_storage::{BucketName, MAX_URL_TTL};
use url::Url;

use crate::domain::UploadLimits;
use crate::setting::{self, GIB5, MIB5, Setting};

/// What the draft service works on and with: the buckets, the bound on store calls, the lifetimes and the limits.
#[derive(Debug, Clone, Args)]
#[command(mut_args = setting::by_convention)]
pub struct ServiceSettings {
    /// Main bucket; drafts go to `<BUCKET_NAME>-draft`, undelivered events wait in `<BUCKET_NAME>-events`.
    #[arg(long = "bucket-name", env = "BUCKET_NAME", default_value = "main", value_name = "NAME")]
    #[arg(value_parser = buckets())]
    pub buckets: Buckets,
    /// Browser origins (comma-separated, or `*`) allowed to call the REST API and the local backend's signed URLs
    /// (preflights answered before authentication; `ETag` exposed), and put in a CORS rule on the draft bucket
    /// (S3: PUT, POST, DELETE, GET, HEAD); other origins get no CORS headers [default: none].
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", value_name = "ORIGINS", value_parser = origins())]
    pub cors_allowed_origins: ::std::vec::Vec<String>,
    /// Bound on every request to the store, in seconds (1 to 3600): a store that does not answer (or, during a long
    /// confirm or completion, makes no progress) for this long gives 503; a big object that keeps copying is never
    /// cut off.
    #[arg(long, env = "STORAGE_TIMEOUT", default_value = "30", value_name = "SECONDS")]
    #[arg(value_parser = setting::seconds(1, 3600))]
    pub storage_timeout: Duration,
    /// Lifetime of upload URLs, in seconds (1 to 604800).
    #[arg(long, env = "UPLOAD_TTL", default_value = "3600", value_name = "SECONDS")]
    #[arg(value_parser = setting::seconds(1, MAX_URL_TTL))]
    pub upload_ttl: Duration,
    /// Lifetime of download URLs, in seconds (1 to 604800).
    #[arg(long, env = "DOWNLOAD_TTL", default_value = "3600", value_name = "SECONDS")]
    #[arg(value_parser = setting::seconds(1, MAX_URL_TTL))]
    pub download_ttl: Duration,
    /// Age after which an unconfirmed draft expires and the cleaner removes it, in seconds.
    #[arg(long, env = "OBJECT_LIFETIME", default_value = "86400", value_name = "SECONDS")]
    #[arg(value_parser = setting::seconds(1, u64::from(u32::MAX)))]
    pub object_lifetime: Duration,
    /// Also put a lifecycle rule on the draft bucket as a safety net (S3): expire objects after OBJECT_LIFETIME
    /// rounded up to days, abort incomplete multipart uploads.
    #[arg(long, env = "DRAFT_LIFECYCLE", default_value = "false", value_name = "BOOL")]
    #[arg(value_parser = setting::boolean())]
    pub draft_lifecycle: bool,
    #[command(flatten)]
    pub limits: UploadLimits,
    /// Part size multipart uploads are told to use, in bytes (5 MiB to 5 GiB); larger when a file would need more
    /// than 10,000 parts.
    #[arg(long, env = "MULTIPART_PART_SIZE", default_value = "16777216", value_name = "BYTES")]
    #[arg(value_parser = setting::bytes(MIB5, GIB5))]
    pub multipart_part_size: u64,
}

impl ServiceSettings {
    /// Days after which the draft bucket's lifecycle rule expires drafts (DRAFT_LIFECYCLE); `None`: no rule.
    pub fn lifecycle_days(&self) -> Option<u32> {
        self.draft_lifecycle.then(|| lifecycle_days(self.object_lifetime))
    }
}

/// The buckets of the workflow, named after BUCKET_NAME.
#[derive(Debug, Clone)]
pub struct Buckets {
    pub main: BucketName,
    pub draft: BucketName,
    /// The event outbox, used when EVENTS_URL is set.
    pub events: BucketName,
}

/// Days of a lifecycle rule that expires what the cleaner would: the lifetime rounded up to whole days.
pub fn lifecycle_days(lifetime: Duration) -> u32 {
    u32::try_from(lifetime.as_secs().div_ceil(86_400).max(1)).unwrap_or(u32::MAX)
}

/// BUCKET_NAME, and the draft and event buckets named after it.
fn buckets() -> Setting<Buckets> {
    Setting::new(|text| {
        let main = BucketName::parse(text).map_err(|e| setting::invalid(text, e))?;
        let derived = |suffix: &str, role: &str| {
            BucketName::parse(&format!("{main}-{suffix}"))
                .map_err(|e| setting::invalid(text, format!("the {role} bucket name is invalid: {e}")))
        };
        Ok(Buckets { draft: derived("draft", "draft")?, events: derived("events", "events")?, main })
    })
}

/// Browser origins, or `*`.
fn origins() -> Setting<Vec<String>> {
    setting::list(|origin| {
        if origin == "*" || Url::parse(origin).is_ok_and(|u| u.host_str().is_some()) {
            Ok(origin.trim_end_matches('/').to_owned())
        } else {
            Err(setting::invalid(origin, "expected an origin such as https://app.example.com, or *"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_days_round_the_lifetime_up() {
        assert_eq!(lifecycle_days(Duration::from_secs(1)), 1);
        assert_eq!(lifecycle_days(Duration::from_secs(86_400)), 1);
        assert_eq!(lifecycle_days(Duration::from_secs(86_401)), 2);
        assert_eq!(lifecycle_days(Duration::from_secs(30 * 86_400)), 30);
    }
}
