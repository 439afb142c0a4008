//! User groups (REMP `groups` and `user_groups`): named sets of users that other modules use
//! for segments and access. Memberships carry no data beyond when they began.

use super::{Error, Result, Timestamp};
use serde::{Deserialize, Serialize};

/// Groups are numbered from 1, as REMP's auto-increment ids are.
pub type GroupId = u64;

/// REMP's `groups.sorting` default.
pub const DEFAULT_SORTING: i32 = 10;

/// Longest group name accepted, in characters (REMP's `groups.name` is varchar(255)).
pub const MAX_GROUP_NAME_LEN: usize = 255;

/// A group as stored. Names need not be unique: REMP has no unique constraint on them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    pub sorting: i32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A group name as it will be stored: trimmed, non-empty, at most [`MAX_GROUP_NAME_LEN`]
/// characters.
pub fn group_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_GROUP_NAME_LEN {
        return Err(Error::invalid(
            "invalid_input",
            "name",
            format!("a group needs a name of 1 to {MAX_GROUP_NAME_LEN} characters"),
        ));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(group_name("  Premium ").unwrap(), "Premium");
        assert_eq!(group_name(" ").unwrap_err().code(), "invalid_input");
        assert!(group_name(&"é".repeat(MAX_GROUP_NAME_LEN)).is_ok());
        assert_eq!(group_name(&"x".repeat(MAX_GROUP_NAME_LEN + 1)).unwrap_err().code(), "invalid_input");
    }
}
