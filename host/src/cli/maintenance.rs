//! Offline maintenance of a store: `crm-users export` and `crm-users import --input` (backups
//! as JSON lines, format in [`crate::store::backup`]), `crm-users check` (the sled store's
//! fsck) and `crm-users migrate` (a store copied into another, sled or PostgreSQL, and
//! verified). A sled store is worked on under its data folder's lock; a PostgreSQL database
//! is shared, so no server should write to it meanwhile.

use super::lock_data_folder;
use crate::config::{Config, SLED_FOLDER};
use crate::store::{
    Store, StoreLocation, backup,
    postgres::{PostgresOptions, PostgresStore},
    sled::SledStore,
};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where an import into an empty sled store is built before it takes the store's place.
const STAGING_FOLDER: &str = "sled.importing";
/// Where `import --input -` keeps stdin, which it reads twice (check, then write).
const SPOOL_FILE: &str = "import-stdin.jsonl";
/// Connections an offline command keeps to PostgreSQL.
const OFFLINE_POOL_SIZE: usize = 2;

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// A store to work on offline: where it is, and for sled the data folder whose lock keeps
/// servers out.
struct Offline {
    location: StoreLocation,
    data: Option<PathBuf>,
}

impl Offline {
    /// The store the config names.
    fn configured(config: &Config) -> Self {
        let data = matches!(config.storage, StoreLocation::Sled { .. }).then(|| config.data.clone());
        Offline { location: config.storage.clone(), data }
    }

    /// `sled:DIR` (a data folder: the store is its `sled/`) or `postgres:URL`, also a bare
    /// `postgres://` or `postgresql://` URL.
    fn named(text: &str, config: &Config) -> anyhow::Result<Self> {
        if let Some(dir) = text.strip_prefix("sled:") {
            if dir.is_empty() {
                anyhow::bail!("'{text}' names no folder: sled:DIR names a data folder, e.g. sled:./data");
            }
            let commit = match &config.storage {
                StoreLocation::Sled { commit, .. } => *commit,
                StoreLocation::Postgres(_) => Default::default(),
            };
            let data = PathBuf::from(dir);
            return Ok(Offline {
                location: StoreLocation::Sled { dir: data.join(SLED_FOLDER), commit },
                data: Some(data),
            });
        }
        let url = text.strip_prefix("postgres:").filter(|rest| !rest.starts_with("//")).unwrap_or(text);
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            anyhow::bail!("'{text}' is not sled:DIR or postgres:URL (e.g. postgres:postgres://crm@db/crm_users)");
        }
        PostgresOptions::parse_url(url)?;
        let options = PostgresOptions { url: url.to_owned(), pool_size: OFFLINE_POOL_SIZE };
        Ok(Offline { location: StoreLocation::Postgres(options), data: None })
    }

    fn lock(&self) -> anyhow::Result<Option<File>> {
        self.data.as_deref().map(lock_data_folder).transpose()
    }

    /// Open the store (the caller holds the lock).
    async fn open(&self) -> anyhow::Result<Box<dyn Store>> {
        Ok(match &self.location {
            StoreLocation::Sled { dir, commit } => Box::new(SledStore::open_with(dir, *commit)?),
            StoreLocation::Postgres(options) => Box::new(
                PostgresStore::open(&PostgresOptions { pool_size: OFFLINE_POOL_SIZE, ..options.clone() }).await?,
            ),
        })
    }

    /// Write the export at `path` (already validated) into this store, which must be empty:
    /// all of it or, on any failure, nothing. A sled store is built in a staging folder that
    /// takes its place when complete; PostgreSQL writes it in one transaction.
    async fn fill_empty(&self, path: &Path, progress: &(dyn Fn(u64) + Sync)) -> anyhow::Result<u64> {
        {
            let store = self.open().await?;
            if !backup::is_empty(store.as_ref()).await? {
                anyhow::bail!(
                    "{} holds data already; import into an empty store, or pass --merge to write the records over it (each replaces the record with its id)",
                    self.location.describe()
                );
            }
        }
        match &self.location {
            StoreLocation::Sled { dir, commit } => {
                let staging = dir.with_file_name(STAGING_FOLDER);
                if staging.exists() {
                    // Left by an import that was interrupted; it never took the store's place.
                    std::fs::remove_dir_all(&staging)
                        .with_context(|| format!("cannot remove {}", staging.display()))?;
                }
                let written = async {
                    let store = SledStore::open_with(&staging, *commit)?;
                    let records = backup::import(&store, open_input(path)?, progress).await?;
                    store.flush().await?;
                    anyhow::Ok(records)
                }
                .await;
                let records = match written {
                    Ok(n) => n,
                    Err(e) => {
                        let _ = std::fs::remove_dir_all(&staging);
                        return Err(e);
                    }
                };
                // The live store is empty (checked above, and the lock keeps everyone else out).
                std::fs::remove_dir_all(dir)
                    .with_context(|| format!("cannot remove the empty store {}", dir.display()))?;
                std::fs::rename(&staging, dir)
                    .with_context(|| format!("cannot move {} into place", staging.display()))?;
                if let Some(parent) = dir.parent() {
                    File::open(parent).and_then(|d| d.sync_all()).context("cannot sync the data folder")?;
                }
                Ok(records)
            }
            StoreLocation::Postgres(options) => {
                let store = PostgresStore::open(&PostgresOptions { pool_size: 1, ..options.clone() }).await?;
                let mut records = backup::Records::new(open_input(path)?)?;
                let mut next = || {
                    let line = records.line() + 1;
                    records.next_record().with_context(|| format!("near line {line}"))
                };
                store.import_all(&mut next, progress).await
            }
        }
    }
}

pub(super) async fn export(config: &Config, output: &Path) -> anyhow::Result<ExitCode> {
    let offline = Offline::configured(config);
    let _lock = offline.lock()?;
    let store = offline.open().await?;
    let records = if is_stdio(output) {
        let mut out = BufWriter::new(std::io::stdout());
        backup::export(store.as_ref(), &mut out).await?
    } else {
        write_export(store.as_ref(), output).await?
    };
    eprintln!("exported {records} records");
    Ok(ExitCode::SUCCESS)
}

/// Export into `output`, written beside as `.partial` and renamed into place when complete.
async fn write_export(store: &dyn Store, output: &Path) -> anyhow::Result<u64> {
    let partial = PathBuf::from(format!("{}.partial", output.display()));
    let file = File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    let mut out = BufWriter::new(file);
    let records = match backup::export(store, &mut out).await {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context(format!("cannot export to {}", output.display())));
        }
    };
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&partial, output).with_context(|| format!("cannot rename {} into place", partial.display()))?;
    Ok(records)
}

pub(super) async fn import(config: &Config, input: &Path, merge: bool) -> anyhow::Result<ExitCode> {
    let offline = Offline::configured(config);
    let _lock = offline.lock()?;
    let spool = config.data.join(SPOOL_FILE);
    let path = if is_stdio(input) {
        std::fs::create_dir_all(&config.data)
            .with_context(|| format!("cannot create the data folder {}", config.data.display()))?;
        let mut file = File::create(&spool).with_context(|| format!("cannot create {}", spool.display()))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut file).context("cannot read the export from stdin")?;
        spool.clone()
    } else {
        input.to_owned()
    };
    let result = import_file(&offline, &path, merge).await;
    if is_stdio(input) {
        let _ = std::fs::remove_file(&spool);
    }
    let records = result?;
    println!("imported {records} records");
    Ok(ExitCode::SUCCESS)
}

fn open_input(path: &Path) -> anyhow::Result<BufReader<File>> {
    Ok(BufReader::new(File::open(path).with_context(|| format!("cannot open {}", path.display()))?))
}

/// Check the whole file, then write it: into an empty store all or nothing, or with `merge`
/// straight into the store.
async fn import_file(offline: &Offline, path: &Path, merge: bool) -> anyhow::Result<u64> {
    let name = path.display();
    backup::validate(open_input(path)?).with_context(|| format!("{name}: nothing was imported"))?;
    if merge {
        let store = offline.open().await?;
        let records = backup::import(store.as_ref(), open_input(path)?, &|_| {}).await.with_context(|| {
            format!("{name}: the import stopped; the records before the failing lines are written (records replace by id, so running it again is safe)")
        })?;
        store.flush().await?;
        return Ok(records);
    }
    offline.fill_empty(path, &|_| {}).await.map_err(|e| e.context(format!("{name}: nothing was imported")))
}

pub(super) async fn check(config: &Config) -> anyhow::Result<ExitCode> {
    let StoreLocation::Sled { dir, commit } = &config.storage else {
        anyhow::bail!(
            "check reads a sled store; PostgreSQL keeps the indexes and references of its tables itself (constraints), and its own tools check its files (pg_amcheck)"
        );
    };
    let _lock = lock_data_folder(&config.data)?;
    let store = SledStore::open_with(dir, *commit)?;
    let report = store.check()?;
    for finding in &report.findings {
        println!("{finding}");
    }
    if report.is_clean() {
        println!("ok: {} entries in {} checked, no inconsistency", report.entries, dir.display());
        Ok(ExitCode::SUCCESS)
    } else {
        let listed = report.findings.len() as u64;
        if report.problems > listed {
            println!("... and {} more", report.problems - listed);
        }
        println!("{} inconsistencies in {} ({} entries checked)", report.problems, dir.display(), report.entries);
        Ok(ExitCode::FAILURE)
    }
}

/// A progress bar on stderr when it is a terminal.
fn bar(len: Option<u64>, what: &str) -> ProgressBar {
    use std::io::IsTerminal;
    let target =
        if std::io::stderr().is_terminal() { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let bar = ProgressBar::with_draw_target(len, target).with_prefix(what.to_owned());
    let template = if len.is_some() {
        "{prefix:>10} [{bar:30}] {pos}/{len} records {elapsed} (eta {eta})"
    } else {
        "{prefix:>10} {spinner} {pos} records {elapsed}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// `crm-users migrate`: export the source into a spool file (tallying it), write the file
/// into the empty target all or nothing, then tally the target and compare kind by kind.
pub(super) async fn migrate(config: &Config, from: &str, to: &str) -> anyhow::Result<ExitCode> {
    let source = Offline::named(from, config).context("--from")?;
    let target = Offline::named(to, config).context("--to")?;
    if source.location.describe() == target.location.describe() {
        anyhow::bail!("--from and --to name the same store");
    }
    let _source_lock = source.lock()?;
    let _target_lock = target.lock()?;
    let spool = std::env::temp_dir().join(format!("crm-users-migrate-{}.jsonl", std::process::id()));
    let result = copy_and_verify(&source, &target, &spool).await;
    let _ = std::fs::remove_file(&spool);
    let (tally, elapsed) = result?;
    println!("kind\trecords\tverified");
    for (kind, counted) in tally.kinds() {
        println!("{kind}\t{}\tyes", counted.records);
    }
    println!(
        "migrated {} records from {} to {} in {:.1} s; counts and checksums of every kind match",
        tally.records(),
        source.location.describe(),
        target.location.describe(),
        elapsed.as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

async fn copy_and_verify(
    source: &Offline,
    target: &Offline,
    spool: &Path,
) -> anyhow::Result<(backup::Tally, std::time::Duration)> {
    let started = std::time::Instant::now();
    let store = source.open().await.with_context(|| format!("cannot open {}", source.location.describe()))?;
    let reading = bar(None, "reading");
    let mut source_tally = backup::Tally::default();
    {
        let file = File::create(spool).with_context(|| format!("cannot create {}", spool.display()))?;
        let mut out = BufWriter::new(file);
        let mut observe = |record: &crate::store::Imported| {
            reading.inc(1);
            source_tally.add(record)
        };
        backup::export_observed(store.as_ref(), &mut out, &mut observe).await.context("cannot read the source")?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    }
    reading.finish_and_clear();
    drop(store);
    let total = backup::validate(open_input(spool)?).context("the spooled export does not read back")?;
    let writing = bar(Some(total), "writing");
    target
        .fill_empty(spool, &|n| writing.set_position(n))
        .await
        .with_context(|| format!("nothing was written to {}", target.location.describe()))?;
    writing.finish_and_clear();
    let store = target.open().await?;
    let target_tally = backup::tally(store.as_ref()).await.context("cannot read the copy back")?;
    if target_tally != source_tally {
        let mut differences = Vec::new();
        let kinds: std::collections::BTreeSet<&str> =
            source_tally.kinds().chain(target_tally.kinds()).map(|(kind, _)| kind).collect();
        for kind in kinds {
            let (a, b) = (source_tally.of(kind), target_tally.of(kind));
            if a != b {
                differences.push(format!(
                    "{kind}: {} records in the source, {} in the copy{}",
                    a.records,
                    b.records,
                    if a.records == b.records { " (contents differ)" } else { "" }
                ));
            }
        }
        anyhow::bail!("the copy in {} differs from the source: {}", target.location.describe(), differences.join("; "));
    }
    Ok((source_tally, started.elapsed()))
}
