//! Hostile input over HTTP: bodies far beyond the limit (with and without a length), JSON
//! nested ten thousand deep on every kind of JSON route, and a schema-driven run of
//! schemathesis (from PyPI) over every operation of `/api/openapi.json`: no 5xx, and every
//! answer has a documented status, content type and shape.
//!
//! The byte-level fuzzing of the same parsers is in `host/src/hostile_input.rs` and `fuzz/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use crate::harness::{TestServer, http_client};

/// The schemathesis release the run is written against; installed on first use into a
/// virtualenv under the target folder.
const SCHEMATHESIS: &str = "4.32.5";

/// A body of `len` bytes, sent chunked (no Content-Length), so the limit must stop the read.
fn chunked(len: usize) -> reqwest::blocking::Body {
    let reader = std::io::Read::take(std::io::repeat(b'a'), len as u64);
    reqwest::blocking::Body::new(reader)
}

#[test]
fn ten_mebibyte_bodies_get_413_on_every_kind_of_route_with_or_without_a_length() {
    let s = TestServer::start();
    let (_, access) = s.create_user("big@example.com", "secret 123&=+");
    let ten_mib = 10 * 1024 * 1024;
    let padding = "x".repeat(ten_mib);
    let api = Some(s.api_token.as_str());
    let routes = [
        ("/api/v1/users/login", "application/x-www-form-urlencoded", None),
        ("/api/v1/user-meta/upsert", "application/json", api),
        ("/api/groups", "application/json", api),
        ("/api/v1/users/create", "multipart/form-data; boundary=XyZ", api),
    ];
    for (path, content_type, token) in routes {
        let with_length =
            s.req("POST", path).bearer(token).raw(content_type, format!("email={padding}").into_bytes()).send();
        with_length.expect_fields(413, json!({"status": "error", "code": "payload_too_large"}));
        let response = http_client()
            .post(s.url(path))
            .header("Content-Type", content_type)
            .header("Authorization", format!("Bearer {}", token.unwrap_or(&access)))
            .body(chunked(ten_mib))
            .send();
        // The server may answer before reading the rest and close the connection; what it sent
        // must still be the 413.
        if let Ok(response) = response {
            assert_eq!(response.status().as_u16(), 413, "{path} chunked");
            let body: serde_json::Value = response.json().expect("a JSON error body");
            assert_eq!(body["code"], "payload_too_large", "{path} chunked: {body}");
        }
    }
    // Nothing was half-written and the server serves as before.
    s.login("big@example.com", "secret 123&=+");
    s.get("/api/groups", Some(&s.api_token)).expect(200);
}

#[test]
fn json_nested_ten_thousand_deep_is_a_client_error_on_every_json_route() {
    let s = TestServer::start();
    let (id, access) = s.create_user("deep@example.com", "secret 123&=+");
    let arrays = format!("{{\"email\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let objects = format!("{}1{}", "{\"key\":".repeat(10_000), "}".repeat(10_000));
    let routes = [
        ("POST", "/api/v1/users/login".to_owned(), None),
        ("POST", "/api/v1/user-meta/upsert".to_owned(), Some(s.api_token.as_str())),
        ("POST", "/api/v2/users/set-email-validated".to_owned(), Some(s.api_token.as_str())),
        ("POST", "/api/groups".to_owned(), Some(s.api_token.as_str())),
        ("PATCH", format!("/api/users/{id}"), Some(s.api_token.as_str())),
        ("PUT", "/api/profile".to_owned(), Some(access.as_str())),
    ];
    for (method, path, token) in &routes {
        for body in [&arrays, &objects] {
            let r = s.req(method, path).bearer(*token).raw("application/json", body.clone().into_bytes()).send();
            assert!((400..500).contains(&r.status), "{method} {path}: {} {}", r.status, r.text);
            assert_eq!(r["status"], "error", "{method} {path}: {}", r.text);
        }
    }
    s.get("/healthz", None).expect_fields(200, json!({"status": "ok"}));
    let info = s.user_info(&access);
    info.expect_fields(200, json!({"user": {"email": "deep@example.com"}}));
    assert!(!s.stderr().contains("panicked"), "the server panicked:\n{}", s.stderr());
}

/// `schemathesis` in a virtualenv of its own, installed from PyPI on first use.
fn schemathesis() -> PathBuf {
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("schemathesis-{SCHEMATHESIS}"));
    let bin = venv.join("bin/schemathesis");
    // Written last, so an interrupted install is redone rather than half used.
    let installed = venv.join("installed");
    if installed.exists() {
        return bin;
    }
    let _ = std::fs::remove_dir_all(&venv);
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
        assert!(
            out.status.success(),
            "{cmd:?} failed; schemathesis comes from PyPI and needs python3 with venv:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    run(Command::new(venv.join("bin/python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("schemathesis=={SCHEMATHESIS}"),
    ]));
    std::fs::write(&installed, SCHEMATHESIS).expect("mark the virtualenv installed");
    bin
}

/// One schemathesis run against the server; panics with its report unless every case passed.
fn run_schemathesis(s: &TestServer, token: &str, filters: &[&str], what: &str) {
    let examples = std::env::var("CRM_USERS_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "30".into());
    let seed = std::env::var("CRM_USERS_SCHEMATHESIS_SEED").unwrap_or_else(|_| "20261204".into());
    let report = tempfile::tempdir().expect("report dir");
    let out = Command::new(schemathesis())
        .arg("run")
        .arg(s.url("/api/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
        ])
        .args(["--phases", "coverage,fuzzing", "--max-examples", &examples, "--seed", &seed])
        .args(["--workers", "2", "--request-timeout", "20", "--generation-database", "none", "--no-color"])
        .arg("--report-dir")
        .arg(report.path())
        .args(filters)
        .current_dir(report.path())
        .output()
        .expect("run schemathesis");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "schemathesis ({what}) found failures:\n{text}\nserver stderr:\n{}", s.stderr());
    assert!(text.contains(" passed"), "schemathesis ({what}) tested nothing:\n{text}");
}

#[test]
fn every_operation_survives_schemathesis_and_answers_as_documented() {
    let s = TestServer::start();
    let (_, access) = s.create_user("fuzzed@example.com", "secret 123&=+");
    // Every operation with the all-routes API token, but the one that would revoke that token
    // mid-run (`it::auth` covers API-token revocation).
    run_schemathesis(&s, &s.api_token, &["--exclude-path-regex", "^/api/api-tokens/"], "API token");
    // The routes only a signed-in user reaches, with the user's own token; logout and account
    // deletion would end the run's session, and are covered with the API token above.
    run_schemathesis(
        &s,
        &access,
        &["--include-path-regex", "^/api/(me|profile|v1/user/)", "--exclude-path-regex", "^/api/v1/user/delete"],
        "user token",
    );
    s.get("/healthz", None).expect_fields(200, json!({"status": "ok"}));
    assert!(!s.stderr().contains("panicked"), "the server panicked:\n{}", s.stderr());
}
