//! The OpenAPI schemas of the values whose JSON is a checked string or number (a plate, an id, a
//! currency, a percentage): derived schemas would describe their Rust insides, not what their
//! `Serialize` writes and their `Deserialize` accepts. Every other type derives its schema.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};

/// Implements `utoipa::ToSchema` for `$ty` with the schema `$schema` builds (an [`ObjectBuilder`]).
macro_rules! checked_schema {
    ($ty:ty, $schema:expr) => {
        impl utoipa::PartialSchema for $ty {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::schema::build($schema)
            }
        }

        impl utoipa::ToSchema for $ty {}
    };
}
pub(crate) use checked_schema;

pub(crate) fn build(builder: ObjectBuilder) -> RefOr<Schema> {
    RefOr::T(Schema::Object(builder.build()))
}

/// A string that must match `pattern`, described by `description`.
pub(crate) fn string(description: &str, pattern: Option<&str>) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description)).pattern(pattern)
}

/// A string that is never blank.
pub(crate) fn text(description: &str) -> ObjectBuilder {
    string(description, Some(r"\S")).min_length(Some(1))
}
