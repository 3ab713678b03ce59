//! The OpenAPI 3 document of the HTTP/JSON API, generated from the same
//! descriptors the calls are served from: every `CredentialRegistry`
//! method is a `POST` path, every message a schema (in its proto3 JSON
//! form), with the protos' comments as descriptions.
//!
//! The document is committed at `docs/openapi.json`; a test fails when the
//! two differ (`LATCHKEY_WRITE_OPENAPI=1 cargo test -p
//! latchkey-registry-http openapi` rewrites it).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use prost_reflect::{EnumDescriptor, FieldDescriptor, Kind, MessageDescriptor};
use prost_types::FileDescriptorProto;
use serde_json::{Map, Value, json};

use crate::{MAX_BODY_BYTES, SERVICE_NAME, descriptors};

/// The document as JSON.
pub fn document() -> Value {
    let service = descriptors::service();
    let mut schemas = BTreeMap::new();
    let mut paths = Map::new();
    for method in service.methods() {
        let input = method.input();
        let output = method.output();
        add_message(&input, &mut schemas);
        add_message(&output, &mut schemas);
        let description = comments(method.parent_file().file_descriptor_proto(), method.path())
            .unwrap_or_default();
        paths.insert(
            format!("/{SERVICE_NAME}/{}", method.name()),
            json!({
                "post": {
                    "operationId": method.name(),
                    "summary": summary(&description, method.name()),
                    "description": description,
                    "tags": [service.name()],
                    "parameters": [{"$ref": "#/components/parameters/OnBehalfOf"}],
                    "requestBody": {
                        "required": true,
                        "content": {"application/json": {"schema": reference(&input)}},
                    },
                    "responses": {
                        "200": {
                            "description": format!("The {} message.", output.name()),
                            "content": {"application/json": {"schema": reference(&output)}},
                        },
                        "default": {"$ref": "#/components/responses/Error"},
                    },
                }
            }),
        );
    }
    let mut schemas: Map<String, Value> = schemas.into_iter().collect();
    schemas.insert("Error".to_owned(), error_schema());
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Latchkey management API",
            "version": "v1",
            "description": format!(
                "Every {SERVICE_NAME} RPC over HTTP/JSON (Connect-style unary calls): \
                 POST the request message in the proto3 JSON mapping (lowerCamelCase \
                 names; the protos' own names are accepted too), get the response \
                 message back. Requests up to {MAX_BODY_BYTES} bytes. \
                 Authenticate with a management token from the OAuth token endpoint \
                 (Authorization: Bearer). Errors are {{code, message, details}} with \
                 the HTTP status of their code."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A management token from the token issuer's /oauth2/token (client_credentials).",
                },
            },
            "parameters": {
                "OnBehalfOf": {
                    "name": "x-latchkey-on-behalf-of",
                    "in": "header",
                    "required": false,
                    "description": "Act on behalf of a member: `<user_id>` in the caller's project, or `<project_id>/<user_id>`. The call is then confined to what that member may do.",
                    "schema": {"type": "string"},
                },
            },
            "responses": {
                "Error": {
                    "description": "An error: invalid_argument and failed_precondition 400, unauthenticated 401, permission_denied 403, not_found 404, already_exists and aborted 409, resource_exhausted 429 (413 for a body too large), unavailable 503, internal 500; 415 for a body that is not application/json.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        },
        "security": [{"bearer": []}],
    })
}

/// The document as committed: pretty JSON with a final newline.
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

/// `GET /openapi.json`.
pub(crate) async fn serve() -> Response {
    static TEXT: OnceLock<String> = OnceLock::new();
    let text = TEXT.get_or_init(document_text).clone();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text,
    )
        .into_response()
}

fn error_schema() -> Value {
    let codes = [
        "canceled",
        "unknown",
        "invalid_argument",
        "deadline_exceeded",
        "not_found",
        "already_exists",
        "permission_denied",
        "resource_exhausted",
        "failed_precondition",
        "aborted",
        "out_of_range",
        "unimplemented",
        "internal",
        "unavailable",
        "data_loss",
        "unauthenticated",
    ];
    json!({
        "type": "object",
        "description": "An error answer.",
        "required": ["code", "message"],
        "properties": {
            "code": {
                "type": "string",
                "enum": codes,
                "description": "The gRPC code's name in snake_case (Connect's codes).",
            },
            "message": {"type": "string", "description": "What went wrong, in words."},
            "details": {
                "type": "array",
                "description": "google.rpc error details (ErrorInfo, BadRequest, RetryInfo, ...) in the proto3 JSON form of an Any.",
                "items": {
                    "type": "object",
                    "properties": {"@type": {"type": "string"}},
                    "additionalProperties": true,
                },
            },
        },
    })
}

fn reference(message: &MessageDescriptor) -> Value {
    json!({"$ref": format!("#/components/schemas/{}", message.full_name())})
}

/// The first sentence (or line) of a description, for `summary`.
fn summary(description: &str, fallback: &str) -> String {
    let first = description
        .split("\n\n")
        .next()
        .unwrap_or("")
        .replace('\n', " ");
    let first = match first.find(". ") {
        Some(end) => first[..=end].to_owned(),
        None => first,
    };
    if first.trim().is_empty() {
        fallback.to_owned()
    } else {
        first.trim().to_owned()
    }
}

/// The leading comment of the element at `path` in `file`, if the
/// descriptors kept their source info.
fn comments(file: &FileDescriptorProto, path: &[i32]) -> Option<String> {
    let location = file
        .source_code_info
        .as_ref()?
        .location
        .iter()
        .find(|location| location.path == path)?;
    let text = location.leading_comments.as_deref()?;
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let joined = lines.join("\n").trim().to_owned();
    (!joined.is_empty()).then_some(joined)
}

/// Adds `message`'s schema and those of every message and enum it uses.
fn add_message(message: &MessageDescriptor, schemas: &mut BTreeMap<String, Value>) {
    if schemas.contains_key(message.full_name()) || well_known(message).is_some() {
        return;
    }
    // Placeholder first: recursive messages end here.
    schemas.insert(message.full_name().to_owned(), Value::Null);
    let file = message.parent_file();
    let mut properties = Map::new();
    for field in message.fields() {
        let mut schema = field_schema(&field, schemas);
        if let Some(description) = comments(file.file_descriptor_proto(), field.path())
            && let Value::Object(object) = &mut schema
        {
            if object.contains_key("$ref") {
                // OpenAPI 3.0 ignores siblings of $ref; wrap to keep the text.
                schema = json!({"allOf": [schema], "description": description});
            } else {
                object.insert("description".to_owned(), Value::String(description));
            }
        }
        properties.insert(field.json_name().to_owned(), schema);
    }
    let mut schema = json!({"type": "object", "properties": properties});
    if let Some(description) = comments(file.file_descriptor_proto(), message.path()) {
        schema["description"] = Value::String(description);
    }
    schemas.insert(message.full_name().to_owned(), schema);
}

fn field_schema(field: &FieldDescriptor, schemas: &mut BTreeMap<String, Value>) -> Value {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return json!({"type": "object"});
        };
        let value = entry.map_entry_value_field();
        return json!({
            "type": "object",
            "additionalProperties": kind_schema(&value.kind(), schemas),
        });
    }
    let schema = kind_schema(&field.kind(), schemas);
    if field.is_list() {
        json!({"type": "array", "items": schema})
    } else {
        schema
    }
}

/// A value's schema in the proto3 JSON mapping: 64-bit integers are
/// strings, enums their value names, bytes base64.
fn kind_schema(kind: &Kind, schemas: &mut BTreeMap<String, Value>) -> Value {
    match kind {
        Kind::Double | Kind::Float => json!({"type": "number"}),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            json!({"type": "integer", "format": "int32"})
        }
        Kind::Uint32 | Kind::Fixed32 => json!({"type": "integer", "format": "int32", "minimum": 0}),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => json!({"type": "string", "format": "int64"}),
        Kind::Uint64 | Kind::Fixed64 => json!({"type": "string", "format": "uint64"}),
        Kind::Bool => json!({"type": "boolean"}),
        Kind::String => json!({"type": "string"}),
        Kind::Bytes => json!({"type": "string", "format": "byte"}),
        Kind::Enum(descriptor) => enum_schema(descriptor),
        Kind::Message(message) => match well_known(message) {
            Some(schema) => schema,
            None => {
                add_message(message, schemas);
                reference(message)
            }
        },
    }
}

fn enum_schema(descriptor: &EnumDescriptor) -> Value {
    let names: Vec<String> = descriptor
        .values()
        .map(|value| value.name().to_owned())
        .collect();
    let mut schema = json!({"type": "string", "enum": names});
    if let Some(description) = comments(
        descriptor.parent_file().file_descriptor_proto(),
        descriptor.path(),
    ) {
        schema["description"] = Value::String(description);
    }
    schema
}

/// The JSON form of the well-known types, which the proto3 JSON mapping
/// writes as scalars.
fn well_known(message: &MessageDescriptor) -> Option<Value> {
    Some(match message.full_name() {
        "google.protobuf.Timestamp" => json!({"type": "string", "format": "date-time"}),
        "google.protobuf.Duration" => {
            json!({"type": "string", "description": "Seconds with an `s` suffix, e.g. \"3600s\"."})
        }
        "google.protobuf.FieldMask" => json!({
            "type": "string",
            "description": "Field paths separated by commas, e.g. \"name,allowedApis\".",
        }),
        "google.protobuf.Empty" => json!({"type": "object"}),
        "google.protobuf.StringValue" => json!({"type": "string"}),
        "google.protobuf.BytesValue" => json!({"type": "string", "format": "byte"}),
        "google.protobuf.BoolValue" => json!({"type": "boolean"}),
        "google.protobuf.Int32Value" | "google.protobuf.UInt32Value" => {
            json!({"type": "integer", "format": "int32"})
        }
        "google.protobuf.Int64Value" | "google.protobuf.UInt64Value" => {
            json!({"type": "string", "format": "int64"})
        }
        "google.protobuf.DoubleValue" | "google.protobuf.FloatValue" => json!({"type": "number"}),
        "google.protobuf.Struct" => json!({"type": "object", "additionalProperties": true}),
        "google.protobuf.Value" => json!({}),
        "google.protobuf.ListValue" => json!({"type": "array", "items": {}}),
        "google.protobuf.Any" => json!({
            "type": "object",
            "properties": {"@type": {"type": "string"}},
            "additionalProperties": true,
        }),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed document is what the code generates.
    #[test]
    fn committed_document_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
        let generated = document_text();
        if std::env::var_os("LATCHKEY_WRITE_OPENAPI").is_some() {
            std::fs::write(&path, &generated).expect("write docs/openapi.json");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json is not what the code generates; rewrite it with \
             `LATCHKEY_WRITE_OPENAPI=1 cargo test -p latchkey-registry-http openapi` and commit it"
        );
    }

    /// Every method is a path, with its request and response schemas and
    /// a description from the proto.
    #[test]
    fn every_method_is_described() {
        let document = document();
        let service = descriptors::service();
        assert!(service.methods().len() >= 20);
        for method in service.methods() {
            let path = format!("/{SERVICE_NAME}/{}", method.name());
            let operation = &document["paths"][&path]["post"];
            assert_eq!(operation["operationId"], method.name(), "{path}");
            assert!(
                !operation["description"].as_str().unwrap_or("").is_empty(),
                "{} has no comment in the proto",
                method.name()
            );
            for message in [method.input(), method.output()] {
                assert!(
                    document["components"]["schemas"][message.full_name()].is_object(),
                    "no schema for {}",
                    message.full_name()
                );
            }
        }
        assert_eq!(
            document["paths"].as_object().map(Map::len),
            Some(service.methods().len())
        );
    }
}
