//! The processes a benchmark talks to: the real `crm-users` release binary with a fresh data
//! folder, and a raw hyper server answering a fixed JSON body (the ceiling for a cheap route).

use anyhow::{Context, bail};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server process, stopped on drop.
pub struct Server {
    child: Child,
    pub base: String,
    /// How long the process took from spawn to its `listening on` line.
    pub ready_after: Duration,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kill the process with SIGKILL (no chance to flush anything) and hand back its folder.
    pub fn kill_hard(mut self) -> anyhow::Result<Option<tempfile::TempDir>> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(self._dir.take())
    }
}

/// Wait for the `listening on http://…` line.
fn listening(child: &mut Child) -> anyhow::Result<String> {
    let stdout = child.stdout.take().context("stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    match line.trim().strip_prefix("listening on ") {
        Some(url) => Ok(url.to_owned()),
        None => bail!("server did not start: {line}"),
    }
}

/// The crm-users binary and where its data goes.
#[derive(Clone)]
pub struct CrmUsers {
    pub binary: PathBuf,
}

impl CrmUsers {
    fn cli(&self, data: &Path, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.binary).args(args).arg("--data").arg(data).output()?;
        if !out.status.success() {
            bail!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// An API token for every route, created with the CLI in `data`.
    pub fn api_token(&self, data: &Path) -> anyhow::Result<String> {
        let token = self.cli(data, &["api-token", "create", "--name", "bench", "--allow", "*"])?;
        Ok(token.lines().last().unwrap_or_default().trim().to_owned())
    }

    /// A fresh server on `core` with `config` (TOML); returns it and an all-routes API token.
    pub fn start(&self, core: usize, config: &str) -> anyhow::Result<(Server, String)> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let token = self.api_token(&data)?;
        let server = self.serve(core, &data, config, Some(dir))?;
        Ok((server, token))
    }

    /// Like [`Self::start`], with the store in PostgreSQL at `database_url` (an empty schema).
    pub fn start_on_postgres(&self, core: usize, config: &str, database_url: &str) -> anyhow::Result<(Server, String)> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("data");
        let token = self
            .cli(&data, &["--database-url", database_url, "api-token", "create", "--name", "bench", "--allow", "*"])?;
        let token = token.lines().last().unwrap_or_default().trim().to_owned();
        let config = format!("database_url = {database_url:?}\n{config}");
        let server = self.serve(core, &data, &config, Some(dir))?;
        Ok((server, token))
    }

    /// A server on `core` over the data folder `data`, with `config` (TOML); `dir` (if any)
    /// is removed when the server is dropped.
    pub fn serve(
        &self,
        core: usize,
        data: &Path,
        config: &str,
        dir: Option<tempfile::TempDir>,
    ) -> anyhow::Result<Server> {
        let config_path = data.with_extension("toml");
        std::fs::write(&config_path, config)?;
        let started = Instant::now();
        let mut child = Command::new("taskset")
            .args(["-c", &core.to_string()])
            .arg(&self.binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .arg("--config")
            .arg(&config_path)
            .env("CRM_USERS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let base = listening(&mut child)?;
        Ok(Server { child, base, ready_after: started.elapsed(), _dir: dir })
    }
}

/// The raw hyper baseline, started from this same binary (`crm-users-bench baseline`).
pub fn start_baseline(core: usize) -> anyhow::Result<Server> {
    let me = std::env::current_exe()?;
    let mut child = Command::new("taskset")
        .args(["-c", &core.to_string()])
        .arg(me)
        .arg("baseline")
        .stdout(Stdio::piped())
        .spawn()?;
    let base = listening(&mut child)?;
    Ok(Server { child, base, ready_after: Duration::ZERO, _dir: None })
}

/// A fixed body the size and shape of a `user/info` answer.
pub const BASELINE_BODY: &str = r#"{"status":"ok","user":{"id":1,"uuid":"0b4c3f4e-8f1a-4c1e-9a6b-3f2d1e0c9b8a","email":"bench@example.com","confirmed_at":null,"first_name":"Ben","last_name":"Chmark"},"user_meta":{}}"#;

/// Serve [`BASELINE_BODY`] to every request with plain hyper, on a runtime like the service's.
pub fn run_baseline() -> anyhow::Result<()> {
    use http_body_util::Full;
    use hyper::{Response, server::conn::http1, service::service_fn};
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on http://{}", listener.local_addr()?);
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                let service = service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(
                        Response::builder()
                            .header("content-type", "application/json; charset=utf-8")
                            .body(Full::new(bytes::Bytes::from_static(BASELINE_BODY.as_bytes())))
                            .expect("static response"),
                    )
                });
                let _ = http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(stream), service).await;
            });
        }
    })
}
