//! Group use cases: creating, renaming and deleting groups (the resource API and the CLI),
//! listing them with their members, and adding users to or removing them from groups (REMP's
//! `UserGroupApiHandler`). Both directions of the membership index change in one store batch.

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

    /// Every group with its member count, in id order.
    pub async fn groups_with_counts(&self) -> Result<Vec<(Group, usize)>> {
        let mut out = Vec::new();
        for group in self.store.groups().await? {
            let count = self.store.users_in_group(group.id).await?.len();
            out.push((group, count));
        }
        Ok(out)
    }

    /// One group with its member ids; not found when missing.
    pub async fn group_with_members(&self, id: GroupId) -> Result<(Group, Vec<UserId>)> {
        let group = self.store.group(id).await?.ok_or_else(|| Error::NotFound(format!("Group not found: {id}")))?;
        Ok((group, self.store.users_in_group(id).await?))
    }

    /// Rename or re-sort a group; what is not given stays.
    pub async fn update_group(&self, id: GroupId, name: Option<&str>, sorting: Option<i32>) -> Result<Group> {
        let (group, _) = self.group_with_members(id).await?;
        let name = match name {
            Some(n) => group_name(n)?,
            None => group.name,
        };
        let sorting = sorting.unwrap_or(group.sorting);
        self.store.apply(Batch(vec![Change::UpdateGroup { id, name, sorting }])).await?;
        Ok(self.group_with_members(id).await?.0)
    }

    /// Delete a group and its memberships together.
    pub async fn delete_group(&self, id: GroupId) -> Result<()> {
        self.store.apply(Batch(vec![Change::DeleteGroup(id)])).await.map(|_| ())
    }

    /// The groups a user belongs to; not found for an unknown user.
    pub async fn groups_of_user(&self, user_id: UserId) -> Result<Vec<Group>> {
        if self.store.user(user_id).await?.is_none() {
            return Err(Error::NotFound(format!("User not found: {user_id}")));
        }
        let mut out = Vec::new();
        for id in self.store.groups_of_user(user_id).await? {
            if let Some(g) = self.store.group(id).await? {
                out.push(g);
            }
        }
        Ok(out)
    }
}
