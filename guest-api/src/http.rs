//! A minimal blocking HTTP client over `wasi:http/outgoing-handler`, for plugins whose manifest
//! declares the `http` capability and lists the hosts in `allowed_hosts`. The host refuses
//! every other destination; that refusal arrives here as [`HttpError::Denied`].
//!
//! It sends one request and reads the whole answer into memory. It is not a general client:
//! no redirects, no streaming, no TLS settings of its own (`https://` URLs use the host's).
//!
//! ```no_run
//! use crm_users_guest::http;
//!
//! let response = http::post_json("http://127.0.0.1:8089/check", r#"{"email":"a@b.c"}"#)?;
//! if response.status == 200 {
//!     let text = response.text();
//! }
//! # Ok::<(), http::HttpError>(())
//! ```

use std::fmt;

use wasi::http::outgoing_handler;
use wasi::http::types::{ErrorCode, Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasi::io::streams::StreamError;

/// Largest response body read into memory. Plugins talk to small JSON services; anything
/// bigger is more likely a mistake than data a plugin needs, and it would count against the
/// plugin's memory cap.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Largest chunk handed to the output stream at once; `wasi:io` lets a host refuse writes
/// above 4096 bytes without a prior `check-write`.
const WRITE_CHUNK_BYTES: usize = 4096;

/// An HTTP response, read completely.
///
/// ```no_run
/// # use crm_users_guest::http;
/// let response = http::get("http://127.0.0.1:8089/health")?;
/// let healthy = response.status == 200 && response.text() == "ok";
/// # Ok::<(), http::HttpError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The body, at most [`MAX_RESPONSE_BYTES`].
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text, with invalid UTF-8 replaced.
    ///
    /// ```no_run
    /// # use crm_users_guest::http;
    /// let body = http::get("http://127.0.0.1:8089/version")?.text();
    /// # Ok::<(), http::HttpError>(())
    /// ```
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request got no response.
///
/// ```no_run
/// # use crm_users_guest::{http, Failure};
/// fn ask(url: &str) -> Result<http::Response, Failure> {
///     http::get(url).map_err(|error| match error {
///         http::HttpError::Denied(_) => Failure::other("add the host to allowed_hosts"),
///         other => Failure::other(other.to_string()),
///     })
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL is not an absolute `http://` or `https://` URL.
    InvalidUrl(String),
    /// The host refused the request: the plugin lacks the `http` capability or the
    /// destination is not in `allowed_hosts`.
    Denied(String),
    /// The response body is larger than [`MAX_RESPONSE_BYTES`].
    TooLarge,
    /// Connecting, sending or receiving failed.
    Transport(String),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl(url) => write!(f, "invalid URL `{url}`"),
            Self::Denied(why) => write!(f, "request denied by the host: {why}"),
            Self::TooLarge => write!(f, "response larger than {MAX_RESPONSE_BYTES} bytes"),
            Self::Transport(why) => write!(f, "HTTP request failed: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Sends a `GET` request.
///
/// ```no_run
/// # use crm_users_guest::http;
/// let response = http::get("http://127.0.0.1:8089/users?email=a%40b.c")?;
/// # Ok::<(), http::HttpError>(())
/// ```
pub fn get(url: &str) -> Result<Response, HttpError> {
    send(Method::Get, url, None)
}

/// Sends a `POST` request with a JSON body (`content-type: application/json`).
///
/// ```no_run
/// # use crm_users_guest::http;
/// let response = http::post_json("http://127.0.0.1:8089/check", r#"{"ok":true}"#)?;
/// # Ok::<(), http::HttpError>(())
/// ```
pub fn post_json(url: &str, body: &str) -> Result<Response, HttpError> {
    send(Method::Post, url, Some(("application/json", body.as_bytes())))
}

fn send(method: Method, url: &str, body: Option<(&str, &[u8])>) -> Result<Response, HttpError> {
    let target = Target::parse(url)?;

    let mut headers = Vec::new();
    if let Some((content_type, bytes)) = body {
        headers.push(("content-type".to_owned(), content_type.as_bytes().to_vec()));
        headers.push(("content-length".to_owned(), bytes.len().to_string().into_bytes()));
    }
    let headers = Fields::from_list(&headers).map_err(|error| transport(format!("{error:?}")))?;
    let request = OutgoingRequest::new(headers);
    let refused = |what: &str| HttpError::InvalidUrl(format!("{url} ({what})"));
    request.set_method(&method).map_err(|()| refused("method"))?;
    request.set_scheme(Some(&target.scheme)).map_err(|()| refused("scheme"))?;
    request.set_authority(Some(target.authority)).map_err(|()| refused("authority"))?;
    request.set_path_with_query(Some(&target.path_with_query)).map_err(|()| refused("path"))?;
    let outgoing_body = request.body().map_err(|()| transport("request body already taken"))?;

    // Sent before the body is written, so a body larger than the host's pipe buffer cannot
    // block forever waiting for a reader.
    let pending = outgoing_handler::handle(request, None).map_err(from_error_code)?;
    write_body(&outgoing_body, body.map(|(_, bytes)| bytes).unwrap_or_default())?;
    OutgoingBody::finish(outgoing_body, None).map_err(from_error_code)?;

    pending.subscribe().block();
    let response = match pending.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(from_error_code(code)),
        Some(Err(())) | None => return Err(transport("response already taken or not ready")),
    };
    let status = response.status();
    let incoming_body = response.consume().map_err(|()| transport("response body already taken"))?;
    let body = read_body(&incoming_body)?;
    drop(incoming_body);
    Ok(Response { status, body })
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), HttpError> {
    let stream = body.write().map_err(|()| transport("request body stream already taken"))?;
    for chunk in bytes.chunks(WRITE_CHUNK_BYTES) {
        stream.blocking_write_and_flush(chunk).map_err(from_stream_error)?;
    }
    Ok(())
}

fn read_body(body: &wasi::http::types::IncomingBody) -> Result<Vec<u8>, HttpError> {
    let stream = body.stream().map_err(|()| transport("response body stream already taken"))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                    return Err(HttpError::TooLarge);
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => return Ok(bytes),
            Err(error) => return Err(from_stream_error(error)),
        }
    }
}

fn transport(why: impl Into<String>) -> HttpError {
    HttpError::Transport(why.into())
}

fn from_error_code(code: ErrorCode) -> HttpError {
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied("destination not allowed".into()),
        other => HttpError::Transport(format!("{other:?}")),
    }
}

fn from_stream_error(error: StreamError) -> HttpError {
    match error {
        StreamError::Closed => transport("stream closed"),
        StreamError::LastOperationFailed(error) => transport(error.to_debug_string()),
    }
}

/// The parts of an absolute URL that `wasi:http` wants separately.
#[derive(Debug)]
struct Target<'a> {
    scheme: Scheme,
    authority: &'a str,
    path_with_query: String,
}

impl<'a> Target<'a> {
    fn parse(url: &'a str) -> Result<Self, HttpError> {
        let invalid = || HttpError::InvalidUrl(url.to_owned());
        let (scheme, rest) = url.split_once("://").ok_or_else(invalid)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(invalid()),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() || authority.contains('@') {
            return Err(invalid());
        }
        let path_with_query = if path.starts_with('/') { path.to_owned() } else { format!("/{path}") };
        Ok(Self { scheme, authority, path_with_query })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_absolute_urls() {
        let target = Target::parse("http://127.0.0.1:8089/check?x=1#frag").expect("valid");
        assert!(matches!(target.scheme, Scheme::Http));
        assert_eq!(target.authority, "127.0.0.1:8089");
        assert_eq!(target.path_with_query, "/check?x=1");

        let bare = Target::parse("https://example.org").expect("valid");
        assert_eq!(bare.path_with_query, "/");
        assert_eq!(Target::parse("https://example.org?q").expect("valid").path_with_query, "/?q");
    }

    #[test]
    fn rejects_relative_and_odd_urls() {
        for url in ["/check", "ftp://host/", "http:///path", "http://user@host/"] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
    }
}
