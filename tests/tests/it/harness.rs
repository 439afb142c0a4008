//! The integration-test harness: `TestServer` runs the real `crm-users` binary (built here as
//! `crm-users-under-test`) with `serve` on a loopback port 0 and its own temporary data folder,
//! and talks to it over HTTP with a blocking client. It owns the process lifecycle (start,
//! SIGTERM stop, restart on the same folder, kill on drop), offline CLI runs, request building
//! (query, urlencoded, multipart and JSON bodies, built by hand so no client feature is needed)
//! and a few shortcuts (`create_user`, `login`). It knows nothing else about the routes; what a
//! route must answer is asserted in the test modules.
//!
//! The same modules build two test binaries: `it` runs every server on sled in its data
//! folder, `it_postgres` on PostgreSQL (see [`backend`]), each server in a schema of its own
//! named after its data folder, in one throwaway database per run.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// An HTTP client for talking to the server. reqwest is built without a TLS provider of its
/// own (the host installs ring), so the tests install it too before building one.
pub fn http_client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("HTTP client")
}

/// The real CLI, same entry point as `crm-users`.
pub const BIN: &str = env!("CARGO_BIN_EXE_crm-users-under-test");

const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
const MULTIPART_BOUNDARY: &str = "----crmUsersTestBoundary7MA4YWxkTrZu0gW";

/// Env vars that would change what the binary does; removed from every child we start so the
/// developer's shell cannot leak into a test.
const CRM_ENV: [&str; 7] = [
    "CRM_USERS_DATA",
    "CRM_USERS_LISTEN",
    "CRM_USERS_CONFIG",
    "CRM_USERS_LOG_FORMAT",
    "CRM_USERS_PLUGINS",
    "CRM_USERS_STORAGE",
    "CRM_USERS_DATABASE_URL",
];

/// Which store the servers of this test binary use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sled,
    Postgres,
}

/// `it_postgres` runs on PostgreSQL, `it` on sled: the binary's name decides.
pub fn backend() -> Backend {
    if env!("CARGO_CRATE_NAME") == "it_postgres" { Backend::Postgres } else { Backend::Sled }
}

/// Whether this binary runs on `wanted`; when not, says why the test has nothing to check here
/// (it returns at once: sled's files, a second host, ...).
pub fn runs_on(wanted: Backend, why: &str) -> bool {
    if backend() != wanted {
        eprintln!("nothing to check on {:?}: {why}", backend());
    }
    backend() == wanted
}

/// The PostgreSQL server of this test process, started on first use.
pub fn postgres() -> &'static crm_users_tests::postgres::Postgres {
    use crm_users_tests::postgres::{Durability, Postgres};
    static SERVER: std::sync::OnceLock<Postgres> = std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        Postgres::start("crm_users_it", Durability::Off, None)
            .unwrap_or_else(|e| panic!("cannot start PostgreSQL: {e}"))
    })
}

/// The schema that holds the store of the server with this data folder.
pub fn schema_of(data: &Path) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut hasher);
    format!("t_{:016x}", hasher.finish())
}

/// The database URL of the store of the server with this data folder. Its connections carry
/// the schema's name as `application_name`, so a test can find them in `pg_stat_activity`.
pub fn database_url_of(data: &Path) -> String {
    let schema = schema_of(data);
    format!("{}&application_name={schema}", postgres().url(Some(&schema)))
}

/// An HTTP response, read whole. `body` is `Value::Null` when the body is empty or not JSON;
/// `text` always holds the raw body for diagnostics.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub content_type: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    /// Panics (showing the body) unless the status is `status`; returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "expected HTTP {status}, got {} with body: {}", self.status, self.text);
        &self.body
    }

    /// Asserts the status and that every field of `expected` is in the body with that value.
    #[track_caller]
    pub fn expect_fields(&self, status: u16, expected: Value) -> &Value {
        self.expect(status);
        assert_subset(&self.body, &expected);
        &self.body
    }
}

impl std::ops::Index<&str> for Resp {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        &self.body[key]
    }
}

/// Asserts that every key of `expected` (recursively for non-empty objects) is in `actual` with
/// the same value. Keys absent from `expected` are not checked; an empty object or an array in
/// `expected` must match exactly.
#[track_caller]
pub fn assert_subset(actual: &Value, expected: &Value) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            for (key, want) in e {
                let Some(got) = a.get(key) else {
                    panic!("key {key:?} missing in {actual}; expected {expected}");
                };
                // An empty expected object means "exactly {}", not "any object".
                let nested = want.as_object().is_some_and(|o| !o.is_empty());
                if nested && got.is_object() {
                    assert_subset(got, want);
                } else {
                    assert_eq!(got, want, "field {key:?} differs in {actual}");
                }
            }
        }
        _ => assert_eq!(actual, expected),
    }
}

/// Asserts a REMP token (access, device, API): 32 lowercase hex characters. Returns it.
#[track_caller]
pub fn assert_hex32(value: &Value) -> String {
    let s = value.as_str().unwrap_or_else(|| panic!("expected a token string, got {value}"));
    assert!(is_hex32(s), "expected 32 lowercase hex characters, got {s:?}");
    s.to_owned()
}

pub fn is_hex32(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `application/x-www-form-urlencoded` encoding of pairs (also used for query strings).
pub fn urlencode(pairs: &[(String, String)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v))).collect::<Vec<_>>().join("&")
}

fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// A request body in one of the encodings the server must accept.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Form(Vec<(String, String)>),
    Multipart(Vec<(String, String)>),
    Json(Value),
    Raw { content_type: String, bytes: Vec<u8> },
}

impl Body {
    fn encode(self) -> Option<(String, Vec<u8>)> {
        match self {
            Body::Empty => None,
            Body::Form(pairs) => Some(("application/x-www-form-urlencoded".to_owned(), urlencode(&pairs).into_bytes())),
            Body::Multipart(pairs) => {
                let mut out = String::new();
                for (k, v) in pairs {
                    out.push_str(&format!(
                        "--{MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                    ));
                }
                out.push_str(&format!("--{MULTIPART_BOUNDARY}--\r\n"));
                Some((format!("multipart/form-data; boundary={MULTIPART_BOUNDARY}"), out.into_bytes()))
            }
            Body::Json(v) => Some(("application/json".to_owned(), v.to_string().into_bytes())),
            Body::Raw { content_type, bytes } => Some((content_type, bytes)),
        }
    }
}

/// A request being built against one server; `send` performs it.
#[must_use]
pub struct Req<'a> {
    server: &'a TestServer,
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Body,
}

impl Req<'_> {
    pub fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.query.extend(owned(pairs));
        self
    }
    pub fn form(mut self, pairs: &[(&str, &str)]) -> Self {
        self.body = Body::Form(owned(pairs));
        self
    }
    pub fn multipart(mut self, pairs: &[(&str, &str)]) -> Self {
        self.body = Body::Multipart(owned(pairs));
        self
    }
    pub fn json(mut self, value: Value) -> Self {
        self.body = Body::Json(value);
        self
    }
    pub fn raw(mut self, content_type: &str, bytes: Vec<u8>) -> Self {
        self.body = Body::Raw { content_type: content_type.to_owned(), bytes };
        self
    }
    pub fn body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
    /// `Authorization: Bearer <token>` when `token` is given.
    pub fn bearer(self, token: Option<&str>) -> Self {
        match token {
            Some(t) => self.header("Authorization", &format!("Bearer {t}")),
            None => self,
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    #[track_caller]
    pub fn send(self) -> Resp {
        let mut url = self.server.url(&self.path);
        if !self.query.is_empty() {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(&urlencode(&self.query));
        }
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).expect("HTTP method");
        let mut rb = self.server.client.request(method, url.as_str());
        for (k, v) in &self.headers {
            rb = rb.header(k.as_str(), v.as_str());
        }
        if let Some((content_type, bytes)) = self.body.encode() {
            rb = rb.header("Content-Type", content_type).body(bytes);
        }
        let response = match rb.send() {
            Ok(r) => r,
            Err(e) => panic!("{} {url} failed: {e:?}\nserver stderr:\n{}", self.method, self.server.stderr()),
        };
        let status = response.status().as_u16();
        let content_type = response.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let headers = response.headers().clone();
        let text = response.text().expect("read response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, content_type, headers, text, body }
    }
}

/// A `serve` process that has printed its `listening on` line.
pub struct Spawned {
    pub child: Child,
    pub port: u16,
    /// The `listening on ...` line, verbatim.
    pub listening_line: String,
    /// Lines printed on stdout before the listening line (the contract says there are none).
    pub earlier_lines: Vec<String>,
    /// Lines printed on stdout after the listening line arrive here.
    /// Behind a mutex so a `TestServer` can be shared between threads (`Arc<TestServer>`).
    pub later_lines: Mutex<Receiver<String>>,
    pub stderr: Arc<Mutex<String>>,
}

/// Spawns `cmd` (a `serve` command) and waits up to 30 s for its `listening on` line.
/// On failure the child is killed and the error holds the stderr captured so far.
pub fn spawn_listening(mut cmd: Command) -> Result<Spawned, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("spawn {BIN}: {e}"))?;
    let stderr = Arc::new(Mutex::new(String::new()));
    let err_pipe = child.stderr.take().expect("stderr piped");
    let err_buf = Arc::clone(&stderr);
    thread::spawn(move || {
        let mut reader = BufReader::new(err_pipe);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => err_buf.lock().expect("stderr buffer").push_str(&line),
            }
        }
    });
    let out_pipe = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(out_pipe).lines() {
            let Ok(line) = line else { break };
            // Keep draining even when nobody listens any more, so the pipe never fills.
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    let mut earlier_lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.starts_with("listening on ") => {
                let port = line
                    .rsplit(':')
                    .next()
                    .and_then(|p| p.trim().trim_end_matches('/').parse::<u16>().ok())
                    .ok_or_else(|| format!("cannot parse a port from {line:?}"))?;
                return Ok(Spawned {
                    child,
                    port,
                    listening_line: line,
                    earlier_lines,
                    later_lines: Mutex::new(rx),
                    stderr,
                });
            }
            Ok(line) => earlier_lines.push(line),
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                let captured = stderr.lock().expect("stderr buffer").clone();
                return Err(format!(
                    "no `listening on` line within {START_TIMEOUT:?}; stdout so far: {earlier_lines:?}\nstderr:\n{captured}"
                ));
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait().map_err(|e| e.to_string())?;
                // Give the stderr reader a moment to collect the last words.
                thread::sleep(Duration::from_millis(100));
                let captured = stderr.lock().expect("stderr buffer").clone();
                return Err(format!(
                    "serve exited ({status}) before listening; stdout: {earlier_lines:?}\nstderr:\n{captured}"
                ));
            }
        }
    }
}

/// A command for the CLI binary with the `CRM_USERS_*` env vars removed.
pub fn bin_command() -> Command {
    let mut cmd = Command::new(BIN);
    for var in CRM_ENV {
        cmd.env_remove(var);
    }
    cmd
}

/// Data folders whose store stays on sled in `it_postgres` too (a migration's source).
static ON_SLED: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Keep the store of the data folder `data` on sled, whatever the binary's backend.
pub fn keep_on_sled(data: &Path) {
    ON_SLED.lock().expect("sled folders").push(data.to_owned());
}

/// The backend of the store of the data folder `data`.
pub fn backend_of(data: &Path) -> Backend {
    if ON_SLED.lock().expect("sled folders").iter().any(|d| d == data) { Backend::Sled } else { backend() }
}

/// Where every test server keeps compiled plugins: one wasmtime cache for the whole run (and
/// the next), so an 18 MB Python component is compiled once rather than in every test that
/// loads it. wasmtime's cache takes concurrent writers.
const SHARED_PLUGIN_CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/it-plugin-cache");

/// Point the data folder's plugin cache at [`SHARED_PLUGIN_CACHE`], unless it has one.
pub fn share_plugin_cache(data: &Path) {
    let cache = data.join("plugin-cache");
    if cache.symlink_metadata().is_ok() {
        return;
    }
    let _ = std::fs::create_dir_all(SHARED_PLUGIN_CACHE);
    let _ = std::fs::create_dir_all(data);
    let _ = std::os::unix::fs::symlink(SHARED_PLUGIN_CACHE, &cache);
}

/// [`bin_command`] for the store of the data folder `data`: on PostgreSQL, its database URL
/// comes in the environment (the caller still passes `--data`).
pub fn bin_command_on(data: &Path) -> Command {
    share_plugin_cache(data);
    let mut cmd = bin_command();
    if backend_of(data) == Backend::Postgres {
        cmd.env("CRM_USERS_DATABASE_URL", database_url_of(data));
    }
    cmd
}

/// Runs `cmd` to completion (at most 60 s, then it is killed and the test fails).
#[track_caller]
pub fn output_with_timeout(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn CLI");
    let mut out_pipe = child.stdout.take().expect("stdout piped");
    let mut err_pipe = child.stderr.take().expect("stderr piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out_pipe.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err_pipe.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + CLI_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for CLI") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("CLI {cmd:?} did not finish within {CLI_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().expect("stdout reader"),
        stderr: err_reader.join().expect("stderr reader"),
    }
}

/// Runs the CLI with `args` followed by `--data <data>`.
#[track_caller]
pub fn run_cli(data: &Path, args: &[&str]) -> Output {
    let mut cmd = bin_command_on(data);
    cmd.args(args).arg("--data").arg(data);
    output_with_timeout(cmd)
}

/// Runs the CLI and panics (showing its output) unless it exits 0. Returns stdout.
#[track_caller]
pub fn run_cli_ok(data: &Path, args: &[&str]) -> String {
    let out = run_cli(data, args);
    assert!(
        out.status.success(),
        "`{}` failed ({}):\nstdout: {}\nstderr: {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `api-token create` on a data folder; returns the token (the last line of stdout).
#[track_caller]
pub fn create_api_token(data: &Path, name: &str, allow: &str) -> String {
    let stdout = run_cli_ok(data, &["api-token", "create", "--name", name, "--allow", allow]);
    let last = stdout.trim_end().lines().last().unwrap_or("").trim();
    assert!(is_hex32(last), "api-token create must print the token alone on its last line; stdout was {stdout:?}");
    last.to_owned()
}

/// stdout and stderr of a CLI run, as one string for message checks.
pub fn combined(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Sends SIGTERM to `child` and waits for it; kills it after `STOP_TIMEOUT` and panics.
#[track_caller]
pub fn terminate(child: &mut Child) -> ExitStatus {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait for server") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("server did not exit within {STOP_TIMEOUT:?} of SIGTERM");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Plugins built from source by tests/build.rs, one folder each.
pub const BUILT_PLUGINS: &str = env!("CRM_USERS_TEST_PLUGINS");

/// Copy a built plugin folder into `plugins_dir`, optionally editing its manifest.
pub fn install(plugins_dir: &Path, folder: &str, edit: impl FnOnce(String) -> String) {
    let from = Path::new(BUILT_PLUGINS).join(folder);
    let to = plugins_dir.join(folder);
    std::fs::create_dir_all(&to).expect("plugin folder");
    for entry in std::fs::read_dir(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display())).flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy plugin file");
    }
    let manifest = to.join("plugin.toml");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    std::fs::write(&manifest, edit(text)).expect("write manifest");
}

/// A server whose plugins folder holds `folders` (manifests edited by `edit`), with
/// `extra_config` appended to its config file. The folder lives as long as the returned guard.
pub fn server_with_plugins(
    folders: &[&str],
    edit: impl Fn(&str, String) -> String,
    extra_config: &str,
) -> (TestServer, tempfile::TempDir) {
    let plugins = tempfile::tempdir().expect("plugins dir");
    for folder in folders {
        install(plugins.path(), folder, |text| edit(folder, text));
    }
    let config = format!("plugins = {:?}\n{extra_config}", plugins.path().display().to_string());
    (TestServer::start_with_config(&config), plugins)
}

/// The real server on a loopback port with its own temporary data folder.
pub struct TestServer {
    dir: tempfile::TempDir,
    config: Option<PathBuf>,
    /// On PostgreSQL: the data folder whose database schema this server uses, when it is
    /// another host's ([`TestServer::second_host`]).
    store_of: Option<PathBuf>,
    running: Option<Spawned>,
    stderr: Arc<Mutex<String>>,
    pub port: u16,
    /// An API token whitelisted for every route (`--allow '*'`), made before the first start.
    pub api_token: String,
    client: reqwest::blocking::Client,
}

impl TestServer {
    pub fn start() -> Self {
        Self::start_with(None, |_| {})
    }

    pub fn start_with_config(toml: &str) -> Self {
        Self::start_with(Some(toml), |_| {})
    }

    /// Starts a server; `prepare` runs against the data folder after the all-routes API token is
    /// made and before `serve` starts (offline CLI work: more tokens, users).
    #[track_caller]
    pub fn start_with(config: Option<&str>, prepare: impl FnOnce(&Path)) -> Self {
        Self::start_prepared(config, false, prepare)
    }

    /// A server on sled, in `it_postgres` too (see [`keep_on_sled`]).
    #[track_caller]
    pub fn start_on_sled(config: Option<&str>) -> Self {
        Self::start_prepared(config, true, keep_on_sled)
    }

    /// Like [`Self::start_with`], with `prepare` running on the empty data folder before the
    /// all-routes API token is made (an import that must find the folder empty).
    #[track_caller]
    pub fn start_after(prepare: impl FnOnce(&Path)) -> Self {
        Self::start_prepared(None, true, prepare)
    }

    #[track_caller]
    fn start_prepared(config: Option<&str>, prepare_first: bool, prepare: impl FnOnce(&Path)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = config.map(|toml| {
            let path = dir.path().join("config.toml");
            std::fs::write(&path, toml).expect("write config.toml");
            path
        });
        let data = dir.path().join("data");
        let api_token = if prepare_first {
            prepare(&data);
            create_api_token(&data, "test", "*")
        } else {
            let token = create_api_token(&data, "test", "*");
            prepare(&data);
            token
        };
        let client = http_client();
        let mut server = TestServer {
            dir,
            config,
            store_of: None,
            running: None,
            stderr: Arc::new(Mutex::new(String::new())),
            port: 0,
            api_token,
            client,
        };
        server.start_again();
        server
    }

    /// Wraps a `serve` process started some other way (e.g. configured through env vars) so the
    /// request helpers can be used with it. `dir` must hold `data/`.
    pub fn adopt(dir: tempfile::TempDir, api_token: String, spawned: Spawned) -> Self {
        let client = http_client();
        TestServer {
            dir,
            config: None,
            store_of: None,
            port: spawned.port,
            stderr: Arc::clone(&spawned.stderr),
            running: Some(spawned),
            api_token,
            client,
        }
    }

    /// Another host on this server's PostgreSQL schema: a process of its own with its own
    /// data folder and the same config, sharing every user, token and counter.
    #[track_caller]
    pub fn second_host(&self) -> TestServer {
        assert_eq!(backend(), Backend::Postgres, "hosts share a store on PostgreSQL only");
        let dir = tempfile::tempdir().expect("temp dir");
        let config = self.config.as_ref().map(|own| {
            let path = dir.path().join("config.toml");
            std::fs::copy(own, &path).expect("copy config.toml");
            path
        });
        let mut server = TestServer {
            dir,
            config,
            store_of: Some(self.store_dir()),
            running: None,
            stderr: Arc::new(Mutex::new(String::new())),
            port: 0,
            api_token: self.api_token.clone(),
            client: http_client(),
        };
        server.start_again();
        server
    }

    /// The data folder whose store this server uses (its own, unless it is a second host).
    pub fn store_dir(&self) -> PathBuf {
        self.store_of.clone().unwrap_or_else(|| self.data_dir())
    }

    /// `serve` on this server's data folder (and config); does not wait.
    pub fn serve_command(&self) -> Command {
        let mut cmd = bin_command_on(&self.store_dir());
        cmd.arg("serve").arg("--data").arg(self.data_dir()).arg("--listen").arg("127.0.0.1:0");
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd
    }

    /// Starts `serve` again on the same folder (after `stop`); the port changes.
    #[track_caller]
    pub fn start_again(&mut self) {
        assert!(self.running.is_none(), "server already running");
        let spawned = spawn_listening(self.serve_command()).unwrap_or_else(|e| panic!("{e}"));
        self.port = spawned.port;
        self.stderr = Arc::clone(&spawned.stderr);
        self.running = Some(spawned);
    }

    /// SIGTERM, then wait for the exit; returns the exit status.
    #[track_caller]
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_collecting_stdout().0
    }

    /// Like `stop`, also returning what the server printed on stdout after its listening line.
    #[track_caller]
    pub fn stop_collecting_stdout(&mut self) -> (ExitStatus, Vec<String>) {
        let mut spawned = self.running.take().expect("server is not running");
        let status = terminate(&mut spawned.child);
        let mut lines = Vec::new();
        let later = spawned.later_lines.lock().expect("stdout receiver");
        // The reader thread ends at EOF, which follows the exit closely.
        while let Ok(line) = later.recv_timeout(Duration::from_secs(5)) {
            lines.push(line);
        }
        (status, lines)
    }

    /// Stops with SIGTERM (which must exit 0) and starts again on the same data folder.
    #[track_caller]
    pub fn restart(&mut self) {
        let status = self.stop();
        assert!(status.success(), "serve must exit 0 on SIGTERM, got {status}; stderr:\n{}", self.stderr());
        self.start_again();
    }

    /// Kills the server with SIGKILL (no clean shutdown) and waits for it.
    pub fn kill_hard(&mut self) {
        let mut spawned = self.running.take().expect("server is not running");
        let _ = spawned.child.kill();
        let _ = spawned.child.wait();
    }

    pub fn spawned(&self) -> &Spawned {
        self.running.as_ref().expect("server is not running")
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr buffer").clone()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs the CLI with `--data` of this server.
    #[track_caller]
    pub fn cli(&self, args: &[&str]) -> Output {
        run_cli(&self.data_dir(), args)
    }

    /// Stops the server, runs an offline CLI command on its data folder (which must succeed),
    /// and starts the server again; returns the command's stdout. Reads what only the CLI
    /// shows, and proves it survived the restart.
    #[track_caller]
    pub fn cli_offline(&mut self, args: &[&str]) -> String {
        let status = self.stop();
        assert!(status.success(), "serve must exit 0 on SIGTERM, got {status}; stderr:\n{}", self.stderr());
        let out = run_cli_ok(&self.data_dir(), args);
        self.start_again();
        out
    }

    /// `user show EMAIL` through [`Self::cli_offline`]: the value of the `field: value` line.
    #[track_caller]
    pub fn user_field(&mut self, email: &str, field: &str) -> String {
        let out = self.cli_offline(&["user", "show", email]);
        let prefix = format!("{field}: ");
        out.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {field} in `user show`:\n{out}"))
            .to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn req(&self, method: &str, path: &str) -> Req<'_> {
        Req {
            server: self,
            method: method.to_owned(),
            path: path.to_owned(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    #[track_caller]
    pub fn get(&self, path: &str, bearer: Option<&str>) -> Resp {
        self.req("GET", path).bearer(bearer).send()
    }

    #[track_caller]
    pub fn post_form(&self, path: &str, pairs: &[(&str, &str)], bearer: Option<&str>) -> Resp {
        self.req("POST", path).form(pairs).bearer(bearer).send()
    }

    #[track_caller]
    pub fn post_json(&self, path: &str, json: Value, bearer: Option<&str>) -> Resp {
        self.req("POST", path).json(json).bearer(bearer).send()
    }

    /// POST form with the all-routes API token.
    #[track_caller]
    pub fn api_form(&self, path: &str, pairs: &[(&str, &str)]) -> Resp {
        self.post_form(path, pairs, Some(&self.api_token))
    }

    /// `users/create` with these params and the all-routes API token.
    #[track_caller]
    pub fn create(&self, pairs: &[(&str, &str)]) -> Resp {
        self.api_form("/api/v1/users/create", pairs)
    }

    /// Registers a user through `users/create`; returns (id, access token).
    #[track_caller]
    pub fn create_user(&self, email: &str, password: &str) -> (i64, String) {
        let r = self.create(&[("email", email), ("password", password)]);
        let body = r.expect(200);
        let id =
            body["user"]["id"].as_i64().unwrap_or_else(|| panic!("users/create gave no integer user.id: {}", r.text));
        (id, assert_hex32(&body["access"]["token"]))
    }

    #[track_caller]
    pub fn login_resp(&self, email: &str, password: &str) -> Resp {
        self.post_form("/api/v1/users/login", &[("email", email), ("password", password)], None)
    }

    /// Logs in through `users/login` (which must succeed); returns the new access token.
    #[track_caller]
    pub fn login(&self, email: &str, password: &str) -> String {
        let r = self.login_resp(email, password);
        assert_hex32(&r.expect(200)["access"]["token"])
    }

    #[track_caller]
    pub fn user_info(&self, token: &str) -> Resp {
        self.get("/api/v1/user/info", Some(token))
    }

    #[track_caller]
    pub fn email_check(&self, email: &str) -> Resp {
        self.api_form("/api/v1/users/email-check", &[("email", email)])
    }

    /// `users/list` of every user (`user_ids=[]`, page 1), optionally with deactivated ones.
    #[track_caller]
    pub fn list_all(&self, include_deactivated: bool) -> Resp {
        let mut pairs = vec![("user_ids", "[]"), ("page", "1")];
        if include_deactivated {
            pairs.push(("include_deactivated", "1"));
        }
        self.api_form("/api/v1/users/list", &pairs)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut spawned) = self.running.take() {
            let _ = Command::new("kill").arg("-TERM").arg(spawned.child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = spawned.child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = spawned.child.kill();
            let _ = spawned.child.wait();
        }
    }
}

/// A stand-in HTTP server on loopback for what the service calls out to (a legacy credential
/// directory, an identity provider's key server). Each request is read whole (head and
/// `Content-Length` body) and answered `200` with the JSON `reply` returns for its text.
/// Requests are counted; the server stops when dropped.
pub struct StubServer {
    pub port: u16,
    pub hits: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl StubServer {
    pub fn start(reply: impl Fn(&str) -> Vec<u8> + Send + 'static) -> StubServer {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind stub server");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let (hits, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicBool::new(false)));
        let (count, halt) = (hits.clone(), stop.clone());
        thread::spawn(move || {
            while !halt.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                count.fetch_add(1, Ordering::Relaxed);
                stream.set_nonblocking(false).ok();
                stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
                let request = read_request(&mut stream);
                let body = reply(&request);
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = std::io::Write::write_all(&mut stream, head.as_bytes());
                let _ = std::io::Write::write_all(&mut stream, &body);
            }
        });
        StubServer { port, hits, stop }
    }
}

impl Drop for StubServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The request's head and as much body as its `Content-Length` says.
fn read_request(stream: &mut std::net::TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let len = text[..head_end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if buf.len() >= head_end + 4 + len {
                break;
            }
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}
