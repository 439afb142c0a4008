//! Byte layouts of keys and values in the sled trees, and the transaction helpers every write
//! uses. Only the sled backend sees these.

use super::*;

pub(super) type TxResult<T> = std::result::Result<T, ConflictableTransactionError<Error>>;

pub(super) fn abort<T>(e: Error) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

pub(super) fn to_json<T: Serialize>(v: &T) -> TxResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| ConflictableTransactionError::Abort(Error::storage(e)))
}

pub(super) fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| Error::Storage(anyhow::anyhow!("corrupt record: {e}")))
}

pub(super) fn tx_from_json<T: DeserializeOwned>(bytes: &[u8]) -> TxResult<T> {
    from_json(bytes).map_err(ConflictableTransactionError::Abort)
}

pub(super) fn be(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub(super) fn id_of(bytes: &[u8]) -> Result<u64> {
    let arr: [u8; 8] =
        bytes.try_into().map_err(|_| Error::Storage(anyhow::anyhow!("corrupt id of {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(arr))
}

pub(super) fn tail_id(key: &[u8]) -> Result<u64> {
    key.len()
        .checked_sub(8)
        .map(|at| &key[at..])
        .ok_or_else(|| Error::Storage(anyhow::anyhow!("corrupt index key")))
        .and_then(id_of)
}

pub(super) fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A length-prefixed field, so that prefixes of composite keys are unambiguous.
pub(super) fn lp(field: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + field.len());
    out.extend_from_slice(&(field.len() as u32).to_be_bytes());
    out.extend_from_slice(field.as_bytes());
    out
}

/// A length-prefixed field at the start of `key`, and the rest.
pub(super) fn split_lp(key: &[u8]) -> Result<(&[u8], &[u8])> {
    let corrupt = || Error::Storage(anyhow::anyhow!("corrupt length-prefixed key"));
    let len: [u8; 4] = key.get(..4).ok_or_else(corrupt)?.try_into().map_err(|_| corrupt())?;
    let len = u32::from_be_bytes(len) as usize;
    let field = key.get(4..4 + len).ok_or_else(corrupt)?;
    Ok((field, &key[4 + len..]))
}

pub(super) fn mark_bytes(at: Timestamp, ok: bool) -> [u8; 9] {
    let mut out = [0u8; 9];
    out[..8].copy_from_slice(&at.timestamp_millis().to_be_bytes());
    out[8] = ok as u8;
    out
}

pub(super) fn mark_of(bytes: &[u8]) -> Result<AttemptMark> {
    if bytes.len() != 9 {
        return Err(Error::Storage(anyhow::anyhow!("corrupt attempt mark")));
    }
    let mut ms = [0u8; 8];
    ms.copy_from_slice(&bytes[..8]);
    let at = chrono::DateTime::from_timestamp_millis(i64::from_be_bytes(ms))
        .ok_or_else(|| Error::Storage(anyhow::anyhow!("corrupt attempt time")))?;
    Ok(AttemptMark { at, ok: bytes[8] == 1 })
}

pub(super) fn millis_key(at: Timestamp) -> [u8; 8] {
    // Times before 1970 never occur here; clamp so the key order stays the time order.
    (at.timestamp_millis().max(0) as u64).to_be_bytes()
}

pub(super) fn meta_key(user_id: UserId, key: &str) -> Vec<u8> {
    concat(&[&be(user_id), key.as_bytes()])
}

pub(super) fn meta_index_key(key: &str, value: &str, user_id: UserId) -> Vec<u8> {
    concat(&[&lp(key), &lp(value), &be(user_id)])
}

pub(super) fn address_type_index_key(user_id: UserId, kind: &str, id: AddressId) -> Vec<u8> {
    concat(&[&be(user_id), &lp(kind), &be(id)])
}

pub(super) fn sequence_name(sequence: IdSequence) -> &'static str {
    match sequence {
        IdSequence::Address => "addresses",
        IdSequence::AddressChangeRequest => "address_change_requests",
    }
}

/// Next value of a named sequence, inside the transaction.
pub(super) fn next_id(system: &TransactionalTree, kind: &str) -> TxResult<u64> {
    let key = format!("seq/{kind}");
    let current = match system.get(key.as_bytes())? {
        Some(v) => id_of(&v).map_err(ConflictableTransactionError::Abort)?,
        None => 0,
    };
    let next = current + 1;
    system.insert(key.as_bytes(), &be(next))?;
    Ok(next)
}

/// Users are counted per block of this many ids, by class, so that counting users and skipping
/// to a page deep in a listing read one small entry per block instead of every user.
pub(super) const COUNT_BLOCK: u64 = 256;

/// A block's user counts, by [`user_class`].
pub(super) type BlockCounts = [u32; 4];

/// The class a user is counted in: deleted or not, active or not.
pub(super) fn user_class(user: &User) -> usize {
    usize::from(user.is_deleted()) * 2 + usize::from(!user.active)
}

/// How many of a block's users a scan takes.
pub(super) fn matching(counts: &BlockCounts, scan: &UserScan) -> u64 {
    (0..4)
        .filter(|class| (scan.include_deleted || class / 2 == 0) && (scan.include_inactive || class % 2 == 0))
        .map(|class| u64::from(counts[class]))
        .sum()
}

pub(super) fn counts_of(bytes: &[u8]) -> Result<BlockCounts> {
    if bytes.len() != 16 {
        return Err(Error::Storage(anyhow::anyhow!("corrupt user counts of {} bytes", bytes.len())));
    }
    let mut counts = [0u32; 4];
    for (i, chunk) in bytes.chunks_exact(4).enumerate() {
        counts[i] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    Ok(counts)
}

pub(super) fn counts_bytes(counts: &BlockCounts) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, c) in counts.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&c.to_be_bytes());
    }
    out
}

/// Keep the block counts right when a user is stored: `old` is the stored version, if any.
pub(super) fn count_user(t: &Trees<TransactionalTree>, old: Option<&User>, new: &User) -> TxResult<()> {
    let (from, to) = (old.map(user_class), user_class(new));
    if from == Some(to) {
        return Ok(());
    }
    let key = be(new.id / COUNT_BLOCK);
    let mut counts = match t.user_counts.get(key)? {
        Some(v) => counts_of(&v).map_err(ConflictableTransactionError::Abort)?,
        None => BlockCounts::default(),
    };
    if let Some(from) = from {
        counts[from] = counts[from].saturating_sub(1);
    }
    counts[to] = counts[to].saturating_add(1);
    t.user_counts.insert(&key, &counts_bytes(&counts))?;
    Ok(())
}
