//! URLs signed locally with SigV4 by `rusty-s3`, with credentials cached until shortly before they expire.

use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use aws_sdk_s3::config::{ProvideCredentials, SharedCredentialsProvider};
use rusty_s3::actions::{
    AbortMultipartUpload, CreateMultipartUpload, GetObject, ListParts, PutObject, S3Action, UploadPart,
};
use rusty_s3::{Bucket, UrlStyle};
use url::Url;

use crate::storage::display_header_name;
use crate::{Error, Method, MultipartRequest, PresignRequest, PresignedUrl, Result, UploadId};

use super::CREDENTIAL_MARGIN;

/// Signs URLs with cached credentials, refreshed from the provider before they expire.
#[derive(Debug)]
pub(super) struct Signer {
    pub(super) endpoint: Url,
    pub(super) style: UrlStyle,
    pub(super) region: String,
    pub(super) provider: SharedCredentialsProvider,
    pub(super) cached: RwLock<Option<(Arc<rusty_s3::Credentials>, Option<SystemTime>)>>,
}

impl Signer {
    async fn credentials(&self) -> Result<Arc<rusty_s3::Credentials>> {
        if let Some((credentials, expiry)) = &*self.cached.read().unwrap_or_else(|e| e.into_inner())
            && expiry.is_none_or(|at| at > SystemTime::now() + CREDENTIAL_MARGIN)
        {
            return Ok(Arc::clone(credentials));
        }
        let fresh = self
            .provider
            .provide_credentials()
            .await
            .map_err(|e| Error::AccessDenied { message: format!("no usable credentials for signing URLs: {e}") })?;
        let credentials = Arc::new(match fresh.session_token() {
            Some(token) => {
                rusty_s3::Credentials::new_with_token(fresh.access_key_id(), fresh.secret_access_key(), token)
            }
            None => rusty_s3::Credentials::new(fresh.access_key_id(), fresh.secret_access_key()),
        });
        *self.cached.write().unwrap_or_else(|e| e.into_inner()) = Some((Arc::clone(&credentials), fresh.expiry()));
        Ok(credentials)
    }

    /// The credentials, the bucket and the time every signature of `request` needs.
    async fn prepare(
        &self,
        request: &PresignRequest<'_>,
    ) -> Result<(Arc<rusty_s3::Credentials>, Bucket, jiff::Timestamp)> {
        let credentials = self.credentials().await?;
        let bucket = Bucket::new(self.endpoint.clone(), self.style, request.bucket.to_string(), self.region.clone())
            .map_err(|e| Error::other(format!("cannot address bucket '{}' at {}", request.bucket, self.endpoint), e))?;
        let time = jiff::Timestamp::from_second(request.now.unix_timestamp())
            .map_err(|e| Error::other("signing time out of range", e))?;
        Ok((credentials, bucket, time))
    }

    pub(super) async fn sign(&self, request: &PresignRequest<'_>) -> Result<PresignedUrl> {
        let (credentials, bucket, time) = self.prepare(request).await?;
        let headers = match request.method {
            Method::Put => request.conditions.upload_headers(),
            Method::Get => Vec::new(),
            Method::Post | Method::Delete => {
                return Err(Error::Other { message: "a plain object URL is for GET or PUT".to_owned(), source: None });
            }
        };
        let url = match request.method {
            Method::Put => {
                let mut action = PutObject::new(&bucket, Some(&credentials), request.key.as_str());
                for (name, value) in &headers {
                    action.headers_mut().insert(name.clone(), value.clone());
                }
                action.sign_with_time(request.expires_in, &time)
            }
            Method::Get | Method::Post | Method::Delete => {
                let mut action = GetObject::new(&bucket, Some(&credentials), request.key.as_str());
                if let Some(disposition) = &request.conditions.disposition {
                    action.query_mut().insert("response-content-disposition", disposition.clone());
                }
                action.sign_with_time(request.expires_in, &time)
            }
        };
        Ok(presigned(url, request.method, headers))
    }

    pub(super) async fn sign_multipart(
        &self,
        request: &PresignRequest<'_>,
        multipart: MultipartRequest<'_>,
    ) -> Result<PresignedUrl> {
        let (credentials, bucket, time) = self.prepare(request).await?;
        let (key, expires) = (request.key.as_str(), request.expires_in);
        let mut headers = Vec::new();
        let url = match multipart {
            MultipartRequest::Create => {
                let mut action = CreateMultipartUpload::new(&bucket, Some(&credentials), key);
                if let Some(content_type) = &request.conditions.content_type {
                    headers.push(("content-type".to_owned(), content_type.to_string()));
                    action.headers_mut().insert("content-type", content_type.to_string());
                }
                action.sign_with_time(expires, &time)
            }
            MultipartRequest::ListParts(id) => {
                ListParts::new(&bucket, Some(&credentials), key, id.as_str()).sign_with_time(expires, &time)
            }
            MultipartRequest::Abort(id) => {
                AbortMultipartUpload::new(&bucket, Some(&credentials), key, id.as_str()).sign_with_time(expires, &time)
            }
        };
        Ok(presigned(url, multipart.method(), headers))
    }

    pub(super) async fn sign_part(
        &self,
        request: &PresignRequest<'_>,
        upload_id: &UploadId,
        number: u32,
    ) -> Result<PresignedUrl> {
        let (credentials, bucket, time) = self.prepare(request).await?;
        let number = u16::try_from(number).map_err(|e| Error::other("part number out of range", e))?;
        let headers = request.conditions.part_headers();
        let mut action = UploadPart::new(&bucket, Some(&credentials), request.key.as_str(), number, upload_id.as_str());
        for (name, value) in &headers {
            action.headers_mut().insert(name.clone(), value.clone());
        }
        let url = action.sign_with_time(request.expires_in, &time);
        Ok(presigned(url, Method::Put, headers))
    }
}

/// A signed URL, with the headers its request must send, named as clients expect them.
fn presigned(url: Url, method: Method, headers: Vec<(String, String)>) -> PresignedUrl {
    let headers = headers.into_iter().map(|(name, value)| (display_header_name(&name), value)).collect();
    PresignedUrl { url: url.into(), method, headers }
}
