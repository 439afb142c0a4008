//! The user directory of the resource API: filtering, searching, ordering and paging users
//! (`GET /api/users`, `GET /api/users/search`). Parsing of the query syntax lives here too, so
//! every caller reads `order=last_name|desc` or `search_fields=email:like;first_name:=` alike.
//! Writes are elsewhere ([`super::user_admin`]).
//!
//! The candidate set comes from an index when a filter has one (meta key and value, group),
//! else from a scan in id order; the other filters, search and ordering run in memory.

use super::Services;
use crate::domain::{
    Error, Result, Timestamp,
    group::GroupId,
    user::{Role, User, UserId, email_key},
};
use crate::store::UserScan;
use std::cmp::Ordering;

/// Users per page when the client does not say.
pub const DEFAULT_PER_PAGE: usize = 20;
/// Most users per page: a page is built in one response, and 500 user objects stay well under
/// a megabyte.
pub const MAX_PER_PAGE: usize = 500;
/// Most results of the quick search, which has no paging.
pub const MAX_TAKE: usize = 100;
/// Results of the quick search when the client does not say.
pub const DEFAULT_TAKE: usize = 10;

/// What the list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    Id,
    Email,
    FirstName,
    LastName,
    PublicName,
    CreatedAt,
    ModifiedAt,
}

impl SortField {
    pub const NAMES: &'static [&'static str] =
        &["id", "email", "first_name", "last_name", "public_name", "created_at", "modified_at"];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "id" => SortField::Id,
            "email" => SortField::Email,
            "first_name" => SortField::FirstName,
            "last_name" => SortField::LastName,
            "public_name" => SortField::PublicName,
            "created_at" => SortField::CreatedAt,
            "modified_at" => SortField::ModifiedAt,
            _ => return None,
        })
    }
}

/// `order=field` or `order=field|desc`; ties are broken by id in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub field: SortField,
    pub desc: bool,
}

impl Default for Order {
    fn default() -> Self {
        Order { field: SortField::Id, desc: false }
    }
}

impl Order {
    pub fn parse(spec: &str) -> Result<Self> {
        let (field, dir) = spec.split_once('|').unwrap_or((spec, "asc"));
        let field = SortField::parse(field.trim()).ok_or_else(|| {
            Error::invalid(
                "invalid_input",
                "order",
                format!("order by one of {}, optionally followed by |desc", SortField::NAMES.join(", ")),
            )
        })?;
        let desc = match dir.trim().to_ascii_lowercase().as_str() {
            "asc" => false,
            "desc" => true,
            _ => return Err(Error::invalid("invalid_input", "order", "the direction after | is asc or desc")),
        };
        Ok(Order { field, desc })
    }

    fn compare(&self, a: &User, b: &User) -> Ordering {
        fn text(v: &Option<String>) -> Option<String> {
            v.as_deref().map(str::to_lowercase)
        }
        let by_field = match self.field {
            SortField::Id => Ordering::Equal,
            SortField::Email => a.email.to_lowercase().cmp(&b.email.to_lowercase()),
            SortField::FirstName => text(&a.first_name).cmp(&text(&b.first_name)),
            SortField::LastName => text(&a.last_name).cmp(&text(&b.last_name)),
            SortField::PublicName => a.public_name.to_lowercase().cmp(&b.public_name.to_lowercase()),
            SortField::CreatedAt => a.created_at.cmp(&b.created_at),
            SortField::ModifiedAt => a.modified_at.cmp(&b.modified_at),
        };
        let ord = by_field.then(a.id.cmp(&b.id));
        if self.desc { ord.reverse() } else { ord }
    }
}

/// A field the search looks in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchField {
    Email,
    FirstName,
    LastName,
    PublicName,
    ExtId,
}

impl SearchField {
    pub const NAMES: &'static [&'static str] = &["email", "first_name", "last_name", "public_name", "ext_id"];
    const ALL: [SearchField; 5] = [
        SearchField::Email,
        SearchField::FirstName,
        SearchField::LastName,
        SearchField::PublicName,
        SearchField::ExtId,
    ];

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "email" => SearchField::Email,
            "first_name" => SearchField::FirstName,
            "last_name" => SearchField::LastName,
            "public_name" => SearchField::PublicName,
            "ext_id" => SearchField::ExtId,
            _ => return None,
        })
    }

    fn value(self, user: &User) -> Option<String> {
        match self {
            SearchField::Email => Some(user.email.clone()),
            SearchField::FirstName => user.first_name.clone(),
            SearchField::LastName => user.last_name.clone(),
            SearchField::PublicName => Some(user.public_name.clone()),
            SearchField::ExtId => user.ext_id.map(|v| v.to_string()),
        }
    }
}

/// `like` matches a case-insensitive substring, `=` the whole value (case-insensitively).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchMode {
    Like,
    Exact,
}

impl SearchMode {
    pub fn parse(spec: &str) -> Result<Self> {
        match spec.trim() {
            "like" => Ok(SearchMode::Like),
            "=" => Ok(SearchMode::Exact),
            _ => Err(Error::invalid("invalid_input", "search_mode", "search_mode is like or =")),
        }
    }
}

/// `q` over some fields, each with its mode; `all` when every field must match
/// (`search_match=and`), else any one (`or`, the default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub q: String,
    pub fields: Vec<(SearchField, SearchMode)>,
    pub all: bool,
}

impl Search {
    /// `fields` is appcrm's `email:like;first_name:=` or a comma list; a field without a mode
    /// takes `mode`. No fields means all of them.
    pub fn parse(q: &str, fields: Option<&str>, mode: Option<&str>, matching: Option<&str>) -> Result<Self> {
        let mode = mode.filter(|m| !m.is_empty()).map(SearchMode::parse).transpose()?.unwrap_or(SearchMode::Like);
        let all = match matching.map(|m| m.trim().to_ascii_lowercase()).as_deref() {
            None | Some("") | Some("or") => false,
            Some("and") => true,
            Some(_) => return Err(Error::invalid("invalid_input", "search_match", "search_match is and or or")),
        };
        let mut parsed = Vec::new();
        for item in fields.unwrap_or_default().split([',', ';']).map(str::trim).filter(|f| !f.is_empty()) {
            let (name, field_mode) = match item.split_once(':') {
                Some((name, m)) => (name.trim(), SearchMode::parse(m)?),
                None => (item, mode),
            };
            let field = SearchField::parse(name).ok_or_else(|| {
                Error::invalid(
                    "invalid_input",
                    "search_fields",
                    format!("unknown search field '{name}'; fields: {}", SearchField::NAMES.join(", ")),
                )
            })?;
            parsed.push((field, field_mode));
        }
        if parsed.is_empty() {
            parsed = SearchField::ALL.iter().map(|f| (*f, mode)).collect();
        }
        Ok(Search { q: q.trim().to_lowercase(), fields: parsed, all })
    }

    fn matches(&self, user: &User) -> bool {
        let hit = |(field, mode): &(SearchField, SearchMode)| {
            field.value(user).is_some_and(|v| {
                let v = v.to_lowercase();
                match mode {
                    SearchMode::Like => v.contains(&self.q),
                    SearchMode::Exact => v == self.q,
                }
            })
        };
        if self.all { self.fields.iter().all(hit) } else { self.fields.iter().any(hit) }
    }
}

/// Which users a list shows. Anonymized (deleted) users never appear.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub email: Option<String>,
    pub active: Option<bool>,
    pub confirmed: Option<bool>,
    pub group: Option<GroupId>,
    pub role: Option<Role>,
    /// Meta key, and value when given.
    pub meta: Option<(String, Option<String>)>,
    pub created_from: Option<Timestamp>,
    pub created_to: Option<Timestamp>,
    pub search: Option<Search>,
}

impl UserFilter {
    /// Whether the filter keeps every live user, so a page can be read straight off the id index.
    fn is_empty(&self) -> bool {
        let UserFilter { email, active, confirmed, group, role, meta, created_from, created_to, search } = self;
        email.is_none()
            && active.is_none()
            && confirmed.is_none()
            && group.is_none()
            && role.is_none()
            && meta.is_none()
            && created_from.is_none()
            && created_to.is_none()
            && search.is_none()
    }

    fn matches(&self, user: &User) -> bool {
        !user.is_deleted()
            && self.email.as_deref().is_none_or(|e| email_key(e) == email_key(&user.email))
            && self.active.is_none_or(|a| a == user.active)
            && self.confirmed.is_none_or(|c| c == user.confirmed_at.is_some())
            && self.role.is_none_or(|r| r == user.role)
            && self.created_from.is_none_or(|from| user.created_at >= from)
            && self.created_to.is_none_or(|to| user.created_at <= to)
            && self.search.as_ref().is_none_or(|s| s.matches(user))
    }
}

/// One page request: offset paging by `page`, or keyset paging after a user id (which needs
/// the id order, ascending or descending).
#[derive(Debug, Clone)]
pub struct DirectoryQuery {
    pub filter: UserFilter,
    pub order: Order,
    pub page: u64,
    pub per_page: usize,
    pub after: Option<UserId>,
}

/// One page of users, the number matching the filter, and the cursor for the next page.
#[derive(Debug, Clone)]
pub struct DirectoryPage {
    pub users: Vec<User>,
    pub total: u64,
    /// Pass as `after` to continue; `None` on the last page.
    pub next: Option<UserId>,
}

impl Services {
    /// Every user matching the filter, in the requested order.
    async fn matching_users(&self, filter: &UserFilter, order: Order) -> Result<Vec<User>> {
        let mut ids: Option<Vec<UserId>> = None;
        if let Some((key, value)) = &filter.meta {
            let mut found: Vec<UserId> =
                self.store.users_with_meta(key, value.as_deref()).await?.into_iter().map(|(id, _)| id).collect();
            found.sort_unstable();
            found.dedup();
            ids = Some(found);
        }
        if let Some(group) = filter.group {
            let members = self.store.users_in_group(group).await?;
            ids = Some(match ids {
                Some(found) => found.into_iter().filter(|id| members.binary_search(id).is_ok()).collect(),
                None => members,
            });
        }
        let candidates = match ids {
            Some(ids) => {
                let mut users = Vec::with_capacity(ids.len());
                for id in ids {
                    if let Some(u) = self.store.user(id).await? {
                        users.push(u);
                    }
                }
                users
            }
            None => {
                let scan = UserScan { after: None, include_inactive: true, include_deleted: false };
                self.store.scan_users(&scan, 0, usize::MAX).await?
            }
        };
        let mut users: Vec<User> = candidates.into_iter().filter(|u| filter.matches(u)).collect();
        if order != Order::default() {
            users.sort_by(|a, b| order.compare(a, b));
        }
        Ok(users)
    }

    /// `GET /api/users`: one page of the directory.
    pub async fn find_users(&self, query: &DirectoryQuery) -> Result<DirectoryPage> {
        if query.after.is_some() && query.order.field != SortField::Id {
            return Err(Error::invalid("invalid_input", "after", "after (keyset paging) needs the id order"));
        }
        if query.filter.is_empty() && query.order == Order::default() {
            return self.id_page(query).await;
        }
        let users = self.matching_users(&query.filter, query.order).await?;
        let total = users.len() as u64;
        let start = match query.after {
            Some(after) => users.iter().position(|u| if query.order.desc { u.id < after } else { u.id > after }),
            None => Some((query.page.saturating_sub(1) as usize).saturating_mul(query.per_page)),
        }
        .unwrap_or(users.len())
        .min(users.len());
        let end = start.saturating_add(query.per_page).min(users.len());
        let next = if end < users.len() { end.checked_sub(1).and_then(|i| users.get(i)).map(|u| u.id) } else { None };
        let page = users.into_iter().skip(start).take(end - start).collect();
        Ok(DirectoryPage { users: page, total, next })
    }

    /// An unfiltered page in ascending id order, read off the id index: keyset pages cost
    /// their own size however deep they are.
    async fn id_page(&self, query: &DirectoryQuery) -> Result<DirectoryPage> {
        let offset = match query.after {
            Some(_) => 0,
            None => (query.page.saturating_sub(1) as usize).saturating_mul(query.per_page),
        };
        let scan = UserScan { after: query.after, include_inactive: true, include_deleted: false };
        let total = self.store.count_users(&scan).await?;
        if query.after.is_none() && offset as u64 >= total {
            return Ok(DirectoryPage { users: Vec::new(), total, next: None });
        }
        let mut users = self.store.scan_users(&scan, offset, query.per_page.saturating_add(1)).await?;
        let more = users.len() > query.per_page;
        users.truncate(query.per_page);
        let next = if more { users.last().map(|u| u.id) } else { None };
        Ok(DirectoryPage { users, total, next })
    }

    /// `GET /api/users/search`: the first `take` matches, no paging.
    pub async fn quick_search(&self, search: Search, order: Order, take: usize) -> Result<Vec<User>> {
        let filter = UserFilter { search: Some(search), ..UserFilter::default() };
        let mut users = self.matching_users(&filter, order).await?;
        users.truncate(take);
        Ok(users)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_parses_field_and_direction() {
        assert_eq!(Order::parse("created_at").unwrap(), Order { field: SortField::CreatedAt, desc: false });
        assert_eq!(Order::parse("last_name|desc").unwrap(), Order { field: SortField::LastName, desc: true });
        assert_eq!(Order::parse("password").unwrap_err().code(), "invalid_input");
        assert_eq!(Order::parse("id|down").unwrap_err().code(), "invalid_input");
    }

    #[test]
    fn search_fields_take_appcrm_and_comma_syntax() {
        let s = Search::parse("Ann", Some("email:like;first_name:="), None, Some("and")).unwrap();
        assert_eq!(s.fields, vec![(SearchField::Email, SearchMode::Like), (SearchField::FirstName, SearchMode::Exact)]);
        assert!(s.all);
        assert_eq!(s.q, "ann");
        let s = Search::parse("x", Some("email,last_name"), Some("="), None).unwrap();
        assert_eq!(s.fields, vec![(SearchField::Email, SearchMode::Exact), (SearchField::LastName, SearchMode::Exact)]);
        assert_eq!(Search::parse("x", None, None, None).unwrap().fields.len(), 5);
        assert!(Search::parse("x", Some("password"), None, None).is_err());
        assert!(Search::parse("x", None, Some("~"), None).is_err());
        assert!(Search::parse("x", None, None, Some("xor")).is_err());
    }
}
