//! Backups and migrations: every record of a store as JSON lines (`crm-users export`), and
//! those lines written back into a store (`crm-users import`). Works with any [`Store`].
//!
//! # Format, version 1
//!
//! UTF-8, one JSON object per line, `\n` after each line:
//!
//! ```text
//! {"format":"crm-users-export","version":1}
//! {"kind":"user","record":{"id":1,"uuid":"...","email":"jane@example.com",...}}
//! {"kind":"meta","record":{"user_id":1,"key":"newsletter","value":"1",...}}
//! ...
//! {"end":{"records":1234}}
//! ```
//!
//! The first line names the format and its version. Each record line is one [`Imported`]
//! value: `kind` is the record kind in snake_case (`user`, `group`, `role`, `address_type`,
//! `api_token`, `device_token`, `meta`, `access_token`, `autologin_token`, `connected_account`,
//! `membership`, `user_roles`, `address`, `address_change_request`, `login_attempt`,
//! `registration_attempt`, `password_change`, `plugin_kv`, `idempotency_key`, `server_secret`,
//! `sequence`) and `record` the record as the store keeps it (tokens as SHA-256 digests, never
//! in plain text; passwords as their hashes). Records come in an order that replays into an
//! empty store (a record after what it refers to). The last line counts the records, so a
//! truncated file is noticed. Later versions only add kinds.
//!
//! An export holds password hashes, token digests and server secrets: keep it as safe as the
//! data folder itself.

use super::{Batch, Change, Imported, Store};
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};

/// The `format` of the first line.
pub const FORMAT_NAME: &str = "crm-users-export";
/// The version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Records written per transaction on import: large enough that a million records take a
/// few thousand flushes, small enough that one transaction stays a few megabytes.
pub const IMPORT_BATCH: usize = 500;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trailer {
    end: End,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    records: u64,
}

/// Write every record of `store` to `out` in the format above; returns how many.
pub async fn export(store: &dyn Store, out: &mut (dyn Write + Send)) -> anyhow::Result<u64> {
    export_observed(store, out, &mut |_| Ok(())).await
}

/// [`export`], handing each record to `observe` as well before it is written.
pub async fn export_observed(
    store: &dyn Store,
    out: &mut (dyn Write + Send),
    observe: &mut (dyn FnMut(&Imported) -> anyhow::Result<()> + Send),
) -> anyhow::Result<u64> {
    let header = Header { format: FORMAT_NAME.into(), version: FORMAT_VERSION };
    serde_json::to_writer(&mut *out, &header)?;
    out.write_all(b"\n")?;
    let mut records = 0u64;
    let mut sink = |record: Imported| -> crate::domain::Result<()> {
        observe(&record).map_err(crate::domain::Error::Internal)?;
        serde_json::to_writer(&mut *out, &record)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| crate::domain::Error::Internal(anyhow::Error::new(e).context("cannot write the export")))?;
        records += 1;
        Ok(())
    };
    store.export(&mut sink).await?;
    serde_json::to_writer(&mut *out, &Trailer { end: End { records } })?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(records)
}

/// Whether `store` holds no records (server secrets and sequence positions aside: a fresh
/// store may have made those on its own).
pub async fn is_empty(store: &dyn Store) -> anyhow::Result<bool> {
    let mut found = false;
    let mut sink = |record: Imported| -> crate::domain::Result<()> {
        if matches!(record, Imported::ServerSecret { .. } | Imported::Sequence { .. }) {
            return Ok(());
        }
        found = true;
        // Stop at the first record: nothing more is needed.
        Err(crate::domain::Error::Conflict { code: "not_empty", message: String::new() })
    };
    match store.export(&mut sink).await {
        Ok(()) => Ok(!found),
        Err(_) if found => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// One line of an export, parsed.
enum Line {
    Record(Box<Imported>),
    End(u64),
}

/// Reads an export line by line, checking the header first; errors name the line.
struct Reader<R> {
    input: R,
    line_no: u64,
    text: String,
}

impl<R: BufRead> Reader<R> {
    fn new(mut input: R) -> anyhow::Result<Self> {
        let mut text = String::new();
        input.read_line(&mut text).context("line 1: cannot read the export")?;
        let header: Header = serde_json::from_str(text.trim_end()).map_err(|_| {
            anyhow::anyhow!(
                "line 1: not a crm-users export (the first line must be {{\"format\":\"{FORMAT_NAME}\",\"version\":{FORMAT_VERSION}}})"
            )
        })?;
        if header.format != FORMAT_NAME {
            anyhow::bail!("line 1: the format is '{}', not '{FORMAT_NAME}'", header.format);
        }
        if header.version != FORMAT_VERSION {
            anyhow::bail!(
                "line 1: export format version {} cannot be read by this build (it reads version {FORMAT_VERSION})",
                header.version
            );
        }
        Ok(Reader { input, line_no: 1, text })
    }

    /// The next line, `None` at the end of the input.
    fn next_line(&mut self) -> anyhow::Result<Option<Line>> {
        self.text.clear();
        let n =
            self.input.read_line(&mut self.text).with_context(|| format!("line {}: cannot read", self.line_no + 1))?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        let line = self.text.trim_end_matches(['\n', '\r']);
        match serde_json::from_str::<Imported>(line) {
            Ok(record) => Ok(Some(Line::Record(Box::new(record)))),
            Err(record_error) => match serde_json::from_str::<Trailer>(line) {
                Ok(trailer) => Ok(Some(Line::End(trailer.end.records))),
                Err(_) => Err(anyhow::anyhow!("line {}: not a valid export record: {record_error}", self.line_no)),
            },
        }
    }
}

/// Check a whole export without writing anything: the header, every record line, and the end
/// line with the right count. Returns the number of records.
pub fn validate(input: impl BufRead) -> anyhow::Result<u64> {
    let mut reader = Reader::new(input)?;
    let mut records = 0u64;
    loop {
        match reader.next_line()? {
            Some(Line::Record(_)) => records += 1,
            Some(Line::End(counted)) => {
                if counted != records {
                    anyhow::bail!(
                        "line {}: the end line counts {counted} records, the file holds {records}",
                        reader.line_no
                    );
                }
                if reader.next_line()?.is_some() {
                    anyhow::bail!("line {}: more lines after the end line", reader.line_no);
                }
                return Ok(records);
            }
            None => anyhow::bail!(
                "the export ends at line {} without its end line: it is truncated (an interrupted export or copy)",
                reader.line_no
            ),
        }
    }
}

/// Write every record of an export into `store`, [`IMPORT_BATCH`] records per transaction;
/// each record replaces what the store holds under its id. Run [`validate`] first: a failure
/// here (a record that refers to a missing user, say) leaves the batches before it written.
/// `progress` hears the number of records written after each batch.
pub async fn import(store: &dyn Store, input: impl BufRead, progress: &(dyn Fn(u64) + Sync)) -> anyhow::Result<u64> {
    let mut reader = Reader::new(input)?;
    let mut records = 0u64;
    let mut batch = Batch::new();
    let mut first_line = 0;
    loop {
        let record = match reader.next_line()? {
            Some(Line::Record(record)) => Some(record),
            Some(Line::End(_)) | None => None,
        };
        let at_end = record.is_none();
        if let Some(record) = record {
            if batch.is_empty() {
                first_line = reader.line_no;
            }
            batch.push(Change::Import(*record));
            records += 1;
            if batch.0.len() < IMPORT_BATCH {
                continue;
            }
        }
        if !batch.is_empty() {
            let last_line = first_line + batch.0.len() as u64 - 1;
            store
                .apply(std::mem::take(&mut batch))
                .await
                .with_context(|| format!("the records on lines {first_line}-{last_line} were refused"))?;
            progress(records);
        }
        if at_end {
            return Ok(records);
        }
    }
}

/// The records of an export one at a time, for a store that writes them its own way
/// (PostgreSQL: all in one transaction). Errors name the line.
pub struct Records<R> {
    reader: Reader<R>,
}

impl<R: BufRead> Records<R> {
    pub fn new(input: R) -> anyhow::Result<Self> {
        Ok(Records { reader: Reader::new(input)? })
    }

    /// The next record; `None` after the last (at the end line or the end of the input).
    pub fn next_record(&mut self) -> anyhow::Result<Option<Imported>> {
        match self.reader.next_line()? {
            Some(Line::Record(record)) => Ok(Some(*record)),
            Some(Line::End(_)) | None => Ok(None),
        }
    }

    /// The line the last record came from.
    pub fn line(&self) -> u64 {
        self.reader.line_no
    }
}

/// How many records of each kind a store holds, with an order-independent checksum of their
/// contents: two stores with equal tallies hold the same records (a migration's check).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally(std::collections::BTreeMap<String, KindTally>);

/// Records of one kind: their number and the wrapping sum of the first 16 bytes of each
/// record's SHA-256 (its JSON line), so the order they come in does not matter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KindTally {
    pub records: u64,
    pub checksum: u128,
}

impl Tally {
    /// Count one record.
    pub fn add(&mut self, record: &Imported) -> anyhow::Result<()> {
        use sha2::Digest;
        let line = serde_json::to_vec(record)?;
        let value = serde_json::from_slice::<serde_json::Value>(&line)?;
        let kind = value["kind"].as_str().unwrap_or("unknown").to_owned();
        let digest = sha2::Sha256::digest(&line);
        let mut head = [0u8; 16];
        head.copy_from_slice(&digest[..16]);
        let entry = self.0.entry(kind).or_default();
        entry.records += 1;
        entry.checksum = entry.checksum.wrapping_add(u128::from_be_bytes(head));
        Ok(())
    }

    /// Every kind with its tally, by kind name.
    pub fn kinds(&self) -> impl Iterator<Item = (&str, &KindTally)> {
        self.0.iter().map(|(kind, tally)| (kind.as_str(), tally))
    }

    pub fn records(&self) -> u64 {
        self.0.values().map(|t| t.records).sum()
    }

    /// The tally of one kind (zero when the store has none).
    pub fn of(&self, kind: &str) -> KindTally {
        self.0.get(kind).copied().unwrap_or_default()
    }
}

/// Tally every record of `store` (reads it whole, one record at a time).
pub async fn tally(store: &dyn Store) -> anyhow::Result<Tally> {
    let mut tally = Tally::default();
    let mut sink =
        |record: Imported| -> crate::domain::Result<()> { tally.add(&record).map_err(crate::domain::Error::Internal) };
    store.export(&mut sink).await?;
    Ok(tally)
}
