//! Admin roles and permissions: roles with permission names (route names or `*`), assigned to
//! users, and the checks built on them. A role's permissions count only for admin users, as
//! REMP's ACL covers admins only; `users/login` lists an admin's role names.

use super::Services;
use super::tokens::ROUTE_NAMES;
use crate::domain::{
    Error, Result,
    role::{AdminRole, RoleId, permissions, role_name},
    user::{Role, User, UserId},
};
use crate::store::{Batch, Change};

impl Services {
    /// Add a role; its name must be unused (any case) and its permissions known.
    pub async fn create_role<S: AsRef<str>>(&self, name: &str, perms: &[S]) -> Result<AdminRole> {
        let name = role_name(name)?;
        let permissions = permissions(perms, ROUTE_NAMES)?;
        let applied = self.store.apply(Batch(vec![Change::InsertRole { name, permissions }])).await?;
        applied.role().cloned().ok_or_else(|| Error::Internal(anyhow::anyhow!("role insert returned nothing")))
    }

    pub async fn role(&self, id: RoleId) -> Result<AdminRole> {
        self.store.role(id).await?.ok_or_else(|| Error::NotFound(format!("Role not found: {id}")))
    }

    /// A role by id, or else by name (any case): what the CLI takes.
    pub async fn role_by_id_or_name(&self, spec: &str) -> Result<AdminRole> {
        if let Ok(id) = spec.trim().parse::<RoleId>() {
            return self.role(id).await;
        }
        let key = spec.trim().to_lowercase();
        self.store
            .roles()
            .await?
            .into_iter()
            .find(|r| r.name.to_lowercase() == key)
            .ok_or_else(|| Error::NotFound(format!("Role not found: {}", spec.trim())))
    }

    /// Every role with how many users hold it, in id order.
    pub async fn roles_with_counts(&self) -> Result<Vec<(AdminRole, usize)>> {
        let mut out = Vec::new();
        for role in self.store.roles().await? {
            let count = self.store.users_with_role(role.id).await?.len();
            out.push((role, count));
        }
        Ok(out)
    }

    /// Rename a role or replace its permissions; what is not given stays.
    pub async fn update_role(&self, id: RoleId, name: Option<&str>, perms: Option<&[String]>) -> Result<AdminRole> {
        let role = self.role(id).await?;
        let name = match name {
            Some(n) => role_name(n)?,
            None => role.name,
        };
        let permissions = match perms {
            Some(p) => permissions(p, ROUTE_NAMES)?,
            None => role.permissions,
        };
        self.store.apply(Batch(vec![Change::UpdateRole { id, name, permissions }])).await?;
        self.role(id).await
    }

    /// Delete a role and its assignments together.
    pub async fn delete_role(&self, id: RoleId) -> Result<()> {
        self.store.apply(Batch(vec![Change::DeleteRole(id)])).await.map(|_| ())
    }

    fn user_not_found(id: UserId) -> Error {
        Error::NotFound(format!("User not found: {id}"))
    }

    /// The roles assigned to a user, in id order; not found for an unknown user.
    pub async fn roles_of_user(&self, user_id: UserId) -> Result<(User, Vec<AdminRole>)> {
        let user = self.store.user(user_id).await?.ok_or_else(|| Self::user_not_found(user_id))?;
        let roles = self.assigned_roles(user_id).await?;
        Ok((user, roles))
    }

    async fn assigned_roles(&self, user_id: UserId) -> Result<Vec<AdminRole>> {
        let mut out = Vec::new();
        for id in self.store.roles_of_user(user_id).await? {
            if let Some(r) = self.store.role(id).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Replace the user's roles with `roles` (ids); unknown ids are refused with `unknown_role`.
    pub async fn set_user_roles(&self, user_id: UserId, roles: Vec<RoleId>) -> Result<Vec<AdminRole>> {
        self.store.apply(Batch(vec![Change::SetUserRoles { user_id, roles }])).await?;
        Ok(self.roles_of_user(user_id).await?.1)
    }

    /// Add one role to the user's roles, keeping the others.
    pub async fn assign_role(&self, user_id: UserId, role_id: RoleId) -> Result<Vec<AdminRole>> {
        let mut ids = self.store.roles_of_user(user_id).await?;
        ids.push(role_id);
        self.set_user_roles(user_id, ids).await
    }

    /// The roles that count for `user`: its roles when it is an admin, none otherwise.
    pub async fn effective_roles(&self, user: &User) -> Result<Vec<AdminRole>> {
        if user.role != Role::Admin {
            return Ok(Vec::new());
        }
        self.assigned_roles(user.id).await
    }

    /// Whether the user may use `permission`: an admin with a role granting it or `*`.
    pub async fn has_permission(&self, user: &User, permission: &str) -> Result<bool> {
        Ok(self.effective_roles(user).await?.iter().any(|r| r.grants(permission)))
    }

    /// Answer per permission whether the user holds it (unknown names are simply not held).
    pub async fn check_permissions(&self, user_id: UserId, names: &[String]) -> Result<Vec<(String, bool)>> {
        let user = self.store.user(user_id).await?.ok_or_else(|| Self::user_not_found(user_id))?;
        let roles = self.effective_roles(&user).await?;
        Ok(names.iter().map(|n| (n.clone(), roles.iter().any(|r| r.grants(n)))).collect())
    }

    /// Role names REMP's login responses list under `user.roles`: an admin's roles only.
    pub async fn login_role_names(&self, user: &User) -> Result<Vec<String>> {
        Ok(self.effective_roles(user).await?.into_iter().map(|r| r.name).collect())
    }
}
