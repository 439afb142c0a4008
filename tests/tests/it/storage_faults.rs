//! Storage faults with the real server: a full disk (the data folder on a small tmpfs, filled
//! up) and a failing disk (an `LD_PRELOAD` shim, `tests/fixtures/faults/eio.c`, that fails
//! writes and syncs under the data folder with EIO while a trigger file exists). Either way
//! writes answer 503 with a generic body, reads keep answering, the server stays up, and once
//! the fault is gone writes are taken again without a restart; every acknowledged write is
//! there after a restart and `crm-users check` finds the store consistent. A damaged data
//! folder makes `serve` exit non-zero with a message that names it and says what to do.
//!
//! On PostgreSQL the faults are the database's: connections it drops (a restart, a failover)
//! cost at most a 503 and the server carries on without a restart; a database it cannot reach,
//! or one a newer build wrote, stops `serve` with a message naming it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{
    Backend, TestServer, bin_command, bin_command_on, combined, create_api_token, output_with_timeout, postgres,
    run_cli_ok, runs_on, schema_of, spawn_listening,
};

/// How long a healed store may take to take writes again (it probes once a second).
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// A tmpfs mounted at a path while this lives.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Ok(Tmpfs(path.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A server on `dir/data` started with `env`; `dir` lives as long as the server.
fn serve(dir: tempfile::TempDir, env: &[(&str, String)]) -> TestServer {
    let data = dir.path().join("data");
    let token = create_api_token(&data, "test", "*");
    let mut cmd = bin_command();
    cmd.arg("serve").arg("--data").arg(&data).arg("--listen").arg("127.0.0.1:0");
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    TestServer::adopt(dir, token, spawn_listening(cmd).unwrap_or_else(|e| panic!("{e}")))
}

/// A public meta entry of 48 KiB: sled's log segments are 512 KiB and allocated whole, so a
/// full disk shows only when the log moves on to a new segment; a few of these get it there.
fn upsert(s: &TestServer, user_id: i64, key: &str) -> crate::harness::Resp {
    let value = "v".repeat(48 * 1024);
    let body = json!({"user_id": user_id, "key": key, "value": value, "is_public": true});
    s.post_json("/api/v1/user-meta/upsert", body, Some(&s.api_token))
}

/// Run writes under a fault, then heal it: writes refused with a generic 503 (at least one),
/// reads answered, the server up; after `heal` writes succeed again, and after a restart
/// every acknowledged write is there and the store checks clean.
fn writes_refused_then_recovered(mut s: TestServer, inject: impl FnOnce(), heal: impl FnOnce()) {
    let (id, user_token) = s.create_user("anna@example.com", "secret123");
    upsert(&s, id, "before").expect(200);
    let user = s.user_info(&user_token).expect(200)["user"].clone();
    inject();
    let mut acknowledged = vec!["before".to_owned()];
    let mut refused = 0;
    for i in 0..30 {
        let key = format!("during-{i}");
        let r = upsert(&s, id, &key);
        match r.status {
            200 => acknowledged.push(key),
            503 => {
                refused += 1;
                assert_eq!(
                    r.body,
                    json!({"status": "error", "code": "storage_unavailable", "message": "The service cannot store data right now; try again later"}),
                    "a generic body, nothing about the cause"
                );
                assert_eq!(r.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("5"));
            }
            other => panic!("a write under a storage fault answered {other}: {}", r.text),
        }
    }
    assert!(refused > 0, "no write was refused under the fault");
    // A registration (user, email index, meta, token in one batch) is refused too, whole.
    let r = s.create(&[("email", "bob@example.com"), ("password", "secret123"), ("newsletters_subscribe", "1")]);
    assert_eq!(r.status, 503, "{}", r.text);
    // Reads keep answering.
    assert_eq!(s.user_info(&user_token).expect(200)["user"], user);
    s.list_all(true).expect(200);
    s.get(&format!("/api/v1/user-meta/list?user_id={id}"), Some(&s.api_token)).expect(200);
    s.get("/healthz", None).expect(200);
    s.login_resp("anna@example.com", "wrong-password");

    heal();
    let deadline = Instant::now() + RECOVERY_TIMEOUT;
    loop {
        let r = upsert(&s, id, "after");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{}", r.text);
        assert!(Instant::now() < deadline, "writes still refused {RECOVERY_TIMEOUT:?} after the fault was gone");
        std::thread::sleep(Duration::from_millis(200));
    }
    acknowledged.push("after".into());
    let (bob, _) = s.create_user("bob@example.com", "secret123");
    assert!(bob > id);

    s.restart();
    let listed = s.get(&format!("/api/v1/user-meta/list?user_id={id}"), Some(&s.api_token));
    let keys: Vec<&str> =
        listed.expect(200).as_array().expect("a list").iter().filter_map(|m| m["key"].as_str()).collect();
    for key in &acknowledged {
        assert!(keys.contains(&key.as_str()), "acknowledged {key} is missing after the restart: {keys:?}");
    }
    s.login("anna@example.com", "secret123");
    s.stop();
    let check = run_cli_ok(&s.data_dir(), &["check"]);
    assert!(check.starts_with("ok: "), "{check}");
}

#[test]
fn a_full_disk_refuses_writes_with_503_keeps_reads_and_recovers_when_space_returns() {
    if !runs_on(Backend::Sled, "the disk under a database is the database's (PostgreSQL faults below)") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let _mount = match Tmpfs::mount(&data, "48m") {
        Ok(m) => m,
        Err(why) => {
            eprintln!("SKIPPED a_full_disk_...: cannot mount a tmpfs here ({why}); it needs root");
            return;
        }
    };
    let s = serve(dir, &[]);
    let filler = data.join("filler");
    writes_refused_then_recovered(s, || fill(&filler), || std::fs::remove_file(&filler).expect("remove the filler"));
}

/// Write `path` until the disk is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("filler");
    let chunk = vec![7u8; 64 * 1024];
    while file.write_all(&chunk).is_ok() {}
    let small = [7u8; 512];
    while file.write_all(&small).is_ok() {}
    let _ = file.sync_all();
}

/// The shim, compiled once per test run with the system C compiler.
fn eio_shim(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/faults/eio.c");
    let so = dir.join("eio.so");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&so)
        .arg(&source)
        .arg("-ldl")
        .output()
        .expect("cc (the C compiler Rust links with)");
    assert!(out.status.success(), "cc failed: {}", String::from_utf8_lossy(&out.stderr));
    so
}

#[test]
fn io_errors_refuse_writes_with_503_keep_reads_and_recover_when_the_disk_heals() {
    if !runs_on(Backend::Sled, "the disk under a database is the database's (PostgreSQL faults below)") {
        return;
    }
    let tools = tempfile::tempdir().expect("temp dir");
    let shim = eio_shim(tools.path());
    let trigger = tools.path().join("fail-now");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let prefix = data.canonicalize().expect("canonical data path");
    let env = [
        ("LD_PRELOAD", shim.display().to_string()),
        ("CRM_FAULT_TRIGGER", trigger.display().to_string()),
        ("CRM_FAULT_PREFIX", prefix.display().to_string()),
    ];
    let s = serve(dir, &env);
    writes_refused_then_recovered(
        s,
        || std::fs::write(&trigger, b"").expect("trigger"),
        || std::fs::remove_file(&trigger).expect("remove the trigger"),
    );
}

/// `serve` on `data` must fail: exit non-zero, a message naming the folder and the way out,
/// no panic.
#[track_caller]
fn refuses_to_start(data: &Path) -> String {
    let mut cmd = bin_command();
    cmd.arg("serve").arg("--data").arg(data).arg("--listen").arg("127.0.0.1:0");
    let out = output_with_timeout(cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "serve started on a damaged folder:\n{stderr}");
    assert!(out.stdout.is_empty(), "nothing listened: {}", String::from_utf8_lossy(&out.stdout));
    assert!(!stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"), "a panic, not a message:\n{stderr}");
    assert!(stderr.contains(&data.join("sled").display().to_string()), "the message names the folder:\n{stderr}");
    assert!(stderr.contains("crm-users import"), "the message says how to restore:\n{stderr}");
    stderr
}

/// A data folder with a user, the server stopped.
fn stopped_folder() -> TestServer {
    let mut s = TestServer::start();
    s.create_user("anna@example.com", "secret123");
    s.stop();
    s
}

#[test]
fn a_damaged_data_folder_is_refused_with_a_clear_message() {
    if !runs_on(Backend::Sled, "the store is not in the data folder (PostgreSQL faults below)") {
        return;
    }
    // A file where the store's folder should be.
    let s = stopped_folder();
    let sled = s.data_dir().join("sled");
    std::fs::remove_dir_all(&sled).expect("remove");
    std::fs::write(&sled, b"not a folder").expect("file");
    refuses_to_start(&s.data_dir());

    // sled's files garbled: the config, and the log's first segment.
    let s = stopped_folder();
    std::fs::write(s.data_dir().join("sled/conf"), b"\x00garbage\xff").expect("garble conf");
    refuses_to_start(&s.data_dir());
    let s = stopped_folder();
    garble_log_start(&s.data_dir());
    refuses_to_start(&s.data_dir());
    // A small store (one user, made offline): sled's recovery reads the garbled log as empty,
    // which must not pass for a new store.
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    run_cli_ok(&data, &["user", "add", "anna@example.com", "--password", "secret123"]);
    garble_log_start(&data);
    refuses_to_start(&data);
}

/// Flip the bits of the first 4 KiB of sled's log.
fn garble_log_start(data: &Path) {
    let log = data.join("sled/db");
    let mut bytes = std::fs::read(&log).expect("log");
    for b in bytes.iter_mut().take(4096) {
        *b ^= 0x5a;
    }
    std::fs::write(&log, &bytes).expect("garble log");
}

/// The backends of the database serving the server with this data folder.
fn terminate_connections_of(data: &Path) -> u64 {
    let mut admin = postgres().connect("postgres").unwrap_or_else(|e| panic!("{e}"));
    let sql = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1";
    let killed: i64 = admin.query_one(sql, &[&schema_of(data)]).expect("terminate").get(0);
    killed as u64
}

#[test]
fn connections_the_database_drops_cost_at_most_a_503_and_the_server_carries_on() {
    if !runs_on(Backend::Postgres, "a sled store has no connections") {
        return;
    }
    let s = TestServer::start();
    let (id, token) = s.create_user("anna@example.com", "secret123");
    for round in 0..3 {
        // Every connection the server holds, cut at once, as a database restart does.
        assert!(terminate_connections_of(&s.data_dir()) > 0, "round {round}: the server holds connections");
        let mut answered = 0;
        for n in 0..20 {
            let r = if n % 2 == 0 {
                s.user_info(&token)
            } else {
                s.post_json(
                    "/api/v1/user-meta/upsert",
                    json!({"user_id": id, "key": format!("k{round}-{n}"), "value": "v"}),
                    Some(&s.api_token),
                )
            };
            match r.status {
                200 => answered += 1,
                503 => {
                    r.expect_fields(503, json!({"code": "storage_unavailable"}));
                }
                other => panic!("round {round}: {other} {}", r.text),
            }
        }
        assert!(answered >= 18, "round {round}: {answered} of 20 answered after the connections were cut");
    }
    s.get("/healthz", None).expect(200);
    s.user_info(&token).expect(200);
    s.create_user("bob@example.com", "secret123");
}

#[test]
fn a_database_that_cannot_be_reached_or_was_written_by_a_newer_build_stops_the_start_naming_it() {
    if !runs_on(Backend::Postgres, "a sled store has no database to reach") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let serve = |url: &str| {
        let mut cmd = bin_command();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(dir.path().join("data"));
        cmd.args(["--database-url", url]);
        let out = output_with_timeout(cmd);
        assert!(!out.status.success(), "serve started: {}", combined(&out));
        assert!(!combined(&out).contains("panicked"), "a message, not a panic: {}", combined(&out));
        combined(&out)
    };
    // Nothing listens on port 1.
    let out = serve("postgres://crm:secret@127.0.0.1:1/crm_users");
    assert!(out.contains("cannot connect to PostgreSQL at crm@127.0.0.1:1/crm_users"), "{out}");
    assert!(!out.contains("secret"), "the password stays out of the message: {out}");
    let missing = postgres().url(None).replace(&postgres().database, "no_such_database");
    let out = serve(&missing);
    assert!(out.contains("no_such_database") && out.contains("does not exist"), "{out}");
    let out = serve("mysql://remp@db/remp");
    assert!(out.contains("not a PostgreSQL connection URL"), "{out}");

    // A schema a newer build migrated.
    let mut s = TestServer::start();
    s.stop();
    let mut client = postgres().client(&schema_of(&s.data_dir()));
    client.execute("UPDATE crm_users_schema SET version = 99", &[]).expect("bump the version");
    let mut cmd = bin_command_on(&s.data_dir());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(s.data_dir());
    let out = output_with_timeout(cmd);
    assert!(!out.status.success());
    assert!(combined(&out).contains("schema version 99; this build reads version 1"), "{}", combined(&out));
}
