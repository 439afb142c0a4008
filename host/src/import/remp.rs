//! `crm-users import remp`: read a REMP CRM database (MySQL or MariaDB) table by table and
//! store its users, meta, groups, addresses, tokens, audit rows and API tokens under REMP's
//! own ids. Tokens are stored as SHA-256 digests of REMP's plain-text values, so clients and
//! integrations keep working; bcrypt password hashes are kept as they are and are rehashed
//! on the next sign-in. Row mapping is in `map.rs`; this file talks to MySQL and decides the
//! order, since later tables refer to rows of earlier ones.
//!
//! Importing again updates every record in place and removes, for each imported user, the
//! meta entries, group memberships, access tokens and autologin tokens REMP no longer has, so
//! a token revoked in REMP between two runs stops working here too.
//!
//! Not imported: the admin ACL (`admin_*`), other modules' tables, `addresses_meta`,
//! `user_stats`, `user_actions_log`, and the password-reset and email-confirmation tokens.

pub mod map;

use super::{Report, TableReport, Writer, remove_stale};
use crate::domain::{address::country_by_iso, secret::TokenDigest};
use crate::store::{Change, Imported, Store};
use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use map::{Context, Mapped, Record};
use mysql::prelude::Queryable;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// How long to wait for the MySQL server to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What to import from where.
#[derive(Debug, Clone)]
pub struct Options {
    /// `mysql://USER:PASS@HOST[:PORT]/DB`
    pub mysql_url: String,
    /// Read and check everything, write nothing.
    pub dry_run: bool,
    /// The zone REMP's `DATETIME`s were written in (its PHP default time zone).
    pub timezone: chrono_tz::Tz,
    /// The locale of users whose row has none.
    pub default_locale: String,
    /// Address types known from the config; addresses of these types import too.
    pub known_address_types: Vec<String>,
    /// Draw a progress bar per table on stderr (only when it is a terminal).
    pub progress: bool,
}

/// An open connection to the REMP database and the tables it has.
struct Source {
    conn: mysql::Conn,
    tables: HashSet<String>,
    progress: bool,
}

/// Connect, with errors that name the server but never the password.
fn connect(url: &str) -> anyhow::Result<(mysql::Conn, String)> {
    let opts = mysql::Opts::from_url(url)
        .map_err(|e| anyhow::anyhow!("invalid --mysql-url ({e}); expected mysql://USER:PASS@HOST[:PORT]/DB"))?;
    let db =
        opts.get_db_name().filter(|db| !db.is_empty()).map(str::to_owned).ok_or_else(|| {
            anyhow::anyhow!("--mysql-url names no database; expected mysql://USER:PASS@HOST[:PORT]/DB")
        })?;
    let server = format!("{}:{}", opts.get_ip_or_hostname(), opts.get_tcp_port());
    let opts = mysql::OptsBuilder::from_opts(opts).tcp_connect_timeout(Some(CONNECT_TIMEOUT));
    let conn = mysql::Conn::new(opts).map_err(|e| anyhow::anyhow!("cannot connect to MySQL at {server}: {e}"))?;
    Ok((conn, db))
}

impl Source {
    fn open(url: &str, progress: bool) -> anyhow::Result<Self> {
        let (mut conn, db) = connect(url)?;
        let tables: Vec<String> = conn
            .query("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
            .with_context(|| format!("cannot list the tables of database {db}"))?;
        Ok(Source { conn, tables: tables.into_iter().collect(), progress })
    }

    fn count(&mut self, table: &str) -> anyhow::Result<u64> {
        let n: Option<u64> = self
            .conn
            .query_first(format!("SELECT COUNT(*) FROM `{table}`"))
            .with_context(|| format!("cannot count {table}"))?;
        Ok(n.unwrap_or(0))
    }

    fn bar(&self, table: &str, len: u64) -> ProgressBar {
        let target = if self.progress { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(Some(len), target).with_prefix(table.to_owned());
        if let Ok(style) = ProgressStyle::with_template("{prefix:>26} [{bar:30}] {pos}/{len} {elapsed}") {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }

    /// Every row of a table, mapped and queued; the keys of the records stored come back.
    async fn table(
        &mut self,
        name: &str,
        order: Option<&str>,
        writer: &mut Writer<'_>,
        report: &mut Report,
        mut map: impl FnMut(&Record) -> Mapped<(u64, Imported)>,
    ) -> anyhow::Result<HashSet<u64>> {
        let mut t = TableReport { table: name.to_owned(), ..Default::default() };
        let mut stored = HashSet::new();
        if !self.tables.contains(name) {
            t.absent = Some("not in the database; nothing to import".into());
            report.tables.push(t);
            return Ok(stored);
        }
        let total = self.count(name)?;
        let bar = self.bar(name, total);
        let sql = match order {
            Some(column) => format!("SELECT * FROM `{name}` ORDER BY `{column}`"),
            None => format!("SELECT * FROM `{name}`"),
        };
        let rows = self.conn.query_iter(sql).with_context(|| format!("cannot read {name}"))?;
        for (n, row) in rows.enumerate() {
            let record = Record::from_row(row.with_context(|| format!("cannot read {name}"))?);
            t.read += 1;
            bar.inc(1);
            let label = match record.int("id") {
                Ok(Some(id)) => format!("id={id}"),
                _ => format!("row {}", n + 1),
            };
            match map(&record) {
                Ok((key, imported)) => {
                    if writer.push(label, key, imported) {
                        stored.extend(writer.flush(&mut t).await?);
                    }
                }
                Err(reason) => t.skipped.push((label, reason)),
            }
        }
        stored.extend(writer.flush(&mut t).await?);
        bar.finish_and_clear();
        report.tables.push(t);
        Ok(stored)
    }

    /// All rows of a small table, for lookups.
    fn read_all(&mut self, name: &str) -> anyhow::Result<Option<Vec<Record>>> {
        if !self.tables.contains(name) {
            return Ok(None);
        }
        let rows: Vec<mysql::Row> =
            self.conn.query(format!("SELECT * FROM `{name}`")).with_context(|| format!("cannot read {name}"))?;
        Ok(Some(rows.into_iter().map(Record::from_row).collect()))
    }
}

/// The report of the table read last.
fn last(report: &mut Report) -> &mut TableReport {
    if report.tables.is_empty() {
        report.tables.push(TableReport::default());
    }
    let at = report.tables.len() - 1;
    &mut report.tables[at]
}

fn not_imported(what: &str, id: u64) -> String {
    format!("{what} {id} was not imported")
}

/// A uuid for a user whose REMP row has none (rows from before 2024-02): derived from the id
/// with a key kept in the store, so that importing twice gives the same uuid.
fn uuid_for(key: &[u8; 32], user_id: u64) -> String {
    use hmac::{Hmac, Mac};
    let mut bytes = [0u8; 16];
    if let Ok(mut mac) = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key) {
        mac.update(&user_id.to_be_bytes());
        bytes.copy_from_slice(&mac.finalize().into_bytes()[..16]);
    }
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

/// Import everything; the report says what was taken and what was not, and why.
pub async fn import(store: &dyn Store, opts: &Options) -> anyhow::Result<Report> {
    let mut src = Source::open(&opts.mysql_url, opts.progress)?;
    let mut report = Report { dry_run: opts.dry_run, tables: Vec::new() };
    let mut writer = Writer::new(store, opts.dry_run);

    // Countries are not stored (the list ships with crm-users) but map REMP's ids to ours.
    let mut ctx = Context { tz: opts.timezone, default_locale: opts.default_locale.clone(), countries: HashMap::new() };
    let mut t = TableReport { table: "countries".into(), ..Default::default() };
    match src.read_all("countries")? {
        None => t.absent = Some("not in the database; addresses keep no country".into()),
        Some(rows) => {
            for r in rows {
                t.read += 1;
                let mapped = r.req_id("id").and_then(|id| {
                    let iso = r.req_text("iso_code")?;
                    let ours =
                        country_by_iso(&iso).ok_or_else(|| format!("ISO code {iso:?} is unknown to crm-users"))?;
                    Ok((id, ours.id))
                });
                match mapped {
                    Ok((id, ours)) => {
                        ctx.countries.insert(id, ours);
                        t.imported += 1;
                    }
                    Err(reason) => t.skipped.push((format!("id={}", r.int("id").ok().flatten().unwrap_or(0)), reason)),
                }
            }
        }
    }
    report.tables.push(t);

    let mut type_keys: Vec<String> = Vec::new();
    let stored_types = src
        .table("address_types", None, &mut writer, &mut report, |r| {
            let kind = map::address_type(r)?;
            type_keys.push(kind.key.clone());
            Ok(((type_keys.len() - 1) as u64, Imported::AddressType(kind)))
        })
        .await?;
    let mut types: HashSet<String> = stored_types.iter().map(|i| type_keys[*i as usize].clone()).collect();
    types.extend(store.stored_address_types().await?.into_iter().map(|t| t.key));
    types.extend(opts.known_address_types.iter().cloned());

    let uuid_key =
        if opts.dry_run { crate::domain::secret::new_key()? } else { store.server_secret("remp-import-uuid").await? };
    let users = src
        .table("users", Some("id"), &mut writer, &mut report, |r| {
            let mut user = map::user(&ctx, r)?;
            if user.uuid.is_empty() {
                user.uuid = uuid_for(&uuid_key, user.id);
            }
            Ok((user.id, Imported::User(Box::new(user))))
        })
        .await?;
    let user_known = |id: u64| if users.contains(&id) { Ok(()) } else { Err(not_imported("user", id)) };

    // What REMP holds per user, so that a re-import also removes what REMP removed since.
    let mut meta_keys: HashMap<u64, HashSet<String>> = HashMap::new();
    src.table("user_meta", Some("id"), &mut writer, &mut report, |r| {
        let entry = map::meta(&ctx, r)?;
        user_known(entry.user_id)?;
        meta_keys.entry(entry.user_id).or_default().insert(entry.key.clone());
        Ok((0, Imported::Meta(entry)))
    })
    .await?;
    let mut stale = Vec::new();
    for &user_id in &users {
        for entry in store.user_meta(user_id).await? {
            if !meta_keys.get(&user_id).is_some_and(|keys| keys.contains(&entry.key)) {
                stale.push(Change::DeleteMeta { user_id, key: entry.key, value: None });
            }
        }
    }
    remove_stale(store, opts.dry_run, last(&mut report), stale).await?;

    let groups = src
        .table("groups", Some("id"), &mut writer, &mut report, |r| {
            let group = map::group(&ctx, r)?;
            Ok((group.id, Imported::Group(group)))
        })
        .await?;
    let mut member_of: HashMap<u64, HashSet<u64>> = HashMap::new();
    src.table("user_groups", Some("id"), &mut writer, &mut report, |r| {
        let (user_id, group_id) = (r.req_id("user_id")?, r.req_id("group_id")?);
        user_known(user_id)?;
        if !groups.contains(&group_id) {
            return Err(not_imported("group", group_id));
        }
        member_of.entry(user_id).or_default().insert(group_id);
        let since = r.time("created_at", ctx.tz)?.unwrap_or_else(crate::domain::now);
        Ok((0, Imported::Membership { user_id, group_id, since }))
    })
    .await?;
    let mut stale = Vec::new();
    for &user_id in &users {
        for group_id in store.groups_of_user(user_id).await? {
            if !member_of.get(&user_id).is_some_and(|g| g.contains(&group_id)) {
                stale.push(Change::RemoveFromGroup { user_id, group_id });
            }
        }
    }
    remove_stale(store, opts.dry_run, last(&mut report), stale).await?;

    // REMP's `access_tokens.token` is not unique; a second row with the same token could only
    // replace the first, so it is reported instead.
    let mut seen = HashMap::new();
    let devices = src
        .table("device_tokens", Some("id"), &mut writer, &mut report, |r| {
            let device = map::device_token(&ctx, r)?;
            if let Some(first) = seen.insert(device.digest, device.id) {
                return Err(format!("the same token as id={first}"));
            }
            Ok((device.id, Imported::DeviceToken(device)))
        })
        .await?;
    let mut seen: HashMap<TokenDigest, (u64, u64)> = HashMap::new();
    src.table("access_tokens", Some("id"), &mut writer, &mut report, |r| {
        let mut token = map::access_token(&ctx, r)?;
        user_known(token.user_id)?;
        if let Some((first, _)) = seen.get(&token.digest) {
            return Err(format!("the same token as id={first}"));
        }
        seen.insert(token.digest, (token.id, token.user_id));
        token.device_token_id = token.device_token_id.filter(|d| devices.contains(d));
        Ok((token.id, Imported::AccessToken(token)))
    })
    .await?;
    // A token signed out in REMP since the last import must stop working here too.
    let mut stale = Vec::new();
    for &user_id in &users {
        for token in store.access_tokens_of_user(user_id).await? {
            if seen.get(&token.digest).is_none_or(|(_, owner)| *owner != user_id) {
                stale.push(Change::DeleteAccessToken(token.digest));
            }
        }
    }
    remove_stale(store, opts.dry_run, last(&mut report), stale).await?;
    let mut seen: HashSet<TokenDigest> = HashSet::new();
    src.table("autologin_tokens", Some("id"), &mut writer, &mut report, |r| {
        let token = map::autologin_token(&ctx, r)?;
        user_known(token.user_id)?;
        seen.insert(token.digest);
        Ok((token.id, Imported::AutologinToken(token)))
    })
    .await?;
    let mut stale = Vec::new();
    for &user_id in &users {
        for token in store.autologin_tokens_of_user(user_id).await? {
            if !seen.contains(&token.digest) {
                stale.push(Change::DeleteAutologinToken(token.digest));
            }
        }
    }
    remove_stale(store, opts.dry_run, last(&mut report), stale).await?;
    src.table("user_connected_accounts", Some("id"), &mut writer, &mut report, |r| {
        let account = map::connected_account(&ctx, r)?;
        user_known(account.user_id)?;
        Ok((account.id, Imported::ConnectedAccount(account)))
    })
    .await?;

    let type_known = |kind: &str| {
        if types.contains(kind) { Ok(()) } else { Err(format!("address type {kind:?} was not imported")) }
    };
    let addresses = src
        .table("addresses", Some("id"), &mut writer, &mut report, |r| {
            let address = map::address(&ctx, r)?;
            user_known(address.user_id)?;
            type_known(&address.kind)?;
            Ok((address.id, Imported::Address(Box::new(address))))
        })
        .await?;
    src.table("address_change_requests", Some("id"), &mut writer, &mut report, |r| {
        let request = map::change_request(&ctx, r)?;
        user_known(request.user_id)?;
        type_known(&request.kind)?;
        if let Some(address) = request.address_id.filter(|a| !addresses.contains(a)) {
            return Err(not_imported("address", address));
        }
        Ok((request.id, Imported::AddressChangeRequest(Box::new(request))))
    })
    .await?;

    src.table("login_attempts", Some("id"), &mut writer, &mut report, |r| {
        let mut attempt = map::login_attempt(&ctx, r)?;
        // An attempt of a user left out still counts for its IP.
        attempt.user_id = attempt.user_id.filter(|u| users.contains(u));
        Ok((attempt.id, Imported::LoginAttempt(attempt)))
    })
    .await?;
    src.table("change_passwords_logs", Some("id"), &mut writer, &mut report, |r| {
        let row = map::password_change(&ctx, r)?;
        user_known(row.user_id)?;
        Ok((row.id, Imported::PasswordChange(row)))
    })
    .await?;

    let grants = api_grants(&mut src, &mut report)?;
    src.table("api_tokens", Some("id"), &mut writer, &mut report, |r| {
        let id = r.req_id("id")?;
        let routes = grants.get(&id).cloned().unwrap_or_default();
        let token = map::api_token(&ctx, r, routes)?;
        Ok((token.id, Imported::ApiToken(token)))
    })
    .await?;
    Ok(report)
}

/// Route names granted to each REMP API token: `api_access_tokens` joined with `api_access`,
/// each resource mapped to this service's route names. Other modules' resources are reported.
fn api_grants(src: &mut Source, report: &mut Report) -> anyhow::Result<HashMap<u64, Vec<String>>> {
    let mut access = TableReport { table: "api_access".into(), ..Default::default() };
    let mut routes_of_access: HashMap<u64, &'static [&'static str]> = HashMap::new();
    match src.read_all("api_access")? {
        None => access.absent = Some("not in the database; API tokens get no routes".into()),
        Some(rows) => {
            for r in rows {
                access.read += 1;
                let label = format!("id={}", r.int("id").ok().flatten().unwrap_or(0));
                let mapped = r.req_id("id").and_then(|id| {
                    let resource = r.req_text("resource")?;
                    let routes = map::routes_of_resource(&resource)
                        .ok_or_else(|| format!("resource {resource} is not served by crm-users (another module's)"))?;
                    Ok((id, routes))
                });
                match mapped {
                    Ok((id, routes)) => {
                        routes_of_access.insert(id, routes);
                        access.imported += 1;
                    }
                    Err(reason) => access.skipped.push((label, reason)),
                }
            }
        }
    }
    report.tables.push(access);
    let mut links = TableReport { table: "api_access_tokens".into(), ..Default::default() };
    let mut grants: HashMap<u64, Vec<String>> = HashMap::new();
    match src.read_all("api_access_tokens")? {
        None => links.absent = Some("not in the database; API tokens get no routes".into()),
        Some(rows) => {
            for (n, r) in rows.into_iter().enumerate() {
                links.read += 1;
                let link = r.req_id("api_token_id").and_then(|token| Ok((token, r.req_id("api_access_id")?)));
                match link {
                    Ok((token, access_id)) => {
                        if let Some(routes) = routes_of_access.get(&access_id) {
                            let granted = grants.entry(token).or_default();
                            for route in routes.iter() {
                                if !granted.iter().any(|g| g == route) {
                                    granted.push((*route).to_owned());
                                }
                            }
                        }
                        // A link to another module's resource was reported with api_access.
                        links.imported += 1;
                    }
                    Err(reason) => links.skipped.push((format!("row {}", n + 1), reason)),
                }
            }
        }
    }
    report.tables.push(links);
    Ok(grants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_uuids_are_stable_v4_and_distinct() {
        let key = [7u8; 32];
        let a = uuid_for(&key, 1);
        assert_eq!(a, uuid_for(&key, 1));
        assert_ne!(a, uuid_for(&key, 2));
        assert_ne!(a, uuid_for(&[8u8; 32], 1));
        assert_eq!(uuid::Uuid::parse_str(&a).unwrap().get_version_num(), 4);
    }

    #[test]
    fn bad_urls_are_refused_without_a_connection() {
        let e = connect("postgres://u:p@localhost/db").unwrap_err().to_string();
        assert!(e.starts_with("invalid --mysql-url"), "{e}");
        let e = connect("mysql://u:secret@localhost").unwrap_err().to_string();
        assert!(e.contains("names no database") && !e.contains("secret"), "{e}");
    }
}
