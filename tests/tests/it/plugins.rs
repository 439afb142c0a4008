//! Plugins through the real server: each example plugin changes what the REMP routes answer,
//! hostile plugins are stopped within their limits while the host keeps serving, and the
//! plugin set reloads without a restart (folder change, SIGHUP, API) and without failed
//! requests.

use crate::harness::{BUILT_PLUGINS as BUILT, Resp, StubServer, TestServer, install, run_cli, server_with_plugins};
use serde_json::json;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A server whose plugins folder holds `folders` (manifests edited by `edit`).
pub(crate) fn server_with(folders: &[&str], edit: impl Fn(&str, String) -> String) -> (TestServer, tempfile::TempDir) {
    server_with_plugins(folders, edit, "")
}

pub(crate) fn unchanged(_: &str, text: String) -> String {
    text
}

/// A domain only the disposable-email plugin rejects (the built-in list does not know it), so
/// a refusal proves the plugin ran.
const PLUGIN_ONLY_DOMAIN: &str = "throwaway.test";

/// The disposable-email manifest with its domain list set to [`PLUGIN_ONLY_DOMAIN`].
fn plugin_only_domains(text: String) -> String {
    text.lines()
        .map(|l| if l.starts_with("domains") { format!("domains = \"{PLUGIN_ONLY_DOMAIN}\"") } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n")
}

fn plugins_json(server: &TestServer) -> serde_json::Value {
    server.get("/api/plugins", Some(&server.api_token)).expect(200).clone()
}

fn plugin_entry(server: &TestServer, name: &str) -> serde_json::Value {
    let all = plugins_json(server);
    all["plugins"]
        .as_array()
        .and_then(|list| list.iter().find(|p| p["name"] == name).cloned())
        .unwrap_or_else(|| panic!("plugin {name} not listed in {all}"))
}

fn validate_email(server: &TestServer, email: &str) -> u16 {
    server.post_form("/api/v1/users/validate-email", &[("email", email)], None).status
}

/// Wait until `check` holds, up to `limit`.
#[track_caller]
pub(crate) fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what} did not happen within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn disposable_email_plugin_rejects_listed_domains_wherever_emails_are_validated() {
    let (server, _plugins) = server_with(&["disposable-email"], |_, t| plugin_only_domains(t));
    assert_eq!(validate_email(&server, "jane@example.com"), 200);
    let refused = server.post_form("/api/v1/users/validate-email", &[("email", "jane@throwaway.test")], None);
    refused.expect_fields(400, json!({"code": "invalid_email", "message": "Email 'jane@throwaway.test' is not valid"}));
    // Subdomains of a listed domain are refused too.
    assert_eq!(validate_email(&server, "jane@eu.throwaway.test"), 400);

    let created = server.create(&[("email", "bob@throwaway.test"), ("password", "secret123")]);
    created.expect_fields(404, json!({"code": "invalid_email"}));
    assert_eq!(server.email_check("bob@throwaway.test")["status"], "available", "no user was created");
    let allowed =
        server.create(&[("email", "bob@throwaway.test"), ("password", "secret123"), ("disable_email_validation", "1")]);
    allowed.expect(200);
    assert_eq!(plugin_entry(&server, "disposable-email")["failures"], 0);
}

#[test]
fn check_emails_command_runs_plugin_validators_too() {
    let plugins = tempfile::tempdir().expect("plugins dir");
    install(plugins.path(), "disposable-email", plugin_only_domains);
    let data = tempfile::tempdir().expect("data");
    let dir = plugins.path().display().to_string();
    let out = run_cli(data.path(), &["--plugins", &dir, "user", "check-emails", "x@throwaway.test"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text} {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("x@throwaway.test INVALID (plugin:disposable-email)"), "{text}");
    let out = run_cli(data.path(), &["--plugins", &dir, "user", "check-emails", "x@example.com"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("x@example.com VALID"));
}

/// A stand-in for a legacy credential directory: accepts `legacy@example.com` / `old-secret`.
fn directory() -> StubServer {
    StubServer::start(|request| {
        let ok = request.contains("\"legacy@example.com\"") && request.contains("\"old-secret\"");
        let body = if ok {
            r#"{"ok":true,"email":"legacy@example.com","first_name":"Lea","last_name":"Gacy"}"#
        } else {
            r#"{"ok":false}"#
        };
        body.as_bytes().to_vec()
    })
}

#[test]
fn legacy_authenticator_signs_in_against_the_directory_and_provisions_on_first_sign_in() {
    let directory = directory();
    let port = directory.port;
    let (server, _plugins) =
        server_with(&["legacy-authenticator"], |_, text| text.replace("127.0.0.1:8089", &format!("127.0.0.1:{port}")));
    assert_eq!(server.email_check("legacy@example.com")["status"], "available");

    let first = server.login_resp("legacy@example.com", "old-secret");
    let body = first.expect(200);
    assert_eq!(body["user"]["email"], "legacy@example.com");
    assert_eq!(body["user"]["first_name"], "Lea");
    let token = body["access"]["token"].as_str().expect("token").to_owned();
    assert!(directory.hits.load(Ordering::Relaxed) >= 1, "the directory was asked");

    // The user now exists here, and user/info carries the plugin's extras under its name.
    let id = body["user"]["id"].as_i64().expect("id");
    assert_eq!(server.email_check("legacy@example.com")["id"], id);
    let info = server.user_info(&token);
    info.expect_fields(200, json!({"source": "legacy-authenticator", "legacy-authenticator": {"legacy": true}}));

    // A second sign-in finds the same user; a wrong password is refused by the directory.
    let again = server.login_resp("legacy@example.com", "old-secret");
    assert_eq!(again.expect(200)["user"]["id"], id);
    let wrong = server.login_resp("legacy@example.com", "not-it");
    wrong.expect_fields(400, json!({"status": "error", "error": "auth_failed"}));
}

#[test]
fn legacy_authenticator_fails_closed_when_the_directory_is_down() {
    // Allowed, but nothing listens there.
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let (server, _plugins) =
        server_with(&["legacy-authenticator"], |_, text| text.replace("127.0.0.1:8089", &format!("127.0.0.1:{dead}")));
    let refused = server.login_resp("legacy@example.com", "old-secret");
    refused.expect_fields(400, json!({"status": "error", "error": "auth_failed"}));
    assert_eq!(server.email_check("legacy@example.com")["status"], "available", "nobody was provisioned");
    // Local users still sign in.
    server.create_user("local@example.com", "secret123");
    server.login("local@example.com", "secret123");
}

#[test]
fn secure_admin_sign_in_refuses_admins_signing_in_with_a_password() {
    let plugins = tempfile::tempdir().expect("plugins dir");
    install(plugins.path(), "secure-admin-sign-in", |t| t);
    let config = format!("plugins = {:?}\n", plugins.path().display().to_string());
    let server = TestServer::start_with(Some(&config), |data| {
        let out = run_cli(data, &["user", "add", "admin@example.com", "--password", "secret123", "--admin"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    });
    let denied = server.login_resp("admin@example.com", "secret123");
    denied.expect_fields(403, json!({"status": "error", "code": "sign_in_denied"}));
    assert!(denied["message"].as_str().unwrap_or_default().contains("Google"), "{}", denied.text);
    assert!(denied.body.get("access").is_none());
    // Ordinary users are not affected.
    server.create_user("user@example.com", "secret123");
    server.login("user@example.com", "secret123");
}

#[test]
fn sign_in_handler_deny_gives_403_and_issues_no_token() {
    let (server, _plugins) = server_with(&["deny-all"], unchanged);
    let (_, token) = server.create_user("jane@example.com", "secret123");
    let denied = server.login_resp("jane@example.com", "secret123");
    denied.expect_fields(403, json!({"status": "error", "code": "sign_in_denied", "message": "denied by policy"}));
    // Registration is not a sign-in; its token keeps working.
    server.user_info(&token).expect(200);
    assert!(plugin_entry(&server, "deny-all")["calls"].as_u64().unwrap_or(0) >= 1);
}

#[test]
fn plugin_authenticator_can_provision_or_pick_users_from_its_own_credentials() {
    let (server, _plugins) = server_with(&["provisioner"], unchanged);
    let made = server.post_form(
        "/api/v1/users/login",
        &[("email", "ignored@example.com"), ("password", "x"), ("magic", "magic@example.com")],
        None,
    );
    let body = made.expect(200);
    assert_eq!(body["user"]["email"], "magic@example.com");
    let token = body["access"]["token"].as_str().expect("token").to_owned();
    server.user_info(&token).expect_fields(200, json!({"source": "provisioner", "provisioner": {"magic": true}}));

    let (id, _) = server.create_user("known@example.com", "secret123");
    let picked = server.post_form(
        "/api/v1/users/login",
        &[("email", "whoever"), ("password", "x"), ("magic_user_id", &id.to_string())],
        None,
    );
    assert_eq!(picked.expect(200)["user"]["id"], id);
    // Without its credentials the plugin skips and the password decides.
    server.login_resp("known@example.com", "wrong-one").expect_fields(400, json!({"code": "invalid_credential"}));
}

#[test]
fn event_listener_receives_events_and_keeps_its_own_key_value_state() {
    let (server, _plugins) = server_with(&["kv-counter"], unchanged);
    server.create_user("jane@example.com", "secret123");
    server.login("jane@example.com", "secret123");
    eventually(Duration::from_secs(10), "kv-counter logging user_sign_in", || {
        let log = server.stderr();
        log.contains("kv-counter") && log.contains("user_registered") && log.contains("user_sign_in")
    });
    let entry = plugin_entry(&server, "kv-counter");
    assert_eq!(entry["failures"], 0, "{entry}");
    assert!(entry["calls"].as_u64().unwrap_or(0) >= 3, "{entry}");
}

#[test]
fn hostile_validators_are_stopped_within_their_limits_and_fail_closed() {
    let hostile = ["loop-forever", "memory-bomb", "trap", "deep-recursion"];
    for name in hostile {
        let (server, _plugins) =
            server_with(&[name], |_, text| format!("{text}\n[limits]\nmemory_mb = 16\ntimeout_ms = 2000\n"));
        let started = Instant::now();
        let status = validate_email(&server, "jane@example.com");
        let took = started.elapsed();
        assert_eq!(status, 400, "{name}: a failing validator refuses the email");
        assert!(took < Duration::from_secs(3), "{name}: stopped within its limits, took {took:?}");
        // The host is fine and keeps answering.
        server.get("/healthz", None).expect(200);
        server.api_form("/api/v1/users/list", &[("user_ids", "[]"), ("page", "1")]).expect(200);
        let entry = plugin_entry(&server, name);
        assert_eq!(entry["failures"], 1, "{name}: {entry}");
        let cause = entry["last_error"].as_str().unwrap_or_default().to_owned();
        assert!(
            cause.contains(name) && cause.contains("validate"),
            "{name}: the failure names the plugin and call: {cause}"
        );
        let expected_word = match name {
            "loop-forever" => "fuel",
            // Touching memory burns fuel too; whichever limit comes first stops it.
            "memory-bomb" if cause.contains("fuel") => "fuel",
            "memory-bomb" => "memory",
            "trap" => "trap",
            _ => "",
        };
        assert!(cause.contains(expected_word), "{name}: {cause}");
    }
}

#[test]
fn a_plugin_failing_repeatedly_is_quarantined() {
    let (server, _plugins) = server_with(&["trap"], unchanged);
    for _ in 0..5 {
        assert_eq!(validate_email(&server, "jane@example.com"), 400);
    }
    let entry = plugin_entry(&server, "trap");
    assert_eq!(entry["state"], "quarantined", "{entry}");
    // Quarantined calls are refused without running the plugin: the count stays.
    assert_eq!(validate_email(&server, "jane@example.com"), 400);
    assert_eq!(plugin_entry(&server, "trap")["calls"], entry["calls"]);
}

#[test]
fn a_plugin_cannot_reach_a_host_it_was_not_granted() {
    let target = TcpListener::bind("127.0.0.1:0").expect("bind");
    target.set_nonblocking(true).expect("nonblocking");
    let port = target.local_addr().expect("addr").port();
    let (server, _plugins) = server_with(&["forbidden-host"], |_, text| {
        text.replace("target = \"127.0.0.1:2\"", &format!("target = \"127.0.0.1:{port}\""))
    });
    server.create_user("jane@example.com", "secret123");
    // The plugin runs first and fails; the password authenticator still signs the user in.
    server.login("jane@example.com", "secret123");
    std::thread::sleep(Duration::from_millis(200));
    assert!(target.accept().is_err(), "no connection reached the forbidden host");
    assert!(server.stderr().contains("not in allowed_hosts"), "the refusal is logged");
}

#[test]
fn a_plugin_asking_for_http_without_the_capability_is_refused_at_load() {
    let plugins = tempfile::tempdir().expect("plugins dir");
    install(plugins.path(), "forbidden-host", |t| {
        t.replace("capabilities = [\"http\"]", "capabilities = []").replace("allowed_hosts = [\"127.0.0.1:1\"]", "")
    });
    let data = tempfile::tempdir().expect("data");
    let dir = plugins.path().display().to_string();
    let wasm = plugins.path().join("forbidden-host/forbidden_host.wasm");
    let manifest = plugins.path().join("forbidden-host/plugin.toml");
    let out = run_cli(
        data.path(),
        &["plugin", "check", &wasm.display().to_string(), "--manifest", &manifest.display().to_string()],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(text.contains("REFUSED") && text.contains("\"http\""), "{text}");
    // serve refuses to start with it, naming why.
    let mut cmd = crate::harness::bin_command();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--plugins", &dir, "--data"]).arg(data.path().join("d"));
    let out = crate::harness::output_with_timeout(cmd);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("capability"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn plugin_check_reports_worlds_and_imports() {
    let data = tempfile::tempdir().expect("data");
    for (folder, wasm, world) in [
        ("invoice-address", "invoice_address.wasm", "address-type"),
        ("legacy-authenticator", "legacy_authenticator.wasm", "authenticator"),
        ("secure-admin-sign-in", "secure_admin_sign_in.wasm", "sign-in-handler"),
        ("disposable-email", "disposable_email.wasm", "email-validator"),
        ("kv-counter", "kv_counter.wasm", "event-listener"),
    ] {
        let dir = PathBuf::from(BUILT).join(folder);
        let out = run_cli(
            data.path(),
            &[
                "plugin",
                "check",
                &dir.join(wasm).display().to_string(),
                "--manifest",
                &dir.join("plugin.toml").display().to_string(),
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{folder}: {text} {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(&format!("worlds: {world}")), "{folder}: {text}");
        assert!(text.contains("OK: the host would load it"), "{folder}: {text}");
    }
    let not_wasm = data.path().join("x.wasm");
    std::fs::write(&not_wasm, b"not a component").expect("write");
    let out = run_cli(data.path(), &["plugin", "check", &not_wasm.display().to_string()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid component"));
}

#[test]
fn plugins_dropped_into_the_folder_take_effect_without_a_restart() {
    let (server, plugins) = server_with(&[], unchanged);
    assert_eq!(validate_email(&server, "jane@throwaway.test"), 200, "no plugin yet");
    install(plugins.path(), "disposable-email", plugin_only_domains);
    eventually(Duration::from_secs(15), "the dropped plugin taking effect", || {
        validate_email(&server, "jane@throwaway.test") == 400
    });
    std::fs::remove_dir_all(plugins.path().join("disposable-email")).expect("remove");
    eventually(Duration::from_secs(15), "the removed plugin going away", || {
        validate_email(&server, "jane@throwaway.test") == 200
    });
}

/// A plugin folder `name` whose manifest names `wasm`; the caller decides what `wasm` is.
fn bad_plugin_folder(plugins: &std::path::Path, name: &str, wasm: &str) -> std::path::PathBuf {
    let folder = plugins.join(name);
    std::fs::create_dir_all(&folder).expect("dir");
    std::fs::write(folder.join("plugin.toml"), format!("name = \"{name}\"\nversion = \"1.0.0\"\nwasm = \"{wasm}\"\n"))
        .expect("write");
    folder
}

/// `POST /api/plugins/reload`, which must refuse the set with `422 plugin_rejected`.
fn reload_refused(server: &TestServer) -> Resp {
    let refused = server.req("POST", "/api/plugins/reload").bearer(Some(&server.api_token)).send();
    refused.expect_fields(422, json!({"status": "error", "code": "plugin_rejected"}));
    refused
}

#[test]
fn a_component_over_64_mib_is_refused_before_it_is_read_and_the_old_set_keeps_serving() {
    let (server, plugins) = server_with(&["disposable-email"], |_, t| plugin_only_domains(t));
    let huge = bad_plugin_folder(plugins.path(), "huge", "huge.wasm");
    // A sparse file: 65 MiB long, nothing on disk, and unreadable as wasm anyway.
    std::fs::File::create(huge.join("huge.wasm")).and_then(|f| f.set_len(65 << 20)).expect("sparse file");
    let refused = reload_refused(&server);
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("65 MiB") && message.contains("at most 64 MiB"), "{}", refused.text);
    assert_eq!(validate_email(&server, "jane@throwaway.test"), 400, "the old set still serves");
}

#[test]
fn a_broken_plugin_leaves_the_old_set_serving_and_the_api_says_why() {
    let (server, plugins) = server_with(&["disposable-email"], |_, t| plugin_only_domains(t));
    let broken = bad_plugin_folder(plugins.path(), "broken", "missing.wasm");
    let refused = reload_refused(&server);
    assert!(refused["message"].as_str().unwrap_or_default().contains("missing.wasm"), "{}", refused.text);
    // The old set still serves.
    assert_eq!(validate_email(&server, "jane@throwaway.test"), 400);
    let names: Vec<String> = plugins_json(&server)["plugins"]
        .as_array()
        .map(|l| l.iter().filter_map(|p| p["name"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    assert_eq!(names, vec!["disposable-email".to_string()]);

    std::fs::remove_dir_all(&broken).expect("remove");
    let ok = server.req("POST", "/api/plugins/reload").bearer(Some(&server.api_token)).send();
    ok.expect(200);
}

#[test]
fn plugin_routes_need_a_whitelisted_api_token() {
    let narrow = Arc::new(Mutex::new(String::new()));
    let slot = narrow.clone();
    let server = TestServer::start_with(None, move |data| {
        *slot.lock().expect("lock") = crate::harness::create_api_token(data, "narrow", "users/create");
    });
    let narrow = narrow.lock().expect("lock").clone();
    server.get("/api/plugins", None).expect_fields(401, json!({"code": "unauthorized"}));
    server
        .get("/api/plugins", Some(&narrow))
        .expect_fields(403, json!({"code": "forbidden", "message": "Token has no access to resource [plugins/list]"}));
    server.req("POST", "/api/plugins/reload").bearer(Some("0123456789abcdef0123456789abcdef")).send().expect(401);
    server.get("/api/plugins", Some(&server.api_token)).expect_fields(200, json!({"plugins": []}));
}

#[test]
fn sighup_reloads_the_plugins() {
    let plugins = tempfile::tempdir().expect("plugins dir");
    // Without the folder watch, only SIGHUP can bring the plugin in.
    let config = format!("plugins = {:?}\nwatch_plugins = false\n", plugins.path().display().to_string());
    let server = TestServer::start_with_config(&config);
    install(plugins.path(), "disposable-email", plugin_only_domains);
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(validate_email(&server, "jane@throwaway.test"), 200, "nothing reloads on its own");
    let pid = server.spawned().child.id().to_string();
    let status = std::process::Command::new("kill").args(["-HUP", &pid]).status().expect("kill");
    assert!(status.success());
    eventually(Duration::from_secs(10), "SIGHUP reload", || validate_email(&server, "jane@throwaway.test") == 400);
}

#[test]
fn reload_under_load_fails_no_request() {
    let (server, plugins) = server_with(&["disposable-email"], unchanged);
    let url = server.url("/api/v1/users/validate-email");
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..2 {
        let (url, stop, failures, sent) = (url.clone(), stop.clone(), failures.clone(), sent.clone());
        workers.push(std::thread::spawn(move || {
            let client = crate::harness::http_client();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                match client
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("email=jane%40example.com")
                    .send()
                {
                    Ok(resp) if resp.status().as_u16() == 200 => {}
                    Ok(resp) => failures.lock().expect("lock").push(format!("HTTP {}", resp.status())),
                    Err(e) => failures.lock().expect("lock").push(format!("{e}")),
                }
                n += 1;
                sent.fetch_add(1, Ordering::Relaxed);
            }
            n
        }));
    }
    // Six reloads at least, and on until the load has overlapped them (a busy machine may
    // answer only a few requests in six reloads' time).
    let mut round = 0;
    while round < 6 || (sent.load(Ordering::Relaxed) < 40 && round < 400) {
        // Alternate between two sets so each reload really swaps something.
        if round % 2 == 0 {
            install(plugins.path(), "kv-counter", |t| t);
        } else {
            std::fs::remove_dir_all(plugins.path().join("kv-counter")).expect("remove");
        }
        server.req("POST", "/api/plugins/reload").bearer(Some(&server.api_token)).send().expect(200);
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let total: usize = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    let failures = failures.lock().expect("lock");
    assert!(total > 20, "the load ran ({total} requests)");
    assert!(
        failures.is_empty(),
        "{} of {total} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

#[test]
fn email_validators_reuse_warm_instances_and_drop_an_instance_that_failed() {
    let (server, _plugins) = server_with(&["call-counter"], unchanged);
    assert_eq!(validate_email(&server, "first@example.com"), 200, "a new instance's first call");
    assert_eq!(validate_email(&server, "second@example.com"), 400, "the same instance, warm, remembers the call");
    // A trap fails the call (validators fail closed) and the instance is not reused.
    assert_eq!(validate_email(&server, "trap@example.com"), 400);
    assert_eq!(validate_email(&server, "third@example.com"), 200, "a new instance after the failure");
    assert_eq!(plugin_entry(&server, "call-counter")["failures"], 1);
}

#[test]
fn instances_fresh_in_the_manifest_gives_every_call_a_new_instance() {
    let (server, _plugins) = server_with(&["call-counter"], |_, text| text + "instances = \"fresh\"\n");
    for n in 0..3 {
        assert_eq!(validate_email(&server, &format!("user{n}@example.com")), 200, "call {n} saw an earlier call");
    }
}
