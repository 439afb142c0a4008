//! Offline maintenance of the data folder, under its lock: `crm-users export` and
//! `crm-users import --input` (backups as JSON lines, format in [`crate::store::backup`]) and
//! `crm-users check` (the store's fsck).

use super::{SLED_FOLDER, lock_data_folder};
use crate::config::Config;
use crate::store::{Store, backup, sled::SledStore};
use anyhow::Context;
use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where `import` builds the new store before it takes the place of the empty one.
const STAGING_FOLDER: &str = "sled.importing";
/// Where `import --input -` keeps stdin, which it reads twice (check, then write).
const SPOOL_FILE: &str = "import-stdin.jsonl";

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

pub(super) async fn export(config: &Config, output: &Path) -> anyhow::Result<ExitCode> {
    let _lock = lock_data_folder(&config.data)?;
    let store = SledStore::open_with(&config.data.join(SLED_FOLDER), config.commit)?;
    let records = if is_stdio(output) {
        let mut out = BufWriter::new(std::io::stdout());
        backup::export(&store, &mut out).await?
    } else {
        let partial = PathBuf::from(format!("{}.partial", output.display()));
        let file = File::create(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
        let mut out = BufWriter::new(file);
        let records =
            backup::export(&store, &mut out).await.with_context(|| format!("cannot export to {}", output.display()));
        let records = match records {
            Ok(n) => n,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        std::fs::rename(&partial, output).with_context(|| format!("cannot rename {} into place", partial.display()))?;
        records
    };
    eprintln!("exported {records} records");
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn import(config: &Config, input: &Path, merge: bool) -> anyhow::Result<ExitCode> {
    let _lock = lock_data_folder(&config.data)?;
    let spool = config.data.join(SPOOL_FILE);
    let path = if is_stdio(input) {
        let mut file = File::create(&spool).with_context(|| format!("cannot create {}", spool.display()))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut file).context("cannot read the export from stdin")?;
        spool.clone()
    } else {
        input.to_owned()
    };
    let result = import_file(config, &path, merge).await;
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

/// Check the whole file, then write it: into an empty store through a staging folder that
/// replaces it only when every record is in (all or nothing), or with `merge` straight into
/// the store.
async fn import_file(config: &Config, path: &Path, merge: bool) -> anyhow::Result<u64> {
    let name = path.display();
    backup::validate(open_input(path)?).with_context(|| format!("{name}: nothing was imported"))?;
    let live = config.data.join(SLED_FOLDER);
    if merge {
        let store = SledStore::open_with(&live, config.commit)?;
        let records = backup::import(&store, open_input(path)?).await.with_context(|| {
            format!("{name}: the import stopped; the records before the failing lines are written (records replace by id, so running it again is safe)")
        })?;
        store.flush().await?;
        return Ok(records);
    }
    {
        let store = SledStore::open_with(&live, config.commit)?;
        if !backup::is_empty(&store).await? {
            anyhow::bail!(
                "the data folder {} holds data already; import into an empty data folder, or pass --merge to write the records over it (each replaces the record with its id)",
                config.data.display()
            );
        }
    }
    let staging = config.data.join(STAGING_FOLDER);
    if staging.exists() {
        // Left by an import that was interrupted; it never took the store's place.
        std::fs::remove_dir_all(&staging).with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    let written = async {
        let store = SledStore::open_with(&staging, config.commit)?;
        let records = backup::import(&store, open_input(path)?).await?;
        store.flush().await?;
        anyhow::Ok(records)
    }
    .await;
    let records = match written {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e.context(format!("{name}: nothing was imported")));
        }
    };
    // The live store is empty (checked above, and the lock keeps everyone else out).
    std::fs::remove_dir_all(&live).with_context(|| format!("cannot remove the empty store {}", live.display()))?;
    std::fs::rename(&staging, &live).with_context(|| format!("cannot move {} into place", staging.display()))?;
    File::open(&config.data).and_then(|dir| dir.sync_all()).context("cannot sync the data folder")?;
    Ok(records)
}

pub(super) async fn check(config: &Config) -> anyhow::Result<ExitCode> {
    let _lock = lock_data_folder(&config.data)?;
    let dir = config.data.join(SLED_FOLDER);
    let store = SledStore::open_with(&dir, config.commit)?;
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
