//! Operations through the real server: the resources the admin console reads about a user
//! (login attempts, password changes, access and device tokens, meta, addresses, change
//! requests), the dashboard's new-user counts, `GET /metrics`, and the request log lines.

use serde_json::{Value, json};

use crate::harness::{TestServer, run_cli_ok, server_with_plugins};

/// Offline: an admin user with one role granting `permissions`.
fn admin(data: &std::path::Path, email: &str, permissions: &str) {
    run_cli_ok(data, &["user", "add", email, "--password", "secret123", "--admin"]);
    let role = format!("role-{email}");
    run_cli_ok(data, &["role", "add", &role, "--permissions", permissions]);
    run_cli_ok(data, &["role", "assign", email, &role]);
}

fn data(r: &crate::harness::Resp, status: u16) -> Vec<Value> {
    r.expect(status)["data"].as_array().unwrap_or_else(|| panic!("no data array: {}", r.text)).clone()
}

#[test]
fn an_admin_reads_a_users_attempts_password_changes_tokens_meta_and_addresses() {
    let config = "[[address_types]]\ntype = \"crm_test\"\ntitle = \"Test address\"\n";
    let s = TestServer::start_with(Some(config), |data| admin(data, "boss@example.com", "*"));
    let boss = s.login("boss@example.com", "secret123");
    let (id, first) = s.create_user("jana@example.com", "secret123");
    s.login_resp("jana@example.com", "wrong-password").expect(400);
    let second = s.login("jana@example.com", "secret123");
    let device =
        s.post_form("/api/v1/users/get-device-token", &[("device_id", "phone-1"), ("access_token", &second)], None);
    let device_token = device.expect(200)["device_token"].as_str().expect("device token").to_owned();
    s.req("PUT", &format!("/api/users/{id}/password"))
        .json(json!({"password": "another123"}))
        .bearer(Some(&boss))
        .send()
        .expect(200);
    s.post_json(
        "/api/v1/user-meta/upsert",
        json!({"user_id": id, "key": "newsletter", "value": "weekly"}),
        Some(&s.api_token),
    )
    .expect(200);
    s.api_form("/api/v1/users/address", &[("email", "jana@example.com"), ("type", "crm_test"), ("city", "Nitra")])
        .expect(200);
    let base = format!("/api/users/{id}");

    let attempts = data(&s.get(&format!("{base}/login-attempts"), Some(&boss)), 200);
    let statuses: Vec<&str> = attempts.iter().filter_map(|a| a["status"].as_str()).collect();
    assert_eq!(statuses, ["api_ok", "wrong_pass"], "newest first: {attempts:?}");
    assert_eq!(attempts[1]["ok"], false);
    assert_eq!(data(&s.get(&format!("{base}/login-attempts?limit=1"), Some(&boss)), 200).len(), 1);

    let changes = data(&s.get(&format!("{base}/password-changes"), Some(&boss)), 200);
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["type"], "force");
    assert!(changes[0].get("from_hash").is_none() && changes[0].get("to_hash").is_none(), "no hashes: {changes:?}");

    let tokens = data(&s.get(&format!("{base}/access-tokens"), Some(&boss)), 200);
    assert_eq!(tokens.len(), 2, "{tokens:?}");
    let text = serde_json::to_string(&tokens).expect("json");
    assert!(!text.contains(&first) && !text.contains(&second) && !text.contains(&device_token), "no token values");
    let paired = tokens.iter().find(|t| t["device"].is_object()).expect("a token paired with the device");
    assert_eq!(paired["device"]["device_id"], "phone-1");
    let unpaired = tokens.iter().find(|t| t["device"].is_null()).expect("an unpaired token");

    let meta = data(&s.get(&format!("{base}/meta"), Some(&boss)), 200);
    assert!(
        meta.iter().any(|m| m["key"] == "newsletter" && m["value"] == "weekly" && m["is_public"] == false),
        "{meta:?}"
    );

    let addresses = data(&s.get(&format!("{base}/addresses"), Some(&boss)), 200);
    assert_eq!(addresses.len(), 1);
    assert_eq!((&addresses[0]["type"], &addresses[0]["city"]), (&json!("crm_test"), &json!("Nitra")));
    assert_eq!(addresses[0]["address_string"], "Nitra, SK");
    let requested = s.api_form(
        "/api/v1/users/change-address-request",
        &[("email", "jana@example.com"), ("type", "crm_test"), ("city", "Žilina")],
    );
    let request_id = requested.expect(200)["address"]["id"].as_u64().expect("request id");
    let requests = data(&s.get(&format!("{base}/address-change-requests"), Some(&boss)), 200);
    assert_eq!(
        (&requests[0]["id"], &requests[0]["status"], &requests[0]["city"]),
        (&json!(request_id), &json!("new"), &json!("Žilina"))
    );

    // Revoking one token signs that session out and leaves the other.
    let revoked = s.req("DELETE", &format!("{base}/access-tokens/{}", unpaired["id"])).bearer(Some(&boss)).send();
    assert_eq!(revoked.expect(200)["revoked"], json!([unpaired["id"]]));
    assert_ne!(s.user_info(&first).status, 200, "the revoked token no longer works");
    s.user_info(&second).expect(200);
    s.req("DELETE", &format!("{base}/access-tokens/{}", unpaired["id"])).bearer(Some(&boss)).send().expect(404);
    // Signing the device out revokes the token paired with it.
    let device_id = &paired["device"]["id"];
    s.req("DELETE", &format!("{base}/device-tokens/{device_id}")).bearer(Some(&boss)).send().expect(200);
    assert_ne!(s.user_info(&second).status, 200);
    assert!(data(&s.get(&format!("{base}/access-tokens"), Some(&boss)), 200).is_empty());

    // Bad input is a 4xx JSON error.
    s.get("/api/users/abc/meta", Some(&boss)).expect_fields(400, json!({"code": "invalid_input"}));
    s.get("/api/users/999/meta", Some(&boss)).expect_fields(404, json!({"code": "not_found"}));
    s.get(&format!("{base}/login-attempts?limit=0"), Some(&boss)).expect_fields(400, json!({"code": "invalid_input"}));
    s.req("DELETE", &format!("{base}/access-tokens/x")).bearer(Some(&boss)).send().expect(400);
    s.get(&format!("{base}/meta"), None).expect_fields(401, json!({"code": "unauthorized"}));
}

#[test]
fn an_admin_without_the_permission_is_refused_and_a_plain_user_is_not_an_admin() {
    let s = TestServer::start_with(None, |data| admin(data, "viewer@example.com", "users/index,users/show"));
    let viewer = s.login("viewer@example.com", "secret123");
    let (id, user_token) = s.create_user("jana@example.com", "secret123");
    s.get(&format!("/api/users/{id}"), Some(&viewer)).expect(200);
    let refused = s.get(&format!("/api/users/{id}/login-attempts"), Some(&viewer));
    let body = refused.expect_fields(403, json!({"code": "forbidden"}));
    assert!(body["message"].as_str().is_some_and(|m| m.contains("users/login-attempts")), "{body}");
    s.get("/api/stats/new-users", Some(&viewer)).expect(403);
    let plain = s.get(&format!("/api/users/{id}/meta"), Some(&user_token));
    let body = plain.expect_fields(403, json!({"code": "forbidden"}));
    assert!(body["message"].as_str().is_some_and(|m| m.contains("only admin users")), "{body}");
}

#[test]
fn new_user_counts_cover_today_and_each_day() {
    let s = TestServer::start();
    for i in 0..3 {
        s.create_user(&format!("u{i}@example.com"), "secret123");
    }
    let (id, _) = s.create_user("gone@example.com", "secret123");
    s.req("DELETE", &format!("/api/users/{id}")).bearer(Some(&s.api_token)).send().expect(200);
    let stats = s.get("/api/stats/new-users?days=7", Some(&s.api_token));
    let body = stats.expect_fields(200, json!({"timezone": "UTC", "today": 3}));
    assert!(body["this_month"].as_u64().is_some_and(|n| n == 3), "{body}");
    let days = body["per_day"].as_array().expect("per_day");
    assert_eq!(days.len(), 7);
    assert_eq!(days[6]["count"], 3, "today is the last bar: {days:?}");
    assert!(days[..6].iter().all(|d| d["count"] == 0), "{days:?}");
    assert_eq!(
        s.get("/api/stats/new-users", Some(&s.api_token)).expect(200)["per_day"].as_array().map(Vec::len),
        Some(31)
    );
    for bad in ["0", "367", "week"] {
        s.get(&format!("/api/stats/new-users?days={bad}"), Some(&s.api_token))
            .expect_fields(400, json!({"code": "invalid_input"}));
    }
}

/// The server's stderr once it holds `needle`: a line is written before the response leaves,
/// but the harness reads the pipe on its own thread.
pub(crate) fn log_with(s: &TestServer, needle: &str) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = s.stderr();
        if log.contains(needle) || std::time::Instant::now() > deadline {
            return log;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The value of the sample whose line starts with `prefix` (name and labels).
fn sample(metrics: &str, prefix: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{metrics}"))
}

#[test]
fn metrics_tell_requests_latency_logins_plugins_and_storage() {
    let (s, _plugins) = server_with_plugins(
        &["uppercase-address", "broken-address"],
        |folder, t| {
            if folder == "broken-address" { format!("{t}\nfailure = \"open\"\n") } else { t }
        },
        "",
    );
    let (id, _) = s.create_user("jana@example.com", "secret123");
    s.login_resp("jana@example.com", "wrong").expect(400);
    s.login("jana@example.com", "secret123");
    s.get("/api/users/999999", Some(&s.api_token)).expect(404);
    s.get(&format!("/api/users/{id}"), Some(&s.api_token)).expect(200);
    s.api_form("/api/v1/users/address", &[("email", "jana@example.com"), ("type", "shouting"), ("city", "nitra")])
        .expect(200);
    s.api_form("/api/v1/users/address", &[("email", "jana@example.com"), ("type", "broken"), ("city", "nitra")])
        .expect(200);
    s.get("/no/such/path/123", None).expect(404);

    let r = s.get("/metrics", None);
    assert_eq!(r.status, 200, "loopback without a token: {}", r.text);
    assert_eq!(r.content_type.as_deref(), Some("text/plain; version=0.0.4; charset=utf-8"));
    let m = &r.text;
    assert_eq!(sample(m, r#"crm_users_http_requests_total{route="/api/users/{id}",method="GET",status="404"}"#), 1.0);
    assert_eq!(sample(m, r#"crm_users_http_requests_total{route="/api/users/{id}",method="GET",status="200"}"#), 1.0);
    assert_eq!(sample(m, r#"crm_users_http_requests_total{route="v1 users/login",method="POST",status="400"}"#), 1.0);
    assert_eq!(sample(m, r#"crm_users_http_requests_total{route="unmatched",method="GET",status="404"}"#), 1.0);
    // Only the label sets: a value (a sum of seconds, a size) may well contain those digits.
    let labels: Vec<&str> =
        m.lines().filter(|l| !l.starts_with('#')).filter_map(|l| l.split_once('}')).map(|(l, _)| l).collect();
    assert!(labels.iter().all(|l| !l.contains("999999") && !l.contains("/no/such")), "raw paths never become labels");
    let login_ok = r#"route="v1 users/login",method="POST",status="200""#;
    assert_eq!(sample(m, &format!("crm_users_http_request_duration_seconds_count{{{login_ok}}}")), 1.0);
    assert_eq!(sample(m, &format!("crm_users_http_request_duration_seconds_bucket{{{login_ok},le=\"+Inf\"}}")), 1.0);
    assert!(sample(m, &format!("crm_users_http_request_duration_seconds_sum{{{login_ok}}}")) > 0.0);
    assert_eq!(sample(m, r#"crm_users_logins_total{status="api_ok"}"#), 1.0);
    assert_eq!(sample(m, r#"crm_users_logins_total{status="wrong_pass"}"#), 1.0);
    assert_eq!(sample(m, "crm_users_rate_limit_refusals_total"), 0.0);
    assert_eq!(sample(m, "crm_users_password_hash_queue_depth"), 0.0);
    let shouting = r#"{plugin="uppercase-address",version="0.1.0"}"#;
    assert!(sample(m, &format!("crm_users_plugin_calls_total{shouting}")) >= 1.0, "{m}");
    assert_eq!(sample(m, &format!("crm_users_plugin_failures_total{shouting}")), 0.0);
    assert!(sample(m, &format!("crm_users_plugin_fuel_consumed_total{shouting}")) > 0.0);
    assert!(sample(m, &format!("crm_users_plugin_call_seconds_total{shouting}")) > 0.0);
    let broken = r#"{plugin="broken-address",version="0.1.0"}"#;
    assert!(sample(m, &format!("crm_users_plugin_failures_total{broken}")) >= 1.0, "{m}");
    assert!(sample(m, "crm_users_storage_bytes") > 0.0);
    assert_eq!(sample(m, r#"crm_users_users{state="active"}"#), 1.0);

    // Through a proxy (a forwarding header) or from elsewhere, a token granting `metrics` is needed.
    let proxied = s.req("GET", "/metrics").header("X-Forwarded-For", "203.0.113.9").send();
    proxied.expect_fields(401, json!({"code": "unauthorized"}));
    let granted = s.req("GET", "/metrics").header("X-Forwarded-For", "203.0.113.9").bearer(Some(&s.api_token)).send();
    assert_eq!(granted.status, 200);
    assert!(granted.text.contains("crm_users_http_requests_total"));
}

#[test]
fn metrics_count_rate_limit_refusals() {
    let s = TestServer::start_with_config("[login]\nmax_failures = 2\n");
    s.create_user("jana@example.com", "secret123");
    for _ in 0..3 {
        s.login_resp("jana@example.com", "wrong");
    }
    let m = s.get("/metrics", None).text;
    assert!(sample(&m, "crm_users_rate_limit_refusals_total") >= 1.0, "{m}");
    assert!(sample(&m, r#"crm_users_logins_total{status="rate_limit_exceeded"}"#) >= 1.0);
}

#[test]
fn json_logs_have_one_line_per_request_with_its_id_and_never_a_secret() {
    let open = |_: &str, t: String| format!("{t}\nfailure = \"open\"\n");
    let (s, _plugins) = server_with_plugins(&["broken-address"], open, "log_format = \"json\"\n");
    let (id, token) = s.create_user("jana@example.com", "secret-pass-123");
    s.api_form("/api/v1/users/address", &[("email", "jana@example.com"), ("type", "broken"), ("city", "nitra")])
        .expect(200);
    let r = s.req("GET", "/api/me").bearer(Some(&token)).header("X-Request-Id", "probe-42").send();
    r.expect(200);
    assert_eq!(r.headers.get("x-request-id").and_then(|v| v.to_str().ok()), Some("probe-42"));
    // A secret in a query string or body stays out of the log too.
    s.get(&format!("/api/v1/users/autologin-token-login?token={token}"), None);
    s.login("jana@example.com", "secret-pass-123");
    let odd = s.req("GET", "/healthz").header("X-Request-Id", "has spaces and is {odd}").send();
    let generated = odd.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(generated.len() == 32 && generated.chars().all(|c| c.is_ascii_hexdigit()), "{generated}");
    s.req("GET", &format!("/api/users/{id}"))
        .bearer(Some(&s.api_token))
        .header("X-Request-Id", "last-one")
        .send()
        .expect(200);

    let log = log_with(&s, "last-one");
    let lines: Vec<Value> = log.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty() && lines.len() == log.lines().count(), "every line is JSON:\n{log}");
    let access: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    let probe =
        access.iter().find(|l| l["request_id"] == "probe-42").unwrap_or_else(|| panic!("no probe-42 line:\n{log}"));
    assert_eq!((&probe["route"], &probe["status"], &probe["method"]), (&json!("/api/me"), &json!(200), &json!("GET")));
    assert!(probe["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{probe}");
    assert!(access.iter().any(|l| l["request_id"] == generated.as_str() && l["route"] == "/healthz"));
    assert!(access.iter().any(|l| l["route"] == "/api/users/{id}" && l["status"] == 200));
    // A plugin's lines name the plugin and its version, inside the request that called it.
    let failed =
        lines.iter().find(|l| l["message"] == "plugin call failed").unwrap_or_else(|| panic!("no plugin line:\n{log}"));
    assert_eq!((&failed["plugin"], &failed["version"]), (&json!("broken-address"), &json!("0.1.0")), "{failed}");
    assert!(failed["span"]["request_id"].is_string(), "{failed}");
    for secret in [token.as_str(), "secret-pass-123", s.api_token.as_str()] {
        assert!(!log.contains(secret), "a secret reached the log:\n{log}");
    }
}

#[test]
fn text_logs_name_route_status_latency_and_request_id() {
    let s = TestServer::start();
    s.req("GET", "/healthz").header("X-Request-Id", "text-probe-1").send().expect(200);
    let log = log_with(&s, "text-probe-1");
    assert!(!log.contains('\u{1b}'), "no terminal colours in a piped log:\n{log}");
    let line = log.lines().find(|l| l.contains("text-probe-1")).unwrap_or_else(|| panic!("no line:\n{log}"));
    for part in ["request_id=text-probe-1", "route=\"/healthz\"", "status=200", "latency_ms=", "method=GET"] {
        assert!(line.contains(part), "{part} missing in {line}");
    }
    assert!(!log.contains(&s.api_token));
}
