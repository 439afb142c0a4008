//! Persistence behind one repository trait, so the service layer never sees a byte layout.
//! `sled` is the embedded default; `postgres` implements the same trait for several hosts on
//! one database. [`StoreLocation`] says which, and where.
//!
//! Reads are typed methods. Writes go through [`Store::apply`], which takes a [`Batch`] of
//! changes and applies all of them or none, with every secondary index updated in the same
//! transaction, and returns only once the batch is durable on disk.

pub mod backup;
pub mod postgres;
pub mod sled;

use crate::domain::{
    Result, Timestamp,
    address::{Address, AddressChangeRequest, AddressId, AddressType, ChangeRequestId, ChangeRequestStatus},
    attempt::{
        AttemptMark, LoginAttempt, LoginStatus, PasswordChange, PasswordChangeKind, RegistrationAttempt,
        RegistrationStatus,
    },
    group::{Group, GroupId},
    meta::MetaEntry,
    role::{AdminRole, RoleId},
    secret::TokenDigest,
    token::{AccessToken, ApiToken, AutologinToken, ConnectedAccount, DeviceToken},
    user::{NewUser, User, UserId},
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// Where a store lives: chosen by the config for the server and the offline commands, named on
/// the command line by `crm-users migrate`.
#[derive(Debug, Clone)]
pub enum StoreLocation {
    /// An embedded sled store in `dir` (a data folder's `sled/`).
    Sled { dir: std::path::PathBuf, commit: sled::CommitMode },
    /// A PostgreSQL database several hosts may share.
    Postgres(postgres::PostgresOptions),
}

impl StoreLocation {
    /// For messages: the folder, or the database without its password.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Sled { dir, .. } => format!("the sled store in {}", dir.display()),
            StoreLocation::Postgres(options) => format!("the PostgreSQL database {}", options.describe()),
        }
    }
}

/// Version of the stored layout; a store written by another version is refused at open.
pub const SCHEMA_VERSION: u32 = 2;

/// A new access token, before the store gives it an id.
#[derive(Debug, Clone)]
pub struct AccessTokenDraft {
    pub digest: TokenDigest,
    pub user_id: UserId,
    pub device_token_id: Option<u64>,
    pub source: Option<String>,
    /// Which authenticator signed the user in, when a sign-in issued the token.
    pub method: Option<String>,
    pub ip: String,
    pub user_agent: String,
}

impl AccessTokenDraft {
    /// The token the store keeps under `id`, created `at`.
    pub fn into_token(&self, id: u64, at: Timestamp) -> AccessToken {
        AccessToken {
            id,
            digest: self.digest,
            user_id: self.user_id,
            device_token_id: self.device_token_id,
            source: self.source.clone(),
            method: self.method.clone(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            created_at: at,
            last_used_at: None,
        }
    }
}

/// A new login attempt, before the store gives it an id.
#[derive(Debug, Clone)]
pub struct LoginAttemptDraft {
    pub user_id: Option<UserId>,
    pub email: String,
    pub status: LoginStatus,
    pub source: String,
    pub ip: String,
    pub user_agent: String,
    pub message: Option<String>,
}

impl LoginAttemptDraft {
    /// The attempt the store keeps under `id`, made `at`.
    pub fn into_attempt(&self, id: u64, at: Timestamp) -> LoginAttempt {
        LoginAttempt {
            id,
            user_id: self.user_id,
            email: self.email.clone(),
            created_at: at,
            status: self.status,
            source: self.source.clone(),
            ip: self.ip.clone(),
            user_agent: self.user_agent.clone(),
            message: self.message.clone(),
        }
    }
}

/// One change in a [`Batch`].
#[derive(Debug, Clone)]
pub enum Change {
    /// Replace an existing user; the email index follows. Fails with `email_taken` when the new
    /// email belongs to another user.
    PutUser(Box<User>),
    PutMeta {
        user_id: UserId,
        key: String,
        value: String,
        is_public: bool,
    },
    /// Delete the entry for `key`, only when its value equals `value` if one is given.
    DeleteMeta {
        user_id: UserId,
        key: String,
        value: Option<String>,
    },
    /// Delete every public meta entry of the user.
    DeletePublicMeta {
        user_id: UserId,
    },
    InsertAccessToken(AccessTokenDraft),
    DeleteAccessToken(TokenDigest),
    /// Pair an access token with a device token, or unpair it (`None`).
    PairAccessToken {
        access: TokenDigest,
        device_token_id: Option<u64>,
    },
    InsertDeviceToken {
        digest: TokenDigest,
        device_id: String,
    },
    TouchDeviceToken {
        digest: TokenDigest,
        at: Timestamp,
    },
    InsertLoginAttempt(LoginAttemptDraft),
    DeleteLoginAttemptsOf {
        user_id: UserId,
    },
    InsertRegistrationAttempt {
        user_id: Option<UserId>,
        email: String,
        status: RegistrationStatus,
        source: Option<String>,
        ip: String,
        user_agent: String,
    },
    InsertPasswordChange {
        user_id: UserId,
        kind: PasswordChangeKind,
        from_hash: String,
        to_hash: String,
    },
    InsertApiToken {
        digest: TokenDigest,
        name: String,
        allowed_routes: Vec<String>,
    },
    SetApiTokenActive {
        id: u64,
        active: bool,
    },
    RememberIdempotencyKey {
        scope: String,
        key: String,
    },
    // Autologin tokens and connected accounts (issue 4)
    InsertAutologinToken {
        digest: TokenDigest,
        user_id: UserId,
        email: String,
        valid_from: Timestamp,
        valid_to: Timestamp,
        max_count: u32,
    },
    /// Count one use; fails with `token_count_expired` when none is left.
    UseAutologinToken(TokenDigest),
    DeleteAutologinTokensOf {
        user_id: UserId,
    },
    /// Revoke one autologin token; absent ones are skipped.
    DeleteAutologinToken(TokenDigest),
    InsertConnectedAccount {
        user_id: UserId,
        kind: String,
        external_id: String,
        email: Option<String>,
    },
    DeleteConnectedAccountsOf {
        user_id: UserId,
    },
    /// A plugin's own key-value entry.
    PutPluginKv {
        plugin: String,
        key: String,
        value: Vec<u8>,
    },
    DeletePluginKv {
        plugin: String,
        key: String,
    },
    // Addresses (issue 4)
    /// Add an address type; fails with `address_type_exists` when the key is stored already.
    InsertAddressType(AddressType),
    /// Insert or replace an address (its id reserved with [`Store::reserve_id`]); the
    /// by-user and by-user-and-type indexes follow. Fails with not found for an unknown user.
    PutAddress(Box<Address>),
    /// Insert or replace a change request. With `if_status`, the stored request must exist
    /// with that status, else the batch fails with `change_request_changed` (two accepts
    /// racing create one address, not two).
    PutAddressChangeRequest {
        request: Box<AddressChangeRequest>,
        if_status: Option<ChangeRequestStatus>,
    },
    // Groups (issue 4)
    InsertGroup {
        name: String,
        sorting: i32,
    },
    /// Make the user a member of the group; a no-op when it already is. Fails with not found
    /// when either is missing.
    AddToGroup {
        user_id: UserId,
        group_id: GroupId,
    },
    /// End the membership; a no-op when there is none.
    RemoveFromGroup {
        user_id: UserId,
        group_id: GroupId,
    },
    // Roles (issue 5)
    /// Rename or re-sort a group; fails with not found when it is missing.
    UpdateGroup {
        id: GroupId,
        name: String,
        sorting: i32,
    },
    /// Delete a group and every membership in it; fails with not found when it is missing.
    DeleteGroup(GroupId),
    /// Add a role; fails with `role_name_taken` when the name (any case) is stored already.
    InsertRole {
        name: String,
        permissions: Vec<String>,
    },
    /// Replace a role's name and permissions; not found or `role_name_taken` as above.
    UpdateRole {
        id: RoleId,
        name: String,
        permissions: Vec<String>,
    },
    /// Delete a role and every assignment of it; fails with not found when it is missing.
    DeleteRole(RoleId),
    /// Replace the set of roles assigned to a user. Fails with not found for an unknown user
    /// and with `unknown_role` when a role is missing.
    SetUserRoles {
        user_id: UserId,
        roles: Vec<RoleId>,
    },
    // Resource API (issue 5)
    /// Insert a user under the id it carries (`PUT /api/users/{id}` on a free id); the user
    /// sequence moves past it so later registrations never collide. Fails with `user_exists`
    /// when the id is taken and `email_taken` when the email is.
    InsertUser(Box<User>),
    // Import (issue 11)
    /// Write a record imported from another system under the id it had there.
    Import(Imported),
}

/// A record brought over from another system (`crm-users import remp`) or from a backup
/// (`crm-users import`, written by [`Store::export`]), complete with its id and timestamps.
/// Writing it replaces the record stored under the same id (or, for tokens, the same digest)
/// together with its indexes, so an import that runs twice duplicates nothing; the id sequence
/// moves past it, so records created later never collide with it.
///
/// Serialized (see [`backup`]) as `{"kind":"<variant in snake_case>","record":{...}}`; the
/// record is the domain type's own JSON. Variants are only ever added, so a backup stays
/// readable by later versions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case", deny_unknown_fields)]
pub enum Imported {
    /// Fails with `email_taken` (or `uuid_taken`) when another user holds the email (uuid).
    User(Box<User>),
    /// Fails with not found when the user is missing.
    Meta(MetaEntry),
    AccessToken(AccessToken),
    DeviceToken(DeviceToken),
    AutologinToken(AutologinToken),
    ConnectedAccount(ConnectedAccount),
    LoginAttempt(LoginAttempt),
    PasswordChange(PasswordChange),
    ApiToken(ApiToken),
    Group(Group),
    /// Fails with not found when the user or the group is missing.
    Membership {
        user_id: UserId,
        group_id: GroupId,
        since: Timestamp,
    },
    AddressType(AddressType),
    /// Fails with not found when the user is missing.
    Address(Box<Address>),
    AddressChangeRequest(Box<AddressChangeRequest>),
    // Backups (issue 7): the kinds no other system has, so that every record round-trips.
    /// Fails with `role_name_taken` when another role holds the name (any case).
    Role(AdminRole),
    /// The complete set of roles assigned to a user (replaces the stored set). Fails with not
    /// found when the user is missing and `unknown_role` when a role is.
    UserRoles {
        user_id: UserId,
        roles: Vec<RoleId>,
    },
    RegistrationAttempt(RegistrationAttempt),
    /// A plugin's own key-value entry; the value is base64 in JSON.
    PluginKv {
        plugin: String,
        key: String,
        #[serde(with = "base64_bytes")]
        value: Vec<u8>,
    },
    /// A named server secret ([`Store::server_secret`]), hex in JSON. Keeping it keeps what
    /// was derived from it (REMP's `hashed_id`) the same after a restore.
    ServerSecret {
        name: String,
        #[serde(with = "crate::domain::secret::hex_bytes")]
        key: [u8; 32],
    },
    /// An `Idempotency-Key` already answered in `scope`, and when.
    IdempotencyKey {
        scope: String,
        key: String,
        at: Timestamp,
    },
    /// The last id a sequence handed out (`users`, `access_tokens`, `addresses`, ...). Writing
    /// it only ever moves the sequence forward, so ids reserved but never written in the
    /// exported store are not handed out again after a restore either.
    Sequence {
        name: String,
        last: u64,
    },
}

/// `Vec<u8>` as a base64 string (standard alphabet, padded).
mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD.decode(text.as_bytes()).map_err(serde::de::Error::custom)
    }
}

/// Changes applied together or not at all.
#[derive(Debug, Clone, Default)]
pub struct Batch(pub Vec<Change>);

impl Batch {
    pub fn new() -> Self {
        Batch(Vec::new())
    }
    pub fn push(&mut self, change: Change) -> &mut Self {
        self.0.push(change);
        self
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What a batch created, in the order of its inserts.
#[derive(Debug, Clone)]
pub enum Created {
    AccessToken(AccessToken),
    DeviceToken(DeviceToken),
    LoginAttempt(LoginAttempt),
    ApiToken(ApiToken),
    /// Inserts whose record the caller does not need back (audit rows).
    Row(u64),
    Group(Group),
    Role(AdminRole),
}

/// Results of [`Store::apply`].
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub created: Vec<Created>,
    /// Access tokens removed by `DeleteAccessToken` (absent ones are skipped).
    pub removed_access_tokens: Vec<AccessToken>,
    /// Whether any `DeleteMeta`/`DeletePublicMeta` removed an entry.
    pub meta_deleted: bool,
}

impl Applied {
    pub fn access_tokens(&self) -> impl Iterator<Item = &AccessToken> {
        self.created.iter().filter_map(|c| match c {
            Created::AccessToken(t) => Some(t),
            _ => None,
        })
    }
    pub fn device_token(&self) -> Option<&DeviceToken> {
        self.created.iter().find_map(|c| match c {
            Created::DeviceToken(t) => Some(t),
            _ => None,
        })
    }
    pub fn api_token(&self) -> Option<&ApiToken> {
        self.created.iter().find_map(|c| match c {
            Created::ApiToken(t) => Some(t),
            _ => None,
        })
    }
    pub fn group(&self) -> Option<&Group> {
        self.created.iter().find_map(|c| match c {
            Created::Group(g) => Some(g),
            _ => None,
        })
    }
    pub fn role(&self) -> Option<&AdminRole> {
        self.created.iter().find_map(|c| match c {
            Created::Role(r) => Some(r),
            _ => None,
        })
    }
}

/// A filter for listing users in id order.
#[derive(Debug, Clone, Default)]
pub struct UserScan {
    /// Start after this id (keyset paging).
    pub after: Option<UserId>,
    pub include_inactive: bool,
    pub include_deleted: bool,
}

/// Sequences whose next value a use case reserves before it builds the records of a batch
/// (an accepted change request and the address it creates point at each other).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSequence {
    Address,
    AddressChangeRequest,
}

/// Held while one password guess against an account is evaluated; dropping it lets the next
/// one in. A store that several hosts share holds a lock they all see; a single-host store
/// holds nothing (the service's own per-account lock is enough there).
pub struct AccountLock(Option<Box<dyn Send + Sync>>);

impl AccountLock {
    /// No lock beyond the service's own.
    pub fn none() -> Self {
        AccountLock(None)
    }

    /// A lock released when `guard` drops.
    pub fn held(guard: impl Send + Sync + 'static) -> Self {
        AccountLock(Some(Box::new(guard)))
    }
}

impl std::fmt::Debug for AccountLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "AccountLock(held)" } else { "AccountLock(none)" })
    }
}

/// The repository every backend implements.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Create a user with its meta and, optionally, its first access token, atomically.
    /// Fails with `email_taken` when the email (compared case-insensitively) exists.
    async fn create_user(
        &self,
        user: NewUser,
        meta: Vec<(String, String, bool)>,
        token: Option<AccessTokenDraft>,
    ) -> Result<(User, Option<AccessToken>)>;

    /// Apply a batch atomically and durably.
    async fn apply(&self, batch: Batch) -> Result<Applied>;

    async fn user(&self, id: UserId) -> Result<Option<User>>;
    async fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    /// At most `limit` users in id order that match `scan`, passing over the first `skip` matches (cheaply:
    /// a page deep in the list does not read the users before it).
    async fn scan_users(&self, scan: &UserScan, skip: usize, limit: usize) -> Result<Vec<User>>;
    /// How many users match the scan's filters (ignoring `after`).
    async fn count_users(&self, scan: &UserScan) -> Result<u64>;

    async fn user_meta(&self, user_id: UserId) -> Result<Vec<MetaEntry>>;
    async fn meta_entry(&self, user_id: UserId, key: &str) -> Result<Option<MetaEntry>>;
    /// `(user_id, value)` of every entry with `key` (and `value`, when given).
    async fn users_with_meta(&self, key: &str, value: Option<&str>) -> Result<Vec<(UserId, String)>>;

    async fn access_token(&self, digest: &TokenDigest) -> Result<Option<AccessToken>>;
    async fn access_tokens_of_user(&self, user_id: UserId) -> Result<Vec<AccessToken>>;
    async fn access_tokens_of_device(&self, device_token_id: u64) -> Result<Vec<AccessToken>>;
    async fn device_token(&self, digest: &TokenDigest) -> Result<Option<DeviceToken>>;

    /// The latest `n` attempts from `ip`, newest first.
    async fn recent_attempts_by_ip(&self, ip: &str, n: usize) -> Result<Vec<AttemptMark>>;
    /// The latest `n` attempts for the user, newest first.
    async fn recent_attempts_by_user(&self, user_id: UserId, n: usize) -> Result<Vec<AttemptMark>>;
    /// Wrong-password attempts for the user since `since`, counting at most `cap`.
    async fn wrong_passwords_since(&self, user_id: UserId, since: Timestamp, cap: usize) -> Result<usize>;
    /// The user's login attempts, newest first.
    async fn login_attempts_of_user(&self, user_id: UserId, limit: usize) -> Result<Vec<LoginAttempt>>;

    async fn api_token(&self, digest: &TokenDigest) -> Result<Option<ApiToken>>;
    async fn api_tokens(&self) -> Result<Vec<ApiToken>>;

    async fn idempotency_key_seen(&self, scope: &str, key: &str) -> Result<bool>;

    // Autologin tokens and connected accounts (issue 4)
    async fn autologin_token(&self, digest: &TokenDigest) -> Result<Option<AutologinToken>>;
    async fn autologin_tokens_of_user(&self, user_id: UserId) -> Result<Vec<AutologinToken>>;
    async fn connected_account(&self, kind: &str, external_id: &str) -> Result<Option<ConnectedAccount>>;
    async fn connected_accounts_of_user(&self, user_id: UserId) -> Result<Vec<ConnectedAccount>>;

    /// A plugin's own key-value entry.
    async fn plugin_kv(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>>;

    /// A 32-byte server secret by name, created on first use and kept.
    async fn server_secret(&self, name: &str) -> Result<[u8; 32]>;

    /// Make everything written so far durable (used at shutdown).
    async fn flush(&self) -> Result<()>;

    /// Serialize password guesses against one account across every host that shares this
    /// store, until the returned lock drops (the hourly cap on guesses counts them one at a
    /// time). Stores only one host opens need nothing beyond the service's own lock.
    async fn lock_account(&self, _user_id: UserId) -> Result<AccountLock> {
        Ok(AccountLock::none())
    }

    // Addresses (issue 4)
    /// The next id of a sequence, never handed out again. An id reserved but never written
    /// leaves a gap, as an auto-increment does after a rollback.
    async fn reserve_id(&self, sequence: IdSequence) -> Result<u64>;
    /// Stored address types (not those from config or plugins), by key.
    async fn stored_address_types(&self) -> Result<Vec<AddressType>>;
    async fn address(&self, id: AddressId) -> Result<Option<Address>>;
    /// The user's addresses, soft-deleted ones included, of one type when given, in id order.
    async fn addresses_of_user(&self, user_id: UserId, kind: Option<&str>) -> Result<Vec<Address>>;
    async fn address_change_request(&self, id: ChangeRequestId) -> Result<Option<AddressChangeRequest>>;
    // Groups (issue 4)
    async fn group(&self, id: GroupId) -> Result<Option<Group>>;
    /// Every group, in id order.
    async fn groups(&self) -> Result<Vec<Group>>;
    /// Ids of the groups the user belongs to, in id order.
    async fn groups_of_user(&self, user_id: UserId) -> Result<Vec<GroupId>>;
    /// Ids of the group's members, in id order.
    async fn users_in_group(&self, group_id: GroupId) -> Result<Vec<UserId>>;
    // Roles (issue 5)
    async fn role(&self, id: RoleId) -> Result<Option<AdminRole>>;
    /// Every role, in id order.
    async fn roles(&self) -> Result<Vec<AdminRole>>;
    /// Ids of the roles assigned to the user, in id order.
    async fn roles_of_user(&self, user_id: UserId) -> Result<Vec<RoleId>>;
    /// Ids of the users a role is assigned to, in id order.
    async fn users_with_role(&self, role_id: RoleId) -> Result<Vec<UserId>>;
    // The admin console's views of a user (issue 9)
    /// The user's password changes, newest first, at most `limit`. The log has no per-user
    /// index: this reads it from the newest row back, so it is for occasional admin views.
    async fn password_changes_of_user(&self, user_id: UserId, limit: usize) -> Result<Vec<PasswordChange>>;
    /// The user's address change requests, newest first (read like the password log).
    async fn address_change_requests_of_user(&self, user_id: UserId) -> Result<Vec<AddressChangeRequest>>;
    async fn device_token_by_id(&self, id: u64) -> Result<Option<DeviceToken>>;
    /// Bytes the store takes on disk.
    async fn size_on_disk(&self) -> Result<u64>;
    // Backups and migrations (issue 7)
    /// Hand every stored record to `sink`, one at a time (never the whole store in memory), in
    /// an order that replays into an empty store through `Change::Import`: server secrets,
    /// then users, groups, roles, address types, API and device tokens, then the records that
    /// refer to them, and the sequences' positions last. The order is deterministic, so two
    /// exports of the same data are identical. An error from `sink` stops the export and is
    /// returned. On sled not a snapshot: run it while nothing writes (the CLI holds the folder
    /// lock); on PostgreSQL one snapshot, whatever the hosts write meanwhile.
    async fn export(&self, sink: &mut (dyn FnMut(Imported) -> Result<()> + Send)) -> Result<()>;
}
