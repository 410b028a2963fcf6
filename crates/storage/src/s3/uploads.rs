//! The S3 backend's multipart capability: S3's own multipart uploads, with URLs for their parts and for an
//! uploader that speaks S3's multipart API.

use super::*;

#[async_trait]
impl MultipartStore for S3Storage {
    async fn create_multipart(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        content_type: &ContentType,
        declared: &Declared,
        _part_size: Option<u64>,
    ) -> Result<UploadId> {
        let mut request = self
            .client
            .create_multipart_upload()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .content_type(content_type.as_str());
        let mut metadata = Metadata::new();
        declared.insert_into(&mut metadata);
        for (name, value) in metadata {
            request = request.metadata(name, value);
        }
        let created = request.send().await.map_err(|e| sdk_error("CreateMultipartUpload", bucket, Some(key), e))?;
        let id = created.upload_id().unwrap_or_default();
        UploadId::parse(id).map_err(|e| Error::other(format!("the store gave an unusable upload id '{id}'"), e))
    }

    fn whole_checksum(&self) -> WholeChecksum {
        WholeChecksum::PartsOnly
    }

    async fn presign_part(
        &self,
        request: &PresignRequest<'_>,
        upload_id: &UploadId,
        number: u32,
    ) -> Result<PresignedUrl> {
        self.signer_for(Method::Put).sign_part(request, upload_id, number).await
    }

    async fn presign_multipart(
        &self,
        request: &PresignRequest<'_>,
        multipart: MultipartRequest<'_>,
    ) -> Result<PresignedUrl> {
        self.signer_for(multipart.method()).sign_multipart(request, multipart).await
    }

    async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        number: u32,
        body: bytes::Bytes,
    ) -> Result<UploadedPart> {
        let size = body.len() as u64;
        let uploaded = self
            .client
            .upload_part()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .upload_id(upload_id.as_str())
            .part_number(number as i32)
            .content_length(size as i64)
            .body(body.into())
            // As a presigned part's upload is: hashing every byte to sign it would cost the server more CPU than
            // everything else it does for an append; TLS to the store guards the bytes in transit.
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| upload_error(sdk_error("UploadPart", bucket, Some(key), e), upload_id))?;
        Ok(UploadedPart {
            number,
            size,
            etag: uploaded.e_tag().unwrap_or_default().to_owned(),
            sha256: None,
            last_modified: time::OffsetDateTime::now_utc(),
        })
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
    ) -> Result<Vec<UploadedPart>> {
        self.parts(bucket, key, upload_id, None).await
    }

    async fn check_upload(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId) -> Result<()> {
        self.parts(bucket, key, upload_id, Some(1)).await.map(drop)
    }

    async fn complete_multipart(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        parts: &[Part],
        _progress: &Progress,
    ) -> Result<()> {
        let parts = parts
            .iter()
            .map(|part| CompletedPart::builder().part_number(part.number as i32).e_tag(part.etag.clone()).build())
            .collect();
        self.client
            .complete_multipart_upload()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .upload_id(upload_id.as_str())
            .multipart_upload(CompletedMultipartUpload::builder().set_parts(Some(parts)).build())
            .send()
            .await
            .map(drop)
            .map_err(|e| upload_error(sdk_error("CompleteMultipartUpload", bucket, Some(key), e), upload_id))
    }

    async fn abort_multipart(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId) -> Result<()> {
        // S3 answers success to an abort of an upload it does not know: check first, so that an unknown or
        // foreign id is refused as on every other operation.
        self.check_upload(bucket, key, upload_id).await?;
        self.client
            .abort_multipart_upload()
            .bucket(bucket.as_str())
            .key(key.as_str())
            .upload_id(upload_id.as_str())
            .send()
            .await
            .map(drop)
            .map_err(|e| upload_error(sdk_error("AbortMultipartUpload", bucket, Some(key), e), upload_id))
    }
}
