//! Admin roles (REMP's `admin_groups` with their access rows): a named set of permission
//! names, assigned to users. Permissions are our route names (`groups/list`) or `*` for all;
//! they count only for users whose `role` is admin, as REMP's ACL applies to admins only.

use super::{Error, Result, Timestamp};
use serde::{Deserialize, Serialize};

/// Roles are numbered from 1.
pub type RoleId = u64;

/// The permission that grants every route.
pub const ALL: &str = "*";

/// Longest role name accepted, in characters (REMP's `admin_groups.name` is varchar(255)).
pub const MAX_ROLE_NAME_LEN: usize = 255;

/// A role as stored. Names are unique, compared case-insensitively.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AdminRole {
    pub id: RoleId,
    pub name: String,
    /// Route names or `*`, without duplicates, in the order given.
    pub permissions: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl AdminRole {
    /// Whether this role grants `permission`.
    pub fn grants(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == ALL || p == permission)
    }
}

/// A role name as it will be stored: trimmed, 1 to [`MAX_ROLE_NAME_LEN`] characters.
pub fn role_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_ROLE_NAME_LEN {
        return Err(Error::invalid(
            "invalid_input",
            "name",
            format!("a role needs a name of 1 to {MAX_ROLE_NAME_LEN} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// The key that makes role names unique regardless of case.
pub fn role_name_key(name: &str) -> String {
    name.to_lowercase()
}

/// Permission names checked against `known` (the route names), trimmed and deduplicated.
pub fn permissions<S: AsRef<str>>(raw: &[S], known: &[&str]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for p in raw {
        let p = p.as_ref().trim();
        if p != ALL && !known.contains(&p) {
            return Err(Error::invalid(
                "invalid_permission",
                "permissions",
                format!("unknown permission '{p}'; use '*' or route names: {}", known.join(", ")),
            ));
        }
        if !out.iter().any(|q| q == p) {
            out.push(p.to_owned());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permissions_are_checked_trimmed_and_deduplicated() {
        let known = ["groups/list", "roles/list"];
        assert_eq!(permissions(&[" groups/list", "groups/list", "*"], &known).unwrap(), vec!["groups/list", "*"]);
        assert_eq!(permissions(&["nope"], &known).unwrap_err().code(), "invalid_permission");
        assert!(permissions::<&str>(&[], &known).unwrap().is_empty());
    }

    #[test]
    fn a_star_grants_everything() {
        let at = crate::domain::now();
        let role = |p: &[&str]| AdminRole {
            id: 1,
            name: "r".into(),
            permissions: p.iter().map(|s| s.to_string()).collect(),
            created_at: at,
            updated_at: at,
        };
        assert!(role(&["*"]).grants("groups/list"));
        assert!(role(&["groups/list"]).grants("groups/list"));
        assert!(!role(&["groups/list"]).grants("roles/list"));
    }
}
