//! The admin console at `/admin`: its files and headers, and the console driven in headless
//! Chromium (Debian's `chromium` with `playwright-core`, both installed here when missing)
//! through sign-in, the dashboard, a user search, a user's detail, revoking an access token,
//! accepting a change request, creating an API token and reloading plugins. Screenshots of each
//! step land in `<target dir>/admin-screenshots/`; the state afterwards is checked over the API.

use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::harness::{BIN, TestServer, server_with_plugins};

/// Debian's chromium, as the `chromium` package installs it.
const CHROMIUM: &str = "/usr/bin/chromium";
/// The whole browser run: one launch, one script (a few seconds; generous for a busy machine).
const BROWSER_TIMEOUT: Duration = Duration::from_secs(180);
/// Installing chromium and playwright-core happens once per machine; tests that need them wait.
static SETUP: Mutex<()> = Mutex::new(());

#[test]
fn console_files_are_embedded_and_served_with_a_strict_content_security_policy() {
    let s = TestServer::start();
    for (path, content_type) in [
        ("/admin/", "text/html; charset=utf-8"),
        ("/admin/app.js", "text/javascript; charset=utf-8"),
        ("/admin/app.css", "text/css; charset=utf-8"),
    ] {
        let r = s.get(path, None);
        assert_eq!((r.status, r.content_type.as_deref()), (200, Some(content_type)), "{path}");
        let csp = r.headers.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(csp.starts_with("default-src 'self'") && csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
        assert_eq!(r.headers.get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
    }
    // `/admin` leads to the page (the client follows the redirect).
    let page = s.get("/admin", None);
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<form id=\"sign-in-form\">"), "{}", page.text);
    // No inline script: every script tag loads a same-origin file.
    for tag in page.text.split("<script").skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        assert!(tag.contains("src=\"/admin/"), "inline or foreign script: <script{tag}>");
    }
    assert!(!page.text.contains("style=") && !page.text.contains("http://") && !page.text.contains("https://"));
    s.get("/admin/missing.js", None).expect_fields(404, json!({"status": "error", "code": "not_found"}));
}

/// Run `cmd`, panicking with its output when it fails.
fn run(mut cmd: Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Debian's chromium and the pinned playwright-core of `tests/browser/`, installed when missing.
fn ensure_browser() -> PathBuf {
    let _once = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    if !Path::new(CHROMIUM).exists() {
        let mut update = Command::new("apt-get");
        update.args(["update", "-qq"]);
        run(update, "apt-get update (installing chromium for the admin console test; needs root)");
        let mut install = Command::new("apt-get");
        install.args(["install", "-y", "-qq", "chromium"]).env("DEBIAN_FRONTEND", "noninteractive");
        run(install, "apt-get install chromium");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    if !dir.join("node_modules/playwright-core/package.json").exists() {
        let mut ci = Command::new("npm");
        ci.args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir);
        run(ci, "npm ci in tests/browser (playwright-core)");
    }
    dir
}

/// `<target dir>/admin-screenshots`, beside the binary under test.
fn screenshot_dir() -> PathBuf {
    let target = Path::new(BIN).parent().and_then(Path::parent).expect("the test binary lives in <target>/<profile>/");
    target.join("admin-screenshots")
}

fn ok_json(r: &crate::harness::Resp, status: u16) -> Value {
    r.expect(status).clone()
}

#[test]
fn console_in_chromium_signs_in_searches_shows_a_user_revokes_a_token_and_accepts_a_change() {
    let browser_dir = ensure_browser();
    let (s, _plugins) = server_with_plugins(&["uppercase-address"], |_, t| t, "");
    let api = Some(s.api_token.as_str());

    // An admin with every permission, made over the API as an operator would.
    let role = ok_json(&s.post_json("/api/roles", json!({"name": "Operators", "permissions": ["*"]}), api), 201);
    let admin = json!({"email": "boss@example.com", "password": "boss-pass-1", "password_confirmation": "boss-pass-1",
        "role": "admin", "roles": [role["role"]["id"]]});
    ok_json(&s.post_json("/api/users", admin, api), 201);

    // Enough users for two pages of twenty.
    for i in 0..20 {
        s.create(&[("email", &format!("reader{i:02}@example.org")), ("password", "secret123")]).expect(200);
    }
    // A user with something in every panel.
    let (id, kept) = s.create_user("jana.novak@example.com", "secret123");
    s.login_resp("jana.novak@example.com", "wrong-password").expect(400);
    let revoked = s.login("jana.novak@example.com", "secret123");
    s.req("PUT", &format!("/api/users/{id}/password"))
        .json(json!({"password": "another123"}))
        .bearer(api)
        .send()
        .expect(200);
    s.post_json("/api/v1/user-meta/upsert", json!({"user_id": id, "key": "newsletter", "value": "weekly"}), api)
        .expect(200);
    let group = ok_json(&s.post_json("/api/groups", json!({"name": "Subscribers"}), api), 200);
    s.post_json(&format!("/api/groups/{}/members", group["id"]), json!({"user_id": id}), api).expect(200);
    let address =
        [("email", "jana.novak@example.com"), ("type", "shouting"), ("first_name", "jana"), ("city", "bratislava")];
    s.api_form("/api/v1/users/address", &address).expect(200);
    let change = [("email", "jana.novak@example.com"), ("type", "shouting"), ("first_name", "jana"), ("city", "nitra")];
    let request_id = s.api_form("/api/v1/users/change-address-request", &change).expect(200)["address"]["id"].clone();
    let tokens = ok_json(&s.get(&format!("/api/users/{id}/access-tokens"), api), 200);
    let newest =
        tokens["data"].as_array().and_then(|t| t.iter().filter_map(|t| t["id"].as_u64()).max()).expect("token ids");

    let shots = screenshot_dir();
    let _ = std::fs::remove_dir_all(&shots);
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(browser_dir.join("admin-console.mjs"))
        .current_dir(&browser_dir)
        .env("BASE_URL", format!("http://127.0.0.1:{}", s.port))
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", CHROMIUM)
        .env("ADMIN_EMAIL", "boss@example.com")
        .env("ADMIN_PASSWORD", "boss-pass-1")
        .env("USER_EMAIL", "jana.novak@example.com")
        .env("USER_PASSWORD", "another123")
        .env("USER_ID", id.to_string())
        .env("SEARCH", "jana.novak")
        .env("TOKEN_ID", newest.to_string())
        .env("REQUEST_ID", request_id.to_string())
        .env("EXPECT_TODAY", "22")
        .env("EXPECT_ADDRESS", "JANA | BRATISLAVA | SK")
        .env("EXPECT_ACCEPTED_ADDRESS", "JANA | NITRA | SK")
        .env("EXPECT_PLUGIN", "uppercase-address")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node (Node.js) must be installed to drive the browser");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break status;
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            panic!("the browser run took over {BROWSER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().map(|mut o| o.read_to_string(&mut out));
    child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    eprintln!("browser run: {:?}", started.elapsed());
    let report: Value = out.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or_else(|| {
        panic!("no report from the browser script ({status}):\nstdout: {out}\nstderr: {err}\nserver:\n{}", s.stderr())
    });
    assert_eq!(report["ok"], true, "browser run failed: {report:#}\nstderr: {err}");
    for step in [
        "01-non-admin-refused",
        "02-dashboard",
        "03-user-search",
        "04-user-detail",
        "05-token-revoked",
        "06-change-request-accepted",
        "07-api-token-created",
        "08-plugins",
    ] {
        let file = shots.join(format!("{step}.png"));
        let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        assert!(size > 1000, "screenshot {} missing or empty", file.display());
    }

    // What the console did, seen from the API.
    assert_ne!(s.user_info(&revoked).status, 200, "the revoked token no longer signs in");
    s.user_info(&kept).expect(200);
    let requests = ok_json(&s.get(&format!("/api/users/{id}/address-change-requests"), api), 200);
    assert_eq!(requests["data"][0]["status"], "accepted");
    let addresses = ok_json(&s.get(&format!("/api/users/{id}/addresses"), api), 200);
    assert_eq!(addresses["data"][0]["address_string"], "JANA | NITRA | SK");
    let created = report["created_token"].as_str().expect("the new API token was shown");
    s.get("/api/users", Some(created)).expect(200);
    s.get("/api/groups", Some(created)).expect(403);
    // The console's requests used the admin's token and nothing else reached the log.
    let log = crate::operations::log_with(&s, "/api/groups\" status=403");
    assert!(log.contains("route=\"/api/users/{id}/access-tokens/{token_id}\" status=200"), "{log}");
    assert!(!log.contains(created) && !log.contains("boss-pass-1"), "a secret reached the log");
}
