//! A throwaway MariaDB server for the REMP import tests: installed with apt when missing (as
//! root, the way CI runs), started once per test process on a free loopback port with its own
//! data folder, and stopped by a watchdog shell when the test process exits. Each test gets
//! its own database, filled from `tests/fixtures/remp/`.

use mysql::prelude::Queryable;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/remp");

/// The account the importer uses, with a password, as a real installation has.
pub const USER: &str = "remp";
pub const PASSWORD: &str = "remp-secret";

/// How long a fresh server may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The server of this test process.
pub struct MariaDb {
    pub port: u16,
}

impl MariaDb {
    /// The server, started on first use.
    pub fn get() -> &'static MariaDb {
        static SERVER: OnceLock<MariaDb> = OnceLock::new();
        SERVER.get_or_init(|| start().unwrap_or_else(|e| panic!("cannot start MariaDB for the import tests: {e}")))
    }

    pub fn url(&self, db: &str) -> String {
        format!("mysql://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    fn root(&self) -> mysql::Conn {
        let opts = mysql::OptsBuilder::new().ip_or_hostname(Some("127.0.0.1")).tcp_port(self.port).user(Some("root"));
        mysql::Conn::new(opts).expect("connect to MariaDB as root")
    }

    /// A new database with REMP's schema and the fixture rows; returns its name.
    pub fn remp_database(&self, hashes: &Hashes) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let db = format!("remp_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut root = self.root();
        root.query_drop(format!("CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
            .expect("create db");
        root.query_drop(format!("USE {db}")).expect("use db");
        for (name, hash) in [
            ("jane_hash", &hashes.jane),
            ("john_hash", &hashes.john),
            ("admin_hash", &hashes.admin),
            ("inactive_hash", &hashes.inactive),
        ] {
            root.exec_drop(format!("SET @{name} = ?"), (hash,)).expect("set hash variable");
        }
        for file in ["schema.sql", "rows.sql"] {
            let path = Path::new(FIXTURES).join(file);
            let sql = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            for statement in statements(&sql) {
                root.query_drop(&statement).unwrap_or_else(|e| panic!("{file}: {e}\n{statement}"));
            }
        }
        db
    }

    /// Run a statement in a test's database (to change REMP's data between imports).
    pub fn exec(&self, db: &str, sql: &str) {
        let mut root = self.root();
        root.query_drop(format!("USE {db}")).expect("use db");
        root.query_drop(sql).unwrap_or_else(|e| panic!("{e}\n{sql}"));
    }
}

/// The bcrypt hashes of the fixture users, made like PHP's `password_hash` (`$2y$`).
pub struct Hashes {
    pub jane: String,
    pub john: String,
    pub admin: String,
    pub inactive: String,
}

pub const JANE_PASSWORD: &str = "jane-remp-pass";
pub const JOHN_PASSWORD: &str = "john-remp-pass";
pub const ADMIN_PASSWORD: &str = "admin-remp-pass";
pub const INACTIVE_PASSWORD: &str = "inactive-remp-pass";

impl Hashes {
    pub fn get() -> &'static Hashes {
        static HASHES: OnceLock<Hashes> = OnceLock::new();
        HASHES.get_or_init(|| {
            // PHP's cost is 10; a lower one keeps the tests fast and verifies the same way.
            let php = |password: &str| bcrypt::hash(password, 6).expect("bcrypt hash").replacen("$2b$", "$2y$", 1);
            Hashes {
                jane: php(JANE_PASSWORD),
                john: php(JOHN_PASSWORD),
                admin: php(ADMIN_PASSWORD),
                inactive: php(INACTIVE_PASSWORD),
            }
        })
    }
}

/// The statements of a SQL file: `-- ` comments removed, split on `;` (the fixtures have no
/// semicolon inside a string).
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|line| match line.find("-- ") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    without_comments.split(';').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from));
    names.iter().flat_map(|n| dirs.iter().map(move |d| d.join(n))).find(|p| p.is_file())
}

/// Debian's `mariadb-server`, installed when missing (needs root, as CI has).
fn ensure_installed() -> Result<(PathBuf, PathBuf), String> {
    let find =
        || Some((find_program(&["mariadbd", "mysqld"])?, find_program(&["mariadb-install-db", "mysql_install_db"])?));
    if let Some(found) = find() {
        return Ok(found);
    }
    crm_users_tests::packages::apt_install("mariadb-server", "")?;
    find().ok_or_else(|| "mariadb-server installed, but no mariadbd found".into())
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn start() -> Result<MariaDb, String> {
    let (server, install_db) = ensure_installed()?;
    // A plain folder, not a TempDir: the watchdog removes it after the server stops.
    let dir = std::env::temp_dir().join(format!("crm-users-it-mariadb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let out = Command::new(&install_db)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", dir.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db", "--user=root"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", install_db.display()))?;
    if !out.status.success() {
        return Err(format!("{} failed:\n{}", install_db.display(), String::from_utf8_lossy(&out.stderr)));
    }
    let port = free_port()?;
    // The watchdog stops the server and removes its folder once this process is gone, however
    // it ends (statics are never dropped).
    let script = r#"
        "$1" --no-defaults --datadir="$2" --socket="$2/mysqld.sock" --pid-file="$2/mysqld.pid" \
             --log-error="$2/error.log" --port="$3" --bind-address=127.0.0.1 --user=root \
             --skip-name-resolve --innodb-buffer-pool-size=16M --innodb-log-file-size=8M &
        server=$!
        while kill -0 "$4" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.5; done
        kill "$server" 2>/dev/null; wait "$server"; rm -rf "$2"
    "#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("mariadb-watchdog")
        .arg(&server)
        .arg(&dir)
        .arg(port.to_string())
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", server.display()))?;
    let db = MariaDb { port };
    let deadline = Instant::now() + START_TIMEOUT;
    let opts = mysql::OptsBuilder::new().ip_or_hostname(Some("127.0.0.1")).tcp_port(port).user(Some("root"));
    let mut root = loop {
        match mysql::Conn::new(opts.clone()) {
            Ok(conn) => break conn,
            Err(e) if Instant::now() > deadline => {
                let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                return Err(format!("no connection within {START_TIMEOUT:?}: {e}\n{log}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    for sql in [
        format!("CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'"),
        format!("GRANT SELECT ON *.* TO '{USER}'@'127.0.0.1'"),
    ] {
        root.query_drop(&sql).map_err(|e| format!("{sql}: {e}"))?;
    }
    Ok(db)
}
