//! The checks only `draftstore doctor` runs: the main credential's rights, the draft bucket's CORS and lifecycle
//! rules, and the checksums DraftStore's own requests carry.

use super::*;

impl Run<'_> {
    pub(super) async fn main_credential(&self) -> Result<Finding> {
        let client = &self.store.client;
        let (draft, main) = (self.draft.as_str(), self.plan.main.as_str());
        let (absent, in_main) = (self.key("absent")?, self.key("main-copy")?);
        let (list, uploads, read_main) = tokio::join!(
            client.list_objects_v2().bucket(draft).prefix(self.prefix.as_str()).max_keys(1).send(),
            client.list_multipart_uploads().bucket(draft).prefix(self.prefix.as_str()).max_uploads(1).send(),
            client.head_object().bucket(main).key(absent.as_str()).send(),
        );
        let mut wrong = Vec::new();
        if let Err(e) = list {
            wrong.push(format!("cannot list the draft bucket: {}", sdk_error("ListObjectsV2", self.draft, None, e)));
        }
        if let Err(e) = uploads {
            wrong.push(format!(
                "cannot list multipart uploads: {}",
                sdk_error("ListMultipartUploads", self.draft, None, e)
            ));
        }
        match read_main {
            Err(e) if status(&e) == Some(404) => {}
            Ok(_) => {}
            Err(e) => {
                wrong.push(format!("cannot read the main bucket: {}", sdk_error("HeadObject", self.plan.main, None, e)))
            }
        }
        // What a confirm does: a copy into the main bucket, and the clean-up a delete.
        let copy = client
            .copy_object()
            .copy_source(self.source_header().trim_start_matches('/'))
            .bucket(main)
            .key(in_main.as_str())
            .send()
            .await;
        match copy {
            Ok(_) => {
                if let Err(e) = self.store.delete(self.plan.main, &in_main).await {
                    wrong.push(format!("cannot delete in the main bucket: {e}"));
                }
            }
            Err(e) => wrong.push(format!(
                "cannot copy into the main bucket: {}",
                sdk_error("CopyObject", self.plan.main, None, e)
            )),
        }
        Ok(match wrong.is_empty() {
            true => Finding::new(
                Promise::MainCredential,
                Outcome::Held,
                "writes, reads, copies, lists and deletes in the draft bucket; copies into, reads and deletes in the \
                 main bucket",
            ),
            false => Finding::new(Promise::MainCredential, Outcome::Broken, wrong.join("; ")),
        })
    }

    pub(super) async fn cors(&self) -> Result<Finding> {
        let origins = self.plan.cors_origins;
        if origins.is_empty() {
            return Ok(Finding::new(Promise::Cors, Outcome::NotApplicable, "CORS_ALLOWED_ORIGINS is not set"));
        }
        let rules = match self.store.client.get_bucket_cors().bucket(self.draft.as_str()).send().await {
            Ok(cors) => cors.cors_rules().to_vec(),
            Err(e) if status(&e) == Some(404) => Vec::new(),
            Err(e) => return Err(sdk_error("GetBucketCors", self.draft, None, e)),
        };
        let allows = |origin: &String| {
            rules.iter().any(|rule| {
                let origin_ok = rule.allowed_origins().iter().any(|o| o == origin || o == "*");
                let put_ok = rule.allowed_methods().iter().any(|m| m.eq_ignore_ascii_case("PUT"));
                let etag_ok = rule.expose_headers().iter().any(|h| h.eq_ignore_ascii_case("ETag"));
                origin_ok && put_ok && etag_ok
            })
        };
        let missing: Vec<_> = origins.iter().filter(|origin| !allows(origin)).map(String::as_str).collect();
        Ok(match missing.is_empty() {
            true => {
                Finding::new(Promise::Cors, Outcome::Held, format!("PUT with ETag exposed for {}", origins.join(", ")))
            }
            false => Finding::new(
                Promise::Cors,
                Outcome::Broken,
                format!("no rule allows PUT with ETag exposed for {} ({} rules)", missing.join(", "), rules.len()),
            ),
        })
    }

    pub(super) async fn lifecycle(&self) -> Result<Finding> {
        let Some(days) = self.plan.lifecycle_days else {
            return Ok(Finding::new(
                Promise::Lifecycle,
                Outcome::NotApplicable,
                "DRAFT_LIFECYCLE is off: the cleaner alone removes drafts",
            ));
        };
        let request = self.store.client.get_bucket_lifecycle_configuration().bucket(self.draft.as_str());
        let rules = match request.send().await {
            Ok(lifecycle) => lifecycle.rules().to_vec(),
            Err(e) if status(&e) == Some(404) => Vec::new(),
            Err(e) => return Err(sdk_error("GetBucketLifecycleConfiguration", self.draft, None, e)),
        };
        let found = rules.iter().find(|rule| rule.id() == Some("draftstore-expire-drafts"));
        let expires = found.and_then(|rule| rule.expiration()).and_then(|expiration| expiration.days());
        Ok(match expires {
            Some(found) if i64::from(found) == i64::from(days) => {
                Finding::new(Promise::Lifecycle, Outcome::Held, format!("drafts expire after {days} days"))
            }
            Some(found) => Finding::new(
                Promise::Lifecycle,
                Outcome::Broken,
                format!("the rule expires drafts after {found} days, not {days}"),
            ),
            None => Finding::new(
                Promise::Lifecycle,
                Outcome::Broken,
                format!("no rule draftstore-expire-drafts ({} rules)", rules.len()),
            ),
        })
    }

    pub(super) async fn checksums(&self) -> Result<Finding> {
        let client = &self.store.client;
        let (absent, crc) = (self.key("absent")?, self.key("crc32")?);
        // DeleteObjects is an operation S3 requires a checksum of: the SDK sends its own.
        let required = self.store.delete_many(self.draft, std::slice::from_ref(&absent)).await;
        let crc32 = client
            .put_object()
            .bucket(self.draft.as_str())
            .key(crc.as_str())
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(BODY.to_vec().into())
            .send()
            .await;
        let crc32 = match crc32 {
            Ok(_) => "accepted".to_owned(),
            Err(e) => format!("refused ({})", sdk_error("PutObject", self.draft, Some(&crc), e)),
        };
        let settings = format!(
            "request_checksum_calculation={REQUEST_CHECKSUMS:?}, response_checksum_validation={RESPONSE_CHECKSUMS:?}"
        );
        Ok(match required {
            Ok(_) => Finding::new(
                Promise::Checksums,
                Outcome::Held,
                format!(
                    "{settings}; DeleteObjects with its checksum accepted; a CRC32 upload (the SDK's default) {crc32}"
                ),
            ),
            Err(e) => {
                Finding::new(Promise::Checksums, Outcome::Broken, format!("{settings}; DeleteObjects refused: {e}"))
            }
        })
    }
}
