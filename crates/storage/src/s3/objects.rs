//! The S3 backend's objects: looked up, moved by copy then delete, read, deleted by version, listed, and
//! DraftStore's own records.

use super::*;

#[async_trait]
impl ObjectStore for S3Storage {
    async fn head(&self, bucket: &BucketName, key: &ObjectKey) -> Result<ObjectMeta> {
        let request =
            self.client.head_object().bucket(bucket.as_str()).key(key.as_str()).checksum_mode(ChecksumMode::Enabled);
        let head = match request.send().await {
            Ok(head) => head,
            Err(e) => {
                let error = sdk_error("HeadObject", bucket, Some(key), e);
                // HEAD answers carry no error code: a 404 may mean the bucket is missing.
                if error.is_not_found() {
                    self.check_bucket(bucket).await?;
                }
                return Err(error);
            }
        };
        let content_type =
            head.content_type().and_then(|t| ContentType::parse(t).ok()).unwrap_or_else(ContentType::octet_stream);
        let last_modified = timestamp(head.last_modified());
        let (declared, metadata, origin) = read_metadata(head.metadata());
        Ok(ObjectMeta {
            key: key.clone(),
            size: head.content_length().unwrap_or_default().max(0) as u64,
            content_type,
            last_modified,
            sha256: head.checksum_sha256().and_then(|c| Checksum::parse(c).ok()),
            declared,
            etag: head.e_tag().map(str::to_owned),
            metadata,
            origin,
        })
    }

    async fn move_object(
        &self,
        from: &BucketName,
        to: &BucketName,
        key: &ObjectKey,
        options: &MoveOptions,
        progress: &Progress,
    ) -> Result<()> {
        // A source the caller looked up is not looked up again when the copy itself checks its version.
        let meta = match &options.source {
            Some(meta) if &meta.key == key && options.if_match.is_some() && meta.etag == options.if_match => {
                meta.clone()
            }
            _ => self.head(from, key).await?,
        };
        progress.step();
        options.check_source(key, &meta)?;
        let to_key = options.destination(key);
        if options.no_overwrite && !self.conditional_writes.load(Ordering::Relaxed) {
            // The store ignores If-None-Match: check first. A writer racing this check can still win.
            match self.head(to, to_key).await {
                Ok(_) => return Err(Error::AlreadyExists { bucket: to.to_string(), key: to_key.to_string() }),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        // A move with an origin writes the metadata again, with its origin: the source's, where none is given.
        let metadata = match (&options.metadata, &options.origin) {
            (Some(metadata), _) => Some(metadata.clone()),
            (None, Some(_)) => {
                let mut metadata = meta.metadata.clone();
                meta.declared.insert_into(&mut metadata);
                Some(metadata)
            }
            (None, None) => None,
        };
        let metadata = metadata.map(|mut metadata| {
            metadata.remove(ORIGIN_METADATA);
            if let Some(origin) = &options.origin {
                metadata.insert(ORIGIN_METADATA.to_owned(), origin.clone());
            }
            encode_metadata(&metadata)
        });
        let job = CopyJob {
            source: format!("{from}/{}", utf8_percent_encode(key.as_str(), COPY_SOURCE)),
            from,
            to,
            key,
            to_key,
            size: meta.size,
            etag: meta.etag.as_deref(),
            content_type: &meta.content_type,
            metadata,
        };
        self.copy(&job, options, progress).await?;
        progress.step();
        if options.keep_source {
            return Ok(());
        }
        // The source goes only if it is still the version copied: a draft uploaded again meanwhile stays.
        match meta.etag.as_deref() {
            Some(etag) => self.delete_version(from, key, etag).await.map(drop),
            None => self.delete(from, key).await,
        }
    }

    fn moves(&self) -> Moves {
        Moves::CopyThenDelete
    }

    async fn put_object(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: bytes::Bytes,
        content_type: &ContentType,
    ) -> Result<ObjectMeta> {
        let size = body.len() as u64;
        let put = self
            .client
            .put_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .content_type(content_type.as_str())
            .body(body.into())
            .send()
            .await
            .map_err(|e| sdk_error("PutObject", bucket, Some(key), e))?;
        // From the answer, not a look-up after it: another writer may have replaced or removed it already.
        Ok(ObjectMeta {
            key: key.clone(),
            size,
            content_type: content_type.clone(),
            last_modified: time::OffsetDateTime::now_utc(),
            sha256: None,
            declared: Declared::default(),
            etag: put.e_tag().map(str::to_owned),
            metadata: Metadata::new(),
            origin: None,
        })
    }

    async fn put_record(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        body: bytes::Bytes,
        if_absent: bool,
    ) -> Result<bool> {
        let conditional = if_absent && self.conditional_writes.load(Ordering::Relaxed);
        if if_absent && !conditional {
            // The store ignores If-None-Match: check first. A writer racing this check can still win.
            match self.head(bucket, key).await {
                Ok(_) => return Ok(false),
                Err(Error::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let put = self
            .client
            .put_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .content_type("application/json")
            .set_if_none_match(conditional.then(|| "*".to_owned()))
            .body(body.into())
            .send()
            .await;
        match put {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(e)) if conditional && [409, 412].contains(&e.raw().status().as_u16()) => {
                Ok(false)
            }
            Err(e) => Err(sdk_error("PutObject", bucket, Some(key), e)),
        }
    }

    async fn get_record(&self, bucket: &BucketName, key: &ObjectKey) -> Result<bytes::Bytes> {
        let object = self
            .client
            .get_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| sdk_error("GetObject", bucket, Some(key), e))?;
        let body = object.body.collect().await.map_err(|e| body_broke_off(&format!("{bucket}/{key}"), e))?;
        Ok(body.into_bytes())
    }

    async fn read(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        first: Option<u64>,
        if_match: Option<&str>,
    ) -> Result<ByteChunks> {
        if first == Some(0) {
            return Ok(Box::pin(futures_util::stream::empty()));
        }
        let range = first.map(|n| format!("bytes=0-{}", n - 1));
        let object = self.client.get_object().bucket(bucket.as_str()).key(key.as_str()).set_range(range);
        let object = match object.set_if_match(if_match.map(str::to_owned)).send().await {
            Ok(object) => object,
            // A range of an empty object is not satisfiable: its first bytes are none.
            Err(e) if unsatisfiable(&e) => {
                return Ok(Box::pin(futures_util::stream::empty()));
            }
            Err(e) => return Err(sdk_error("GetObject", bucket, Some(key), e)),
        };
        let state = Some((object.body, format!("{bucket}/{key}")));
        Ok(Box::pin(futures_util::stream::unfold(state, |state| async move {
            let (mut body, target) = state?;
            match body.next().await? {
                Ok(chunk) => Some((Ok(chunk), Some((body, target)))),
                Err(e) => Some((Err(body_broke_off(&target, e)), None)),
            }
        })))
    }

    async fn head_with_first_bytes(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        len: u64,
    ) -> Result<(ObjectMeta, bytes::Bytes)> {
        // One ranged GET answers with the object's headers too: its metadata, its etag, its size in Content-Range.
        let request = self.client.get_object().bucket(bucket.as_str()).key(key.as_str());
        let object = match request.range(format!("bytes=0-{}", len.max(1) - 1)).send().await {
            Ok(object) => object,
            // An empty object has no first bytes to range over.
            Err(e) if unsatisfiable(&e) => {
                return Ok((self.head(bucket, key).await?, bytes::Bytes::new()));
            }
            Err(e) => return Err(sdk_error("GetObject", bucket, Some(key), e)),
        };
        let size = object
            .content_range()
            .and_then(|range| range.rsplit_once('/')?.1.parse().ok())
            .unwrap_or_else(|| object.content_length().unwrap_or_default().max(0) as u64);
        let content_type =
            object.content_type().and_then(|t| ContentType::parse(t).ok()).unwrap_or_else(ContentType::octet_stream);
        let (declared, metadata, origin) = read_metadata(object.metadata());
        let mut meta = ObjectMeta {
            key: key.clone(),
            size,
            content_type,
            last_modified: timestamp(object.last_modified()),
            // A ranged answer carries no checksum of the whole object.
            sha256: None,
            declared,
            etag: object.e_tag().map(str::to_owned),
            metadata,
            origin,
        };
        let first = object.body.collect().await.map_err(|e| body_broke_off(&format!("{bucket}/{key}"), e))?;
        let first = first.into_bytes();
        let first = first.slice(..first.len().min(usize::try_from(len).unwrap_or(usize::MAX)));
        // A declared SHA-256 is checked against the store's, which only a HEAD gives: of the same version.
        if meta.declared.sha256.is_some() {
            let head = self.head(bucket, key).await?;
            if head.etag != meta.etag {
                return Err(Error::PreconditionFailed { message: format!("object '{key}' changed while being read") });
            }
            meta = head;
        }
        Ok((meta, first))
    }

    async fn delete(&self, bucket: &BucketName, key: &ObjectKey) -> Result<()> {
        self.client
            .delete_object()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("DeleteObject", bucket, Some(key), e))
    }

    async fn delete_version(&self, bucket: &BucketName, key: &ObjectKey, etag: &str) -> Result<bool> {
        if !self.conditional_deletes.load(Ordering::Relaxed) {
            // The store ignores If-Match: look up first. A write landing between the two is deleted.
            match self.head(bucket, key).await {
                Ok(meta) if meta.etag.as_deref() == Some(etag) => {}
                Ok(_) | Err(Error::NotFound { .. }) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        let delete = self.client.delete_object().bucket(bucket.as_str()).key(key.as_str());
        let conditional = self.conditional_deletes.load(Ordering::Relaxed).then(|| etag.to_owned());
        match delete.set_if_match(conditional).send().await.map_err(|e| sdk_error("DeleteObject", bucket, Some(key), e))
        {
            Ok(_) => Ok(true),
            // Another version, or none (stores answer either for a missing key).
            Err(Error::PreconditionFailed { .. } | Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn delete_versions(&self, bucket: &BucketName, versions: &[(ObjectKey, String)]) -> Result<VersionDeletes> {
        let mut outcome = VersionDeletes::default();
        let conditional = self.conditional_deletes.load(Ordering::Relaxed);
        let mut chosen = Vec::with_capacity(versions.len());
        if conditional {
            chosen.extend(versions.iter().map(|(key, etag)| (key, Some(etag.as_str()))));
        } else {
            // The store ignores If-Match: look each up first. A write landing between the two is deleted.
            let lookups: Vec<_> = versions.iter().map(|(key, _)| self.head(bucket, key)).collect();
            let heads: Vec<_> = futures_util::stream::iter(lookups).buffered(16).collect().await;
            for ((key, etag), head) in versions.iter().zip(heads) {
                match head {
                    Ok(meta) if meta.etag.as_deref() == Some(etag.as_str()) => chosen.push((key, None)),
                    Ok(_) | Err(Error::NotFound { .. }) => outcome.changed.push(key.clone()),
                    Err(e) => outcome.failures.push(DeleteFailure { key: key.to_string(), message: e.to_string() }),
                }
            }
        }
        if chosen.is_empty() {
            return Ok(outcome);
        }
        let output = self.delete_objects(bucket, chosen.iter().map(|(key, etag)| (*key, *etag))).await?;
        for error in output.errors() {
            let key = error.key().unwrap_or_default();
            match (error.code(), chosen.iter().find(|(chosen, _)| chosen.as_str() == key)) {
                (Some("PreconditionFailed" | "NoSuchKey"), Some((key, _))) => outcome.changed.push((*key).clone()),
                _ => outcome.failures.push(delete_failure(error)),
            }
        }
        Ok(outcome)
    }

    fn list(&self, bucket: &BucketName) -> ListPages<'_> {
        let paginator =
            self.client.list_objects_v2().bucket(bucket.as_str()).max_keys(LIST_PAGE as i32).into_paginator().send();
        let bucket = bucket.clone();
        Box::pin(futures_util::stream::unfold(Some(paginator), move |paginator| {
            let bucket = bucket.clone();
            async move {
                let mut paginator = paginator?;
                match paginator.next().await? {
                    Ok(output) => Some((Ok(list_page(&output)), Some(paginator))),
                    // A failed page ends the listing: the next page's position is unknown.
                    Err(e) => Some((Err(sdk_error("ListObjectsV2", &bucket, None, e)), None)),
                }
            }
        }))
    }

    async fn list_prefix(
        &self,
        bucket: &BucketName,
        prefix: &str,
        token: Option<&str>,
        limit: usize,
    ) -> Result<PrefixPage> {
        // The token is the last key of the previous page, not the store's continuation token: it can be checked,
        // and it means the same on every S3-compatible store.
        let start_after = match token {
            Some(token) if token.starts_with(prefix) && token.len() > prefix.len() && token.len() <= 1024 => {
                Some(token.to_owned())
            }
            Some(token) => {
                return Err(Error::InvalidKey {
                    key: token.to_owned(),
                    reason: "not a page token of this prefix".to_owned(),
                });
            }
            None => None,
        };
        let output = self
            .client
            .list_objects_v2()
            .bucket(bucket.as_str())
            .prefix(prefix)
            .set_start_after(start_after)
            .max_keys(limit.clamp(1, LIST_PAGE) as i32)
            .send()
            .await
            .map_err(|e| sdk_error("ListObjectsV2", bucket, None, e))?;
        // The last key listed, even one DraftStore could not have written, so that no page is skipped.
        let next = match output.is_truncated() {
            Some(true) => output.contents().last().and_then(|object| object.key()).map(str::to_owned),
            _ => None,
        };
        Ok(PrefixPage { objects: list_page(&output).objects, next })
    }

    async fn delete_many(&self, bucket: &BucketName, keys: &[ObjectKey]) -> Result<Vec<DeleteFailure>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let output = self.delete_objects(bucket, keys.iter().map(|key| (key, None))).await?;
        Ok(output.errors().iter().map(delete_failure).collect())
    }

    async fn remove_stale_uploads(&self, bucket: &BucketName, stale: StaleUploads) -> Result<u64> {
        let mut aborted = 0;
        let (mut key_marker, mut upload_id_marker) = (None::<String>, None::<String>);
        loop {
            let page = self
                .client
                .list_multipart_uploads()
                .bucket(bucket.as_str())
                .set_key_marker(key_marker.take())
                .set_upload_id_marker(upload_id_marker.take())
                .send()
                .await
                .map_err(|e| sdk_error("ListMultipartUploads", bucket, None, e))?;
            for upload in page.uploads() {
                let initiated = upload.initiated().map(|t| t.secs()).unwrap_or(i64::MAX);
                if initiated >= stale.multipart_before.unix_timestamp() {
                    continue;
                }
                let (Some(key), Some(id)) = (upload.key(), upload.upload_id()) else { continue };
                self.client
                    .abort_multipart_upload()
                    .bucket(bucket.as_str())
                    .key(key)
                    .upload_id(id)
                    .send()
                    .await
                    .map_err(|e| sdk_error("AbortMultipartUpload", bucket, None, e))?;
                aborted += 1;
            }
            if !page.is_truncated().unwrap_or(false) {
                return Ok(aborted);
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            upload_id_marker = page.next_upload_id_marker().map(str::to_owned);
            if key_marker.is_none() && upload_id_marker.is_none() {
                return Ok(aborted);
            }
        }
    }
}

fn list_page(output: &aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output) -> ListPage {
    let mut page = ListPage::default();
    for object in output.contents() {
        let raw = object.key().unwrap_or_default();
        match ObjectKey::parse(raw) {
            Ok(key) => page.objects.push(ListedObject {
                key,
                size: object.size().unwrap_or_default().max(0) as u64,
                last_modified: timestamp(object.last_modified()),
                etag: object.e_tag().map(str::to_owned),
            }),
            Err(_) => page.foreign_keys.push(raw.to_owned()),
        }
    }
    page
}

/// A GetObject whose body stopped before its end.
fn body_broke_off(target: &str, error: aws_smithy_types::byte_stream::error::Error) -> Error {
    Error::unavailable(format!("S3 GetObject on {target}: the body broke off"), Some(Box::new(error)))
}

/// A range of an empty object, which has no first bytes to range over.
fn unsatisfiable<E>(error: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>) -> bool {
    error.raw_response().is_some_and(|r| r.status().as_u16() == 416)
}
