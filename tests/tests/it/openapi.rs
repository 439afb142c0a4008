//! `/api/openapi.json`: served without a token, a valid OpenAPI 3.1 document (checked with
//! `openapi-spec-validator` when Python has it, and structurally always), and every path it
//! documents is routed by the server.

use serde_json::Value;
use std::process::Command;

use crate::harness::TestServer;

/// Every `$ref` in `v`.
fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                match (k.as_str(), item) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(item, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| refs(i, out)),
        _ => {}
    }
}

fn pointer<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

#[test]
fn document_is_served_without_a_token_and_is_structurally_sound() {
    let s = TestServer::start();
    let r = s.get("/api/openapi.json", None);
    let doc = r.expect(200);
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["apiToken"]["scheme"], "bearer");
    assert_eq!(schemes["userToken"]["scheme"], "bearer");
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let ops = item.as_object().expect("path item");
        assert!(!ops.is_empty(), "{path} has no operations");
        for (method, op) in ops {
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
        }
    }
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(!all.is_empty());
    for reference in all {
        assert!(pointer(doc, reference).is_some(), "unresolved $ref {reference}");
    }
    for path in [
        "/api/v1/users/login",
        "/api/v2/users/email",
        "/api/v1/user-meta/upsert",
        "/api/groups/{id}/members/{user_id}",
        "/api/roles/{id}",
        "/api/users/{id}/permissioncheck",
        "/api/plugins/reload",
        "/api/address-change-requests/{id}/accept",
        "/api/autologin-tokens",
        "/api/openapi.json",
    ] {
        assert!(paths.contains_key(path), "{path} is not documented");
    }
    let login = &paths["/api/v1/users/login"];
    assert!(login["get"].is_object() && login["post"].is_object(), "REMP routes are described as GET and POST");
    assert!(login["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
}

/// Runs `openapi-spec-validator` when Python can import it; returns whether it ran.
fn validate_with_python(doc: &str) -> bool {
    let probe = Command::new("python3").args(["-c", "import openapi_spec_validator"]).output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("openapi-spec-validator is not installed; only the structural checks ran");
        return false;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, doc).expect("write document");
    let out =
        Command::new("python3").arg("-m").arg("openapi_spec_validator").arg(&file).output().expect("run validator");
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

#[test]
fn document_passes_openapi_spec_validator_when_available() {
    let s = TestServer::start();
    let r = s.get("/api/openapi.json", None);
    r.expect(200);
    validate_with_python(&r.text);
}

#[test]
fn every_documented_operation_is_routed() {
    let s = TestServer::start();
    let doc = s.get("/api/openapi.json", None).expect(200).clone();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let concrete = path.replace("{id}", "1").replace("{user_id}", "1");
        for method in item.as_object().expect("operations").keys() {
            let r = s.req(&method.to_uppercase(), &concrete).send();
            assert_ne!(r.status, 405, "{method} {path} is documented but not routed");
            assert_ne!(r["message"], "Unknown api endpoint", "{method} {path} is documented but not routed");
            if path.starts_with("/api/") && !path.starts_with("/api/v") && path != "/api/openapi.json" {
                assert_eq!(r.status, 401, "{method} {path} without a token: {}", r.text);
            }
        }
    }
}
