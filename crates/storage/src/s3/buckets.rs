//! The S3 backend's buckets: created and checked, and the CORS and lifecycle rules they carry.

use super::*;

#[async_trait]
impl BucketAdmin for S3Storage {
    async fn create_bucket(&self, bucket: &BucketName) -> Result<()> {
        match self.check_bucket(bucket).await {
            Ok(()) => return Ok(()),
            Err(Error::BucketNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let region = self.signer.region.as_str();
        let configuration = (region != "us-east-1").then(|| {
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region)).build()
        });
        match self
            .client
            .create_bucket()
            .bucket(bucket.as_str())
            .set_create_bucket_configuration(configuration)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().code() == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(SdkError::ServiceError(e)) if e.err().code() == Some("BucketAlreadyExists") => {
                Err(Error::AccessDenied {
                    message: format!(
                        "bucket '{bucket}' exists but belongs to another account; choose another BUCKET_NAME"
                    ),
                })
            }
            Err(e) => Err(sdk_error("CreateBucket", bucket, None, e)),
        }
    }

    async fn check_bucket(&self, bucket: &BucketName) -> Result<()> {
        self.client
            .head_bucket()
            .bucket(bucket.as_str())
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("HeadBucket", bucket, None, e))
    }
}

#[async_trait]
impl BucketRules for S3Storage {
    async fn allow_browser_uploads(&self, bucket: &BucketName, origins: &[String]) -> Result<()> {
        let rule = CorsRule::builder()
            .set_allowed_origins(Some(origins.to_vec()))
            .allowed_methods("PUT")
            .allowed_methods("POST")
            .allowed_methods("DELETE")
            .allowed_methods("GET")
            .allowed_methods("HEAD")
            .allowed_headers("*")
            .expose_headers("ETag")
            .max_age_seconds(3600)
            .build()
            .map_err(|e| Error::other("invalid CORS rule", e))?;
        let configuration =
            CorsConfiguration::builder().cors_rules(rule).build().map_err(|e| Error::other("invalid CORS rule", e))?;
        self.client
            .put_bucket_cors()
            .bucket(bucket.as_str())
            .cors_configuration(configuration)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("PutBucketCors", bucket, None, e))
    }

    async fn install_lifecycle(&self, bucket: &BucketName, days: u32) -> Result<()> {
        let days = i32::try_from(days.max(1)).unwrap_or(i32::MAX);
        let rule = LifecycleRule::builder()
            .id("draftstore-expire-drafts")
            .status(ExpirationStatus::Enabled)
            .filter(LifecycleRuleFilter::builder().prefix("").build())
            .expiration(LifecycleExpiration::builder().days(days).build())
            .abort_incomplete_multipart_upload(
                AbortIncompleteMultipartUpload::builder().days_after_initiation(days).build(),
            )
            .build()
            .map_err(|e| Error::other("invalid lifecycle rule", e))?;
        let configuration = BucketLifecycleConfiguration::builder()
            .rules(rule)
            .build()
            .map_err(|e| Error::other("invalid lifecycle rule", e))?;
        self.client
            .put_bucket_lifecycle_configuration()
            .bucket(bucket.as_str())
            .lifecycle_configuration(configuration)
            .send()
            .await
            .map(drop)
            .map_err(|e| sdk_error("PutBucketLifecycleConfiguration", bucket, None, e))
    }
}
