//! Group use cases: creating groups (the set-up interface and the CLI) and adding users to or
//! removing them from groups (REMP's `UserGroupApiHandler`). Both directions of the membership
//! index change in one store batch.

use super::Services;
use crate::domain::{
    Error, Result,
    group::{DEFAULT_SORTING, Group, GroupId, group_name},
    user::UserId,
};
use crate::store::{Batch, Change};

impl Services {
    /// Create a group. Names are trimmed and need not be unique, as in REMP.
    pub async fn create_group(&self, name: &str) -> Result<Group> {
        let name = group_name(name)?;
        let applied = self.store.apply(Batch(vec![Change::InsertGroup { name, sorting: DEFAULT_SORTING }])).await?;
        applied.group().cloned().ok_or_else(|| Error::Internal(anyhow::anyhow!("group insert returned nothing")))
    }

    /// Make the user a member of the group, or end the membership. Idempotent: asking for the
    /// state that already holds changes nothing. Fails with not found when either is missing.
    pub async fn set_group_membership(&self, user_id: UserId, group_id: GroupId, member: bool) -> Result<()> {
        let change = if member {
            Change::AddToGroup { user_id, group_id }
        } else {
            Change::RemoveFromGroup { user_id, group_id }
        };
        self.store.apply(Batch(vec![change])).await.map(|_| ())
    }
}
