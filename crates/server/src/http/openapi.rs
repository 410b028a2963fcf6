//! The OpenAPI document at `/openapi.json`: the routes and types as utoipa derives them, then what only this
//! deployment knows (its size limit, its store, whether it asks for credentials), the error answers every API
//! route shares, the shapes of Uppy's signing requests, and the links between operations, so that a tool reading
//! the document literally sends what the server accepts and is refused what it refuses.

use draftstore_api::{ErrorBody, MAX_OBJECT_NAME_BYTES, OBJECT_NAME_PATTERN, PREFIX_PATTERN, schema};
use draftstore_storage::WholeChecksum;
use draftstore_storage::multipart::{MAX_OBJECT_SIZE, MAX_PART_SIZE, MAX_SINGLE_UPLOAD, MIN_PART_SIZE};
use serde_json::json;
use utoipa::openapi::schema::{Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Components, RefOr, Required, ResponseBuilder};
use utoipa::{OpenApi as _, PartialSchema};

use super::AppState;
use super::uppy::{MAX_EXPIRES_IN, UppySignRequest};

/// The routes and types, as derived.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "DraftStore", description = "Two-stage uploads through presigned URLs."),
    paths(
        super::api::upload_url,
        super::api::download_url,
        super::api::confirm_upload,
        super::api::confirm_set,
        super::api::draft_bucket,
        super::drafts::list_drafts,
        super::drafts::discard_draft,
        super::objects::list_objects,
        super::objects::stat_object,
        super::objects::delete_object,
        super::multipart::start,
        super::multipart::sign_parts,
        super::multipart::list_parts,
        super::multipart::complete,
        super::multipart::abort,
        super::uppy::sign,
        super::api::health,
        super::api::ready
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

/// Errors any API route may answer, beside the ones its own description lists.
const SHARED_ERRORS: [(&str, &str); 5] = [
    ("401", "ACCESS_DENIED: missing or invalid credentials"),
    ("429", "RATE_LIMITED: above RATE_LIMIT; Retry-After says when to try again"),
    ("500", "INTERNAL_ERROR: a fault of DraftStore's; the message carries no detail, the log does"),
    ("503", "NETWORK_ERROR: the store is unreachable or slower than STORAGE_TIMEOUT"),
    ("507", "INSUFFICIENT_STORAGE: the local backend's filesystem is full"),
];

/// Routes whose request body may be left out.
const OPTIONAL_BODIES: [&str; 3] = ["/api/v1/draft-bucket", "/api/v1/list-drafts", "/api/v1/list-objects"];

/// The document this server serves.
pub fn document(state: &AppState) -> serde_json::Value {
    let mut doc = ApiDoc::openapi();
    let limits = state.service.limits();
    let components = doc.components.get_or_insert_with(Components::new);
    set_maximum(components, "UploadUrlRequest", "content_length", limits.max_size.min(MAX_SINGLE_UPLOAD));
    set_maximum(components, "StartMultipartRequest", "content_length", limits.max_size.min(MAX_OBJECT_SIZE));
    set_maximum(components, "StartMultipartRequest", "part_size", limits.max_size.min(MAX_PART_SIZE));
    if let Some(RefOr::T(Schema::Object(start))) = components.schemas.get_mut("StartMultipartRequest") {
        if limits.max_size < MAX_OBJECT_SIZE {
            // Below 5 TiB, an upload declares its size, which bounds every part URL.
            start.required.push("content_length".to_owned());
            if let Some(RefOr::T(Schema::Object(length))) = start.properties.get_mut("content_length") {
                length.schema_type = Type::Integer.into();
            }
        }
        if limits.max_size < MIN_PART_SIZE {
            // No part size is both at least 5 MiB and at most MAX_UPLOAD_SIZE: the server refuses every one.
            start.properties.remove("part_size");
        }
    }
    if state.service.store().multipart.whole_checksum() != WholeChecksum::Verified
        && let Some(RefOr::T(Schema::Object(start))) = components.schemas.get_mut("StartMultipartRequest")
    {
        // This store cannot verify a whole multipart object's SHA-256, and the server refuses the field.
        start.properties.remove("checksum_sha256");
    }
    let secured = !state.auth.is_open();
    if secured {
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        let Some(operation) = item.post.as_mut() else { continue };
        for (status, description) in SHARED_ERRORS {
            let error = ResponseBuilder::new().description(description).content(
                "application/json",
                utoipa::openapi::ContentBuilder::new().schema(Some(ErrorBody::schema())).build(),
            );
            operation.responses.responses.entry(status.to_owned()).or_insert_with(|| error.build().into());
        }
        if OPTIONAL_BODIES.contains(&path.as_str())
            && let Some(body) = operation.request_body.as_mut()
        {
            body.required = Some(Required::False);
        }
        if secured {
            operation.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
        }
    }
    let mut doc = serde_json::to_value(doc).expect("the OpenAPI document serializes");
    add_links(&mut doc);
    if let Some(prefix) = state.auth.longest_tenant_prefix() {
        shorten_names(&mut doc, MAX_OBJECT_NAME_BYTES.saturating_sub(prefix).max(1));
    }
    doc
}

/// Every object name (and name prefix) in the document limited to `longest` bytes, what the tenant prefix leaves.
fn shorten_names(value: &mut serde_json::Value, longest: usize) {
    match value {
        serde_json::Value::Object(object) => {
            match object.get("pattern").and_then(|p| p.as_str()) {
                Some(OBJECT_NAME_PATTERN) => {
                    object.insert("maxLength".to_owned(), longest.into());
                }
                Some(PREFIX_PATTERN) => {
                    object.insert("maxLength".to_owned(), longest.saturating_sub(1).into());
                }
                _ => {}
            }
            object.values_mut().for_each(|v| shorten_names(v, longest));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| shorten_names(v, longest)),
        _ => {}
    }
}

/// Sets the `maximum` of an integer property of a component schema.
fn set_maximum(components: &mut Components, schema: &str, property: &str, maximum: u64) {
    if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema)
        && let Some(RefOr::T(Schema::Object(field))) = object.properties.get_mut(property)
    {
        field.maximum = Some(maximum.into());
    }
}

/// The operations a successful answer leads to, with the values they take from it: an upload URL's object to
/// download, confirm or discard; a started upload to sign, list or abort; a confirmed object to describe, download
/// or delete; a page of drafts or objects to the next. (Written
/// into the JSON: utoipa spells a link's fields in snake case.)
fn add_links(doc: &mut serde_json::Value) {
    let name = "$response.body#/object_name";
    let upload = json!({"object_name": name, "upload_id": "$response.body#/upload_id"});
    let next_page = json!({
        "prefix": "$request.body#/prefix",
        "page_size": "$request.body#/page_size",
        "page_token": "$response.body#/next_page_token"
    });
    let routes = [
        (
            "/api/v1/upload-url",
            vec![
                ("download_url", json!({"object_name": name})),
                ("confirm_upload", json!({"object_name": name})),
                ("discard_draft", json!({"object_name": name})),
            ],
        ),
        (
            "/api/v1/multipart/start",
            vec![
                (
                    "sign_parts",
                    json!({"object_name": name, "upload_id": "$response.body#/upload_id", "parts": [{"part_number": 1}]}),
                ),
                ("list_parts", upload.clone()),
                ("abort", upload),
            ],
        ),
        (
            "/api/v1/confirm-upload",
            vec![
                ("stat_object", json!({"object_name": name})),
                ("download_url", json!({"object_name": name, "stage": "main"})),
                ("delete_object", json!({"object_name": name})),
            ],
        ),
        ("/api/v1/list-drafts", vec![("list_drafts", next_page.clone())]),
        ("/api/v1/list-objects", vec![("list_objects", next_page)]),
    ];
    for (path, links) in routes {
        let Some(ok) = doc.pointer_mut(&format!("/paths/{}/post/responses/200", path.replace('/', "~1"))) else {
            continue;
        };
        ok["links"] = links
            .into_iter()
            .map(|(target, body)| (target.to_owned(), json!({"operationId": target, "requestBody": body})))
            .collect();
    }
}

impl utoipa::ToSchema for UppySignRequest {}

/// What Uppy's `signRequest` may ask for: one shape per S3 request DraftStore signs. The server refuses any other
/// combination of method, `uploadId` and `partNumber`.
impl PartialSchema for UppySignRequest {
    fn schema() -> RefOr<Schema> {
        uppy_sign_request()
    }
}

fn uppy_sign_request() -> RefOr<Schema> {
    let json = |schema: RefOr<Schema>| serde_json::to_value(schema).expect("a schema serializes");
    let key = json(schema::object_name());
    let upload_id = json(schema::upload_id());
    let content_type = json(schema::content_type());
    let expires_in = json!({
        "type": ["integer", "null"], "minimum": 1, "maximum": MAX_EXPIRES_IN,
        "description": "Seconds the URL should live; UPLOAD_TTL caps it."
    });
    let absent = json!({"type": "null"});
    let variant = |description: &str, method: &str, upload_id: &serde_json::Value, part: serde_json::Value| {
        let mut required = vec!["method", "key"];
        if upload_id.get("pattern").is_some() {
            required.push("uploadId");
        }
        if part.get("minimum").is_some() {
            required.push("partNumber");
        }
        json!({
            "type": "object",
            "description": description,
            "required": required,
            "additionalProperties": false,
            "properties": {
                "method": {"type": "string", "enum": [method]},
                "key": key,
                "contentType": content_type,
                "uploadId": upload_id,
                "partNumber": part,
                "expiresIn": expires_in,
            }
        })
    };
    let part = json!({"type": "integer", "minimum": 1, "maximum": 10000});
    let schema = json!({
        "description": "One S3 request Uppy's `@uppy/aws-s3` wants to send, as its `signRequest` describes it.",
        "oneOf": [
            variant("PutObject", "PUT", &absent, absent.clone()),
            variant("CreateMultipartUpload", "POST", &absent, absent.clone()),
            variant("UploadPart", "PUT", &upload_id, part),
            variant("ListParts", "GET", &upload_id, absent.clone()),
            variant("AbortMultipartUpload", "DELETE", &upload_id, absent.clone()),
            variant("CompleteMultipartUpload: signed to DraftStore's own completion route", "POST", &upload_id, absent.clone()),
        ]
    });
    serde_json::from_value(schema).expect("the Uppy request schema is a schema")
}

#[cfg(test)]
mod tests {
    use draftstore_api::{
        CHECKSUM_SHA256_PATTERN, CONTENT_TYPE_PATTERN, FILENAME_PATTERN, MAX_CONTENT_TYPE_LEN, MAX_UPLOAD_ID_LEN,
        METADATA_VALUE_FORMS, UPLOAD_ID_PATTERN, metadata_name_pattern,
    };
    use draftstore_storage::{Checksum, ContentType, MAX_KEY_LEN, ObjectKey, UploadId};
    use proptest::prelude::*;
    use regex::Regex;

    use super::*;
    use crate::domain::parse_filename;
    use crate::service::parse_prefix;

    /// Strings made of what the rules are about: separators, dots, backslashes, control characters, blanks, token
    /// and base64 characters, and characters outside ASCII.
    fn tricky() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('/'),
                Just('.'),
                Just('\\'),
                Just(' '),
                Just('\t'),
                Just(';'),
                Just('='),
                Just('+'),
                Just('-'),
                Just('~'),
                Just('\u{7f}'),
                Just('\u{85}'),
                Just('é'),
                Just('日'),
                prop::char::range('\0', '\u{1f}'),
                prop::char::range('a', 'z'),
                prop::char::range('A', 'Z'),
                prop::char::range('0', '9'),
                any::<char>(),
            ],
            0..48,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn matches(pattern: &str, value: &str) -> bool {
        static COMPILED: std::sync::Mutex<Vec<(String, Regex)>> = std::sync::Mutex::new(Vec::new());
        let mut compiled = COMPILED.lock().expect("not poisoned");
        if !compiled.iter().any(|(p, _)| p == pattern) {
            compiled.push((pattern.to_owned(), Regex::new(pattern).expect("the pattern compiles")));
        }
        compiled.iter().find(|(p, _)| p == pattern).is_some_and(|(_, regex)| regex.is_match(value))
    }

    #[test]
    fn common_content_types_match_and_break_the_same_way() {
        for value in ["image/png", "text/plain; charset=utf-8", "application/vnd.api+json", "a/b ;x", "a/b;"] {
            assert!(matches(CONTENT_TYPE_PATTERN, value) && ContentType::parse(value).is_ok(), "{value}");
        }
        for value in [" image/png", "image/png ", "text/plain;\tq=1", "image", "a/b/c", "a/b; x "] {
            assert!(!matches(CONTENT_TYPE_PATTERN, value) && ContentType::parse(value).is_err(), "{value}");
        }
    }

    #[test]
    fn the_documents_limits_are_the_servers() {
        assert_eq!(MAX_OBJECT_NAME_BYTES, MAX_KEY_LEN);
        assert_eq!(MAX_UPLOAD_ID_LEN, draftstore_storage::MAX_UPLOAD_ID_LEN);
        assert_eq!(MAX_CONTENT_TYPE_LEN, draftstore_storage::MAX_CONTENT_TYPE_LEN);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn the_name_pattern_is_the_name_rule(name in tricky()) {
            let by_pattern = matches(OBJECT_NAME_PATTERN, &name) && name.len() <= MAX_OBJECT_NAME_BYTES;
            prop_assert_eq!(by_pattern, ObjectKey::parse(&name).is_ok(), "{:?}", name);
        }

        #[test]
        fn the_prefix_pattern_is_the_prefix_rule(prefix in tricky()) {
            let by_pattern = matches(PREFIX_PATTERN, &prefix) && prefix.len() < MAX_OBJECT_NAME_BYTES;
            prop_assert_eq!(by_pattern, parse_prefix(&prefix).is_ok(), "{:?}", prefix);
        }

        #[test]
        fn the_content_type_pattern_is_the_content_type_rule(value in tricky()) {
            let value = value.replacen(';', "/", 1);
            let by_pattern = matches(CONTENT_TYPE_PATTERN, &value) && value.len() <= MAX_CONTENT_TYPE_LEN;
            prop_assert_eq!(by_pattern, ContentType::parse(&value).is_ok(), "{:?}", value);
        }

        #[test]
        fn the_filename_pattern_is_the_filename_rule(value in tricky()) {
            let by_pattern = matches(FILENAME_PATTERN, &value);
            prop_assert_eq!(by_pattern, parse_filename(Some(&value)).is_ok(), "{:?}", value);
        }

        #[test]
        fn the_metadata_name_pattern_is_the_metadata_name_rule(
            name in prop_oneof![tricky(), "d(r(a(f(t(s(t(o(r(e(-[a-z-]{0,3})?)?)?)?)?)?)?)?)?)?", "[a-z0-9-]{60,66}"]
        ) {
            let by_pattern = matches(&metadata_name_pattern(), &name);
            let metadata = Some([(name.clone(), "x".to_owned())].into_iter().collect());
            prop_assert_eq!(by_pattern, crate::domain::parse_metadata(metadata).is_ok(), "{:?}", name);
        }

        #[test]
        fn the_metadata_value_forms_are_the_metadata_value_rule(
            value in prop_oneof![
                tricky(),
                "[ -~]{250,260}",
                "[ -~é]{38,46}",
                "[a-zé\u{7ff}\u{800}]{18,24}",
                "[a-z\u{10000}-\u{10ffff}]{18,24}",
            ]
        ) {
            let by_schema = METADATA_VALUE_FORMS
                .iter()
                .any(|(pattern, max)| matches(pattern, &value) && value.chars().count() <= *max);
            let metadata = Some([("a".to_owned(), value.clone())].into_iter().collect());
            prop_assert_eq!(by_schema, crate::domain::parse_metadata(metadata).is_ok(), "{:?}", value);
        }

        #[test]
        fn the_upload_id_pattern_is_the_upload_id_rule(value in tricky()) {
            let by_pattern = matches(UPLOAD_ID_PATTERN, &value) && value.len() <= MAX_UPLOAD_ID_LEN;
            prop_assert_eq!(by_pattern, UploadId::parse(&value).is_ok(), "{:?}", value);
        }

        #[test]
        fn the_checksum_pattern_is_the_checksum_rule(digest in any::<[u8; 32]>(), cut in 0usize..44, with in tricky()) {
            let valid = Checksum::from_digest(&digest).to_string();
            prop_assert!(matches(CHECKSUM_SHA256_PATTERN, &valid));
            let mut changed = valid.clone();
            changed.replace_range(cut..=cut, &with);
            let by_pattern = matches(CHECKSUM_SHA256_PATTERN, &changed);
            prop_assert_eq!(by_pattern, Checksum::parse(&changed).is_ok(), "{:?}", changed);
        }
    }
}
