//! The local backend's multipart capability: the uploads of `multipart.rs`, and URLs for their parts and for an
//! uploader that speaks S3's multipart API, served by DraftStore's own blob routes.

use super::*;

#[async_trait]
impl MultipartStore for LocalStorage {
    async fn create_multipart(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        content_type: &ContentType,
        declared: &Declared,
        part_size: Option<u64>,
    ) -> Result<UploadId> {
        self.create_upload(bucket, key, content_type, declared, part_size).await
    }

    fn whole_checksum(&self) -> WholeChecksum {
        WholeChecksum::Verified
    }

    async fn presign_part(
        &self,
        request: &PresignRequest<'_>,
        upload_id: &UploadId,
        number: u32,
    ) -> Result<PresignedUrl> {
        // Sorted, as the signer canonicalises them.
        let query = vec![
            (PART_NUMBER_PARAM.to_owned(), number.to_string()),
            (UPLOAD_ID_PARAM.to_owned(), upload_id.to_string()),
        ];
        self.sign_url(request, request.conditions.part_headers(), query)
    }

    async fn presign_multipart(
        &self,
        request: &PresignRequest<'_>,
        multipart: MultipartRequest<'_>,
    ) -> Result<PresignedUrl> {
        let (headers, query) = match multipart {
            MultipartRequest::Create => {
                let headers = request
                    .conditions
                    .content_type
                    .as_ref()
                    .map(|content_type| vec![("content-type".to_owned(), content_type.to_string())])
                    .unwrap_or_default();
                (headers, vec![(UPLOADS_PARAM.to_owned(), String::new())])
            }
            MultipartRequest::ListParts(id) | MultipartRequest::Abort(id) => {
                (Vec::new(), vec![(UPLOAD_ID_PARAM.to_owned(), id.to_string())])
            }
        };
        let request = PresignRequest { method: multipart.method(), ..request.clone() };
        self.sign_url(&request, headers, query)
    }

    async fn upload_part(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        number: u32,
        body: bytes::Bytes,
    ) -> Result<UploadedPart> {
        let length = Some(body.len() as u64);
        let body = futures_util::stream::iter([Ok::<_, std::convert::Infallible>(body)]);
        self.write_part(bucket, key, upload_id, number, length, None, crate::multipart::MAX_OBJECT_SIZE, body).await
    }

    async fn list_parts(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
    ) -> Result<Vec<UploadedPart>> {
        self.uploaded_parts(bucket, key, upload_id).await
    }

    async fn complete_multipart(
        &self,
        bucket: &BucketName,
        key: &ObjectKey,
        upload_id: &UploadId,
        parts: &[CompletedPart],
        progress: &Progress,
    ) -> Result<()> {
        self.complete_upload(bucket, key, upload_id, parts, progress).await
    }

    async fn abort_multipart(&self, bucket: &BucketName, key: &ObjectKey, upload_id: &UploadId) -> Result<()> {
        self.abort_upload(bucket, key, upload_id).await
    }
}
