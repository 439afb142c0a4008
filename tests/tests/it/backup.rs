//! `crm-users export` and `crm-users import --input`: a populated server's folder is exported,
//! imported into a fresh folder, and a server on that folder answers as the first did; the
//! second export is byte-identical. Broken files are refused naming the line, and nothing is
//! written then.

use std::path::Path;

use serde_json::{Value, json};

use crate::harness::{
    Backend, TestServer, assert_hex32, backend, bin_command_on, run_cli, run_cli_ok, spawn_listening,
};

pub(crate) const CONFIG: &str = "[[address_types]]\ntype = \"crm_test\"\ntitle = \"Test address\"\n";

/// Records of every kind the API can make, for two users. Returns (anna's id, anna's token,
/// a revoked token, an autologin token).
pub(crate) fn populate(s: &TestServer) -> (i64, String, String, String) {
    let api = Some(s.api_token.as_str());
    let anna = s.create(&[("email", "anna@example.com"), ("password", "secret123"), ("newsletters_subscribe", "1")]);
    let anna_id = anna.expect(200)["user"]["id"].as_i64().expect("id");
    let anna_token = assert_hex32(&anna["access"]["token"]);
    let (bob_id, _) = s.create_user("bob@example.com", "secret123");
    s.post_json(
        "/api/v1/user-meta/upsert",
        json!({"user_id": anna_id, "key": "color", "value": "blue", "is_public": true}),
        api,
    )
    .expect(200);
    let revoked = s.login("bob@example.com", "secret123");
    s.get("/api/v1/users/logout", Some(&revoked)).expect(200);
    s.login_resp("anna@example.com", "wrong-password").expect(400);
    s.post_form("/api/v1/users/get-device-token", &[("device_id", "phone"), ("access_token", &anna_token)], None)
        .expect(200);
    let autologin = s.post_json("/api/autologin-tokens", json!({"user_id": anna_id, "max_count": 3}), api);
    let autologin = assert_hex32(&autologin.expect(200)["token"]);
    s.api_form("/api/v1/users/address", &[("email", "anna@example.com"), ("type", "crm_test"), ("city", "Bratislava")])
        .expect(200);
    s.api_form(
        "/api/v1/users/change-address-request",
        &[("email", "anna@example.com"), ("type", "crm_test"), ("city", "Nitra")],
    )
    .expect(200);
    let group = s.post_json("/api/groups", json!({"name": "Premium"}), api).expect(200)["id"].clone();
    s.post_json(&format!("/api/groups/{group}/members"), json!({"user_id": bob_id}), api).expect(200);
    let role = s.post_json("/api/roles", json!({"name": "Editors", "permissions": ["users/list"]}), api).expect(201)["role"]["id"]
        .clone();
    s.req("PUT", &format!("/api/users/{anna_id}/roles")).json(json!({"roles": [role]})).bearer(api).send().expect(200);
    s.req("PUT", &format!("/api/users/{bob_id}/password"))
        .json(json!({"password": "another123"}))
        .bearer(api)
        .send()
        .expect(200);
    s.post_json("/api/api-tokens", json!({"name": "reader", "allowed_routes": ["users/index"]}), api).expect(201);
    (anna_id, anna_token, revoked, autologin)
}

/// What the server answers about everything `populate` made.
pub(crate) fn answers(s: &TestServer, anna_id: i64, anna_token: &str) -> Vec<(String, Value)> {
    let api = Some(s.api_token.as_str());
    let mut paths: Vec<String> = ["/api/api-tokens", "/api/groups", "/api/roles", "/api/users?per_page=50"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    for id in [anna_id, anna_id + 1] {
        for part in [
            "",
            "/groups",
            "/roles",
            "/meta",
            "/addresses",
            "/address-change-requests",
            "/access-tokens",
            "/autologin-tokens",
            "/login-attempts",
            "/password-changes",
        ] {
            paths.push(format!("/api/users/{id}{part}"));
        }
    }
    let mut out: Vec<(String, Value)> =
        paths.into_iter().map(|p| (p.clone(), s.get(&p, api).expect(200).clone())).collect();
    out.push(("user/info".into(), s.user_info(anna_token).expect(200).clone()));
    out.push(("users/list".into(), s.list_all(true).expect(200).clone()));
    out
}

#[track_caller]
pub(crate) fn export(data: &Path, file: &Path) -> Vec<u8> {
    let out = run_cli(data, &["export", "--output", file.to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "export failed: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(file).expect("export file")
}

/// A server on the data folder `dir/data` with `config`, its store already filled.
pub(crate) fn serve_on(dir: tempfile::TempDir, config: &Path, api_token: &str) -> TestServer {
    let mut cmd = bin_command_on(&dir.path().join("data"));
    cmd.arg("serve")
        .arg("--data")
        .arg(dir.path().join("data"))
        .arg("--listen")
        .arg("127.0.0.1:0")
        .arg("--config")
        .arg(config);
    let spawned = spawn_listening(cmd).unwrap_or_else(|e| panic!("{e}"));
    TestServer::adopt(dir, api_token.to_owned(), spawned)
}

#[test]
fn an_export_imported_into_a_fresh_folder_answers_identically_and_exports_byte_identical() {
    let mut s = TestServer::start_with_config(CONFIG);
    let (anna_id, anna_token, revoked, autologin) = populate(&s);
    let before = answers(&s, anna_id, &anna_token);
    if backend() == Backend::Sled {
        let refused = s.cli(&["export"]);
        assert!(!refused.status.success(), "export refuses while the server holds the folder");
        assert!(String::from_utf8_lossy(&refused.stderr).contains("in use by a running crm-users server"));
    }
    s.stop();

    let files = tempfile::tempdir().expect("temp dir");
    let first_file = files.path().join("first.jsonl");
    let first = export(&s.data_dir(), &first_file);
    let text = String::from_utf8(first.clone()).expect("UTF-8 export");
    assert!(text.starts_with("{\"format\":\"crm-users-export\",\"version\":1}\n"), "{}", &text[..80]);
    assert!(!text.contains(&anna_token) && !text.contains(&autologin), "tokens leave only as digests");

    let fresh = tempfile::tempdir().expect("temp dir");
    let fresh_data = fresh.path().join("data");
    let config = fresh.path().join("config.toml");
    std::fs::write(&config, CONFIG).expect("config");
    let imported = run_cli_ok(&fresh_data, &["import", "--input", first_file.to_str().expect("path")]);
    let records = text.lines().count() - 2;
    assert_eq!(imported.trim(), format!("imported {records} records"));
    if backend() == Backend::Sled {
        assert!(run_cli_ok(&fresh_data, &["check"]).starts_with("ok: "));
    }
    let second = export(&fresh_data, &files.path().join("second.jsonl"));
    assert!(first == second, "the second export differs from the first");

    // Into a folder with data: refused, unless --merge (which replaces by id: same result).
    let again = run_cli(&fresh_data, &["import", "--input", first_file.to_str().expect("path")]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("holds data already"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    run_cli_ok(&fresh_data, &["import", "--merge", "--input", first_file.to_str().expect("path")]);
    assert!(
        export(&fresh_data, &files.path().join("third.jsonl")) == first,
        "a merge of the same records changes nothing"
    );

    let s2 = serve_on(fresh, &config, &s.api_token);
    let after = answers(&s2, anna_id, &anna_token);
    for ((path, want), (_, got)) in before.iter().zip(&after) {
        assert_eq!(got, want, "{path} answers differently after the round trip");
    }
    s2.user_info(&revoked).expect(403);
    s2.login("anna@example.com", "secret123");
    s2.login("bob@example.com", "another123");
    s2.post_form("/api/v1/users/autologin-token-login", &[("autologin_token", &autologin)], None).expect(200);
    let (carl, _) = s2.create_user("carl@example.com", "secret123");
    assert!(carl > anna_id + 1, "ids continue after the imported ones");
}

#[test]
fn a_broken_export_is_refused_naming_the_line_and_nothing_is_written() {
    let mut s = TestServer::start_with_config(CONFIG);
    populate(&s);
    s.stop();
    let files = tempfile::tempdir().expect("temp dir");
    let good = files.path().join("good.jsonl");
    let text = String::from_utf8(export(&s.data_dir(), &good)).expect("UTF-8");
    let fresh = tempfile::tempdir().expect("temp dir");
    let data = fresh.path().join("data");
    let import = |name: &str, content: &str| {
        let path = files.path().join(name);
        std::fs::write(&path, content).expect("write");
        run_cli(&data, &["import", "--input", path.to_str().expect("path")])
    };
    let stderr = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();

    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[4] = "{\"kind\":\"user\",\"record\":{\"id\":\"not a number\"}}".into();
    let out = import("garbled.jsonl", &(lines.join("\n") + "\n"));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("line 5: not a valid export record"), "{}", stderr(&out));

    let truncated: String = text.lines().take(6).map(|l| format!("{l}\n")).collect();
    let out = import("truncated.jsonl", &truncated);
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));

    // Well-formed, but a meta entry of a user the file does not hold: refused while writing,
    // and the records before it are not kept either.
    let orphan = text.replacen(
        "{\"kind\":\"meta\",\"record\":{\"user_id\":1,",
        "{\"kind\":\"meta\",\"record\":{\"user_id\":999,",
        1,
    );
    assert_ne!(orphan, text, "the export holds a meta line of user 1");
    let out = import("orphan.jsonl", &orphan);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("User not found: 999") && stderr(&out).contains("nothing was imported"),
        "{}",
        stderr(&out)
    );
    assert!(!data.join("sled.importing").exists(), "no staging folder is left behind");

    // The folder is still empty: the good file imports without --merge.
    let out = run_cli(&data, &["import", "--input", good.to_str().expect("path")]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn export_and_import_go_through_stdout_and_stdin() {
    let mut s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    s.stop();
    let out = run_cli(&s.data_dir(), &["export"]);
    assert!(out.status.success());
    let fresh = tempfile::tempdir().expect("temp dir");
    let data = fresh.path().join("data");
    let mut cmd = bin_command_on(&data);
    cmd.args(["import", "--input", "-", "--data"]).arg(&data).stdin(std::process::Stdio::piped());
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn import");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &out.stdout).expect("write stdin");
    let done = child.wait_with_output().expect("import");
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let again = run_cli(&data, &["export"]);
    assert!(again.stdout == out.stdout, "the export through stdin round-trips");
}
