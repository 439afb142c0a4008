//! A throwaway PostgreSQL server for the tests and benchmarks that run crm-users on
//! PostgreSQL: Debian's `postgresql` installed with apt when missing (as root, the way CI
//! runs), a cluster made with `initdb` in a folder of its own, started on a free loopback port,
//! and stopped by a watchdog shell when the process that started it exits (statics are never
//! dropped). `CRM_USERS_TEST_DATABASE_URL` names a server that is running already instead.
//!
//! PostgreSQL refuses to run as root; as root the cluster belongs to the `postgres` user the
//! package creates, and its programs run under that user through `setpriv`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh cluster may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server, and the database made for this process.
#[derive(Debug)]
pub struct Postgres {
    /// `postgres://USER@HOST:PORT` without a database.
    base: String,
    /// The database this process works in.
    pub database: String,
}

/// How the cluster trades durability for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync = off`: for tests, where the server under test may crash but PostgreSQL never
    /// does, so nothing is lost that a test could notice.
    Off,
    /// PostgreSQL's defaults (fsync, synchronous commit): for benchmarks, so that a commit
    /// costs what it costs in production.
    Default,
}

impl Postgres {
    /// A server (ours, or the one `CRM_USERS_TEST_DATABASE_URL` names) with a fresh database
    /// named `database_prefix` and this process's id. Ours runs on `core` when one is given.
    pub fn start(database_prefix: &str, durability: Durability, core: Option<usize>) -> Result<Postgres, String> {
        let base = match std::env::var("CRM_USERS_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => url.trim_end_matches('/').to_owned(),
            _ => start_cluster(durability, core)?,
        };
        let server = Postgres { base, database: format!("{database_prefix}_{}", std::process::id()) };
        let mut admin = server.connect("postgres")?;
        // Two statements: CREATE DATABASE cannot share an (implicit) transaction.
        for sql in
            [format!("DROP DATABASE IF EXISTS {}", server.database), format!("CREATE DATABASE {}", server.database)]
        {
            admin.batch_execute(&sql).map_err(|e| format!("{sql}: {}", describe(&e)))?;
        }
        Ok(server)
    }

    /// The URL of this process's database, with the tables in `schema` when one is given.
    pub fn url(&self, schema: Option<&str>) -> String {
        match schema {
            Some(schema) => format!("{}/{}?options=-csearch_path%3D{schema}", self.base, self.database),
            None => format!("{}/{}", self.base, self.database),
        }
    }

    /// A client on `database` of this server.
    pub fn connect(&self, database: &str) -> Result<postgres::Client, String> {
        postgres::Client::connect(&format!("{}/{database}", self.base), postgres::NoTls)
            .map_err(|e| format!("cannot connect to {}/{database}: {}", self.base, describe(&e)))
    }

    /// A client on this process's database with `schema` first on its search path.
    pub fn client(&self, schema: &str) -> postgres::Client {
        let mut client = self.connect(&self.database).unwrap_or_else(|e| panic!("{e}"));
        client.batch_execute(&format!("SET search_path TO {schema}")).expect("set search_path");
        client
    }
}

/// An error with the server's own message ("db error" alone says nothing).
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => e.to_string(),
    }
}

fn find_bindir() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|bin| bin.join("postgres").is_file() && bin.join("initdb").is_file())
        .collect();
    versions.sort_by_key(|p| {
        p.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()).and_then(|v| v.parse::<u32>().ok())
    });
    versions.pop()
}

/// Debian's `postgresql`, installed when missing (needs root, as CI has).
fn ensure_installed() -> Result<PathBuf, String> {
    if let Some(found) = find_bindir() {
        return Ok(found);
    }
    crate::packages::apt_install("postgresql", ", or set CRM_USERS_TEST_DATABASE_URL to a running server")?;
    find_bindir().ok_or_else(|| "postgresql installed, but no postgres binary under /usr/lib/postgresql".into())
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// `program` run as the cluster's owner: the `postgres` user when we are root.
fn as_owner(program: &Path, root: bool) -> Command {
    if root {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

/// Make and start a cluster (on `core`, when given); returns its base URL.
fn start_cluster(durability: Durability, core: Option<usize>) -> Result<String, String> {
    let bindir = ensure_installed()?;
    let root = is_root();
    // A plain folder, not a TempDir: the watchdog removes it after the server stops.
    let dir = std::env::temp_dir().join(format!("crm-users-postgres-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if root {
        let chown = Command::new("chown").arg("postgres:postgres").arg(&dir).status();
        if !chown.is_ok_and(|s| s.success()) {
            return Err(format!("cannot give {} to the postgres user", dir.display()));
        }
    }
    let out = as_owner(&bindir.join("initdb"), root)
        .arg("-D")
        .arg(&dir)
        .args(["-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run initdb: {e}"))?;
    if !out.status.success() {
        return Err(format!("initdb failed:\n{}", String::from_utf8_lossy(&out.stderr)));
    }
    let port = free_port()?;
    let mut settings = vec!["listen_addresses=127.0.0.1", "max_connections=400", "log_min_messages=warning"];
    if durability == Durability::Off {
        settings.extend(["fsync=off", "synchronous_commit=off", "full_page_writes=off"]);
    }
    let mut server = match core {
        Some(core) => {
            let owned = as_owner(&bindir.join("postgres"), root);
            let mut pinned = Command::new("taskset");
            pinned.args(["-c", &core.to_string()]).arg(owned.get_program()).args(owned.get_args());
            pinned
        }
        None => as_owner(&bindir.join("postgres"), root),
    };
    server.arg("-D").arg(&dir).arg("-p").arg(port.to_string()).arg("-k").arg(&dir);
    for setting in settings {
        server.arg("-c").arg(setting);
    }
    // The watchdog stops the server and removes its folder once this process is gone,
    // however it ends. Its arguments: the folder, our pid, then the server's command line.
    let script = r#"
        dir=$1; parent=$2; shift 2
        "$@" >"$dir/server.log" 2>&1 &
        server=$!
        while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.5; done
        kill -INT "$server" 2>/dev/null; wait "$server"; rm -rf "$dir"
    "#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("postgres-watchdog")
        .arg(&dir)
        .arg(std::process::id().to_string())
        .arg(server.get_program())
        .args(server.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start PostgreSQL: {e}"))?;
    let base = format!("postgres://postgres@127.0.0.1:{port}");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        match postgres::Client::connect(&format!("{base}/postgres"), postgres::NoTls) {
            Ok(_) => return Ok(base),
            Err(e) if Instant::now() > deadline => {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                return Err(format!("PostgreSQL took no connection within {START_TIMEOUT:?}: {e}\n{log}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}
