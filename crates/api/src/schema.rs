//! The OpenAPI schemas of the fields whose rules the types alone do not say.

use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{Object, RefOr, Schema};

use crate::*;

fn string(nullable: bool) -> ObjectBuilder {
    let types = if nullable { SchemaType::from_iter([Type::String, Type::Null]) } else { Type::String.into() };
    ObjectBuilder::new().schema_type(types)
}

fn done(object: ObjectBuilder) -> RefOr<Schema> {
    RefOr::T(Schema::Object(Object::from(object)))
}

/// An object name.
pub fn object_name() -> RefOr<Schema> {
    done(
        string(false)
            .description(Some(format!(
                "Name of the object, for example `avatars/42.jpg`: 1 to {MAX_OBJECT_NAME_BYTES} bytes of UTF-8 \
                 with the tenant prefix `<tenant>/` (characters outside ASCII take 2 to 4), segments between single `/`, none `.` or `..`, no \
                 control character, no backslash."
            )))
            .min_length(Some(1))
            .max_length(Some(MAX_OBJECT_NAME_BYTES))
            .pattern(Some(OBJECT_NAME_PATTERN)),
    )
}

/// A multipart upload id.
pub fn upload_id() -> RefOr<Schema> {
    done(
        string(false)
            .description(Some("The `upload_id` that `multipart/start` answered."))
            .min_length(Some(1))
            .max_length(Some(MAX_UPLOAD_ID_LEN))
            .pattern(Some(UPLOAD_ID_PATTERN)),
    )
}

/// An optional SHA-256.
pub fn checksum_sha256() -> RefOr<Schema> {
    done(
        string(true)
            .description(Some(
                "Base64 SHA-256 of the bytes; signed into the URL as `x-amz-checksum-sha256`, which the store \
                 verifies.",
            ))
            .min_length(Some(44))
            .max_length(Some(44))
            .pattern(Some(CHECKSUM_SHA256_PATTERN)),
    )
}

/// An optional media type.
pub fn content_type() -> RefOr<Schema> {
    done(
        string(true)
            .description(Some(
                "Media type of the object, signed into the URL, so the upload must send exactly this \
                 Content-Type [default: application/octet-stream]; 415 outside ALLOWED_CONTENT_TYPES.",
            ))
            .min_length(Some(1))
            .max_length(Some(MAX_CONTENT_TYPE_LEN))
            .pattern(Some(CONTENT_TYPE_PATTERN)),
    )
}

/// A confirmed object's name, optional.
pub fn final_name() -> RefOr<Schema> {
    done(
        string(true)
            .description(Some("The confirmed object's name; the same rules as `object_name`."))
            .min_length(Some(1))
            .max_length(Some(MAX_OBJECT_NAME_BYTES))
            .pattern(Some(OBJECT_NAME_PATTERN)),
    )
}

/// A download's file name, optional.
pub fn filename() -> RefOr<Schema> {
    done(
        string(true)
            .description(Some("A file name: 1 to 255 characters, no control character, `/` or `\\`."))
            .min_length(Some(1))
            .max_length(Some(255))
            .pattern(Some(FILENAME_PATTERN)),
    )
}

/// The metadata an object is stored with.
pub fn stored_metadata() -> RefOr<Schema> {
    use utoipa::openapi::schema::AdditionalProperties;
    done(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("What confirm stored with the object: names to values."))
            .additional_properties(Some(AdditionalProperties::RefOr(done(string(false))))),
    )
}

/// User metadata, optional: at most [`MAX_METADATA_ENTRIES`] entries, each name and value within limits the
/// schema states, so that any map it allows fits in [`MAX_METADATA_BYTES`] and the server takes it.
pub fn metadata() -> RefOr<Schema> {
    use utoipa::openapi::schema::{AdditionalProperties, AnyOfBuilder};
    let mut value = AnyOfBuilder::new();
    for (pattern, max) in METADATA_VALUE_FORMS {
        value = value.item(done(string(false).max_length(Some(max)).pattern(Some(pattern))));
    }
    let [ascii, narrow, any] = METADATA_VALUE_FORMS.map(|(_, max)| max);
    let types = SchemaType::from_iter([Type::Object, Type::Null]);
    let mut object = ObjectBuilder::new()
        .schema_type(types)
        .description(Some(format!(
            "At most {MAX_METADATA_ENTRIES} entries. Names: lowercase letters, digits and `-`, 1 to \
             {MAX_METADATA_NAME}, not starting with `draftstore-`. Values: text without control characters, up to \
             {ascii} characters when all are printable ASCII other than `%`, up to {narrow} when all are below \
             U+0800, up to {any} otherwise (so that {MAX_METADATA_ENTRIES} entries always fit the \
             {MAX_METADATA_BYTES} bytes S3 keeps for them, where a byte outside printable ASCII, or `%`, counts \
             three)."
        )))
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::AnyOf(value.build())))))
        .property_names(Some(string(false).max_length(Some(MAX_METADATA_NAME)).pattern(Some(metadata_name_pattern()))))
        .build();
    object.max_properties = Some(MAX_METADATA_ENTRIES);
    RefOr::T(Schema::Object(object))
}

/// An optional name prefix.
pub fn prefix() -> RefOr<Schema> {
    done(
        string(true)
            .description(Some("Only names that start with this, for example `photos/`."))
            .max_length(Some(MAX_OBJECT_NAME_BYTES - 1))
            .pattern(Some(PREFIX_PATTERN)),
    )
}
