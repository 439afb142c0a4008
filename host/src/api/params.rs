//! Request parameters the way REMP clients send them: query string, urlencoded form, multipart
//! form or a JSON object body, merged into one map (body values win over the query string).
//! The raw body is kept for the routes that validate a JSON document themselves.

use bytes::Bytes;
use std::collections::HashMap;

/// Parameters of one request.
#[derive(Debug, Default)]
pub struct Params {
    values: HashMap<String, String>,
    query: HashMap<String, String>,
    /// The body as sent.
    pub raw_body: Bytes,
    /// Why the body could not be read as parameters, if it could not.
    pub body_error: Option<String>,
}

fn pairs(input: &[u8]) -> HashMap<String, String> {
    form_urlencoded::parse(input).into_owned().collect()
}

/// A JSON value as a form field: strings as they are, `true`/`false` as PHP's
/// FILTER_VALIDATE_BOOLEAN reads them, arrays and objects as JSON text (so `user_ids: [1,2]`
/// arrives as REMP's JSON-array string).
fn json_field(value: serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

impl Params {
    /// Read parameters from the query string and the body, by content type.
    pub async fn parse(query: Option<&str>, content_type: Option<&str>, body: Bytes) -> Params {
        let query = query.map(|q| pairs(q.as_bytes())).unwrap_or_default();
        let mut values = query.clone();
        let mut body_error = None;
        let mime =
            content_type.and_then(|c| c.split(';').next()).map(|m| m.trim().to_ascii_lowercase()).unwrap_or_default();
        if !body.is_empty() {
            match mime.as_str() {
                "application/x-www-form-urlencoded" => values.extend(pairs(&body)),
                "multipart/form-data" => match read_multipart(content_type.unwrap_or_default(), body.clone()).await {
                    Ok(fields) => values.extend(fields),
                    Err(e) => body_error = Some(format!("Malformed multipart body: {e}")),
                },
                m if m == "application/json" || m.ends_with("+json") => {
                    match serde_json::from_slice::<serde_json::Value>(&body) {
                        Ok(serde_json::Value::Object(map)) => {
                            values.extend(map.into_iter().filter_map(|(k, v)| json_field(v).map(|v| (k, v))))
                        }
                        Ok(_) => body_error = Some("The JSON body must be an object".into()),
                        Err(e) => body_error = Some(format!("Malformed JSON body: {e}")),
                    }
                }
                // Other bodies (text, none declared) carry no parameters; the raw-body routes
                // read them as they are.
                _ => {}
            }
        }
        Params { values, query, raw_body: body, body_error }
    }

    /// The value, when present (possibly empty).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Every parameter, body values over query values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value from the query string only.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }

    /// The value when present and non-empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// The value as an owned string when present and non-empty.
    pub fn owned(&self, name: &str) -> Option<String> {
        self.non_empty(name).map(str::to_owned)
    }

    /// PHP's `filter_var(FILTER_VALIDATE_BOOLEAN)`: `1`, `true`, `on`, `yes` in any case.
    pub fn flag(&self, name: &str) -> Option<bool> {
        self.get(name).map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "on" | "yes"))
    }

    /// PHP's `(int)` cast: leading digits with an optional sign, else 0.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).map(php_int)
    }

    /// The names among `required` that are missing or empty (REMP's Runner check).
    pub fn missing<'a>(&self, required: &[&'a str]) -> Vec<&'a str> {
        required.iter().copied().filter(|n| self.non_empty(n).is_none()).collect()
    }
}

/// PHP's `(int)` of a string.
pub fn php_int(value: &str) -> i64 {
    let v = value.trim_start();
    let (sign, digits) = match v.as_bytes().first() {
        Some(b'-') => (-1, &v[1..]),
        Some(b'+') => (1, &v[1..]),
        _ => (1, v),
    };
    let end = digits.bytes().take_while(u8::is_ascii_digit).count();
    digits[..end].parse::<i64>().map(|n| sign * n).unwrap_or(0)
}

async fn read_multipart(content_type: &str, body: Bytes) -> Result<HashMap<String, String>, multer::Error> {
    let boundary = multer::parse_boundary(content_type)?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut out = HashMap::new();
    while let Some(field) = multipart.next_field().await? {
        // File uploads are not parameters of any route; skip them.
        if field.file_name().is_some() {
            continue;
        }
        if let Some(name) = field.name().map(str::to_owned) {
            out.insert(name, field.text().await?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_every_body_kind_and_prefers_the_body() {
        let form =
            Params::parse(Some("a=q&b=q"), Some("application/x-www-form-urlencoded"), Bytes::from("a=form")).await;
        assert_eq!((form.get("a"), form.get("b")), (Some("form"), Some("q")));
        assert_eq!(form.query("a"), Some("q"));

        let json = Params::parse(
            None,
            Some("application/json; charset=utf-8"),
            Bytes::from(r#"{"email":"a@b.c","unclaimed":true,"ext_id":5,"ids":[1,2],"n":null}"#),
        )
        .await;
        assert_eq!(json.get("email"), Some("a@b.c"));
        assert_eq!(json.flag("unclaimed"), Some(true));
        assert_eq!(json.int("ext_id"), Some(5));
        assert_eq!(json.get("ids"), Some("[1,2]"));
        assert_eq!(json.get("n"), None);

        let body = "--XX\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\nm@x.io\r\n--XX--\r\n";
        let multi = Params::parse(None, Some("multipart/form-data; boundary=XX"), Bytes::from(body)).await;
        assert_eq!(multi.get("email"), Some("m@x.io"));
        assert!(multi.body_error.is_none());
    }

    #[tokio::test]
    async fn malformed_bodies_are_reported_not_fatal() {
        let bad = Params::parse(Some("x=1"), Some("application/json"), Bytes::from("{nope")).await;
        assert!(bad.body_error.as_deref().unwrap_or_default().starts_with("Malformed JSON"));
        assert_eq!(bad.get("x"), Some("1"));
    }

    #[test]
    fn php_int_casts_like_php() {
        assert_eq!(php_int("42abc"), 42);
        assert_eq!(php_int("-7"), -7);
        assert_eq!(php_int("abc"), 0);
        assert_eq!(php_int(""), 0);
    }

    #[tokio::test]
    async fn flags_follow_filter_validate_boolean() {
        let p = Params::parse(Some("a=TRUE&b=on&c=0&d=maybe"), None, Bytes::new()).await;
        assert_eq!(p.flag("a"), Some(true));
        assert_eq!(p.flag("b"), Some(true));
        assert_eq!(p.flag("c"), Some(false));
        assert_eq!(p.flag("d"), Some(false));
        assert_eq!(p.flag("e"), None);
    }
}
