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
