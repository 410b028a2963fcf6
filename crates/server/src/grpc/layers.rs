//! gRPC as a [`Protocol`] of the admission stack: calls are labelled by their method, refused with a gRPC status
//! and counted by status code; [`admitted`] hands a handler its caller.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::{Request as HttpRequest, Response as HttpResponse};
use opentelemetry::KeyValue;
use tonic::server::NamedService;
use tonic::transport::server::TcpConnectInfo;
use tonic::{Code, Request, Status};
use tracing::Span;

use crate::admission::{self, Protocol};
use crate::auth::Caller;
use crate::error::Error;

/// The RPCs of `draft.v1.DraftService`.
#[derive(Debug, Clone, Copy)]
pub struct Grpc;

/// [`admission::Observe`], for gRPC.
pub type Observe<S> = admission::Observe<Grpc, S>;

/// [`admission::Admit`], for gRPC.
pub type Admit<S> = admission::Admit<Grpc, S>;

impl<K, S: NamedService> NamedService for admission::Around<K, Grpc, S> {
    const NAME: &'static str = S::NAME;
}

impl Protocol for Grpc {
    const NAME: &'static str = "grpc";
    const SPAN: &'static str = "rpc";
    type Body = tonic::body::Body;
    type Route = &'static str;
    type Outcome = Code;

    fn peer<B>(request: &HttpRequest<B>) -> Option<IpAddr> {
        request.extensions().get::<TcpConnectInfo>().and_then(TcpConnectInfo::remote_addr).map(|peer| peer.ip())
    }

    fn route<B>(request: &HttpRequest<B>) -> &'static str {
        method_label(request.uri().path())
    }

    fn span(id: &str, method: &&'static str) -> Span {
        tracing::info_span!("rpc", request_id = %id, method = %method, trace_id = tracing::field::Empty)
    }

    fn attributes(method: &&'static str, _client: Option<IpAddr>) -> impl Iterator<Item = KeyValue> {
        [KeyValue::new("rpc.system", "grpc"), KeyValue::new("rpc.method", *method)].into_iter()
    }

    fn refuse(error: Error) -> HttpResponse<tonic::body::Body> {
        Status::from(error).into_http()
    }

    fn outcome(response: &HttpResponse<tonic::body::Body>) -> Code {
        // An error is a trailers-only response: its status is in the headers. A success's is in trailers.
        response.headers().get("grpc-status").map_or(Code::Ok, |v| Code::from_bytes(v.as_bytes()))
    }

    fn ended(code: Code) -> (Option<String>, KeyValue) {
        let failed = matches!(
            code,
            Code::Internal | Code::Unavailable | Code::Unknown | Code::DataLoss | Code::DeadlineExceeded
        );
        (failed.then(|| format!("{code:?}")), KeyValue::new("rpc.grpc.status_code", code as i64))
    }

    fn log(code: Code, elapsed: Duration) {
        tracing::info!(code = ?code, elapsed_ms = elapsed.as_secs_f64() * 1e3, "rpc");
    }

    fn count(method: &&'static str, code: Code, elapsed: Duration) {
        crate::telemetry::GRPC_REQUESTS.record(&[method], code_name(code), Some(elapsed));
    }
}

/// The caller [`Admit`] let in, and the message.
pub fn admitted<T>(request: Request<T>) -> Result<(Caller, T), Status> {
    let caller = request.extensions().get::<Caller>().cloned();
    let caller = caller.ok_or_else(|| Status::internal("the call reached its handler without admission"))?;
    Ok((caller, request.into_inner()))
}

/// The methods of `draft.v1.DraftService`, as the contract names them (a test checks them against it).
pub(crate) const METHODS: [&str; 15] = [
    "CreateDraftBucket",
    "GetUploadURL",
    "GetDownloadURL",
    "ConfirmUpload",
    "StartMultipartUpload",
    "SignUploadParts",
    "ListUploadParts",
    "CompleteMultipartUpload",
    "AbortMultipartUpload",
    "ListDrafts",
    "DiscardDraft",
    "ConfirmSet",
    "ListObjects",
    "StatObject",
    "DeleteObject",
];

/// A call's method as a label, log field and span attribute: one of the service's own, or `unknown` for any path
/// a client invents, whatever the call's outcome (admission refuses a call before the path is routed, so the
/// outcome says nothing about whether the method exists).
fn method_label(path: &str) -> &'static str {
    let method = path.strip_prefix('/').and_then(|path| path.strip_prefix(super::SERVICE_NAME)?.strip_prefix('/'));
    method.and_then(|method| METHODS.iter().find(|known| **known == method)).copied().unwrap_or("unknown")
}

/// A status code's name, as its `Debug` writes it ("Ok", "InvalidArgument"): the label of the calls' metrics, made
/// once per code rather than at every call.
fn code_name(code: Code) -> &'static str {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let names =
        NAMES.get_or_init(|| (0..=Code::Unauthenticated as i32).map(|i| format!("{:?}", Code::from_i32(i))).collect());
    names.get(code as usize).map_or("Unknown", String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_method_labels_are_the_contracts_methods() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(draftstore_proto::FILE_DESCRIPTOR_SET).expect("descriptors");
        let service = set
            .file
            .iter()
            .flat_map(|file| file.service.iter().map(move |service| (file.package(), service)))
            .find(|(package, service)| format!("{package}.{}", service.name()) == super::super::SERVICE_NAME)
            .expect("the service is in the contract")
            .1;
        let mut contract: Vec<&str> = service.method.iter().map(|method| method.name()).collect();
        let mut labels = METHODS.to_vec();
        contract.sort_unstable();
        labels.sort_unstable();
        assert_eq!(labels, contract);
        assert_eq!(method_label("/draft.v1.DraftService/ConfirmUpload"), "ConfirmUpload");
        for invented in ["/draft.v1.DraftService/Invented", "/other.Service/ConfirmUpload", "/", "", "ConfirmUpload"] {
            assert_eq!(method_label(invented), "unknown", "{invented}");
        }
    }

    #[test]
    fn a_code_is_named_as_its_debug_writes_it() {
        for i in 0..=16 {
            let code = Code::from_i32(i);
            assert_eq!(code_name(code), format!("{code:?}"));
        }
        assert_eq!(code_name(Code::InvalidArgument), "InvalidArgument");
    }
}
