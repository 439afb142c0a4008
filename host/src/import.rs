//! Importing another system's users into the store: [`remp`] reads a REMP CRM database. This
//! file holds what any importer shares: the per-table report, and the writer that stores
//! records in batches through the [`Store`] trait (so every backend gets imports for free)
//! and, when a batch is refused, retries its rows one by one to name the rows at fault.

pub mod remp;

use crate::store::{Batch, Change, Imported, Store};

/// Records written in one batch: large enough that a million rows take minutes, not hours,
/// small enough that one bad row costs little to find.
pub const BATCH_ROWS: usize = 500;

/// Reasons listed per table; beyond this only their number is printed.
pub const MAX_LISTED_SKIPS: usize = 50;

/// What happened to one source table.
#[derive(Debug, Clone, Default)]
pub struct TableReport {
    pub table: String,
    pub read: u64,
    pub imported: u64,
    /// `(row, reason)`: rows not taken, e.g. `("id=7", "email is empty")`.
    pub skipped: Vec<(String, String)>,
    /// Records an earlier import stored that are gone from the source (a token since revoked).
    pub removed: u64,
    /// Why the whole table was left out (missing in the source), if it was.
    pub absent: Option<String>,
}

/// What an import did, table by table.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub dry_run: bool,
    pub tables: Vec<TableReport>,
}

impl Report {
    pub fn skipped(&self) -> usize {
        self.tables.iter().map(|t| t.skipped.len()).sum()
    }

    /// The summary the CLI prints: counts per table, then every row not taken with its reason.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let verb = if self.dry_run { "would import" } else { "imported" };
        let removed = if self.dry_run { "would remove" } else { "removed" };
        out.push_str(&format!("{:<26} {:>9} {:>12} {:>9} {:>12}\n", "table", "read", verb, "skipped", removed));
        for t in &self.tables {
            match &t.absent {
                Some(why) => out.push_str(&format!("{:<26} {why}\n", t.table)),
                None => out.push_str(&format!(
                    "{:<26} {:>9} {:>12} {:>9} {:>12}\n",
                    t.table,
                    t.read,
                    t.imported,
                    t.skipped.len(),
                    t.removed
                )),
            }
        }
        if self.skipped() > 0 {
            out.push_str("rows not imported:\n");
            for t in &self.tables {
                for (row, reason) in t.skipped.iter().take(MAX_LISTED_SKIPS) {
                    out.push_str(&format!("  {} {row}: {reason}\n", t.table));
                }
                if t.skipped.len() > MAX_LISTED_SKIPS {
                    out.push_str(&format!("  {} ... and {} more\n", t.table, t.skipped.len() - MAX_LISTED_SKIPS));
                }
            }
        }
        if self.dry_run {
            out.push_str("dry run: nothing was written\n");
        }
        out
    }
}

/// Delete records an earlier import stored that the source no longer has, in batches, and
/// count them on `table`'s report.
pub async fn remove_stale(
    store: &dyn Store,
    dry_run: bool,
    table: &mut TableReport,
    changes: Vec<Change>,
) -> crate::domain::Result<()> {
    if table.absent.is_some() {
        // A table missing from the source says nothing about what was removed from it.
        return Ok(());
    }
    table.removed += changes.len() as u64;
    if dry_run {
        return Ok(());
    }
    for chunk in changes.chunks(BATCH_ROWS) {
        store.apply(Batch(chunk.to_vec())).await?;
    }
    Ok(())
}

/// Stores records in batches. In a dry run nothing is written and every mapped record counts
/// as imported.
pub struct Writer<'a> {
    store: &'a dyn Store,
    dry_run: bool,
    /// `(row label, key the caller wants back, record)`
    pending: Vec<(String, u64, Imported)>,
}

impl std::fmt::Debug for Writer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("dry_run", &self.dry_run).field("pending", &self.pending.len()).finish()
    }
}

impl<'a> Writer<'a> {
    pub fn new(store: &'a dyn Store, dry_run: bool) -> Self {
        Writer { store, dry_run, pending: Vec::new() }
    }

    /// Queue a record; `key` (usually the source id) comes back from [`Writer::flush`] once it
    /// is stored. Returns whether a batch is full and should be flushed.
    pub fn push(&mut self, row: String, key: u64, record: Imported) -> bool {
        self.pending.push((row, key, record));
        self.pending.len() >= BATCH_ROWS
    }

    /// Write what is queued. Returns the keys of the records stored; rows the store refused
    /// are added to `report` with the store's reason.
    pub async fn flush(&mut self, report: &mut TableReport) -> crate::domain::Result<Vec<u64>> {
        let rows = std::mem::take(&mut self.pending);
        let keys: Vec<u64> = rows.iter().map(|(_, key, _)| *key).collect();
        if self.dry_run || rows.is_empty() {
            report.imported += rows.len() as u64;
            return Ok(keys);
        }
        let batch = Batch(rows.iter().map(|(_, _, record)| Change::Import(record.clone())).collect());
        match self.store.apply(batch).await {
            Ok(_) => {
                report.imported += rows.len() as u64;
                return Ok(keys);
            }
            Err(e @ crate::domain::Error::Storage(_)) => return Err(e),
            Err(_) => {}
        }
        // Some row was refused: find which, storing the others.
        let mut stored = Vec::new();
        for (row, key, record) in rows {
            match self.store.apply(Batch(vec![Change::Import(record)])).await {
                Ok(_) => {
                    report.imported += 1;
                    stored.push(key);
                }
                Err(e @ crate::domain::Error::Storage(_)) => return Err(e),
                Err(e) => report.skipped.push((row, e.to_string())),
            }
        }
        Ok(stored)
    }
}
