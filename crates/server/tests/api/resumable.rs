//! Resumable uploads at `/files/`: the server-side requirements of the IETF draft "Resumable Uploads for HTTP"
//! (draft-ietf-httpbis-resumable-upload) for interop versions 8 and 9, one test per requirement, written from the
//! draft's text; tus 1.0.0; the refusals (wrong offset, checksum, past the length, another tenant, expiry,
//! malformed numbers, races); the finished upload as a draft that confirm promotes; and interop 6's basic flow. All
//! on the local backend and on SeaweedFS.
//!
//! Interop 8 is the text of draft -11 (httpwg/http-extensions, "The current interop version is 8"), interop 9 the
//! text of -12 ("... is 9"). "§" numbers follow the drafts' heading structure: §4.1.1 Offset, §4.1.2 Completeness,
//! §4.1.3 Length, §4.1.4 Limits, §4.2.2 creation (server), §4.3.2 offset retrieval (server), §4.4.2 append
//! (server), §4.5.2 cancellation (server), §4.6 Concurrency, §5 the 104 status code, §13 Security Considerations,
//! Appendix B Draft Version Identification. The ids in brackets are those of docs/design/resumable-uploads.md §2.2.

use std::time::Duration;

use draftstore_storage::{BucketName, ObjectKey};
use serde_json::json;
use sha2::Digest;

use crate::helpers::resumable::{
    COMPLETED_UPLOAD, Dialect, INCONSISTENT_LENGTH, MISMATCHING_OFFSET, Reply, Resumable, broken_off, encode, fed_body,
    metadata, raw_exchange, send, try_send,
};
use crate::helpers::{Backend, TENANTS, TestApp, api_keys, on_both_backends, pseudo_random_bytes};

/// The interop versions of the current drafts.
const VERSIONS: [u8; 2] = [8, 9];

/// A server on `backend`, and its resumable endpoint.
async fn server(backend: Backend, extra: &[&str]) -> (TestApp, Resumable) {
    let app = backend.spawn(extra).await;
    let files = Resumable::of(&app);
    (app, files)
}

/// Asserts that no draft of this name exists.
async fn no_draft(app: &TestApp, name: &str) {
    app.download_url(name, Some("draft")).await.error(404, "OBJECT_NOT_FOUND");
}

/// The bytes of the draft of this name.
async fn draft_bytes(app: &TestApp, name: &str) -> Vec<u8> {
    app.download(name, Some("draft")).await.1
}

/// A unique name for a test's draft.
fn name(test: &str, version: u8) -> String {
    format!("resumable/{test}-v{version}.bin")
}

/// The methods that retrieve an upload's offset: `HEAD`, and from interop 9 also `GET` (§4.3.2 of -12).
fn retrievals(version: u8) -> &'static [&'static str] {
    if version >= 9 { &["HEAD", "GET"] } else { &["HEAD"] }
}

/// An offset retrieval by `method`.
async fn retrieve(files: &Resumable, url: &str, version: u8, method: &str) -> Reply {
    send(files.request(method, url, Some(Dialect::Ietf(version)))).await
}

// ---------------------------------------------------------------------------------------------------------------
// §4.1 State

/// [S1] §4.1.1: "the offset MUST NOT decrease", through appends, refused appends (a wrong offset, a contradicting
/// length) and an append the client breaks off.
async fn offset_must_not_decrease(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let url = files.created(version, Some(30), &name("monotonic", version)).await;
        let data = pseudo_random_bytes(30, 1);
        let mut seen = 0;
        let reply = files.append(&url, version, 0, false, data[..10].to_vec()).await;
        assert!(reply.is_success(), "v{version}: {reply}");
        not_below(&files, &url, version, &mut seen).await;
        let _ = files.append(&url, version, 0, false, data[..5].to_vec()).await;
        not_below(&files, &url, version, &mut seen).await;
        let _ = send(files.append_request(&url, version, 10, false).header("upload-length", "31").body("x")).await;
        not_below(&files, &url, version, &mut seen).await;
        broken_off(files.append_request(&url, version, 10, false), &data[10..15]).await;
        not_below(&files, &url, version, &mut seen).await;
        assert!(seen >= 10, "v{version}: acknowledged bytes were lost");
    }
}

/// Asserts that the upload's offset is at least `seen`, and makes it the new `seen`.
async fn not_below(files: &Resumable, url: &str, version: u8, seen: &mut u64) {
    let now = files.head_settled(url, Dialect::Ietf(version)).await;
    assert!(now.is_success(), "v{version}: {now}");
    assert!(now.offset() >= *seen, "v{version}: the offset went from {seen} down to {}", now.offset());
    *seen = now.offset();
}

/// [S2] §4.1.1: "If the server loses any part of the state, it MUST deactivate the upload resource and reject
/// further interaction with it." The upload's records in the store are deleted behind the server's back.
async fn lost_state_deactivates_the_upload(backend: Backend) {
    let (app, bucket) = backend.spawn_with_bucket(&[]).await;
    let files = Resumable::of(&app);
    let records = BucketName::parse(&format!("{bucket}-events")).expect("a bucket name");
    for version in VERSIONS {
        let draft = name("lost", version);
        let url = files.created(version, Some(8), &draft).await;
        assert!(files.append(&url, version, 0, false, b"abcd".to_vec()).await.is_success());
        let id = url.rsplit('/').next().expect("an id");
        let page =
            app.storage.list_prefix(&records, &format!("resumable/{id}/"), None, 1000).await.expect("records listed");
        let keys: Vec<ObjectKey> = page.objects.into_iter().map(|o| o.key).collect();
        assert!(!keys.is_empty(), "v{version}: no record under resumable/{id}/ in {records}");
        assert!(app.storage.delete_many(&records, &keys).await.expect("deleted").is_empty());

        let head = files.head(&url, Dialect::Ietf(version)).await;
        assert!(!head.is_success(), "v{version}: HEAD of an upload whose state is lost: {head}");
        let append = files.append(&url, version, 4, true, b"efgh".to_vec()).await;
        assert!(!append.is_success(), "v{version}: append to an upload whose state is lost: {append}");
        no_draft(&app, &draft).await;
    }
}

/// [S3] §4.1.1: an `Upload-Offset` that is not a non-negative sf-Integer "MUST cause the entire header field to be
/// ignored": the append then lacks its required offset and is refused, whatever the value would wrap or round to;
/// nothing is appended.
async fn malformed_upload_offset_is_ignored(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let url = files.created(version, Some(10), &name("bad-offset", version)).await;
        for value in ["abc", "-1", "18446744073709551616", "1000000000000000", "0.0", "0, 0", "?0", "\"0\""] {
            let request = files
                .request("PATCH", &url, Some(Dialect::Ietf(version)))
                .header("content-type", "application/partial-upload")
                .header("upload-complete", "?0")
                .header("upload-offset", value)
                .body(b"abc".to_vec());
            let reply = send(request).await;
            assert_eq!(reply.status, 400, "v{version}: Upload-Offset: {value}: {reply}");
            assert_eq!(files.head(&url, Dialect::Ietf(version)).await.offset(), 0, "v{version}: {value} appended");
        }
    }
}

/// [S3] §4.1.2: an `Upload-Complete` that is not an sf-Boolean "MUST cause the entire header field to be ignored":
/// a creation without it is no resumable upload, an append without it lacks a required field; both are refused.
async fn malformed_upload_complete_is_ignored(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        for (i, value) in ["yes", "1", "true", "?2", "\"?1\""].into_iter().enumerate() {
            let draft = name(&format!("bad-complete-{i}"), version);
            let request = files
                .request("POST", &files.endpoint(), Some(Dialect::Ietf(version)))
                .header("upload-complete", value)
                .header("draftstore-object-name", encode(&draft))
                .body(b"whole".to_vec());
            let reply = send(request).await;
            assert_eq!(reply.status, 400, "v{version}: creation with Upload-Complete: {value}: {reply}");
            no_draft(&app, &draft).await;
        }
        let url = files.created(version, Some(5), &name("bad-complete-append", version)).await;
        for value in ["yes", "1", "true"] {
            let request = files
                .request("PATCH", &url, Some(Dialect::Ietf(version)))
                .header("content-type", "application/partial-upload")
                .header("upload-offset", "0")
                .header("upload-complete", value)
                .body(b"12345".to_vec());
            let reply = send(request).await;
            assert_eq!(reply.status, 400, "v{version}: append with Upload-Complete: {value}: {reply}");
            let head = files.head(&url, Dialect::Ietf(version)).await;
            assert_eq!((head.offset(), head.complete()), (0, false), "v{version}: {value}");
        }
    }
}

/// [S3] §4.1.3: an `Upload-Length` that is not a non-negative sf-Integer "MUST cause the entire header field to be
/// ignored": the creation goes on as one without a length (which the draft allows), so no length is recorded.
async fn malformed_upload_length_is_ignored(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        for (i, value) in ["-5", "abc", "18446744073709551616", "1.5"].into_iter().enumerate() {
            let request = files
                .request("POST", &files.endpoint(), Some(Dialect::Ietf(version)))
                .header("upload-complete", "?0")
                .header("upload-length", value)
                .header("draftstore-object-name", encode(&name(&format!("bad-length-{i}"), version)));
            let reply = send(request).await;
            assert_eq!(reply.status, 201, "v{version}: Upload-Length: {value} is to be ignored: {reply}");
            let head = files.head(&reply.location(), Dialect::Ietf(version)).await;
            assert_eq!(head.length(), None, "v{version}: Upload-Length: {value} was recorded: {head}");
        }
    }
}

/// [S4] §4.1.3: "If indicators (1) and (2) are both present in the same request, their indicated lengths MUST
/// match": `Upload-Complete: ?1` with content of another length than `Upload-Length` is an inconsistent length.
async fn lengths_in_one_request_must_match(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let draft = name("one-request", version);
        let reply = files.create(version, true, Some(10), Some(&draft), b"four".to_vec()).await;
        reply.assert_problem(400, INCONSISTENT_LENGTH);
        no_draft(&app, &draft).await;

        let draft = name("one-append", version);
        let url = files.created(version, None, &draft).await;
        let reply = send(files.append_request(&url, version, 0, true).header("upload-length", "10").body("four")).await;
        reply.assert_problem(400, INCONSISTENT_LENGTH);
        assert!(!files.head(&url, Dialect::Ietf(version)).await.complete(), "v{version}");
        no_draft(&app, &draft).await;
    }
}

/// [S4] §4.1.3: "The representation's length, if known, MUST stay consistent across subsequent requests": another
/// `Upload-Length`, or a completion at another length, is refused and changes nothing.
async fn length_must_stay_consistent_across_requests(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let draft = name("across", version);
        let url = files.created(version, Some(10), &draft).await;
        let reply = send(files.append_request(&url, version, 0, false).header("upload-length", "12").body("abc")).await;
        reply.assert_problem(400, INCONSISTENT_LENGTH);
        let head = files.head(&url, Dialect::Ietf(version)).await;
        assert_eq!((head.offset(), head.length()), (0, Some(10)), "v{version}: {head}");

        assert!(files.append(&url, version, 0, false, b"abcd".to_vec()).await.is_success());
        let reply = files.append(&url, version, 4, true, b"efgh".to_vec()).await;
        reply.assert_problem(400, INCONSISTENT_LENGTH);
        let head = files.head(&url, Dialect::Ietf(version)).await;
        assert!(!head.complete(), "v{version}: completed at 8 of 10 bytes: {head}");
        assert_eq!(head.length(), Some(10), "v{version}");
        no_draft(&app, &draft).await;
    }
}

/// [S5] §4.1.4: `Upload-Limit` is an sf-Dictionary; a known key with a value of another type makes a client ignore
/// the whole field. Every `Upload-Limit` the server sends parses as a Dictionary of Integers, with the limits it
/// applies: `max-size` = MAX_UPLOAD_SIZE, `max-age` within OBJECT_LIFETIME. [S8] Between responses `max-size`
/// SHOULD NOT decrease, `min-size` SHOULD NOT increase, and the end of the lifetime SHOULD NOT move earlier.
async fn upload_limit_is_a_dictionary_of_integers(backend: Backend) {
    let (_app, files) = server(backend, &["--max-upload-size", "1000000", "--object-lifetime", "3600"]).await;
    for version in VERSIONS {
        let options = send(files.request("OPTIONS", &files.endpoint(), Some(Dialect::Ietf(version)))).await;
        let created = files.create(version, false, Some(100), Some(&name("limits", version)), b"ab".to_vec()).await;
        assert_eq!(created.status, 201, "v{version}: {created}");
        let url = created.location();
        let head = files.head(&url, Dialect::Ietf(version)).await;
        let append = files.append(&url, version, 2, false, b"cd".to_vec()).await;
        let mut previous: Option<(i64, i64, std::time::Instant)> = None;
        for reply in [&options, &created, &head, &append].into_iter().filter(|r| r.header("upload-limit").is_some()) {
            let limits = reply.limits();
            assert_eq!(limits.get("max-size"), Some(&1_000_000), "v{version}: {limits:?}");
            if let Some(age) = limits.get("max-age") {
                assert!((0..=3600).contains(age), "v{version}: max-age {age} outside OBJECT_LIFETIME");
            }
            let min_size = limits.get("min-size").copied().unwrap_or(0);
            let end =
                std::time::Instant::now() + Duration::from_secs(limits.get("max-age").copied().unwrap_or(3600) as u64);
            if let Some((max_before, min_before, end_before)) = previous {
                assert!(limits["max-size"] >= max_before, "v{version}: max-size decreased");
                assert!(min_size <= min_before, "v{version}: min-size increased");
                assert!(end + Duration::from_secs(2) >= end_before, "v{version}: the lifetime's end moved earlier");
            }
            previous = Some((limits["max-size"], min_size, end));
        }
        assert!(created.header("upload-limit").is_some() && head.header("upload-limit").is_some(), "v{version}");
    }
}

/// [S6] §4.1.4: OPTIONS on a target that creates uploads. -11 (interop 8): "MUST include the `Accept-Patch`
/// header field" whose value "MUST include the full `application/partial-upload` media type"; -12 (interop 9):
/// without `Upload-Complete` "MUST include the `Upload-Limit` header field" (`min-size=0` when no limits). [S7] The
/// limits announced SHOULD NOT be less restrictive than a created upload's.
async fn options_announces_accept_patch_and_limits(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let options = send(files.request("OPTIONS", &files.endpoint(), Some(Dialect::Ietf(version)))).await;
        assert!(options.is_success(), "v{version}: {options}");
        if version == 8 {
            let accept = options.header("accept-patch").unwrap_or_else(|| panic!("v8: no Accept-Patch: {options}"));
            assert!(
                accept.split(',').any(|t| t.trim().eq_ignore_ascii_case("application/partial-upload")),
                "v8: Accept-Patch {accept:?}"
            );
        } else {
            assert!(!options.limits().is_empty(), "v9: {options}");
        }
        let created = files.create(version, false, None, Some(&name("options", version)), Vec::new()).await;
        if let (Some(announced), Some(applied)) = (
            options.header("upload-limit").map(|_| options.limits()),
            created.header("upload-limit").map(|_| created.limits()),
        ) {
            assert!(announced.get("max-size") <= applied.get("max-size"), "v{version}: {announced:?} {applied:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// §4.2 Upload creation

/// [C2] §4.2.2: `Upload-Complete: ?0` fully processed: the server "MUST include the `Location` response header
/// field pointing to the upload resource and MUST include the `Upload-Limit` header field"; 201 is RECOMMENDED.
/// Location, with content and without, points at a resource whose offset is the content's length.
async fn incomplete_creation_answers_location_and_limits(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        for content in [Vec::new(), b"first bytes".to_vec()] {
            let reply =
                files.create(version, false, Some(100), Some(&name("location", version)), content.clone()).await;
            assert_eq!(reply.status, 201, "v{version}: {reply}");
            assert!(!reply.limits().is_empty(), "v{version}");
            assert!(!reply.complete(), "v{version}: {reply}");
            let head = files.head(&reply.location(), Dialect::Ietf(version)).await;
            assert_eq!(head.status, 204, "v{version}: {head}");
            assert_eq!(head.offset(), content.len() as u64, "v{version}");
        }
    }
}

/// [C3] §4.2.2: "The server MUST record the representation's length ... if the `Upload-Length` or
/// `Upload-Complete: ?1` header fields are included in the request."
async fn creation_records_the_length(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let url = files.created(version, Some(20), &name("length-given", version)).await;
        assert_eq!(files.head(&url, Dialect::Ietf(version)).await.length(), Some(20), "v{version}");

        let draft = name("length-by-completion", version);
        let reply = files.create(version, true, None, Some(&draft), b"seven b".to_vec()).await;
        assert!(reply.is_success() && reply.complete(), "v{version}: {reply}");
        let head = files.head(&reply.location(), Dialect::Ietf(version)).await;
        assert_eq!((head.length(), head.offset(), head.complete()), (Some(7), 7, true), "v{version}: {head}");
        assert_eq!(draft_bytes(&app, &draft).await, b"seven b");
    }
}

/// [C5] §4.2.2: a creation whose content is interrupted "MUST NOT be considered complete", even with
/// `Upload-Complete: ?1` and no length to betray it.
async fn interrupted_creation_is_not_complete(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let draft = name("interrupted-creation", version);
        let request = files
            .request("POST", &files.endpoint(), Some(Dialect::Ietf(version)))
            .header("upload-complete", "?1")
            .header("draftstore-object-name", encode(&draft));
        broken_off(request, &pseudo_random_bytes(4000, 3)).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        no_draft(&app, &draft).await;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// §4.3 Offset retrieval: "A successful response to a HEAD [9: or GET] request against an upload resource ..."

/// [H1] §4.3.2: "MUST include the offset in the `Upload-Offset` header field" (and SHOULD `Cache-Control:
/// no-store`).
async fn offset_retrieval_includes_upload_offset(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let reply = files.create(version, false, Some(9), Some(&name("h1", version)), b"abc".to_vec()).await;
        let url = reply.location();
        assert!(files.append(&url, version, 3, false, b"def".to_vec()).await.is_success());
        for method in retrievals(version) {
            let head = retrieve(&files, &url, version, method).await;
            assert!(head.is_success(), "v{version} {method}: {head}");
            assert_eq!(head.offset(), 6, "v{version} {method}");
            assert_eq!(head.header("cache-control"), Some("no-store"), "v{version} {method}");
        }
    }
}

/// [H2] §4.3.2: "MUST include the `Upload-Complete` header field": `?0` while incomplete, `?1` once complete.
async fn offset_retrieval_includes_upload_complete(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let url = files.created(version, Some(3), &name("h2", version)).await;
        for method in retrievals(version) {
            assert!(!retrieve(&files, &url, version, method).await.complete(), "v{version} {method}");
        }
        assert!(files.append(&url, version, 0, true, b"abc".to_vec()).await.complete());
        for method in retrievals(version) {
            let head = retrieve(&files, &url, version, method).await;
            assert!(head.is_success() && head.complete(), "v{version} {method}: {head}");
        }
    }
}

/// [H3] §4.3.2: "MUST include the representation's length in the `Upload-Length` header field, unless the client
/// has not supplied the representation's length": absent until supplied, then present.
async fn offset_retrieval_includes_the_length_once_supplied(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let url = files.created(version, None, &name("h3", version)).await;
        for method in retrievals(version) {
            assert_eq!(retrieve(&files, &url, version, method).await.length(), None, "v{version} {method}");
        }
        let reply = send(files.append_request(&url, version, 0, false).header("upload-length", "8").body("abcd")).await;
        assert!(reply.is_success(), "v{version}: {reply}");
        for method in retrievals(version) {
            assert_eq!(retrieve(&files, &url, version, method).await.length(), Some(8), "v{version} {method}");
        }
    }
}

/// [H4] §4.3.2: "MUST indicate the limits in the `Upload-Limit` header field".
async fn offset_retrieval_includes_upload_limit(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let url = files.created(version, Some(3), &name("h4", version)).await;
        for method in retrievals(version) {
            let head = retrieve(&files, &url, version, method).await;
            assert!(head.limits().contains_key("max-size"), "v{version} {method}: {head}");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// §4.4 Upload append

/// [A2] §4.4.2: an `Upload-Offset` that "does not match the current offset": the server "MUST reject the request
/// with a `409 (Conflict)` status code" (9: "and the `Upload-Complete` header field set to false"), and the response
/// "MUST include the correct offset in the `Upload-Offset` header field"; the problem type names both offsets
/// (§7.1: SHOULD). Nothing is appended.
async fn mismatching_offset_is_409_with_the_correct_offset(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let url = files.created(version, Some(20), &name("a2", version)).await;
        assert!(files.append(&url, version, 0, false, b"12345".to_vec()).await.is_success());
        for wrong in [0, 3, 6, 18] {
            let reply = files.append(&url, version, wrong, false, b"xx".to_vec()).await;
            reply.assert_problem(409, MISMATCHING_OFFSET);
            assert_eq!(reply.offset(), 5, "v{version}");
            if version >= 9 {
                assert!(!reply.complete(), "v9: {reply}");
            }
            let problem = reply.problem();
            assert_eq!(
                (problem["expected-offset"].clone(), problem["provided-offset"].clone()),
                (json!(5), json!(wrong))
            );
        }
        assert_eq!(files.head(&url, Dialect::Ietf(version)).await.offset(), 5, "v{version}");
    }
}

/// [A3] §4.4.2 of -11: "If the upload is already complete, the server MUST NOT modify the upload resource and MUST
/// reject the request"; a non-zero-length append "MUST [be treated] as an inconsistent length failure", an empty
/// one is refused too. -12 lets the server replay its final response to a valid request, but more bytes than the
/// recorded length are never valid (§4.1.3). The draft keeps its bytes.
async fn append_to_a_completed_upload_changes_nothing(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let draft = name("a3", version);
        let url = files.created(version, None, &draft).await;
        assert!(files.append(&url, version, 0, true, b"final".to_vec()).await.complete());
        let more = files.append(&url, version, 5, true, b"more".to_vec()).await;
        if version == 8 {
            more.assert_problem(400, INCONSISTENT_LENGTH);
        } else {
            assert!(!more.is_success(), "v9: {more}");
        }
        let empty = files.append(&url, version, 5, true, Vec::new()).await;
        if version == 8 {
            assert!(!empty.is_success(), "v8: an empty append to a completed upload must be rejected: {empty}");
        } else {
            assert!(!empty.is_success() || empty.complete(), "v9: a replay says Upload-Complete: ?1: {empty}");
        }
        let head = files.head(&url, Dialect::Ietf(version)).await;
        assert_eq!((head.offset(), head.complete()), (5, true), "v{version}: {head}");
        assert_eq!(draft_bytes(&app, &draft).await, b"final", "v{version}");
    }
}

/// [A4] §4.4.2: `Upload-Complete: ?1` fully processed: "the response MUST include the `Upload-Complete` header
/// field with a true value". The draft holds every byte.
async fn completing_append_answers_upload_complete_true(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let draft = name("a4", version);
        let data = pseudo_random_bytes(3000, u64::from(version));
        let url = files.created(version, Some(3000), &draft).await;
        assert!(files.append(&url, version, 0, false, data[..1000].to_vec()).await.is_success());
        let reply = files.append(&url, version, 1000, true, data[1000..].to_vec()).await;
        assert!(reply.is_success(), "v{version}: {reply}");
        assert!(reply.complete(), "v{version}: {reply}");
        assert_eq!(draft_bytes(&app, &draft).await, data, "v{version}");
    }
}

/// [A5] §4.4.2: `Upload-Complete: ?0` fully processed: "the server acknowledges the appended data by sending a
/// `2xx (Successful)` response with the `Upload-Complete` header field set to false".
async fn incomplete_append_answers_upload_complete_false(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let url = files.created(version, Some(10), &name("a5", version)).await;
        let reply = files.append(&url, version, 0, false, b"abc".to_vec()).await;
        assert!(reply.is_success(), "v{version}: {reply}");
        assert!(!reply.complete(), "v{version}: {reply}");
        assert_eq!(reply.offset(), 3, "v{version}: the contract's Upload-Offset");
    }
}

/// [A6] §4.4.2: "The server MUST record the representation's length ... if the `Upload-Length` or
/// `Upload-Complete` header fields are included in the request."
async fn append_records_the_length(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let url = files.created(version, None, &name("a6-length", version)).await;
        let reply = send(files.append_request(&url, version, 0, false).header("upload-length", "6").body("abc")).await;
        assert!(reply.is_success(), "v{version}: {reply}");
        assert_eq!(files.head(&url, Dialect::Ietf(version)).await.length(), Some(6), "v{version}");

        let url = files.created(version, None, &name("a6-complete", version)).await;
        assert!(files.append(&url, version, 0, false, b"abc".to_vec()).await.is_success());
        assert!(files.append(&url, version, 3, true, b"defg".to_vec()).await.complete());
        assert_eq!(files.head(&url, Dialect::Ietf(version)).await.length(), Some(7), "v{version}");
    }
}

/// [A7] §4.4.2: "If the representation's length is known, the server MUST prevent the offset from exceeding the
/// representation's length by rejecting the request once the offset exceeds the length, marking the upload
/// resource invalid and rejecting any further interaction with it. It is not sufficient to rely on the
/// `Content-Length` header field": with a declared `Content-Length` and with a chunked body.
async fn offset_must_not_exceed_the_length(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        for chunked in [false, true] {
            let draft = name(&format!("a7-{chunked}"), version);
            let url = files.created(version, Some(10), &draft).await;
            assert!(files.append(&url, version, 0, false, b"abcd".to_vec()).await.is_success());
            let request = files.append_request(&url, version, 4, false);
            let reply = if chunked {
                let (body, feed) = fed_body();
                let sent = tokio::spawn(send(request.body(body)));
                feed.send(b"efghijklmnopqrst").await;
                feed.finish();
                sent.await.expect("the request task")
            } else {
                send(request.body(b"efghijklmnopqrst".to_vec())).await
            };
            assert!(matches!(reply.status, 400 | 413), "v{version} chunked {chunked}: {reply}");
            let head = files.head_settled(&url, Dialect::Ietf(version)).await;
            assert!(!head.is_success(), "v{version} chunked {chunked}: the upload must be invalid now: {head}");
            let next = files.append(&url, version, 4, true, b"efghij".to_vec()).await;
            assert!(!next.is_success(), "v{version} chunked {chunked}: further interaction is rejected: {next}");
            no_draft(&app, &draft).await;
        }
    }
}

/// [A1] §4.4.2: an interrupted append: the server SHOULD keep a contiguous prefix, and "the upload resource MUST
/// NOT be considered complete then", though it said `Upload-Complete: ?1`. The client resumes from the offset it
/// retrieves and the draft holds the right bytes.
async fn interrupted_append_is_not_complete(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let draft = name("a1", version);
        let data = pseudo_random_bytes(9000, 11);
        let url = files.created(version, None, &draft).await;
        assert!(files.append(&url, version, 0, false, data[..3000].to_vec()).await.is_success());
        broken_off(files.append_request(&url, version, 3000, true), &data[3000..6000]).await;
        let head = files.head_settled(&url, Dialect::Ietf(version)).await;
        assert!(head.is_success() && !head.complete(), "v{version}: {head}");
        let offset = head.offset();
        assert!((3000..=6000).contains(&offset), "v{version}: offset {offset}");
        no_draft(&app, &draft).await;
        let reply = files.append(&url, version, offset, true, data[offset as usize..].to_vec()).await;
        assert!(reply.is_success() && reply.complete(), "v{version}: resuming at the retrieved offset: {reply}");
        assert_eq!(draft_bytes(&app, &draft).await, data, "v{version}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// §4.5 Cancellation (no MUST for the server in 8 and 9; the contract's 204)

/// §4.5.2: "the server SHOULD deactivate the upload resource": 204, and afterwards the upload is gone.
async fn cancellation_deactivates_the_upload(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let draft = name("cancel", version);
        let url = files.created(version, Some(6), &draft).await;
        assert!(files.append(&url, version, 0, false, b"abc".to_vec()).await.is_success());
        let reply = files.delete(&url, Dialect::Ietf(version)).await;
        assert_eq!(reply.status, 204, "v{version}: {reply}");
        assert_eq!(files.head(&url, Dialect::Ietf(version)).await.status, 404, "v{version}");
        assert_eq!(files.append(&url, version, 3, true, b"def".to_vec()).await.status, 404, "v{version}");
        no_draft(&app, &draft).await;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// §4.6 Concurrency

/// [K1] §4.6: "the server MUST take measures to prevent race conditions, data loss and corruption from concurrent
/// requests to append": two appends at one offset race (the first stalls mid-body). At most one succeeds, the other
/// is refused (409, 423, 503) or cut off, and the upload holds a prefix of one of them only: completed, the draft is
/// exactly that one's bytes.
async fn concurrent_appends_do_not_corrupt_the_upload(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let draft = name("k1", version);
        let url = files.created(version, Some(4000), &draft).await;
        let outcome = race(&files, &url, Dialect::Ietf(version)).await;
        outcome.finish(&app, &files, &url, Dialect::Ietf(version), &draft).await;
    }
}

/// Two bodies of one upload, and what became of them.
struct Race {
    first: Vec<u8>,
    second: Vec<u8>,
    first_reply: Option<Reply>,
    second_reply: Reply,
}

/// Races two appends of 4,000 bytes at offset 0: the first sends half, then waits for the second's answer (at most
/// 30 s) before sending the rest.
async fn race(files: &Resumable, url: &str, dialect: Dialect) -> Race {
    let first = pseudo_random_bytes(4000, 21);
    let second = pseudo_random_bytes(4000, 22);
    let patch = |offset| match dialect {
        Dialect::Tus => files.tus_patch_request(url, offset),
        Dialect::Ietf(version) => files.append_request(url, version, offset, true),
    };
    let (body, feed) = fed_body();
    let first_request = tokio::spawn(try_send(patch(0).body(body)));
    feed.send(&first[..2000]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second_request = tokio::spawn(send(patch(0).body(second.clone())));
    let second_reply = tokio::time::timeout(Duration::from_secs(30), second_request)
        .await
        .expect("the second answered")
        .expect("task");
    feed.send(&first[2000..]).await;
    feed.finish();
    let first_reply = first_request.await.expect("task");
    Race { first, second, first_reply, second_reply }
}

impl Race {
    /// Checks the outcome and completes the upload with the winner's bytes; the draft must be exactly those.
    async fn finish(self, app: &TestApp, files: &Resumable, url: &str, dialect: Dialect, draft: &str) {
        // A first append stopped by the second may answer a success for the prefix it stored.
        let first_won = self.first_reply.as_ref().is_some_and(Reply::is_success);
        let first_full = self.first_reply.as_ref().is_some_and(|r| r.is_success() && r.offset() == 4000);
        let second_won = self.second_reply.is_success();
        assert!(
            !(first_full && second_won),
            "both racing appends succeeded: {:?} / {}",
            self.first_reply,
            self.second_reply
        );
        let refused = |status| matches!(status, 400 | 409 | 423 | 503);
        if !second_won {
            assert!(refused(self.second_reply.status), "the loser's answer: {}", self.second_reply);
        }
        if let Some(reply) = self.first_reply.as_ref().filter(|_| !first_won) {
            assert!(refused(reply.status), "the first append's answer: {reply}");
        }
        let winner = if second_won { &self.second } else { &self.first };
        let head = files.head_settled(url, dialect).await;
        let offset = head.offset() as usize;
        if first_full || second_won {
            assert_eq!(offset, 4000, "a successful append of 4000 bytes: {head}");
        }
        if offset < 4000 {
            let rest = winner[offset..].to_vec();
            let reply = match dialect {
                Dialect::Tus => files.tus_patch(url, offset as u64, rest).await,
                Dialect::Ietf(version) => files.append(url, version, offset as u64, true, rest).await,
            };
            assert!(reply.is_success(), "completing after the race: {reply}");
        } else if let Dialect::Ietf(version) = dialect
            && !head.complete()
        {
            assert!(files.append(url, version, 4000, true, Vec::new()).await.is_success());
        }
        assert_eq!(draft_bytes(app, draft).await, *winner, "the upload mixed the racing bodies");
    }
}

/// [K2] §4.6: "the server MUST NOT send outdated information in responses when retrieving the offset ... the offset
/// sent by the server MUST be accepted in a subsequent request to append representation data if no other request
/// to append representation data or cancel was received in the meantime." An offset retrieved while an append
/// stalls mid-body is accepted once that append is over.
async fn offset_retrieval_is_never_outdated(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let draft = name("k2", version);
        let data = pseudo_random_bytes(8000, 31);
        let url = files.created(version, Some(8000), &draft).await;
        let (body, feed) = fed_body();
        let stalled = tokio::spawn(try_send(files.append_request(&url, version, 0, false).body(body)));
        feed.send(&data[..3000]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let head = tokio::spawn({
            let (files, url) = (files.clone(), url.clone());
            async move { files.head_settled(&url, Dialect::Ietf(version)).await }
        });
        // The stalled append goes on once the HEAD is answered, or after 8 s: a server may make HEAD wait for it.
        let mut head = head;
        let early = tokio::time::timeout(Duration::from_secs(8), &mut head).await;
        feed.send(&data[3000..5000]).await;
        feed.finish();
        let head = match early {
            Ok(head) => head.expect("task"),
            Err(_) => head.await.expect("task"),
        };
        let _ = stalled.await.expect("task");
        assert!(head.is_success(), "v{version}: {head}");
        let offset = head.offset();
        let reply = files.append(&url, version, offset, true, data[offset as usize..].to_vec()).await;
        assert!(reply.is_success(), "v{version}: the retrieved offset {offset} was refused: {reply}");
        assert_eq!(draft_bytes(&app, &draft).await, data, "v{version}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// §5, Appendix B: interim responses

/// §5 (8, 9): "the server MUST NOT omit the `100 (Continue)` response because it has sent an interim response with
/// the `104 (Upload Resumption Supported)` status code": a creation and an append expecting 100-continue get it.
async fn expect_continue_is_answered(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        let version_header = format!("upload-draft-interop-version: {version}");
        let name_header = format!("draftstore-object-name: {}", encode(&name("continue", version)));
        let heads = raw_exchange(
            &app,
            "POST",
            "/files/",
            &["expect: 100-continue", &version_header, "upload-complete: ?0", "upload-length: 6", &name_header],
            b"abc",
        )
        .await;
        assert_eq!(heads.first().map(|h| h.status), Some(100), "v{version}: {heads:?}");
        let created = heads.last().expect("a final answer");
        assert_eq!(created.status, 201, "v{version}: {heads:?}");
        let path = url::Url::parse(created.header("location").expect("Location")).expect("a URL").path().to_owned();
        let heads = raw_exchange(
            &app,
            "PATCH",
            &path,
            &[
                "expect: 100-continue",
                &version_header,
                "upload-complete: ?1",
                "upload-offset: 3",
                "content-type: application/partial-upload",
            ],
            b"def",
        )
        .await;
        assert_eq!(heads.first().map(|h| h.status), Some(100), "v{version}: {heads:?}");
        assert!(heads.last().is_some_and(|h| (200..300).contains(&h.status)), "v{version}: {heads:?}");
        let _ = &files;
    }
}

/// [D1] Appendix B: servers "MUST NOT send a `104 (Upload Resumption Supported)` interim response when the interop
/// version indicated by the `Upload-Draft-Interop-Version` header field in the request is missing or mismatching".
async fn no_104_without_a_matching_interop_version(backend: Backend) {
    let (app, _files) = server(backend, &[]).await;
    for version_header in [None, Some("upload-draft-interop-version: 7"), Some("upload-draft-interop-version: 10")] {
        let mut headers = vec!["upload-complete: ?1", "upload-length: 5"];
        headers.extend(version_header);
        let heads = raw_exchange(&app, "POST", "/files/", &headers, b"hello").await;
        assert!(heads.iter().all(|h| h.status != 104), "{version_header:?}: {heads:?}");
        let last = heads.last().expect("a final answer");
        assert!((400..500).contains(&last.status), "{version_header:?}: {heads:?}");
    }
}

/// [D2] Appendix B: servers "MUST also send a header field `Upload-Draft-Interop-Version` with the interop version
/// as its value to the `104 (Upload Resumption Supported)` interim response": every 104 of a creation and an append
/// carries the request's version (the server may send none: hyper cannot), and the final answer echoes it.
async fn every_104_carries_the_interop_version(backend: Backend) {
    let (app, _files) = server(backend, &[]).await;
    for version in VERSIONS {
        let version_header = format!("upload-draft-interop-version: {version}");
        let heads = raw_exchange(&app, "POST", "/files/", &[&version_header, "upload-complete: ?0"], b"abc").await;
        let created = heads.last().expect("a final answer");
        assert_eq!(created.status, 201, "v{version}: {heads:?}");
        let path = url::Url::parse(created.header("location").expect("Location")).expect("a URL").path().to_owned();
        let append = raw_exchange(
            &app,
            "PATCH",
            &path,
            &[&version_header, "upload-complete: ?1", "upload-offset: 3", "content-type: application/partial-upload"],
            b"def",
        )
        .await;
        for head in heads.iter().chain(&append).filter(|h| h.status == 104) {
            assert_eq!(head.header("upload-draft-interop-version"), Some(version.to_string().as_str()), "{head:?}");
        }
        assert_eq!(created.header("upload-draft-interop-version"), Some(version.to_string().as_str()), "{heads:?}");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// §13 Security considerations

/// §13: servers that embed information in the upload URI "MUST ensure that no internal information is leaked in the
/// URI"; URIs are RECOMMENDED hard to guess and (§4) SHOULD be unique: `/files/<32 hex>`, never the tenant, bucket
/// or name, different for each upload.
async fn upload_uris_leak_nothing_and_are_unique(backend: Backend) {
    let keys = api_keys(&TENANTS);
    let (app, bucket) = backend.spawn_with_bucket(&["--auth-mode", "api-key", "--api-keys", &keys]).await;
    let files = Resumable::of(&app.as_caller("key-of-alice"));
    let pattern = regex::Regex::new("^/files/[0-9a-f]{32}$").expect("a pattern");
    for version in VERSIONS {
        let first = files.created(version, Some(3), "secret-plan.txt").await;
        let second = files.created(version, Some(3), "secret-plan.txt").await;
        assert_ne!(first, second, "v{version}: one URI for two uploads");
        for url in [first, second] {
            let parsed = url::Url::parse(&url).unwrap_or_else(|_| panic!("v{version}: Location {url} is not absolute"));
            assert!(pattern.is_match(parsed.path()), "v{version}: {url}");
            for internal in ["alice", "secret", &bucket] {
                assert!(!url.contains(internal), "v{version}: {url} names {internal}");
            }
        }
    }
}

/// §13: "metadata MUST be validated and/or sanitized if the server takes its values into consideration for
/// processing or storing the representation": a name that climbs out of the caller's space is refused, a file name
/// that does stays inside `uploads/<id>/`.
async fn metadata_is_validated(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    for version in VERSIONS {
        for bad in ["../escape.txt", "/absolute.txt", "a/../../b.txt", "line\nbreak.txt"] {
            let reply = files.create(version, false, Some(3), Some(bad), Vec::new()).await;
            assert_eq!(reply.status, 400, "v{version}: DraftStore-Object-Name {bad:?}: {reply}");
        }
        let request = files
            .request("POST", &files.endpoint(), Some(Dialect::Ietf(version)))
            .header("upload-complete", "?0")
            .header("content-disposition", "inline; filename=\"../../etc/passwd\"");
        let reply = send(request).await;
        if reply.status != 400 {
            assert_eq!(reply.status, 201, "v{version}: {reply}");
            let id = reply.location().rsplit('/').next().expect("id").to_owned();
            let named = reply.object_name();
            assert!(named.starts_with(&format!("uploads/{id}/")), "v{version}: {named}");
            assert!(!named.split('/').any(|segment| segment == ".."), "v{version}: {named}");
        }
    }
}

on_both_backends!(
    offset_must_not_decrease,
    lost_state_deactivates_the_upload,
    malformed_upload_offset_is_ignored,
    malformed_upload_complete_is_ignored,
    malformed_upload_length_is_ignored,
    lengths_in_one_request_must_match,
    length_must_stay_consistent_across_requests,
    upload_limit_is_a_dictionary_of_integers,
    options_announces_accept_patch_and_limits,
    incomplete_creation_answers_location_and_limits,
    creation_records_the_length,
    interrupted_creation_is_not_complete,
    offset_retrieval_includes_upload_offset,
    offset_retrieval_includes_upload_complete,
    offset_retrieval_includes_the_length_once_supplied,
    offset_retrieval_includes_upload_limit,
    mismatching_offset_is_409_with_the_correct_offset,
    append_to_a_completed_upload_changes_nothing,
    completing_append_answers_upload_complete_true,
    incomplete_append_answers_upload_complete_false,
    append_records_the_length,
    offset_must_not_exceed_the_length,
    interrupted_append_is_not_complete,
    cancellation_deactivates_the_upload,
    concurrent_appends_do_not_corrupt_the_upload,
    offset_retrieval_is_never_outdated,
    expect_continue_is_answered,
    no_104_without_a_matching_interop_version,
    every_104_carries_the_interop_version,
    upload_uris_leak_nothing_and_are_unique,
    metadata_is_validated,
);

// ---------------------------------------------------------------------------------------------------------------
// tus 1.0.0

/// OPTIONS announces the version, the extensions, the maximum size and the checksum algorithms.
async fn tus_options_announce_the_server(backend: Backend) {
    let (_app, files) = server(backend, &["--max-upload-size", "123456789"]).await;
    let reply = send(files.request("OPTIONS", &files.endpoint(), None)).await;
    assert!(matches!(reply.status, 200 | 204), "{reply}");
    assert_eq!(reply.header("tus-version"), Some("1.0.0"));
    assert_eq!(reply.header("tus-resumable"), Some("1.0.0"));
    assert_eq!(reply.header("tus-max-size"), Some("123456789"));
    let extensions: Vec<&str> =
        reply.header("tus-extension").expect("Tus-Extension").split(',').map(str::trim).collect();
    for wanted in ["creation", "creation-with-upload", "creation-defer-length", "expiration", "checksum", "termination"]
    {
        assert!(extensions.contains(&wanted), "{wanted} missing from {extensions:?}");
    }
    let algorithms = reply.header("tus-checksum-algorithm").expect("Tus-Checksum-Algorithm");
    assert!(algorithms.split(',').map(str::trim).any(|a| a == "sha1"), "{algorithms}");
    assert!(algorithms.split(',').map(str::trim).any(|a| a == "sha256"), "{algorithms}");
}

/// Another `Tus-Resumable` version is 412 with `Tus-Version`, and the request is not processed; a request speaking
/// neither protocol (but HEAD and OPTIONS) is 412 as well.
async fn tus_other_versions_are_412(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    let reply = send(
        files.request("POST", &files.endpoint(), None).header("tus-resumable", "0.2.2").header("upload-length", "3"),
    )
    .await;
    assert_eq!(reply.status, 412, "{reply}");
    assert_eq!(reply.header("tus-version"), Some("1.0.0"));
    assert!(reply.header("location").is_none(), "{reply}");
    let reply = send(files.request("POST", &files.endpoint(), None).header("upload-length", "3")).await;
    assert_eq!(reply.status, 412, "{reply}");
}

/// Creation, HEAD, PATCH to the end: 201 with an absolute `Location` and `Upload-Expires`; HEAD 200 with the
/// offset, the length, the metadata as sent and `no-store`; PATCH 204 with the new offset and `Upload-Expires`;
/// every answer carries `Tus-Resumable` and the draft's name.
async fn tus_core_protocol(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    let data = pseudo_random_bytes(10_000, 41);
    let sent_metadata = metadata(&[("object_name", "tus/core.bin"), ("filetype", "application/x-test"), ("empty", "")]);
    let created = files.tus_create(Some(10_000), &sent_metadata, None).await;
    assert_eq!(created.status, 201, "{created}");
    assert_eq!(created.header("tus-resumable"), Some("1.0.0"));
    assert!(created.header("upload-expires").is_some_and(|d| d.ends_with(" GMT")), "{created}");
    assert_eq!(created.object_name(), "tus/core.bin");
    let url = created.location();
    // Absolute, on PUBLIC_URL, which defaults to http://localhost:<HTTP_PORT>.
    let location = url::Url::parse(&url).unwrap_or_else(|_| panic!("Location {url} is not absolute"));
    let own = url::Url::parse(&files.address).expect("a URL");
    assert_eq!((location.port(), location.path().len()), (own.port(), "/files/".len() + 32), "{url}");

    let head = files.head(&url, Dialect::Tus).await;
    assert_eq!(head.status, 200, "{head}");
    assert_eq!((head.offset(), head.length()), (0, Some(10_000)));
    assert_eq!(head.header("upload-metadata"), Some(sent_metadata.as_str()));
    assert_eq!(head.header("cache-control"), Some("no-store"));
    assert_eq!(head.header("tus-resumable"), Some("1.0.0"));

    let wrong_type = send(
        files
            .request("PATCH", &url, Some(Dialect::Tus))
            .header("content-type", "application/json")
            .header("upload-offset", "0")
            .body("{}"),
    )
    .await;
    assert_eq!(wrong_type.status, 415, "{wrong_type}");

    let reply = files.tus_patch(&url, 0, data[..4000].to_vec()).await;
    assert_eq!(reply.status, 204, "{reply}");
    assert_eq!(reply.offset(), 4000);
    assert!(reply.header("upload-expires").is_some(), "{reply}");
    assert_eq!(reply.header("tus-resumable"), Some("1.0.0"));
    no_draft(&app, "tus/core.bin").await;
    let reply = files.tus_patch(&url, 4000, data[4000..].to_vec()).await;
    assert_eq!((reply.status, reply.offset()), (204, 10_000), "{reply}");
    let (content_type, bytes) = app.download("tus/core.bin", Some("draft")).await;
    assert_eq!(bytes, data);
    assert_eq!(content_type, "application/x-test");
}

/// creation-with-upload: the POST's body is the first bytes, its answer says how many were stored.
async fn tus_creation_with_upload(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    let created = files.tus_create(Some(6), &metadata(&[("object_name", "tus/cwu.txt")]), Some(b"abc".to_vec())).await;
    assert_eq!((created.status, created.offset()), (201, 3), "{created}");
    assert_eq!(files.tus_patch(&created.location(), 3, b"def".to_vec()).await.status, 204);
    assert_eq!(draft_bytes(&app, "tus/cwu.txt").await, b"abcdef");

    let whole =
        files.tus_create(Some(5), &metadata(&[("object_name", "tus/whole.txt")]), Some(b"whole".to_vec())).await;
    assert_eq!((whole.status, whole.offset()), (201, 5), "{whole}");
    assert_eq!(draft_bytes(&app, "tus/whole.txt").await, b"whole");
}

/// creation-defer-length: HEAD says `Upload-Defer-Length: 1` until a PATCH gives the length, which then cannot
/// change.
async fn tus_deferred_length(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    let created = files.tus_create(None, &metadata(&[("object_name", "tus/deferred.txt")]), None).await;
    assert_eq!(created.status, 201, "{created}");
    let url = created.location();
    let head = files.head(&url, Dialect::Tus).await;
    assert_eq!((head.header("upload-defer-length"), head.length()), (Some("1"), None), "{head}");
    assert_eq!(files.tus_patch(&url, 0, b"abc".to_vec()).await.status, 204);
    let reply = send(files.tus_patch_request(&url, 3).header("upload-length", "6").body("def")).await;
    assert_eq!(reply.status, 204, "{reply}");
    let head = files.head(&url, Dialect::Tus).await;
    assert_eq!((head.offset(), head.length(), head.header("upload-defer-length")), (6, Some(6), None), "{head}");
    assert_eq!(draft_bytes(&app, "tus/deferred.txt").await, b"abcdef");

    let other = files.tus_create(None, &metadata(&[("object_name", "tus/deferred-2.txt")]), None).await.location();
    assert_eq!(send(files.tus_patch_request(&other, 0).header("upload-length", "6").body("abc")).await.status, 204);
    let changed = send(files.tus_patch_request(&other, 3).header("upload-length", "7").body("def")).await;
    assert_eq!(changed.status, 400, "the length cannot change: {changed}");
    assert_eq!(files.head(&other, Dialect::Tus).await.offset(), 3);
}

/// termination: DELETE is 204 and the upload is gone (404); a completed upload's draft stays.
async fn tus_termination(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    let url = files.tus_created(6, "tus/terminated.txt").await;
    assert_eq!(files.tus_patch(&url, 0, b"abc".to_vec()).await.status, 204);
    assert_eq!(files.delete(&url, Dialect::Tus).await.status, 204);
    let head = files.head(&url, Dialect::Tus).await;
    assert_eq!(head.status, 404, "{head}");
    assert!(head.header("upload-offset").is_none(), "{head}");
    assert_eq!(files.tus_patch(&url, 3, b"def".to_vec()).await.status, 404);
    no_draft(&app, "tus/terminated.txt").await;

    let done = files.tus_created(3, "tus/kept.txt").await;
    assert_eq!(files.tus_patch(&done, 0, b"abc".to_vec()).await.status, 204);
    assert_eq!(files.delete(&done, Dialect::Tus).await.status, 204);
    assert_eq!(draft_bytes(&app, "tus/kept.txt").await, b"abc", "DELETE does not discard a completed draft");
}

/// `POST /files/{id}` with `X-HTTP-Method-Override` is the method it names.
async fn tus_method_override(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    let url = files.tus_created(6, "tus/override.txt").await;
    let patch = send(
        files
            .request("POST", &url, Some(Dialect::Tus))
            .header("x-http-method-override", "PATCH")
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", "0")
            .body("abcdef"),
    )
    .await;
    assert_eq!((patch.status, patch.offset()), (204, 6), "{patch}");
    let head = send(files.request("POST", &url, Some(Dialect::Tus)).header("x-http-method-override", "HEAD")).await;
    assert_eq!((head.status, head.offset()), (200, 6), "{head}");
    assert_eq!(draft_bytes(&app, "tus/override.txt").await, b"abcdef");
}

/// A wrong offset is tus's 409; the upload does not change.
async fn tus_wrong_offset_is_409(backend: Backend) {
    let (_app, files) = server(backend, &[]).await;
    let url = files.tus_created(10, "tus/409.txt").await;
    assert_eq!(files.tus_patch(&url, 0, b"abc".to_vec()).await.status, 204);
    for wrong in [0, 2, 4, 9] {
        let reply = files.tus_patch(&url, wrong, b"xyz".to_vec()).await;
        assert_eq!(reply.status, 409, "offset {wrong}: {reply}");
    }
    assert_eq!(files.head(&url, Dialect::Tus).await.offset(), 3);
}

/// checksum: a matching `Upload-Checksum` (SHA-256, SHA-1 announced) is 204; a mismatch is 460 and nothing is
/// appended; an algorithm not offered is 400 and nothing is appended.
async fn tus_checksum_mismatch_is_460(backend: Backend) {
    use base64::Engine;
    let (app, files) = server(backend, &[]).await;
    let b64 = |digest: &[u8]| base64::engine::general_purpose::STANDARD.encode(digest);
    let url = files.tus_created(6, "tus/checksum.txt").await;
    let mismatch = send(
        files
            .tus_patch_request(&url, 0)
            .header("upload-checksum", format!("sha256 {}", b64(&sha2::Sha256::digest(b"other"))))
            .body("abc"),
    )
    .await;
    assert_eq!(mismatch.status, 460, "{mismatch}");
    assert_eq!(files.head(&url, Dialect::Tus).await.offset(), 0, "a mismatching chunk was appended");
    let unknown =
        send(files.tus_patch_request(&url, 0).header("upload-checksum", "md5 kAFQmDzST7DWlj99KOF/cg==").body("abc"))
            .await;
    assert_eq!(unknown.status, 400, "{unknown}");
    assert_eq!(files.head(&url, Dialect::Tus).await.offset(), 0);
    let matching = send(
        files
            .tus_patch_request(&url, 0)
            .header("upload-checksum", format!("sha256 {}", b64(&sha2::Sha256::digest(b"abc"))))
            .body("abc"),
    )
    .await;
    assert_eq!((matching.status, matching.offset()), (204, 3), "{matching}");
    let mismatch = send(
        files
            .tus_patch_request(&url, 3)
            .header("upload-checksum", format!("sha256 {}", b64(&sha2::Sha256::digest(b"DEF"))))
            .body("def"),
    )
    .await;
    assert_eq!(mismatch.status, 460, "{mismatch}");
    assert_eq!(files.head(&url, Dialect::Tus).await.offset(), 3);
    no_draft(&app, "tus/checksum.txt").await;
}

/// A body past the declared length is 413 and nothing of it is appended, whether it declared its length or came
/// chunked.
async fn tus_append_past_the_length_is_refused(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    let url = files.tus_created(10, "tus/past.txt").await;
    assert_eq!(files.tus_patch(&url, 0, b"abcd".to_vec()).await.status, 204);
    let reply = files.tus_patch(&url, 4, b"efghijklmnop".to_vec()).await;
    assert_eq!(reply.status, 413, "{reply}");
    assert_eq!(files.head_settled(&url, Dialect::Tus).await.offset(), 4, "bytes of a refused append were kept");
    let (body, feed) = fed_body();
    let sent = tokio::spawn(send(files.tus_patch_request(&url, 4).body(body)));
    feed.send(b"efghijklmnop").await;
    feed.finish();
    let reply = sent.await.expect("task");
    assert_eq!(reply.status, 413, "chunked: {reply}");
    assert_eq!(files.head_settled(&url, Dialect::Tus).await.offset(), 4, "bytes of a refused chunked append were kept");
    no_draft(&app, "tus/past.txt").await;
    assert_eq!(files.tus_patch(&url, 4, b"efghij".to_vec()).await.status, 204);
    assert_eq!(draft_bytes(&app, "tus/past.txt").await, b"abcdefghij");
}

/// Numbers that overflow or are not numbers are refused and change nothing; a length above MAX_UPLOAD_SIZE is 413
/// (IETF: a valid sf-Integer, with the limits).
async fn malformed_and_overflowing_numbers_are_refused(backend: Backend) {
    let (_app, files) = server(backend, &["--max-upload-size", "1000000"]).await;
    let url = files.tus_created(10, "numbers.txt").await;
    assert_eq!(files.tus_patch(&url, 0, b"ab".to_vec()).await.status, 204);
    for offset in ["18446744073709551616", "18446744073709551618", "-1", "abc", "2.0", ""] {
        let reply = send(
            files
                .request("PATCH", &url, Some(Dialect::Tus))
                .header("content-type", "application/offset+octet-stream")
                .header("upload-offset", offset)
                .body("cd"),
        )
        .await;
        assert_eq!(reply.status, 400, "Upload-Offset: {offset:?}: {reply}");
        assert_eq!(files.head(&url, Dialect::Tus).await.offset(), 2, "Upload-Offset: {offset:?}");
    }
    for length in ["18446744073709551616", "-1", "abc"] {
        let reply =
            send(files.request("POST", &files.endpoint(), Some(Dialect::Tus)).header("upload-length", length)).await;
        assert_eq!(reply.status, 400, "Upload-Length: {length}: {reply}");
    }
    for length in ["1000001", "18446744073709551615"] {
        let reply =
            send(files.request("POST", &files.endpoint(), Some(Dialect::Tus)).header("upload-length", length)).await;
        assert_eq!(reply.status, 413, "Upload-Length: {length}: {reply}");
        assert!(reply.header("location").is_none(), "{reply}");
    }
    for version in VERSIONS {
        let reply = files.create(version, false, Some(1_000_001), Some("too-big.bin"), Vec::new()).await;
        assert_eq!(reply.status, 413, "v{version}: {reply}");
    }
}

/// Another tenant's upload URL is 404 for every method, and changes nothing: the owner goes on and finishes.
/// Without a credential: 401.
async fn another_tenants_upload_is_404(backend: Backend) {
    let keys = api_keys(&TENANTS);
    let app = backend.spawn(&["--auth-mode", "api-key", "--api-keys", &keys]).await;
    let alice_app = app.as_caller("key-of-alice");
    let alice = Resumable::of(&alice_app);
    let mallory = Resumable::of(&app.as_caller("key-of-mallory"));
    let anonymous = Resumable { bearer: None, ..alice.clone() };
    for (i, dialect) in [Dialect::Tus, Dialect::Ietf(8), Dialect::Ietf(9)].into_iter().enumerate() {
        let mine = format!("mine-{i}.txt");
        let url = match dialect {
            Dialect::Tus => alice.tus_created(6, &mine).await,
            Dialect::Ietf(version) => alice.created(version, Some(6), &mine).await,
        };
        let append = |files: &Resumable, offset: u64, bytes: &'static [u8]| {
            let (files, url) = (files.clone(), url.clone());
            async move {
                match dialect {
                    Dialect::Tus => files.tus_patch(&url, offset, bytes.to_vec()).await,
                    Dialect::Ietf(version) => {
                        files.append(&url, version, offset, offset + 3 == 6, bytes.to_vec()).await
                    }
                }
            }
        };
        assert!(append(&alice, 0, b"abc").await.is_success());
        assert_eq!(mallory.head(&url, dialect).await.status, 404, "{dialect:?}");
        assert_eq!(append(&mallory, 3, b"XYZ").await.status, 404, "{dialect:?}");
        assert_eq!(mallory.delete(&url, dialect).await.status, 404, "{dialect:?}");
        assert_eq!(anonymous.head(&url, dialect).await.status, 401, "{dialect:?}");
        assert_eq!(alice.head(&url, dialect).await.offset(), 3, "{dialect:?}: changed by another tenant");
        assert!(append(&alice, 3, b"def").await.is_success(), "{dialect:?}");
        assert_eq!(alice_app.download(&mine, Some("draft")).await.1, b"abcdef", "{dialect:?}");
        no_draft(&app.as_caller("key-of-mallory"), &mine).await;
    }
}

/// An upload past OBJECT_LIFETIME is gone: tus 410 (no `Upload-Offset`), IETF 404 or 410; its appends too. Its
/// `Upload-Expires` and `max-age` said so beforehand.
async fn expired_uploads_are_gone(backend: Backend) {
    let (app, files) = server(backend, &["--object-lifetime", "2"]).await;
    let tus = files.tus_create(Some(6), &metadata(&[("object_name", "expiring.txt")]), Some(b"abc".to_vec())).await;
    assert_eq!(tus.status, 201, "{tus}");
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let expires = time::PrimitiveDateTime::parse(tus.header("upload-expires").expect("Upload-Expires"), &format)
        .expect("an IMF-fixdate")
        .assume_utc();
    assert!(expires <= time::OffsetDateTime::now_utc() + time::Duration::seconds(3), "{tus}");
    let mut ietf = Vec::new();
    for version in VERSIONS {
        let reply = files.create(version, false, Some(6), Some(&name("expiring", version)), b"abc".to_vec()).await;
        assert!(reply.limits().get("max-age").is_some_and(|age| *age <= 2), "v{version}: {reply}");
        ietf.push((version, reply.location()));
    }
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let head = files.head(&tus.location(), Dialect::Tus).await;
    assert!(matches!(head.status, 404 | 410), "{head}");
    assert!(head.header("upload-offset").is_none(), "{head}");
    let patch = files.tus_patch(&tus.location(), 3, b"def".to_vec()).await;
    assert!(matches!(patch.status, 404 | 410), "{patch}");
    for (version, url) in ietf {
        let head = files.head(&url, Dialect::Ietf(version)).await;
        assert!(matches!(head.status, 404 | 410), "v{version}: {head}");
        let append = files.append(&url, version, 3, true, b"def".to_vec()).await;
        assert!(matches!(append.status, 404 | 410), "v{version}: {append}");
        no_draft(&app, &name("expiring", version)).await;
    }
    no_draft(&app, "expiring.txt").await;
}

/// Two creations-with-upload of one name race: each gets its own upload, and the draft is one of the two bodies,
/// whole.
async fn racing_creations_make_one_whole_draft(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    let bodies = [pseudo_random_bytes(200_000, 51), pseudo_random_bytes(200_000, 52)];
    let meta = metadata(&[("object_name", "raced.bin")]);
    let (a, b) = tokio::join!(
        files.tus_create(Some(200_000), &meta, Some(bodies[0].clone())),
        files.tus_create(Some(200_000), &meta, Some(bodies[1].clone())),
    );
    assert_eq!((a.status, a.offset(), b.status, b.offset()), (201, 200_000, 201, 200_000), "{a} / {b}");
    assert_ne!(a.location(), b.location());
    let draft = draft_bytes(&app, "raced.bin").await;
    assert!(draft == bodies[0] || draft == bodies[1], "the draft mixes the racing bodies");
}

/// Two tus PATCHes race on one upload: at most one wins, the other is 409 or 423 (or cut off), and the bytes are
/// exactly the winner's.
async fn tus_racing_patches_keep_one(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    let url = files.tus_created(4000, "tus/raced.bin").await;
    let outcome = race(&files, &url, Dialect::Tus).await;
    outcome.finish(&app, &files, &url, Dialect::Tus, "tus/raced.bin").await;
}

/// A finished upload is a draft named as the contract says (tus `object_name` or `filename`, the IETF name header,
/// `Content-Disposition`, or `uploads/<id>/upload`), with its declared type, and confirm-upload promotes it.
async fn finished_uploads_are_drafts_that_confirm_promotes(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    let check = async |reply: Reply, expected_name: String, content_type: &str, bytes: &[u8]| {
        assert!(reply.is_success(), "{reply}");
        assert_eq!(reply.object_name(), expected_name);
        let (stored_type, stored) = app.download(&expected_name, Some("draft")).await;
        assert_eq!((stored_type.as_str(), stored.as_slice()), (content_type, bytes), "{expected_name}");
        let confirmed = app.confirm(&expected_name).await.ok();
        assert_eq!(confirmed["object_name"], expected_name);
        assert_eq!(app.download(&expected_name, Some("main")).await.1, bytes, "{expected_name}");
        no_draft(&app, &expected_name).await;
    };

    let by_name = files
        .tus_create(
            Some(4),
            &metadata(&[("object_name", "named/by-tus.txt"), ("filetype", "text/plain")]),
            Some(b"tus!".to_vec()),
        )
        .await;
    check(by_name, "named/by-tus.txt".into(), "text/plain", b"tus!").await;

    let by_file = files.tus_create(Some(3), &metadata(&[("filename", "photo.bin")]), None).await;
    let id = by_file.location().rsplit('/').next().expect("id").to_owned();
    let done = files.tus_patch(&by_file.location(), 0, b"bin".to_vec()).await;
    check(done, format!("uploads/{id}/photo.bin"), "application/octet-stream", b"bin").await;

    for version in VERSIONS {
        // The IETF draft's type is the creation request's Content-Type.
        let request = files
            .request("POST", &files.endpoint(), Some(Dialect::Ietf(version)))
            .header("upload-complete", "?1")
            .header("content-type", "text/csv")
            .header("draftstore-object-name", encode(&format!("named/ietf-{version}.csv")));
        let named = send(request.body("a,b\n")).await;
        check(named, format!("named/ietf-{version}.csv"), "text/csv", b"a,b\n").await;

        let request = files
            .request("POST", &files.endpoint(), Some(Dialect::Ietf(version)))
            .header("upload-complete", "?0")
            .header("content-type", "image/png")
            .header("content-disposition", "inline; filename=\"file name.png\"; filename*=UTF-8''caf%C3%A9.png");
        let created = send(request).await;
        assert_eq!(created.status, 201, "v{version}: {created}");
        let id = created.location().rsplit('/').next().expect("id").to_owned();
        let png = crate::helpers::fixture("photo.png");
        let done = files.append(&created.location(), version, 0, true, png.clone()).await;
        check(done, format!("uploads/{id}/café.png"), "image/png", &png).await;

        let request = files
            .request("POST", &files.endpoint(), Some(Dialect::Ietf(version)))
            .header("upload-complete", "?0")
            .header("content-type", "application/pdf");
        let anonymous = send(request).await;
        let id = anonymous.location().rsplit('/').next().expect("id").to_owned();
        let done = files.append(&anonymous.location(), version, 0, true, b"%PDF-1.4\n".to_vec()).await;
        check(done, format!("uploads/{id}/upload"), "application/pdf", b"%PDF-1.4\n").await;
    }
}

/// Uploads across the 5 MiB part size (where the S3 backend turns appends into parts and keeps a shorter tail),
/// appended in pieces that straddle it: 5 MiB + 1 byte, in both protocols.
async fn uploads_across_the_part_size_keep_their_bytes(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    const LEN: usize = 5 * 1024 * 1024 + 1;
    let data = pseudo_random_bytes(LEN, 61);
    let cuts = [0, 1024 * 1024, 3 * 1024 * 1024, 5 * 1024 * 1024, LEN];
    let url = files.tus_created(LEN as u64, "big/tus.bin").await;
    for piece in cuts.windows(2) {
        let reply = files.tus_patch(&url, piece[0] as u64, data[piece[0]..piece[1]].to_vec()).await;
        assert_eq!((reply.status, reply.offset()), (204, piece[1] as u64), "{reply}");
    }
    assert!(draft_bytes(&app, "big/tus.bin").await == data, "tus: the bytes differ");
    let url = files.created(9, None, "big/ietf.bin").await;
    for piece in cuts.windows(2) {
        let last = piece[1] == LEN;
        let reply = files.append(&url, 9, piece[0] as u64, last, data[piece[0]..piece[1]].to_vec()).await;
        assert!(reply.is_success() && reply.complete() == last, "{reply}");
    }
    assert!(draft_bytes(&app, "big/ietf.bin").await == data, "IETF: the bytes differ");
}

/// Interop 6 (tus-js-client's `ietf-draft-05`): creation with `Upload-Metadata` and `Upload-Complete: ?0`,
/// appends of `application/partial-upload`, HEAD 204; `Upload-Limit` also carries `expires`; an append to the
/// completed upload is 400 `completed-upload`.
async fn interop_6_basic_flow(backend: Backend) {
    let (app, files) = server(backend, &[]).await;
    let request = files
        .request("POST", &files.endpoint(), Some(Dialect::Ietf(6)))
        .header("upload-complete", "?0")
        .header("upload-length", "9")
        .header("upload-metadata", metadata(&[("filename", "six.txt"), ("filetype", "text/plain")]));
    let created = send(request).await;
    assert_eq!(created.status, 201, "{created}");
    assert_eq!(created.header("upload-draft-interop-version"), Some("6"));
    let limits = created.limits();
    assert!(limits.contains_key("max-age") && limits.contains_key("expires"), "{limits:?}");
    let url = created.location();
    let id = url.rsplit('/').next().expect("id").to_owned();
    let reply = files.append(&url, 6, 0, false, b"abc".to_vec()).await;
    assert!(reply.is_success() && !reply.complete() && reply.offset() == 3, "{reply}");
    let head = files.head(&url, Dialect::Ietf(6)).await;
    assert_eq!((head.status, head.offset(), head.complete(), head.length()), (204, 3, false, Some(9)), "{head}");
    let reply = files.append(&url, 6, 3, true, b"defghi".to_vec()).await;
    assert!(reply.is_success() && reply.complete(), "{reply}");
    let expected = format!("uploads/{id}/six.txt");
    assert_eq!(reply.object_name(), expected);
    assert_eq!(app.download(&expected, Some("draft")).await, ("text/plain".to_owned(), b"abcdefghi".to_vec()));
    files.append(&url, 6, 9, true, b"more".to_vec()).await.assert_problem(400, COMPLETED_UPLOAD);
    assert_eq!(draft_bytes(&app, &expected).await, b"abcdefghi");
}

/// Unfinished uploads expire with their draft: the cleaner's pass after OBJECT_LIFETIME removes their parts, tail,
/// lease and record, and leaves an upload not yet expired as it is.
async fn the_cleaner_removes_expired_uploads_and_their_bytes(backend: Backend) {
    let (app, settings) = backend.spawn_with_settings(&[]).await;
    let files = Resumable::of(&app);
    let part_and_tail = pseudo_random_bytes((8 << 20) + 1234, 3);
    let old = files.tus_created(32 << 20, "cleaned/old.bin").await;
    assert_eq!(files.tus_patch(&old, 0, part_and_tail.clone()).await.status, 204);
    let events = &settings.common.service.buckets.events;
    let resumable = async || {
        let page = app.storage.list_prefix(events, "resumable/", None, 1000).await.expect("the records listed");
        page.objects.into_iter().map(|object| object.key.as_str().to_owned()).collect::<Vec<_>>()
    };
    let held = resumable().await;
    assert!(held.iter().any(|key| key.contains("/tail-")), "a part and a tail are stored: {held:?}");

    let cleaner = settings.common.cleaner(app.store.clone());
    let now = time::OffsetDateTime::now_utc();
    let fresh = cleaner.clean_once(now).await;
    assert_eq!((fresh.resumable_removed, fresh.incomplete.clone()), (0, None), "{fresh:?}");
    assert_eq!(resumable().await, held, "an upload not yet expired is left as it is");

    let later = now + settings.common.service.object_lifetime + Duration::from_secs(60);
    let swept = settings.common.cleaner(app.store.clone()).clean_once(later).await;
    assert_eq!((swept.resumable_removed, swept.incomplete.clone()), (1, None), "{swept:?}");
    assert!(resumable().await.is_empty(), "the upload's records and tail are gone");
    let parts_left = match backend {
        Backend::Local => std::fs::read_dir(app.data_dir.join(".multipart")).map_or(0, Iterator::count),
        Backend::SeaweedFs => {
            let draft = settings.common.service.buckets.draft.as_str().to_owned();
            let listed = crate::seaweed::shared().await.client().list_multipart_uploads().bucket(draft).send().await;
            listed.expect("listed").uploads().len()
        }
    };
    assert_eq!(parts_left, 0, "the upload's parts are gone");
    assert_eq!(files.head(&old, Dialect::Tus).await.status, 404);
}

on_both_backends!(
    tus_options_announce_the_server,
    tus_other_versions_are_412,
    tus_core_protocol,
    tus_creation_with_upload,
    tus_deferred_length,
    tus_termination,
    tus_method_override,
    tus_wrong_offset_is_409,
    tus_checksum_mismatch_is_460,
    tus_append_past_the_length_is_refused,
    malformed_and_overflowing_numbers_are_refused,
    another_tenants_upload_is_404,
    expired_uploads_are_gone,
    racing_creations_make_one_whole_draft,
    tus_racing_patches_keep_one,
    finished_uploads_are_drafts_that_confirm_promotes,
    uploads_across_the_part_size_keep_their_bytes,
    interop_6_basic_flow,
    the_cleaner_removes_expired_uploads_and_their_bytes,
);
