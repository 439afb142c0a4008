//! User meta: free key/value pairs per user, public or not (REMP `user_meta`).

use super::{Timestamp, user::UserId};
use serde::{Deserialize, Serialize};

/// Meta key marking an unclaimed user (REMP `UnclaimedUser::META_KEY`).
pub const UNCLAIMED_USER: &str = "unclaimed_user";
/// Meta key set when a user subscribed to newsletters at registration.
pub const NEWSLETTERS_SUBSCRIBE: &str = "newsletters_subscribe";

/// Longest meta key accepted, in bytes (REMP's `user_meta.key` is varchar(255)).
pub const MAX_META_KEY_LEN: usize = 255;

/// Longest meta value accepted, in bytes. REMP's column is TEXT (64 KiB); values are read
/// whole with every user, so a larger one would be a cheap way to slow everybody down.
pub const MAX_META_VALUE_LEN: usize = 64 * 1024;

/// One meta entry; `(user_id, key)` is unique.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MetaEntry {
    pub user_id: UserId,
    pub key: String,
    pub value: String,
    pub is_public: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// REMP's truthiness for meta values (`userMetaValueByKey` treats `""` and `"0"` as absent).
pub fn is_truthy(value: &str) -> bool {
    !value.is_empty() && value != "0"
}
