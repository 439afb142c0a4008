//! Crash safety under load: the real server takes mixed concurrent writes (registrations with
//! meta and a token, token issue and revoke, meta, addresses, group membership changes), is
//! SIGKILLed at a random moment, checked offline with `crm-users check`, restarted, and every
//! write it acknowledged (answered 2xx) is looked up through the HTTP API: present, or for a
//! revoke or a removal, absent. A registration that was cut off must be all there (user, email
//! index, meta, token) or not there at all. Group membership is checked both ways.
//!
//! Used by the `it` test (a few cycles, in CI) and by the `crash-cycles` binary (as many
//! cycles as asked). Everything random comes from one seed, printed, so a failing run can be
//! repeated with `--seed`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Concurrent writers: enough to keep group commit batching several writes per flush.
const WRITERS: usize = 4;
/// Groups the writers move users in and out of.
const GROUPS: u64 = 2;
const PASSWORD: &str = "crash-safe-1";
const CONFIG: &str = "[[address_types]]\ntype = \"crm_test\"\ntitle = \"Test address\"\n";

/// How a run goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// The `crm-users` executable (or one that behaves like it).
    pub server: PathBuf,
    /// Environment for the server processes (e.g. a variable telling a re-executed test
    /// binary to act as the server).
    pub server_env: Vec<(String, String)>,
    pub cycles: u32,
    pub seed: u64,
    /// Run `crm-users check` after each kill (the sled store's fsck; PostgreSQL checks its
    /// own constraints).
    pub offline_check: bool,
    /// The SIGKILL comes at a uniformly random moment in this range after the writers start.
    pub kill_after: (Duration, Duration),
}

/// What a run did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub cycles: u32,
    /// Writes answered 2xx, all found after their restart.
    pub acknowledged: u64,
    /// Writes cut off by the kill (no answer), whose outcome either way was accepted.
    pub cut_off: u64,
    /// Cut-off registrations found complete after the restart (the rest were absent).
    pub cut_off_registrations_present: u64,
}

/// A tiny xorshift generator: reproducible from the seed, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What the writers know about the data: acknowledged writes, and writes whose answer never
/// came (their outcome is either).
#[derive(Debug, Default)]
struct Ledger {
    users: Vec<UserRec>,
    /// Emails of registrations sent and never answered.
    unanswered_registrations: Vec<String>,
    /// Access tokens by value: Some(true) live, Some(false) revoked, None revoke unanswered.
    tokens: BTreeMap<String, (u64, Option<bool>)>,
    meta: Vec<(u64, String, String)>,
    addresses: Vec<(u64, u64)>,
    /// (user, group) → Some(member) when the last change was answered, None when not.
    memberships: BTreeMap<(u64, u64), Option<bool>>,
    acknowledged: u64,
    cut_off: u64,
    /// Answers that were neither success nor the kill's cut: each one is a failure.
    unexpected: Vec<String>,
}

#[derive(Debug, Clone)]
struct UserRec {
    id: u64,
    email: String,
    /// The token the registration issued; never revoked by the workload.
    token: String,
}

struct Server {
    child: Child,
    base: String,
}

fn client() -> reqwest::blocking::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("HTTP client")
}

/// A urlencoded form body (reqwest is built without its `form` feature).
fn form_body(rb: reqwest::blocking::RequestBuilder, pairs: &[(&str, &str)]) -> reqwest::blocking::RequestBuilder {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => char::from(b).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let body = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
    rb.header("Content-Type", "application/x-www-form-urlencoded").body(body)
}

/// The answer to a request: `Err` when none came (connection refused or cut).
fn send(rb: reqwest::blocking::RequestBuilder) -> Result<(u16, Value), String> {
    let response = rb.send().map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().map_err(|e| e.to_string())?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

struct Run {
    opts: Options,
    dir: tempfile::TempDir,
    api_token: String,
    http: reqwest::blocking::Client,
}

impl Run {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.opts.server);
        for var in [
            "CRM_USERS_DATA",
            "CRM_USERS_LISTEN",
            "CRM_USERS_CONFIG",
            "CRM_USERS_LOG_FORMAT",
            "CRM_USERS_STORAGE",
            "CRM_USERS_DATABASE_URL",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.opts.server_env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd.args(args).arg("--data").arg(self.data()).arg("--config").arg(self.dir.path().join("config.toml"));
        cmd
    }

    /// An offline CLI command that must succeed; its stdout.
    fn cli(&self, args: &[&str]) -> Result<String, String> {
        let out = self.command(args).output().map_err(|e| format!("cannot run {args:?}: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            return Err(format!(
                "{args:?} failed ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(stdout)
    }

    fn start(&self) -> Result<Server, String> {
        let mut cmd = self.command(&["serve", "--listen", "127.0.0.1:0"]);
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = cmd.spawn().map_err(|e| format!("cannot start the server: {e}"))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        loop {
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("listening on ") {
                        return Ok(Server { child, base: addr.trim().to_owned() });
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let status = child.wait().map_err(|e| e.to_string())?;
                    return Err(format!("the server did not start after a crash ({status}); sled refused its folder?"));
                }
            }
        }
    }

    fn api(&self, server: &Server, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        self.http.request(method, format!("{}{path}", server.base)).bearer_auth(&self.api_token)
    }

    fn get(&self, server: &Server, path: &str) -> Result<(u16, Value), String> {
        send(self.api(server, reqwest::Method::GET, path))
    }
}

/// One writer's loop until the server stops answering.
fn writer(run: &Run, server: &Server, ledger: &Mutex<Ledger>, stop: &AtomicBool, cycle: u32, w: usize, mut rng: Rng) {
    let mut mine: Vec<UserRec> = Vec::new();
    let mut my_tokens: Vec<String> = Vec::new();
    let mut n = 0u64;
    let post = reqwest::Method::POST;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let op = if mine.is_empty() { 0 } else { rng.below(7) };
        let user = (!mine.is_empty()).then(|| mine[rng.below(mine.len() as u64) as usize].clone());
        let outcome = match (op, &user) {
            (0, _) => {
                let email = format!("c{cycle}-w{w}-{n}@example.com");
                let form = [("email", email.as_str()), ("password", PASSWORD), ("newsletters_subscribe", "1")];
                match send(form_body(run.api(server, post.clone(), "/api/v1/users/create"), &form)) {
                    Ok((200, body)) => {
                        let id = body["user"]["id"].as_u64();
                        let token = body["access"]["token"].as_str().map(str::to_owned);
                        if let (Some(id), Some(token)) = (id, token) {
                            let rec = UserRec { id, email, token };
                            mine.push(rec.clone());
                            let mut l = ledger.lock().expect("ledger");
                            l.users.push(rec);
                            l.acknowledged += 1;
                        }
                        Ok(())
                    }
                    Ok((status, body)) => Err(format!("users/create answered {status} {body}")),
                    Err(e) => {
                        let mut l = ledger.lock().expect("ledger");
                        l.unanswered_registrations.push(email);
                        l.cut_off += 1;
                        Err(e)
                    }
                }
            }
            (1, Some(u)) => {
                let form = [("email", u.email.as_str()), ("password", PASSWORD)];
                match send(form_body(run.http.post(format!("{}/api/v1/users/login", server.base)), &form)) {
                    Ok((200, body)) => {
                        if let Some(token) = body["access"]["token"].as_str() {
                            my_tokens.push(token.to_owned());
                            let mut l = ledger.lock().expect("ledger");
                            l.tokens.insert(token.to_owned(), (u.id, Some(true)));
                            l.acknowledged += 1;
                        }
                        Ok(())
                    }
                    Ok((status, body)) => Err(format!("users/login answered {status} {body}")),
                    Err(e) => {
                        ledger.lock().expect("ledger").cut_off += 1;
                        Err(e)
                    }
                }
            }
            (2, Some(_)) if !my_tokens.is_empty() => {
                let token = my_tokens.swap_remove(rng.below(my_tokens.len() as u64) as usize);
                let sent = send(run.http.get(format!("{}/api/v1/users/logout", server.base)).bearer_auth(&token));
                let mut l = ledger.lock().expect("ledger");
                let entry = l.tokens.get_mut(&token).expect("a token of the ledger");
                match sent {
                    Ok((200, _)) => {
                        entry.1 = Some(false);
                        l.acknowledged += 1;
                        Ok(())
                    }
                    Ok((status, body)) => Err(format!("users/logout answered {status} {body}")),
                    Err(e) => {
                        entry.1 = None;
                        l.cut_off += 1;
                        Err(e)
                    }
                }
            }
            (3, Some(u)) => {
                let (key, value) = (format!("k-{cycle}-{w}-{n}"), format!("v{}", rng.next_u64()));
                let body = json!({"user_id": u.id, "key": key, "value": value, "is_public": true});
                match send(run.api(server, post.clone(), "/api/v1/user-meta/upsert").json(&body)) {
                    Ok((200, _)) => {
                        let mut l = ledger.lock().expect("ledger");
                        l.meta.push((u.id, key, value));
                        l.acknowledged += 1;
                        Ok(())
                    }
                    Ok((status, body)) => Err(format!("user-meta/upsert answered {status} {body}")),
                    Err(e) => {
                        ledger.lock().expect("ledger").cut_off += 1;
                        Err(e)
                    }
                }
            }
            (4, Some(u)) => {
                let form = [("email", u.email.as_str()), ("type", "crm_test"), ("city", "Trnava")];
                match send(form_body(run.api(server, post.clone(), "/api/v1/users/address"), &form)) {
                    Ok((200, body)) => {
                        let mut l = ledger.lock().expect("ledger");
                        if let Some(id) = body["address"]["id"].as_u64() {
                            l.addresses.push((u.id, id));
                        }
                        l.acknowledged += 1;
                        Ok(())
                    }
                    Ok((status, body)) => Err(format!("users/address answered {status} {body}")),
                    Err(e) => {
                        ledger.lock().expect("ledger").cut_off += 1;
                        Err(e)
                    }
                }
            }
            (_, Some(u)) => {
                let group = 1 + rng.below(GROUPS);
                let join = rng.below(3) != 0;
                let rb = if join {
                    run.api(server, post.clone(), &format!("/api/groups/{group}/members"))
                        .json(&json!({"user_id": u.id}))
                } else {
                    run.api(server, reqwest::Method::DELETE, &format!("/api/groups/{group}/members/{}", u.id))
                };
                let sent = send(rb);
                let mut l = ledger.lock().expect("ledger");
                match sent {
                    Ok((200, _)) => {
                        l.memberships.insert((u.id, group), Some(join));
                        l.acknowledged += 1;
                        Ok(())
                    }
                    Ok((status, body)) => Err(format!("group membership change answered {status} {body}")),
                    Err(e) => {
                        l.memberships.insert((u.id, group), None);
                        l.cut_off += 1;
                        Err(e)
                    }
                }
            }
            _ => Ok(()),
        };
        if let Err(e) = outcome {
            // Only the kill may stop a writer.
            if !stop.load(Ordering::Relaxed) {
                ledger.lock().expect("ledger").unexpected.push(format!("writer {w}: {e}"));
            }
            return;
        }
    }
}

/// Everything the ledger says was acknowledged is there; cut-off registrations are whole or
/// absent; memberships agree both ways. Errors list what is wrong.
fn verify(run: &Run, server: &Server, ledger: &Ledger, report: &mut Report) -> Result<(), String> {
    let mut wrong = ledger.unexpected.clone();
    for u in &ledger.users {
        match run.get(server, &format!("/api/users/by-email/{}", u.email))? {
            (200, body) if body["id"].as_u64() == Some(u.id) => {}
            other => wrong.push(format!("acknowledged user {} ({}) not found by email: {other:?}", u.id, u.email)),
        }
        match send(run.http.get(format!("{}/api/v1/user/info", server.base)).bearer_auth(&u.token))? {
            (200, body) if body["user"]["id"].as_u64() == Some(u.id) => {}
            other => wrong.push(format!("registration token of user {} does not sign in: {other:?}", u.id)),
        }
    }
    let mut meta_of: BTreeMap<u64, Value> = BTreeMap::new();
    for (user, key, value) in &ledger.meta {
        if !meta_of.contains_key(user) {
            meta_of.insert(*user, run.get(server, &format!("/api/users/{user}/meta"))?.1);
        }
        let found = meta_of[user]["data"]
            .as_array()
            .is_some_and(|m| m.iter().any(|e| e["key"] == *key && e["value"] == *value));
        if !found {
            wrong.push(format!("acknowledged meta {key}={value} of user {user} is missing"));
        }
    }
    for (token, (user, live)) in &ledger.tokens {
        let Some(live) = live else { continue };
        let (status, body) = send(run.http.get(format!("{}/api/v1/user/info", server.base)).bearer_auth(token))?;
        let signs_in = status == 200 && body["user"]["id"].as_u64() == Some(*user);
        if signs_in != *live {
            wrong.push(format!(
                "token of user {user}: acknowledged {} but user/info answered {status}",
                if *live { "issued" } else { "revoked" }
            ));
        }
    }
    let mut addresses_of: BTreeMap<u64, Value> = BTreeMap::new();
    for (user, id) in &ledger.addresses {
        if !addresses_of.contains_key(user) {
            addresses_of.insert(*user, run.get(server, &format!("/api/users/{user}/addresses"))?.1);
        }
        if !addresses_of[user]["data"].as_array().is_some_and(|a| a.iter().any(|e| e["id"].as_u64() == Some(*id))) {
            wrong.push(format!("acknowledged address {id} of user {user} is missing"));
        }
    }
    // Membership both ways: the group's members and each user's groups must agree, and agree
    // with every acknowledged change.
    let mut members: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for group in 1..=GROUPS {
        let (_, body) = run.get(server, &format!("/api/groups/{group}"))?;
        let list = body["group"]["members"]
            .as_array()
            .map(|m| m.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        members.insert(group, list);
    }
    for u in &ledger.users {
        let (_, body) = run.get(server, &format!("/api/users/{}/groups", u.id))?;
        let groups: Vec<u64> =
            body["groups"].as_array().map(|g| g.iter().filter_map(|g| g["id"].as_u64()).collect()).unwrap_or_default();
        for group in 1..=GROUPS {
            let (in_user, in_group) = (groups.contains(&group), members[&group].contains(&u.id));
            if in_user != in_group {
                wrong.push(format!(
                    "user {} in group {group}: user's groups say {in_user}, group's members say {in_group}",
                    u.id
                ));
            }
            if let Some(Some(member)) = ledger.memberships.get(&(u.id, group))
                && in_user != *member
            {
                wrong.push(format!("user {} in group {group}: acknowledged {member}, found {in_user}", u.id));
            }
        }
    }
    for email in &ledger.unanswered_registrations {
        match run.get(server, &format!("/api/users/by-email/{email}"))? {
            (404, _) => {}
            (200, body) => {
                let id = body["id"].as_u64().unwrap_or(0);
                let meta = run.get(server, &format!("/api/users/{id}/meta"))?.1;
                let tokens = run.get(server, &format!("/api/users/{id}/access-tokens"))?.1;
                let has_meta =
                    meta["data"].as_array().is_some_and(|m| m.iter().any(|e| e["key"] == "newsletters_subscribe"));
                let has_token = tokens["data"].as_array().is_some_and(|t| !t.is_empty());
                if has_meta && has_token {
                    report.cut_off_registrations_present += 1;
                } else {
                    wrong.push(format!(
                        "cut-off registration {email} is half there: meta {has_meta}, token {has_token}"
                    ));
                }
            }
            other => wrong.push(format!("cut-off registration {email}: by-email answered {other:?}")),
        }
    }
    if wrong.is_empty() { Ok(()) } else { Err(wrong.join("\n")) }
}

/// Run the cycles; `Err` describes the first cycle that lost or half-wrote something.
pub fn run(opts: Options) -> Result<Report, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::write(dir.path().join("config.toml"), CONFIG).map_err(|e| e.to_string())?;
    let mut run = Run { opts, dir, api_token: String::new(), http: client() };
    let created = run.cli(&["api-token", "create", "--name", "crash", "--allow", "*"])?;
    run.api_token = created.lines().last().unwrap_or_default().trim().to_owned();
    for group in 1..=GROUPS {
        run.cli(&["group", "add", &format!("G{group}")])?;
    }
    let mut rng = Rng::new(run.opts.seed);
    let mut report = Report::default();
    let mut all = Ledger::default();
    for cycle in 1..=run.opts.cycles {
        let mut server = run.start()?;
        let ledger = Mutex::new(Ledger::default());
        let stop = AtomicBool::new(false);
        let (lo, hi) = run.opts.kill_after;
        let span = (hi.saturating_sub(lo)).as_millis() as u64;
        let kill_at = lo + Duration::from_millis(rng.below(span + 1));
        let seeds: Vec<u64> = (0..WRITERS).map(|_| rng.next_u64()).collect();
        std::thread::scope(|scope| {
            for (w, seed) in seeds.iter().enumerate() {
                let (run, server, ledger, stop) = (&run, &server, &ledger, &stop);
                scope.spawn(move || writer(run, server, ledger, stop, cycle, w, Rng::new(*seed)));
            }
            std::thread::sleep(kill_at);
            stop.store(true, Ordering::Relaxed);
            // SIGKILL: no shutdown hook runs, whatever sled holds in memory is gone.
            let _ = Command::new("kill").arg("-KILL").arg(server.child.id().to_string()).status();
        });
        let _ = server.child.wait();
        let ledger = ledger.into_inner().expect("ledger");
        if run.opts.offline_check {
            let check = run
                .cli(&["check"])
                .map_err(|e| format!("cycle {cycle}: the store is inconsistent after SIGKILL:\n{e}"))?;
            if !check.starts_with("ok: ") {
                return Err(format!("cycle {cycle}: check said {check}"));
            }
        }
        let server = run.start().map_err(|e| format!("cycle {cycle}: {e}"))?;
        let verified = verify(&run, &server, &ledger, &mut report);
        report.cycles = cycle;
        report.acknowledged += ledger.acknowledged;
        report.cut_off += ledger.cut_off;
        merge(&mut all, ledger);
        // The last cycle checks everything acknowledged since the start, not just its own.
        let verified = verified.and_then(|()| {
            if cycle == run.opts.cycles { verify(&run, &server, &all, &mut Report::default()) } else { Ok(()) }
        });
        stop_server(server);
        verified.map_err(|e| format!("cycle {cycle} (seed {}, kill after {kill_at:?}):\n{e}", run.opts.seed))?;
    }
    Ok(report)
}

/// Fold a cycle's ledger into the whole run's (later states win).
fn merge(all: &mut Ledger, cycle: Ledger) {
    all.users.extend(cycle.users);
    all.tokens.extend(cycle.tokens);
    all.meta.extend(cycle.meta);
    all.addresses.extend(cycle.addresses);
    all.memberships.extend(cycle.memberships);
}

fn stop_server(mut server: Server) {
    let _ = Command::new("kill").arg("-TERM").arg(server.child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = server.child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// A seed from the clock, for runs that do not pass one.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
}

/// The path of a sibling executable of the running one (same target folder).
pub fn sibling_exe(name: &str) -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let path = me.parent()?.join(name);
    path.exists().then_some(path)
}
