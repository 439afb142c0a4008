//! REMP's `JsonValidationTrait` for the routes that take one JSON document: the raw body is
//! decoded and checked against a small schema (typed properties, required ones, no others),
//! and failures get REMP's bodies: `Empty request`, `Malformed JSON` with the decoder's message,
//! or `Payload error` with one `{"<property>": "<message>: <constraint>"}` per problem, worded
//! as justinrainbow/json-schema words them. Only what those schemas use is implemented.

use crate::api::json;
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

/// The type a property must have.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Integer,
    /// A string of at most this many bytes.
    String(usize),
    Boolean,
    /// An array of strings.
    Strings,
}

/// One property of an object schema.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Property {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
}

/// Why a document was refused; each becomes REMP's 400 body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Refusal {
    /// No body (or PHP-`empty()` "0").
    Empty,
    /// Not JSON; PHP's decoder message.
    Malformed(&'static str),
    /// `(property, "<message>: <constraint>")` per schema problem.
    Payload(Vec<(String, String)>),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = match self {
            Refusal::Empty => json!({"status": "error", "message": "Empty request"}),
            Refusal::Malformed(why) => json!({"status": "error", "message": "Malformed JSON", "errors": [why]}),
            Refusal::Payload(problems) => {
                let errors: Vec<Value> =
                    problems.into_iter().map(|(property, message)| json!({ property: message })).collect();
                json!({"status": "error", "message": "Payload error", "errors": errors})
            }
        };
        json(StatusCode::BAD_REQUEST, &body)
    }
}

/// PHP's `gettype` of a decoded JSON value, as the validator names what it found.
fn found(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Bool(_) => "Boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "Integer",
        Value::Number(_) => "Double",
        Value::String(_) => "String",
        Value::Array(_) => "Array",
        Value::Object(_) => "Object",
    }
}

fn type_error(value: &Value, expected: &str) -> String {
    format!("{} value found, but {expected} is required: type", found(value))
}

/// The decoder's message for a body that is not JSON, as PHP's `json_last_error_msg` puts it.
fn malformed(body: &[u8], err: &serde_json::Error) -> &'static str {
    if std::str::from_utf8(body).is_err() {
        "Malformed UTF-8 characters, possibly incorrectly encoded"
    } else if err.to_string().contains("recursion limit") {
        "Maximum stack depth exceeded"
    } else {
        "Syntax error"
    }
}

/// Check one property's value, pushing problems under `path`.
fn check(path: &str, value: &Value, kind: Kind, problems: &mut Vec<(String, String)>) {
    match (kind, value) {
        (Kind::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => {}
        (Kind::Integer, v) => problems.push((path.to_owned(), type_error(v, "an integer"))),
        (Kind::String(max), Value::String(s)) => {
            if s.len() > max {
                problems.push((path.to_owned(), format!("Must be at most {max} bytes long: maxLength")));
            }
        }
        (Kind::String(_), v) => problems.push((path.to_owned(), type_error(v, "a string"))),
        (Kind::Boolean, Value::Bool(_)) => {}
        (Kind::Boolean, v) => problems.push((path.to_owned(), type_error(v, "a boolean"))),
        (Kind::Strings, Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if !item.is_string() {
                    problems.push((format!("{path}[{i}]"), type_error(item, "a string")));
                }
            }
        }
        (Kind::Strings, v) => problems.push((path.to_owned(), type_error(v, "an array"))),
    }
}

/// Decode `body` and check it against an object schema of `properties` that allows no others.
pub(crate) fn validate(body: &[u8], properties: &[Property]) -> Result<Map<String, Value>, Refusal> {
    // PHP's `empty()`: no body, and the body "0", are both empty.
    if body.is_empty() || body == b"0" {
        return Err(Refusal::Empty);
    }
    let document: Value = serde_json::from_slice(body).map_err(|e| Refusal::Malformed(malformed(body, &e)))?;
    let Value::Object(object) = document else {
        return Err(Refusal::Payload(vec![(String::new(), type_error(&document, "an object"))]));
    };
    let mut problems = Vec::new();
    for key in object.keys() {
        if !properties.iter().any(|p| p.name == key) {
            problems.push((
                String::new(),
                format!(
                    "The property {key} is not defined and the definition does not allow additional properties: additionalProp"
                ),
            ));
        }
    }
    for p in properties {
        match object.get(p.name) {
            Some(value) => check(p.name, value, p.kind, &mut problems),
            None if p.required => {
                problems.push((p.name.to_owned(), format!("The property {} is required: required", p.name)))
            }
            None => {}
        }
    }
    if problems.is_empty() { Ok(object) } else { Err(Refusal::Payload(problems)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: &[Property] = &[
        Property { name: "user_id", kind: Kind::Integer, required: true },
        Property { name: "key", kind: Kind::String(3), required: true },
        Property { name: "emails", kind: Kind::Strings, required: false },
    ];

    async fn body_of(response: Response) -> Value {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    async fn refused(body: &str) -> Value {
        body_of(validate(body.as_bytes(), SCHEMA).unwrap_err().into_response()).await
    }

    #[tokio::test]
    async fn empty_and_malformed_bodies_get_remps_messages() {
        assert_eq!(refused("").await, json!({"status": "error", "message": "Empty request"}));
        assert_eq!(refused("0").await["message"], "Empty request");
        assert_eq!(
            refused("{nope").await,
            json!({"status": "error", "message": "Malformed JSON", "errors": ["Syntax error"]})
        );
    }

    #[tokio::test]
    async fn schema_problems_are_listed_per_property() {
        let body = refused(r#"{"user_id": "7", "extra": 1, "emails": ["a", 2]}"#).await;
        assert_eq!(body["message"], "Payload error");
        assert_eq!(
            body["errors"],
            json!([
                {"": "The property extra is not defined and the definition does not allow additional properties: additionalProp"},
                {"user_id": "String value found, but an integer is required: type"},
                {"key": "The property key is required: required"},
                {"emails[1]": "Integer value found, but a string is required: type"},
            ])
        );
        assert_eq!(
            refused(r#"{"user_id": 1, "key": "long"}"#).await["errors"],
            json!([{"key": "Must be at most 3 bytes long: maxLength"}])
        );
        assert_eq!(refused("[1]").await["errors"], json!([{"": "Array value found, but an object is required: type"}]));
    }

    #[test]
    fn a_valid_document_comes_back_as_its_object() {
        let object = validate(br#"{"user_id": 1, "key": "k"}"#, SCHEMA).unwrap();
        assert_eq!(object["user_id"], 1);
    }
}
