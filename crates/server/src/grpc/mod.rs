//! The gRPC adapter: `draft.v1.DraftService` over the same [`DraftService`] as REST, the standard health service
//! and server reflection. Errors are real gRPC statuses carrying the error type in a `google.rpc.ErrorInfo`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use draftstore_proto::draft::v1 as pb;
use draftstore_proto::draft::v1::draft_service_server::{DraftService as DraftRpc, DraftServiceServer};
use time::OffsetDateTime;
use tonic::{Code, Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::server::HealthReporter;
use tonic_types::{ErrorDetails, StatusExt};

use crate::admission::Gate;
use crate::domain::{
    Disposition, IdempotencyKey, Metadata, Stage, parse_checksum, parse_content_type, parse_etag, parse_filename,
    parse_object_name, parse_part_number, parse_upload_id, parse_variant,
};
use crate::error::Error;
use crate::service::{
    Confirmation, DEFAULT_PAGE_SIZE, Download, DraftService, MultipartStart, ObjectEntry, PartRequest, Promotion,
    SetDraft, Upload,
};
use draftstore_storage::CompletedPart;
use layers::{Admit, Observe, admitted};

mod layers;

/// `ErrorInfo.domain` of every DraftStore error.
pub const ERROR_DOMAIN: &str = "draftstore";

/// The gRPC face of the draft service.
#[derive(Debug, Clone)]
pub struct GrpcApi {
    service: DraftService,
}

impl GrpcApi {
    /// The tonic service, behind its layers.
    pub fn server(service: DraftService, gate: Arc<Gate>) -> Observe<Admit<DraftServiceServer<Self>>> {
        Observe::new(Admit::new(DraftServiceServer::new(Self { service }), Arc::clone(&gate)), gate)
    }
}

fn ok() -> Option<pb::Result> {
    Some(pb::Result { success: true, error_message: String::new(), error_type: pb::ErrorType::Unspecified.into() })
}

fn timestamp(at: OffsetDateTime) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds: at.unix_timestamp(), nanos: 0 })
}

fn stage(stage: Stage) -> pb::Stage {
    match stage {
        Stage::Draft => pb::Stage::Draft,
        Stage::Main => pb::Stage::Main,
    }
}

/// proto3 cannot tell an empty string from an absent one: empty means none.
fn given(value: &str) -> Option<&str> {
    Some(value).filter(|v| !v.is_empty())
}

#[tonic::async_trait]
impl DraftRpc for GrpcApi {
    async fn create_draft_bucket(
        &self,
        request: Request<pb::CreateDraftBucketRequest>,
    ) -> Result<Response<pb::CreateDraftBucketResponse>, Status> {
        let (caller, _) = admitted(request)?;
        caller.require_operator("CreateDraftBucket")?;
        self.service.create_buckets().await?;
        Ok(Response::new(pb::CreateDraftBucketResponse { result: ok() }))
    }

    async fn get_upload_url(
        &self,
        request: Request<pb::GetUploadUrlRequest>,
    ) -> Result<Response<pb::GetUploadUrlResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let name = parse_object_name(&request.object_name)?;
        let upload = Upload {
            content_type: parse_content_type(given(&request.content_type))?,
            content_length: request.content_length,
            checksum_sha256: parse_checksum(given(&request.checksum_sha256))?,
        };
        let ticket = self.service.upload_url(&caller, &name, upload, OffsetDateTime::now_utc()).await?;
        Ok(Response::new(pb::GetUploadUrlResponse {
            result: ok(),
            headers: ticket.headers(),
            expires_at: timestamp(ticket.expires_at),
            object_name: ticket.object_name.to_string(),
            method: ticket.url.method.as_str().to_owned(),
            url: ticket.url.url,
        }))
    }

    async fn get_download_url(
        &self,
        request: Request<pb::GetDownloadUrlRequest>,
    ) -> Result<Response<pb::GetDownloadUrlResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let name = parse_object_name(&request.object_name)?;
        let wanted = match pb::Stage::try_from(request.stage) {
            Ok(pb::Stage::Unspecified) => None,
            Ok(pb::Stage::Draft) => Some(Stage::Draft),
            Ok(pb::Stage::Main) => Some(Stage::Main),
            Err(_) => return Err(Error::InvalidRequest(format!("unknown stage {}", request.stage)).into()),
        };
        let disposition = match pb::Disposition::try_from(request.disposition) {
            Ok(pb::Disposition::Unspecified) => None,
            Ok(pb::Disposition::Inline) => Some(Disposition::Inline),
            Ok(pb::Disposition::Attachment) => Some(Disposition::Attachment),
            Err(_) => return Err(Error::InvalidRequest(format!("unknown disposition {}", request.disposition)).into()),
        };
        let download = Download {
            stage: wanted,
            filename: parse_filename(given(&request.filename))?,
            disposition,
            variant: parse_variant(given(&request.variant))?,
        };
        let ticket = self.service.download_url(&caller, &name, &download, OffsetDateTime::now_utc()).await?;
        Ok(Response::new(pb::GetDownloadUrlResponse {
            result: ok(),
            expires_at: timestamp(ticket.expires_at),
            object_name: ticket.object_name.to_string(),
            stage: stage(ticket.stage).into(),
            url: ticket.url.url,
        }))
    }

    async fn confirm_upload(
        &self,
        request: Request<pb::ConfirmUploadRequest>,
    ) -> Result<Response<pb::ConfirmUploadResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let name = parse_object_name(&request.object_name)?;
        let promotion = Promotion::parse(given(&request.final_name), metadata(request.metadata), request.overwrite)?;
        let confirmation = self.service.confirm(&caller, &name, &promotion).await?;
        Ok(Response::new(confirmed(confirmation)))
    }

    async fn confirm_set(
        &self,
        request: Request<pb::ConfirmSetRequest>,
    ) -> Result<Response<pb::ConfirmSetResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let key = IdempotencyKey::parse(&request.idempotency_key)?;
        let drafts = request
            .drafts
            .into_iter()
            .map(|draft| SetDraft::parse(&draft.object_name, given(&draft.final_name), metadata(draft.metadata)))
            .collect::<Result<Vec<_>, Error>>()?;
        let set = self.service.confirm_set(&caller, &key, &drafts).await?;
        Ok(Response::new(pb::ConfirmSetResponse {
            result: ok(),
            set_id: set.set_id,
            objects: set.objects.into_iter().map(confirmed).collect(),
        }))
    }

    async fn list_objects(
        &self,
        request: Request<pb::ListObjectsRequest>,
    ) -> Result<Response<pb::ListObjectsResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let page_size = request.page_size.map_or(DEFAULT_PAGE_SIZE, |n| n as usize);
        let page = self.service.list_objects(&caller, &request.prefix, given(&request.page_token), page_size).await?;
        Ok(Response::new(pb::ListObjectsResponse {
            result: ok(),
            objects: page.objects.into_iter().map(stored_object).collect(),
            next_page_token: page.next.unwrap_or_default(),
        }))
    }

    async fn stat_object(
        &self,
        request: Request<pb::StatObjectRequest>,
    ) -> Result<Response<pb::StatObjectResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let name = parse_object_name(&request.object_name)?;
        let object = self.service.stat_object(&caller, &name).await?;
        Ok(Response::new(pb::StatObjectResponse { result: ok(), object: Some(stored_object(object)) }))
    }

    async fn delete_object(
        &self,
        request: Request<pb::DeleteObjectRequest>,
    ) -> Result<Response<pb::DeleteObjectResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let name = parse_object_name(&request.object_name)?;
        self.service.delete_object(&caller, &name).await?;
        Ok(Response::new(pb::DeleteObjectResponse { result: ok() }))
    }

    async fn start_multipart_upload(
        &self,
        request: Request<pb::StartMultipartUploadRequest>,
    ) -> Result<Response<pb::StartMultipartUploadResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let name = parse_object_name(&request.object_name)?;
        let start = MultipartStart {
            content_type: parse_content_type(given(&request.content_type))?,
            content_length: request.content_length,
            checksum_sha256: parse_checksum(given(&request.checksum_sha256))?,
            part_size: request.part_size,
        };
        let started = self.service.start_multipart(&caller, &name, start).await?;
        Ok(Response::new(pb::StartMultipartUploadResponse {
            result: ok(),
            upload_id: started.upload_id.to_string(),
            object_name: started.object_name.to_string(),
            part_size: started.part_size,
            part_count: started.part_count,
        }))
    }

    async fn sign_upload_parts(
        &self,
        request: Request<pb::SignUploadPartsRequest>,
    ) -> Result<Response<pb::SignUploadPartsResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let name = parse_object_name(&request.object_name)?;
        let upload_id = parse_upload_id(&request.upload_id)?;
        let parts = request
            .parts
            .iter()
            .map(|part| PartRequest::parse(u64::from(part.part_number), given(&part.checksum_sha256)))
            .collect::<Result<Vec<_>, Error>>()?;
        let signed = self.service.sign_parts(&caller, &name, &upload_id, &parts, OffsetDateTime::now_utc()).await?;
        Ok(Response::new(pb::SignUploadPartsResponse {
            result: ok(),
            upload_id: upload_id.to_string(),
            object_name: name.to_string(),
            parts: signed
                .into_iter()
                .map(|part| pb::SignedPart {
                    part_number: part.number,
                    method: part.url.method.as_str().to_owned(),
                    headers: part.url.headers.into_iter().collect(),
                    url: part.url.url,
                    expires_at: timestamp(part.expires_at),
                })
                .collect(),
        }))
    }

    async fn list_upload_parts(
        &self,
        request: Request<pb::ListUploadPartsRequest>,
    ) -> Result<Response<pb::ListUploadPartsResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let name = parse_object_name(&request.object_name)?;
        let upload_id = parse_upload_id(&request.upload_id)?;
        let parts = self.service.list_parts(&caller, &name, &upload_id).await?;
        Ok(Response::new(pb::ListUploadPartsResponse {
            result: ok(),
            upload_id: upload_id.to_string(),
            object_name: name.to_string(),
            parts: parts
                .into_iter()
                .map(|part| pb::UploadedPart {
                    part_number: part.number,
                    size: part.size,
                    etag: part.etag,
                    checksum_sha256: part.sha256.map(|c| c.to_string()).unwrap_or_default(),
                    last_modified: timestamp(part.last_modified),
                })
                .collect(),
        }))
    }

    async fn complete_multipart_upload(
        &self,
        request: Request<pb::CompleteMultipartUploadRequest>,
    ) -> Result<Response<pb::CompleteMultipartUploadResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let name = parse_object_name(&request.object_name)?;
        let upload_id = parse_upload_id(&request.upload_id)?;
        let parts = request
            .parts
            .into_iter()
            .map(|part| {
                Ok(CompletedPart {
                    number: parse_part_number(u64::from(part.part_number))?,
                    etag: parse_etag(part.etag)?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let size = self.service.complete_multipart(&caller, &name, &upload_id, &parts).await?;
        Ok(Response::new(pb::CompleteMultipartUploadResponse { result: ok(), object_name: name.to_string(), size }))
    }

    async fn abort_multipart_upload(
        &self,
        request: Request<pb::AbortMultipartUploadRequest>,
    ) -> Result<Response<pb::AbortMultipartUploadResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let name = parse_object_name(&request.object_name)?;
        let upload_id = parse_upload_id(&request.upload_id)?;
        self.service.abort_multipart(&caller, &name, &upload_id).await?;
        Ok(Response::new(pb::AbortMultipartUploadResponse { result: ok() }))
    }

    async fn list_drafts(
        &self,
        request: Request<pb::ListDraftsRequest>,
    ) -> Result<Response<pb::ListDraftsResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let page_size = request.page_size.map_or(DEFAULT_PAGE_SIZE, |n| n as usize);
        let page = self.service.list_drafts(&caller, &request.prefix, given(&request.page_token), page_size).await?;
        Ok(Response::new(pb::ListDraftsResponse {
            result: ok(),
            drafts: page
                .drafts
                .into_iter()
                .map(|draft| pb::Draft {
                    object_name: draft.name.to_string(),
                    size: draft.size,
                    content_type: draft.content_type.to_string(),
                    uploaded_at: timestamp(draft.uploaded_at),
                    expires_at: timestamp(draft.expires_at),
                })
                .collect(),
            next_page_token: page.next.unwrap_or_default(),
        }))
    }

    async fn discard_draft(
        &self,
        request: Request<pb::DiscardDraftRequest>,
    ) -> Result<Response<pb::DiscardDraftResponse>, Status> {
        let (caller, request) = admitted(request)?;
        let name = parse_object_name(&request.object_name)?;
        self.service.discard(&caller, &name).await?;
        Ok(Response::new(pb::DiscardDraftResponse { result: ok() }))
    }
}

/// proto3 cannot tell an empty map from an absent one: empty means none.
fn metadata(metadata: HashMap<String, String>) -> Option<Metadata> {
    Some(metadata.into_iter().collect()).filter(|m: &Metadata| !m.is_empty())
}

/// A confirmation in the protocol's terms.
fn confirmed(confirmation: Confirmation) -> pb::ConfirmUploadResponse {
    pb::ConfirmUploadResponse {
        result: ok(),
        final_location: confirmation.final_location,
        object_name: confirmation.object_name.to_string(),
        content: confirmation.content.map(content_report),
        image: confirmation.image.map(image_info),
        size: confirmation.rewritten.as_ref().map(|r| r.size),
        sha256: confirmation.rewritten.map(|r| r.sha256.to_string()).unwrap_or_default(),
    }
}

/// A confirmed object in the protocol's terms.
fn stored_object(object: ObjectEntry) -> pb::StoredObject {
    pb::StoredObject {
        object_name: object.name.to_string(),
        size: object.size,
        content_type: object.content_type.to_string(),
        confirmed_at: timestamp(object.confirmed_at),
        sha256: object.sha256.map(|c| c.to_string()).unwrap_or_default(),
        metadata: object.metadata.into_iter().collect(),
        image: object.image.map(image_info),
    }
}

/// An image report in the protocol's terms.
fn image_info(image: draftstore_api::ImageReport) -> pb::ImageInfo {
    pb::ImageInfo {
        width: image.width,
        height: image.height,
        placeholder: image.placeholder,
        variants: image
            .variants
            .into_iter()
            .map(|v| pb::Variant {
                name: v.name,
                content_type: v.content_type,
                width: v.width,
                height: v.height,
                size: v.size,
            })
            .collect(),
    }
}

/// A content report in the protocol's terms.
fn content_report(report: draftstore_api::ContentReport) -> pb::ContentReport {
    use draftstore_api::ScanResult;
    let (scan_result, scan_engine) = match report.scan {
        Some(scan) => {
            let result = match scan.result {
                ScanResult::Clean => "clean",
                ScanResult::Skipped => "skipped",
            };
            (result.to_owned(), scan.engine.unwrap_or_default())
        }
        None => (String::new(), String::new()),
    };
    pb::ContentReport {
        detected_type: report.detected_type.unwrap_or_default(),
        width: report.width,
        height: report.height,
        scan_result,
        scan_engine,
    }
}

/// The gRPC code of an error, as REST's status.
fn code(error: &Error) -> Code {
    match error {
        Error::InvalidObjectName(_)
        | Error::InvalidRequest(_)
        | Error::UploadTooLarge(_)
        | Error::UnsupportedContentType(_) => Code::InvalidArgument,
        Error::ObjectNotFound(_) | Error::BucketNotFound(_) | Error::UploadNotFound(_) | Error::VariantNotFound(_) => {
            Code::NotFound
        }
        Error::Unauthenticated => Code::Unauthenticated,
        Error::RateLimited { .. } | Error::InsufficientStorage { .. } => Code::ResourceExhausted,
        Error::UploadRejected(_)
        | Error::ContentTypeMismatch(_)
        | Error::ImageTooLarge(_)
        | Error::ImageUnreadable(_)
        | Error::UploadInfected(_)
        | Error::InvalidParts(_) => Code::FailedPrecondition,
        Error::HookUnavailable(_)
        | Error::ScannerUnavailable(_)
        | Error::ServerBusy
        | Error::UploadsBusy(_)
        | Error::ImagesBusy(_)
        | Error::AppendsBusy(_) => Code::Unavailable,
        Error::BodyStalled(_) => Code::DeadlineExceeded,
        Error::ObjectAlreadyExists(_) | Error::NameTaken(_) => Code::AlreadyExists,
        Error::DraftChanged(_) => Code::Aborted,
        Error::IdempotencyKeyReused(_) => Code::FailedPrecondition,
        Error::InSet { error, .. } => code(error),
        Error::SignatureRejected(_) | Error::Forbidden(_) => Code::PermissionDenied,
        Error::StorageUnavailable { .. } | Error::StorageTimeout { .. } => Code::Unavailable,
        // The store refused DraftStore's own credentials: a server-side problem, as REST's 500.
        Error::StorageAccessDenied { .. } | Error::Internal { .. } => Code::Internal,
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Self {
        let code = code(&error);
        if matches!(code, Code::Internal | Code::Unavailable) || matches!(error, Error::InsufficientStorage { .. }) {
            tracing::error!(error = %error.chain(), error_type = error.error_type().as_str(), "RPC failed");
        }
        let mut details = ErrorDetails::with_error_info(error.error_type().as_str(), ERROR_DOMAIN, HashMap::new());
        if let Error::RateLimited { retry_after } = &error {
            details.set_retry_info(Some(*retry_after));
        }
        Status::with_error_details(code, error.to_string(), details)
    }
}

/// The health service, with both names NOT_SERVING until [`track_health`] has asked the store once: a probe that
/// comes first finds the service registered and not ready, never unknown.
pub async fn health_service() -> (HealthReporter, HealthServer<impl Health>) {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter.set_service_status("", ServingStatus::NotServing).await;
    reporter.set_service_status(SERVICE_NAME, ServingStatus::NotServing).await;
    (reporter, health)
}

/// Keeps the health service in step with the store: SERVING while it answers, NOT_SERVING otherwise, both overall
/// and for `draft.v1.DraftService`. Runs until dropped.
pub async fn track_health(reporter: HealthReporter, service: DraftService, interval: Duration) {
    let mut last = Some(ServingStatus::NotServing);
    loop {
        let status = match service.ready().await {
            Ok(()) => ServingStatus::Serving,
            Err(e) => {
                tracing::debug!(error = %e.chain(), "storage not ready");
                ServingStatus::NotServing
            }
        };
        if last != Some(status) {
            reporter.set_service_status("", status).await;
            reporter.set_service_status(SERVICE_NAME, status).await;
            last = Some(status);
        }
        tokio::time::sleep(interval).await;
    }
}

/// The full name of the service, as health checks and reflection know it.
pub const SERVICE_NAME: &str = "draft.v1.DraftService";
