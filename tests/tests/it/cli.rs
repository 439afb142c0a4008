//! The command line: `serve` (listening line, env vars, config validation, folder lock),
//! `api-token create|list|revoke`, `user add|disable|check-emails`. Effects of offline commands
//! are checked through the HTTP API of a server started afterwards on the same folder.

use serde_json::json;

use crate::harness::{
    Backend, TestServer, backend, bin_command, bin_command_on, combined, create_api_token, output_with_timeout,
    run_cli, run_cli_ok, runs_on, spawn_listening,
};

fn lines_of(stdout: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stdout).lines().map(|l| l.trim().to_owned()).collect()
}

#[test]
fn serve_prints_exactly_one_listening_line_with_the_bound_port() {
    let mut s = TestServer::start();
    let line = s.spawned().listening_line.clone();
    assert_ne!(s.port, 0);
    assert_eq!(line, format!("listening on http://127.0.0.1:{}", s.port));
    assert!(s.spawned().earlier_lines.is_empty(), "nothing else on stdout before it: {:?}", s.spawned().earlier_lines);
    s.create_user("anna@example.com", "secret123");
    s.login("anna@example.com", "secret123");
    let (status, later) = s.stop_collecting_stdout();
    assert!(status.success(), "exit 0 on SIGTERM, got {status}");
    assert!(later.is_empty(), "stdout holds only the listening line; logs go to stderr: {later:?}");
}

#[test]
fn serve_takes_data_listen_and_config_from_env() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let token = create_api_token(&data, "env", "*");
    let config = dir.path().join("tz.toml");
    std::fs::write(&config, "timezone = \"Europe/Bratislava\"\n").expect("write config");
    // If the env vars were ignored, the default ./data would land here, inside the temp dir.
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).expect("cwd");
    let mut cmd = bin_command_on(&data);
    cmd.arg("serve")
        .current_dir(&cwd)
        .env("CRM_USERS_DATA", &data)
        .env("CRM_USERS_LISTEN", "127.0.0.1:0")
        .env("CRM_USERS_CONFIG", &config);
    let spawned = spawn_listening(cmd).unwrap_or_else(|e| panic!("{e}"));
    let s = TestServer::adopt(dir, token, spawned);
    // The token only exists in the env-selected folder.
    let (_, access) = s.create_user("anna@example.com", "secret123");
    s.api_form("/api/v1/users/confirm", &[("email", "anna@example.com")]).expect(200);
    let info = s.user_info(&access);
    let confirmed = info.expect(200)["user"]["confirmed_at"]
        .as_str()
        .unwrap_or_else(|| panic!("confirmed_at set: {}", info.text))
        .to_owned();
    let offset = chrono::DateTime::parse_from_rfc3339(&confirmed).expect("RFC 3339").offset().local_minus_utc();
    assert!(offset == 3600 || offset == 7200, "config from CRM_USERS_CONFIG applies (Europe/Bratislava): {confirmed}");
}

#[test]
fn serve_with_no_flags_keeps_its_data_in_dot_data_of_the_working_folder() {
    // The README's first command: no config, no --data; everything lands in ./data.
    let dir = tempfile::tempdir().expect("temp dir");
    let token = create_api_token(&dir.path().join("data"), "default", "*");
    let mut cmd = bin_command_on(&dir.path().join("data"));
    cmd.current_dir(dir.path()).args(["serve", "--listen", "127.0.0.1:0"]);
    let spawned = spawn_listening(cmd).unwrap_or_else(|e| panic!("{e}"));
    let s = TestServer::adopt(dir, token, spawned);
    s.get("/healthz", None).expect(200);
    s.create_user("anna@example.com", "secret123");
    match backend() {
        Backend::Sled => assert!(s.data_dir().join("LOCK").exists() && s.data_dir().join("sled").is_dir()),
        // The store is the database; the folder holds only this host's plugin cache.
        Backend::Postgres => assert!(s.data_dir().is_dir() && !s.data_dir().join("sled").exists()),
    }
}

#[test]
fn serve_rejects_an_unknown_config_key_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "timezone = \"UTC\"\nfrobnicate_level = 3\n").expect("write config");
    let mut cmd = bin_command();
    cmd.arg("serve")
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--config")
        .arg(&config);
    let out = output_with_timeout(cmd);
    assert!(!out.status.success(), "unknown key must fail: {}", combined(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("frobnicate_level"), "stderr names the key: {stderr}");
}

#[test]
fn second_serve_on_the_same_folder_fails_with_in_use() {
    if !runs_on(Backend::Sled, "hosts on PostgreSQL share the database; the folder holds no store") {
        return;
    }
    let s = TestServer::start();
    let out = output_with_timeout(s.serve_command());
    assert!(!out.status.success(), "{}", combined(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("in use"),
        "stderr says the folder is in use: {}",
        combined(&out)
    );
    s.create_user("anna@example.com", "secret123");
}

#[test]
fn data_commands_fail_with_one_line_while_a_server_holds_the_folder() {
    if !runs_on(Backend::Sled, "on PostgreSQL data commands run beside the servers (the next test)") {
        return;
    }
    let mut s = TestServer::start();
    let (_, access) = s.create_user("anna@example.com", "secret123");
    let commands: [&[&str]; 6] = [
        &["api-token", "list"],
        &["api-token", "create", "--name", "x", "--allow", "*"],
        &["api-token", "revoke", "test"],
        &["user", "add", "zed@example.com", "--password", "secret123"],
        &["user", "disable", "anna@example.com"],
        &["user", "check-emails"],
    ];
    for args in commands {
        let out = s.cli(args);
        assert!(!out.status.success(), "`{}` must fail while serving: {}", args.join(" "), combined(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("in use") && stderr.trim().lines().count() == 1,
            "`{}`: one stderr line containing 'in use', got {stderr:?}",
            args.join(" ")
        );
    }
    // None of them did anything.
    s.user_info(&access).expect(200);
    s.email_check("zed@example.com").expect_fields(200, json!({"status": "available"}));
    s.list_all(false).expect_fields(200, json!({"totalCount": 1}));
    // Once the server is gone, the folder is free again.
    assert!(s.stop().success());
    let out = s.cli(&["api-token", "list"]);
    assert!(out.status.success(), "{}", combined(&out));
}

#[test]
fn data_commands_run_beside_the_servers_of_a_database_and_take_effect_at_once() {
    if !runs_on(Backend::Postgres, "a sled folder is held by its server (the test before)") {
        return;
    }
    let s = TestServer::start();
    let (_, access) = s.create_user("anna@example.com", "secret123");
    let added = s.cli(&["user", "add", "zed@example.com", "--password", "secret123"]);
    assert!(added.status.success(), "{}", combined(&added));
    s.email_check("zed@example.com").expect_fields(200, json!({"status": "taken"}));
    s.login("zed@example.com", "secret123");
    let disabled = s.cli(&["user", "disable", "anna@example.com"]);
    assert!(disabled.status.success(), "{}", combined(&disabled));
    s.user_info(&access).expect(403);
    let listed = s.cli(&["api-token", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("\ttest\tactive\t*"), "{}", combined(&listed));
}

#[test]
fn api_token_list_shows_name_state_and_routes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let alpha = create_api_token(&data, "alpha", "users/list,users/create");
    let beta = create_api_token(&data, "beta", "*");
    assert_ne!(alpha, beta);
    run_cli_ok(&data, &["api-token", "revoke", "beta"]);
    let lines = lines_of(run_cli_ok(&data, &["api-token", "list"]).as_bytes());
    let alpha_line = lines.iter().find(|l| l.contains("alpha")).unwrap_or_else(|| panic!("alpha listed: {lines:?}"));
    assert!(
        alpha_line.contains("active")
            && !alpha_line.contains("revoked")
            && alpha_line.contains("users/list")
            && alpha_line.contains("users/create"),
        "{alpha_line}"
    );
    let beta_line = lines.iter().find(|l| l.contains("beta")).unwrap_or_else(|| panic!("beta listed: {lines:?}"));
    assert!(beta_line.contains("revoked"), "{beta_line}");
    assert!(!lines.iter().any(|l| l.contains(&alpha) || l.contains(&beta)), "the list never shows a token: {lines:?}");
}

#[test]
fn api_token_revoke_of_unknown_token_fails_with_a_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    create_api_token(&data, "alpha", "*");
    let out = run_cli(&data, &["api-token", "revoke", "no-such-token"]);
    assert!(!out.status.success(), "{}", combined(&out));
    assert!(!combined(&out).trim().is_empty(), "a message explains why");
    let list = run_cli_ok(&data, &["api-token", "list"]);
    let alpha_line = lines_of(list.as_bytes())
        .into_iter()
        .find(|l| l.contains("alpha"))
        .unwrap_or_else(|| panic!("alpha listed: {list}"));
    assert!(!alpha_line.contains("revoked"), "{alpha_line}");
}

#[test]
fn api_token_revoked_by_cli_stops_working_after_restart() {
    let mut s = TestServer::start();
    s.list_all(false).expect(200);
    s.stop();
    run_cli_ok(&s.data_dir(), &["api-token", "revoke", "test"]);
    s.start_again();
    s.list_all(false).expect_fields(403, json!({"message": "Not authorized: Token isn't active"}));
}

#[test]
fn user_add_creates_a_user_who_can_log_in() {
    let mut printed = String::new();
    let s = TestServer::start_with(None, |data| {
        printed = run_cli_ok(
            data,
            &[
                "user",
                "add",
                "cli@example.com",
                "--password",
                "secret123",
                "--first-name",
                "Cyril",
                "--last-name",
                "Metod",
            ],
        );
    });
    let r = s.login_resp("cli@example.com", "secret123");
    let body = r
        .expect_fields(200, json!({"user": {"email": "cli@example.com", "first_name": "Cyril", "last_name": "Metod"}}));
    let id = body["user"]["id"].as_i64().expect("user.id");
    assert!(printed.contains(&id.to_string()), "user add prints the new id {id}: {printed:?}");
}

#[test]
fn user_add_with_short_password_fails_and_creates_nothing() {
    let mut out = None;
    let s = TestServer::start_with(None, |data| {
        out = Some(run_cli(data, &["user", "add", "short@example.com", "--password", "12345"]));
    });
    let out = out.expect("ran");
    assert!(!out.status.success(), "{}", combined(&out));
    assert!(
        combined(&out).to_lowercase().contains("password"),
        "the message is about the password: {}",
        combined(&out)
    );
    s.email_check("short@example.com").expect_fields(200, json!({"status": "available"}));
}

#[test]
fn user_add_with_existing_email_fails_and_keeps_the_first_user() {
    let mut out = None;
    let s = TestServer::start_with(None, |data| {
        run_cli_ok(data, &["user", "add", "dup@example.com", "--password", "first-pass"]);
        out = Some(run_cli(data, &["user", "add", "dup@example.com", "--password", "second-pass"]));
    });
    let out = out.expect("ran");
    assert!(!out.status.success(), "{}", combined(&out));
    assert!(!combined(&out).trim().is_empty(), "a message explains why");
    s.login("dup@example.com", "first-pass");
    s.login_resp("dup@example.com", "second-pass").expect_fields(400, json!({"code": "invalid_credential"}));
}

#[test]
fn user_disable_deactivates_the_user_and_revokes_their_tokens() {
    let mut s = TestServer::start();
    let (id, registration) = s.create_user("anna@example.com", "secret123");
    let login = s.login("anna@example.com", "secret123");
    s.create_user("bob@example.com", "secret123");
    s.stop();
    let out = run_cli(&s.data_dir(), &["user", "disable", "anna@example.com"]);
    assert!(out.status.success(), "{}", combined(&out));
    s.start_again();
    for token in [&registration, &login] {
        s.user_info(token).expect(403);
    }
    s.login_resp("anna@example.com", "secret123").expect_fields(400, json!({"code": "identity_not_found"}));
    let r = s.list_all(false);
    let body = r.expect_fields(200, json!({"totalCount": 1}));
    assert!(body["users"].get(id.to_string()).is_none(), "{}", r.text);
    s.list_all(true).expect_fields(200, json!({"totalCount": 2}));
}

#[test]
fn user_disable_of_unknown_email_exits_1_user_not_found() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    create_api_token(&data, "init", "*");
    let out = run_cli(&data, &["user", "disable", "nobody@example.com"]);
    assert_eq!(out.status.code(), Some(1), "{}", combined(&out));
    assert!(combined(&out).contains("User not found"), "{}", combined(&out));
}

#[test]
fn user_disable_of_inactive_user_exits_0_with_a_message() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    run_cli_ok(&data, &["user", "add", "off@example.com", "--password", "secret123", "--inactive"]);
    let out = run_cli(&data, &["user", "disable", "off@example.com"]);
    assert!(out.status.success(), "{}", combined(&out));
    assert!(!combined(&out).trim().is_empty(), "it says the user is already inactive");
}

#[test]
fn check_emails_reports_each_email_with_the_failing_validator() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    create_api_token(&data, "init", "*");
    for (email, verdict) in [
        ("good@example.com", "VALID"),
        ("0test@user", "INVALID (regexp)"),
        ("x@mailinator.com", "INVALID (blocked-domain)"),
    ] {
        let stdout = run_cli_ok(&data, &["user", "check-emails", email]);
        let want = format!("{email} {verdict}");
        assert!(lines_of(stdout.as_bytes()).contains(&want), "expected a line {want:?} in {stdout:?}");
    }
}

#[test]
fn check_emails_without_argument_checks_every_active_user() {
    let mut s = TestServer::start_with(None, |data| {
        run_cli_ok(data, &["user", "add", "good@example.com", "--password", "secret123"]);
        run_cli_ok(data, &["user", "add", "off@example.org", "--password", "secret123", "--inactive"]);
    });
    s.create(&[("email", "bad@mailinator.com"), ("password", "secret123"), ("disable_email_validation", "1")])
        .expect(200);
    s.stop();
    let stdout = run_cli_ok(&s.data_dir(), &["user", "check-emails"]);
    let lines = lines_of(stdout.as_bytes());
    assert!(lines.contains(&"good@example.com VALID".to_owned()), "{lines:?}");
    assert!(lines.contains(&"bad@mailinator.com INVALID (blocked-domain)".to_owned()), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains("off@example.org")), "inactive users are not checked: {lines:?}");
}

#[test]
fn serve_rejects_an_unknown_commit_mode_naming_the_choices() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "commit = \"sometimes\"\n").expect("write config");
    let mut cmd = bin_command();
    cmd.arg("serve").arg("--data").arg(dir.path().join("data")).arg("--listen").arg("127.0.0.1:0");
    cmd.arg("--config").arg(&config);
    let out = output_with_timeout(cmd);
    assert!(!out.status.success(), "an unknown commit mode must fail: {}", combined(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sometimes") && stderr.contains("each-write"), "stderr names it and the choices: {stderr}");
}
