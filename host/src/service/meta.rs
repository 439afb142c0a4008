//! User meta use cases: upsert and delete with their `UserMeta` events, the public meta a user
//! (or a server on their behalf) may read, and the users holding a key, found through the
//! store's `(key, value)` index.

use super::Services;
use crate::domain::{
    Error, Result,
    event::DomainEvent,
    meta::{MAX_META_KEY_LEN, MAX_META_VALUE_LEN, MetaEntry},
    user::UserId,
};
use crate::store::{Batch, Change};

/// Why a meta write was refused before it reached the store.
fn check_sizes(key: &str, value: Option<&str>) -> Result<()> {
    if key.len() > MAX_META_KEY_LEN {
        return Err(Error::invalid("invalid_input", "key", format!("Must be at most {MAX_META_KEY_LEN} bytes long")));
    }
    if value.is_some_and(|v| v.len() > MAX_META_VALUE_LEN) {
        return Err(Error::invalid(
            "invalid_input",
            "value",
            format!("Must be at most {MAX_META_VALUE_LEN} bytes long"),
        ));
    }
    Ok(())
}

impl Services {
    /// Set `key` of the user to `value` (REMP's upsert on `(user_id, key)`: value and
    /// visibility are overwritten). Fails with not found when the user does not exist.
    pub async fn upsert_meta(&self, user_id: UserId, key: &str, value: &str, is_public: bool) -> Result<()> {
        check_sizes(key, Some(value))?;
        let change = Change::PutMeta { user_id, key: key.to_owned(), value: value.to_owned(), is_public };
        self.store.apply(Batch(vec![change])).await?;
        self.events.publish(DomainEvent::UserMeta { user_id, key: key.to_owned(), value: Some(value.to_owned()) });
        Ok(())
    }

    /// Delete `key` of the user, only when it holds `value` if one is given. `Ok(false)` when
    /// nothing matched; the `UserMeta` event is published only when something was deleted.
    pub async fn delete_meta(&self, user_id: UserId, key: &str, value: Option<&str>) -> Result<bool> {
        check_sizes(key, value)?;
        let change = Change::DeleteMeta { user_id, key: key.to_owned(), value: value.map(str::to_owned) };
        let applied = self.store.apply(Batch(vec![change])).await?;
        if applied.meta_deleted {
            self.events.publish(DomainEvent::UserMeta { user_id, key: key.to_owned(), value: None });
        }
        Ok(applied.meta_deleted)
    }

    /// Public meta of these users, optionally only `key`, newest first (REMP's
    /// `created_at DESC`).
    pub async fn public_meta_entries(&self, user_ids: &[UserId], key: Option<&str>) -> Result<Vec<MetaEntry>> {
        let mut out = Vec::new();
        for &user_id in user_ids {
            out.extend(
                self.store
                    .user_meta(user_id)
                    .await?
                    .into_iter()
                    .filter(|m| m.is_public && key.is_none_or(|k| m.key == k)),
            );
        }
        out.sort_by_key(|m| std::cmp::Reverse(m.created_at));
        Ok(out)
    }

    /// `(user_id, value)` of every entry with `key`, public or not, and only those holding
    /// `value` when given. Served by the meta index, never by a scan of users.
    pub async fn users_with_meta(&self, key: &str, value: Option<&str>) -> Result<Vec<(UserId, String)>> {
        if key.len() > MAX_META_KEY_LEN || value.is_some_and(|v| v.len() > MAX_META_VALUE_LEN) {
            // Nothing that long can have been stored.
            return Ok(Vec::new());
        }
        self.store.users_with_meta(key, value).await
    }
}
