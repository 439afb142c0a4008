//! Plugins written in Python (componentize-py) and JavaScript (jco, QuickJS) through the real
//! server and through `crm-users plugin run`: dropped into a running server they take effect
//! without a restart, warm instances are reused and fresh ones share nothing, a Python
//! exception that is not the WIT error type is a trap named with the plugin, the function and
//! the guest's stderr.

use crate::harness::{BUILT_PLUGINS as BUILT, TestServer, install, run_cli};
use crate::plugins::{eventually, server_with, unchanged};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;

fn validate_email(server: &TestServer, email: &str) -> crate::harness::Resp {
    server.post_form("/api/v1/users/validate-email", &[("email", email)], None)
}

fn last_error(server: &TestServer, name: &str) -> String {
    let all = server.get("/api/plugins", Some(&server.api_token)).expect(200).clone();
    let entry = all["plugins"].as_array().and_then(|l| l.iter().find(|p| p["name"] == name).cloned());
    let entry = entry.unwrap_or_else(|| panic!("plugin {name} not listed in {all}"));
    entry["last_error"].as_str().unwrap_or_else(|| panic!("no last_error in {entry}")).to_owned()
}

#[test]
fn python_and_javascript_plugins_dropped_into_a_running_server_take_effect() {
    let (server, plugins) = server_with(&[], unchanged);
    assert_eq!(validate_email(&server, "ada@outlok.com").status, 200, "no plugin yet");
    install(plugins.path(), "typo-domain-email", |t| t);
    install(plugins.path(), "eu-postal-address", |t| t);
    // The first load compiles an 18 MB Python component; later starts use the cache.
    eventually(Duration::from_secs(60), "the dropped plugins taking effect", || {
        validate_email(&server, "ada@outlok.com").status == 400
    });
    assert_eq!(validate_email(&server, "ada@outlook.com").status, 200, "the right domain passes");

    let (_, token) = server.create_user("jana@example.com", "secret123");
    let created = server.api_form(
        "/api/v1/users/address",
        &[
            ("email", "jana@example.com"),
            ("type", "eu-postal"),
            ("first_name", "Jana"),
            ("last_name", "Nová"),
            ("street", "Hlavná"),
            ("number", "1"),
            ("zip", "81101"),
            ("city", "Bratislava"),
            ("country_iso", "sk"),
        ],
    );
    created.expect(200);
    let own = server.get("/api/v1/user/addresses", Some(&token)).expect(200).clone();
    let stored: Vec<&Value> = own["addresses"].as_object().map(|m| m.values().collect()).unwrap_or_default();
    assert_eq!(stored.len(), 1, "{own}");
    assert_eq!(stored[0]["zip"], "811 01", "the Python plugin normalized the postcode: {own}");
    assert_eq!(stored[0]["address_string"], "Jana Nová, Hlavná 1, 811 01 Bratislava, SK");

    let wrong = server.api_form(
        "/api/v1/users/address",
        &[
            ("email", "jana@example.com"),
            ("type", "eu-postal"),
            ("street", "Rue X"),
            ("zip", "7500"),
            ("city", "Paris"),
            ("country_iso", "FR"),
            ("last_name", "Dupont"),
        ],
    );
    assert!(wrong.status >= 400 && wrong.text.contains("not a postcode in FR"), "{} {}", wrong.status, wrong.text);
}

#[test]
fn javascript_validator_instances_are_reused_warm_and_dropped_after_a_failure() {
    let (server, _plugins) = server_with(&["js-call-counter"], unchanged);
    assert_eq!(validate_email(&server, "first@example.com").status, 200, "a new instance's first call");
    assert_eq!(
        validate_email(&server, "second@example.com").status,
        400,
        "the same instance, warm, remembers the call"
    );
    // It loops until its fuel runs out; validators fail closed.
    assert_eq!(validate_email(&server, "trap@example.com").status, 400);
    assert!(last_error(&server, "js-call-counter").contains("ran out of fuel"));
    let after = validate_email(&server, "third@example.com");
    assert_eq!(after.status, 200, "the instance that failed is not reused: {}", after.text);
}

#[test]
fn a_python_trap_names_the_plugin_the_function_and_the_guest_stderr() {
    // Dropped in after the start: compiling the 18 MB component can outlast the start timeout.
    let (server, plugins) = server_with(&[], unchanged);
    install(plugins.path(), "py-raises", |t| t);
    eventually(Duration::from_secs(60), "the dropped plugin loading", || {
        validate_email(&server, "trap@example.com").status == 400
    });
    assert_eq!(validate_email(&server, "fine@example.com").status, 200);
    assert_eq!(validate_email(&server, "trap@example.com").status, 400, "validators fail closed");
    let error = last_error(&server, "py-raises");
    assert!(error.contains("plugin py-raises@0.1.0 failed in validate"), "{error}");
    assert!(error.contains("in validate | ValueError: not the WIT error type"), "the traceback in: {error}");
    assert_eq!(validate_email(&server, "fine@example.com").status, 200, "a new instance serves the next call");
}

#[test]
fn fresh_instances_of_a_javascript_plugin_share_no_state_between_calls() {
    let (server, _plugins) = server_with(&["js-call-counter"], |_, text| text + "instances = \"fresh\"\n");
    for n in 0..4 {
        let r = validate_email(&server, &format!("user{n}@example.com"));
        assert_eq!(r.status, 200, "call {n} saw an earlier call: {}", r.text);
    }
}

fn built(folder: &str, wasm: &str) -> (String, String) {
    let dir = PathBuf::from(BUILT).join(folder);
    (dir.join(wasm).display().to_string(), dir.join("plugin.toml").display().to_string())
}

/// `crm-users plugin run` with `args`; the data folder keeps the compilation cache.
fn plugin_run(data: &tempfile::TempDir, args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["plugin", "run"];
    all.extend_from_slice(args);
    let out = run_cli(data.path(), &all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), report, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn plugin_run_calls_the_python_address_type_and_reports_its_costs() {
    let data = tempfile::tempdir().expect("data dir");
    let (wasm, manifest) = built("eu-postal-address", "eu_postal_address.wasm");
    let input = json!({"last_name": "Nowak", "street": "Marszałkowska", "number": "1", "zip": "00950", "city": "Warszawa", "country_iso": "pl"});
    let (code, report, stderr) =
        plugin_run(&data, &[&wasm, "--manifest", &manifest, "--call", "validate", "--input", &input.to_string()]);
    assert_eq!(code, 0, "{report} {stderr}");
    assert_eq!(report["function"], "addresses.validate");
    assert_eq!(report["result"]["ok"]["zip"], "00-950", "{report}");
    assert_eq!(report["result"]["ok"]["country_iso"], "PL", "{report}");
    assert!(report["fuel_used"].as_u64().unwrap_or(0) > 0, "{report}");
    assert!(report["peak_memory_bytes"].as_u64().unwrap_or(0) > 1 << 20, "an interpreter's memory: {report}");
    assert!(report["duration_us"].as_u64().is_some(), "{report}");

    let bad = json!({"street": "Hlavná", "zip": "1234", "city": "Nitra", "country_iso": "SK"});
    let (code, report, _) =
        plugin_run(&data, &[&wasm, "--manifest", &manifest, "--call", "validate", "--input", &bad.to_string()]);
    assert_eq!(code, 0, "a refusal is an answer, not a failure: {report}");
    let errors = report["result"]["err"].as_array().cloned().unwrap_or_default();
    let fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
    assert_eq!(fields, ["last_name", "zip"], "{report}");
    assert!(
        report["log"].as_array().is_some_and(|l| l.iter().any(|x| x == "[debug] refused an address with 2 error(s)")),
        "{report}"
    );
}

#[test]
fn plugin_run_names_a_python_trap_and_refuses_bad_input_clearly() {
    let data = tempfile::tempdir().expect("data dir");
    let (wasm, manifest) = built("py-raises", "py_raises.wasm");
    let (code, report, _) =
        plugin_run(&data, &[&wasm, "--manifest", &manifest, "--call", "validate", "--input", "\"trap@example.com\""]);
    assert_eq!(code, 1, "{report}");
    let failure = report["failure"].as_str().unwrap_or_default();
    assert!(failure.contains("py-raises@0.1.0 failed in validate"), "{report}");
    assert!(failure.contains("guest stderr:") && failure.contains("ValueError: not the WIT error type"), "{report}");
    let log = report["log"].as_array().cloned().unwrap_or_default();
    assert!(log.iter().any(|l| l == "[stderr] py-raises: about to raise a ValueError"), "{report}");

    let (code, _, stderr) =
        plugin_run(&data, &[&wasm, "--manifest", &manifest, "--call", "validate", "--input", "trap@example.com"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("--input is not valid JSON"), "{stderr}");
    let (code, _, stderr) = plugin_run(&data, &[&wasm, "--manifest", &manifest, "--call", "format", "--input", "{}"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("no function 'format'") && stderr.contains("email-validation.validate"), "{stderr}");
}

#[test]
fn plugin_run_answers_outbound_http_from_fixture_files() {
    let data = tempfile::tempdir().expect("data dir");
    let (wasm, manifest) = built("legacy-authenticator", "legacy_authenticator.wasm");
    let fixtures = tempfile::tempdir().expect("fixtures");
    let answer = fixtures.path().join("http/127.0.0.1_8089");
    std::fs::create_dir_all(&answer).expect("mkdir");
    std::fs::write(answer.join("check"), r#"{"ok": true, "email": "old@example.com", "first_name": "Old"}"#)
        .expect("write");
    let fixtures = fixtures.path().display().to_string();
    let creds = json!({"username": "old@example.com", "password": "pw"}).to_string();
    let args =
        [&wasm as &str, "--manifest", &manifest, "--call", "authenticate", "--input", &creds, "--fixtures", &fixtures];
    let (code, report, stderr) = plugin_run(&data, &args);
    assert_eq!(code, 0, "{report} {stderr}");
    assert_eq!(report["result"]["provision"]["email"], "old@example.com", "{report}");
    assert_eq!(report["result"]["provision"]["meta"]["legacy_auth"], "1", "{report}");
    let log = report["log"].as_array().cloned().unwrap_or_default();
    assert!(
        log.iter().any(|l| l.as_str().is_some_and(|l| l.contains("127.0.0.1:8089/check -> 200 (fixture)"))),
        "{report}"
    );
}

/// Runs an example plugin's own test suite (which drives `crm-users plugin run`) against the
/// component built from source and this build's binary.
fn authors_tests(program: &str, args: &[&str], folder: &str, wasm: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let (built_wasm, _) = built(folder, wasm);
    let source = ["plugins-py", "plugins-js"].iter().map(|lang| root.join(lang).join(folder)).find(|p| p.is_dir());
    let source = source.unwrap_or_else(|| panic!("no source folder for {folder}"));
    let mut cmd = std::process::Command::new(program);
    let data = tempfile::tempdir().expect("data dir");
    crate::harness::share_plugin_cache(data.path());
    cmd.args(args)
        .current_dir(&source)
        .env("CRM_USERS", crate::harness::BIN)
        .env("CRM_USERS_DATA", data.path())
        .env("WASM", &built_wasm);
    let out = crate::harness::output_with_timeout(cmd);
    assert!(out.status.success(), "{program} {args:?} failed:\n{}", crate::harness::combined(&out));
}

#[test]
fn the_python_example_passes_its_own_tests() {
    authors_tests("python3", &["test_plugin.py"], "eu-postal-address", "eu_postal_address.wasm");
}

#[test]
fn the_javascript_example_passes_its_own_tests() {
    authors_tests("node", &["--test"], "typo-domain-email", "typo_domain_email.wasm");
}
