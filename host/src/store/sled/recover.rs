//! Staying up through storage faults. When sled fails to write its log (a full disk, an I/O
//! error) it records the error and refuses every later write until the database is opened
//! again; an `fdatasync` that fails leaves the page cache in a state nobody can vouch for.
//! [`RecoveringStore`] keeps serving reads from the store it has, lets writes fail (the API
//! answers them 503), and meanwhile probes the folder once a second: as soon as a small file
//! can be written and synced there again, it waits for the calls in flight, closes sled and
//! opens it afresh from what is on disk. Every acknowledged write was synced before its answer,
//! so it is there after the reopen; writes that were answered with an error may or may not be.
//!
//! Offline commands use [`SledStore`] directly; the server uses this wrapper.

use super::{CommitMode, SledStore};
use crate::domain::{
    Error, Result, Timestamp,
    address::{Address, AddressChangeRequest, AddressId, AddressType, ChangeRequestId},
    attempt::{AttemptMark, LoginAttempt, PasswordChange},
    group::{Group, GroupId},
    meta::MetaEntry,
    role::{AdminRole, RoleId},
    secret::TokenDigest,
    token::{AccessToken, ApiToken, AutologinToken, ConnectedAccount, DeviceToken},
    user::{NewUser, User, UserId},
};
use crate::store::{AccessTokenDraft, Applied, Batch, IdSequence, Imported, Store, UserScan};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How often a failed store probes its folder for recovery.
const PROBE_PERIOD: Duration = Duration::from_secs(1);
/// Bytes the probe writes and syncs: enough that a nearly full disk does not pass by luck
/// (sled writes in segments of 512 KiB).
const PROBE_BYTES: usize = 1024 * 1024;
/// How long a reopen waits for calls in flight on the failed store to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The probe file, in the store's folder.
const PROBE_FILE: &str = "space-probe.tmp";

struct Inner {
    dir: PathBuf,
    mode: CommitMode,
    /// The open store; `None` only while a reopen swaps it.
    current: RwLock<Option<Arc<SledStore>>>,
    /// A write failed: the store needs a reopen once the folder takes writes again.
    failed: AtomicBool,
    /// Set while the recovery task runs, so only one does.
    recovering: AtomicBool,
    swapped: tokio::sync::Notify,
}

/// A [`SledStore`] that reopens itself after a storage fault (see the module doc).
#[derive(Clone)]
pub struct RecoveringStore(Arc<Inner>);

impl std::fmt::Debug for RecoveringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveringStore").field("dir", &self.0.dir).finish_non_exhaustive()
    }
}

impl RecoveringStore {
    pub fn open(dir: &Path, mode: CommitMode) -> anyhow::Result<Self> {
        let store = SledStore::open_with(dir, mode)?;
        Ok(RecoveringStore(Arc::new(Inner {
            dir: dir.to_owned(),
            mode,
            current: RwLock::new(Some(Arc::new(store))),
            failed: AtomicBool::new(false),
            recovering: AtomicBool::new(false),
            swapped: tokio::sync::Notify::new(),
        })))
    }

    /// The open store; waits out a reopen in progress.
    async fn current(&self) -> Result<Arc<SledStore>> {
        for _ in 0..2 {
            let notified = self.0.swapped.notified();
            tokio::pin!(notified);
            // Registered before the check, so a swap right after it is not missed.
            notified.as_mut().enable();
            if let Some(store) = self.0.current.read().unwrap_or_else(|e| e.into_inner()).clone() {
                return Ok(store);
            }
            let _ = tokio::time::timeout(DRAIN_TIMEOUT, notified).await;
        }
        Err(Error::Storage(anyhow::anyhow!("the store is being reopened after a storage fault")))
    }

    /// After a write failed: mark the store failed and start the recovery task, once.
    fn write_failed<T>(&self, result: Result<T>) -> Result<T> {
        if let Err(Error::Storage(e)) = &result {
            tracing::error!(error = %format!("{e:#}"), "a write failed; writes are refused until the store recovers");
            self.0.failed.store(true, Ordering::SeqCst);
            if !self.0.recovering.swap(true, Ordering::SeqCst)
                && let Ok(runtime) = tokio::runtime::Handle::try_current()
            {
                runtime.spawn(self.clone().recover());
            }
        }
        result
    }

    /// Probe until the folder takes writes, then reopen; repeat until a reopen succeeds.
    async fn recover(self) {
        loop {
            tokio::time::sleep(PROBE_PERIOD).await;
            let dir = self.0.dir.clone();
            let writable = tokio::task::spawn_blocking(move || probe(&dir)).await.map_err(anyhow::Error::from);
            match writable.and_then(|r| r) {
                Ok(()) => match self.reopen().await {
                    Ok(()) => {
                        tracing::info!(dir = %self.0.dir.display(), "the store was reopened after a storage fault; writes are taken again");
                        self.0.failed.store(false, Ordering::SeqCst);
                        self.0.recovering.store(false, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => tracing::error!(error = %format!("{e:#}"), "reopening the store failed; trying again"),
                },
                Err(e) => tracing::debug!(error = %format!("{e:#}"), "the store's folder does not take writes yet"),
            }
        }
    }

    /// Close the failed store once the calls in flight on it are done, and open it again.
    async fn reopen(&self) -> anyhow::Result<()> {
        let taken = self.0.current.write().unwrap_or_else(|e| e.into_inner()).take();
        let Some(mut old) = taken else { anyhow::bail!("no store to reopen") };
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        let old_store = loop {
            match Arc::try_unwrap(old) {
                Ok(store) => break Some(store),
                Err(still_shared) if tokio::time::Instant::now() < deadline => {
                    old = still_shared;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(still_shared) => {
                    // Give it back: reads keep working on it; the next probe tries again.
                    *self.0.current.write().unwrap_or_else(|e| e.into_inner()) = Some(still_shared);
                    self.0.swapped.notify_waiters();
                    anyhow::bail!("calls on the failed store did not finish within {DRAIN_TIMEOUT:?}");
                }
            }
        };
        let (dir, mode) = (self.0.dir.clone(), self.0.mode);
        // Closing joins sled's threads and takes its file lock with it; then open afresh.
        let opened = tokio::task::spawn_blocking(move || {
            drop(old_store);
            SledStore::open_with(&dir, mode)
        })
        .await
        .map_err(anyhow::Error::from)
        .and_then(|r| r);
        let result = match opened {
            Ok(store) => {
                *self.0.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(store));
                Ok(())
            }
            Err(e) => Err(e),
        };
        self.0.swapped.notify_waiters();
        result
    }

    /// Whether the store refuses writes since a fault (for health reporting).
    pub fn is_failed(&self) -> bool {
        self.0.failed.load(Ordering::SeqCst)
    }
}

fn refused() -> Error {
    Error::Storage(anyhow::anyhow!("the store refuses writes until it recovers from a storage fault"))
}

/// Write and sync a file of [`PROBE_BYTES`] in `dir`, then remove it.
fn probe(dir: &Path) -> anyhow::Result<()> {
    let path = dir.join(PROBE_FILE);
    let written = (|| -> std::io::Result<()> {
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&vec![0u8; PROBE_BYTES])?;
        file.sync_all()
    })();
    let _ = std::fs::remove_file(&path);
    Ok(written?)
}

/// Reads go to the current store; writes too, and a failed write starts the recovery.
macro_rules! recovering_store {
    (
        reads { $(fn $read:ident(&self $(, $rarg:ident: $rty:ty)*) -> $rret:ty;)* }
        writes { $(fn $write:ident(&self $(, $warg:ident: $wty:ty)*) -> $wret:ty;)* }
    ) => {
        #[async_trait::async_trait]
        impl Store for RecoveringStore {
            $(async fn $read(&self $(, $rarg: $rty)*) -> $rret {
                self.current().await?.$read($($rarg),*).await
            })*
            $(async fn $write(&self $(, $warg: $wty)*) -> $wret {
                if self.is_failed() {
                    // A write acknowledged now could sit behind log pages the failed write
                    // lost: no acknowledgement until the reopen has re-read the disk.
                    return Err(refused());
                }
                let result = self.current().await?.$write($($warg),*).await;
                self.write_failed(result)
            })*
            async fn size_on_disk(&self) -> Result<u64> {
                let store = self.0.current.read().unwrap_or_else(|e| e.into_inner()).clone();
                match store {
                    Some(store) => store.size_on_disk().await,
                    None => Err(Error::Storage(anyhow::anyhow!("the store is being reopened"))),
                }
            }
            async fn server_secret(&self, name: &str) -> Result<[u8; 32]> {
                // Reading a secret made earlier works while writes are refused.
                let store = self.current().await?;
                if let Some(secret) = store.stored_secret(name)? {
                    return Ok(secret);
                }
                if self.is_failed() {
                    return Err(refused());
                }
                let result = store.server_secret(name).await;
                self.write_failed(result)
            }
            async fn export(&self, sink: &mut (dyn FnMut(Imported) -> Result<()> + Send)) -> Result<()> {
                self.current().await?.export(sink).await
            }
        }
    };
}

recovering_store! {
    reads {
        fn user(&self, id: UserId) -> Result<Option<User>>;
        fn user_by_email(&self, email: &str) -> Result<Option<User>>;
        fn scan_users(&self, scan: &UserScan, skip: usize, limit: usize) -> Result<Vec<User>>;
        fn count_users(&self, scan: &UserScan) -> Result<u64>;
        fn user_meta(&self, user_id: UserId) -> Result<Vec<MetaEntry>>;
        fn meta_entry(&self, user_id: UserId, key: &str) -> Result<Option<MetaEntry>>;
        fn users_with_meta(&self, key: &str, value: Option<&str>) -> Result<Vec<(UserId, String)>>;
        fn access_token(&self, digest: &TokenDigest) -> Result<Option<AccessToken>>;
        fn access_tokens_of_user(&self, user_id: UserId) -> Result<Vec<AccessToken>>;
        fn access_tokens_of_device(&self, device_token_id: u64) -> Result<Vec<AccessToken>>;
        fn device_token(&self, digest: &TokenDigest) -> Result<Option<DeviceToken>>;
        fn recent_attempts_by_ip(&self, ip: &str, n: usize) -> Result<Vec<AttemptMark>>;
        fn recent_attempts_by_user(&self, user_id: UserId, n: usize) -> Result<Vec<AttemptMark>>;
        fn wrong_passwords_since(&self, user_id: UserId, since: Timestamp, cap: usize) -> Result<usize>;
        fn login_attempts_of_user(&self, user_id: UserId, limit: usize) -> Result<Vec<LoginAttempt>>;
        fn api_token(&self, digest: &TokenDigest) -> Result<Option<ApiToken>>;
        fn api_tokens(&self) -> Result<Vec<ApiToken>>;
        fn idempotency_key_seen(&self, scope: &str, key: &str) -> Result<bool>;
        fn autologin_token(&self, digest: &TokenDigest) -> Result<Option<AutologinToken>>;
        fn autologin_tokens_of_user(&self, user_id: UserId) -> Result<Vec<AutologinToken>>;
        fn connected_account(&self, kind: &str, external_id: &str) -> Result<Option<ConnectedAccount>>;
        fn connected_accounts_of_user(&self, user_id: UserId) -> Result<Vec<ConnectedAccount>>;
        fn plugin_kv(&self, plugin: &str, key: &str) -> Result<Option<Vec<u8>>>;
        fn stored_address_types(&self) -> Result<Vec<AddressType>>;
        fn address(&self, id: AddressId) -> Result<Option<Address>>;
        fn addresses_of_user(&self, user_id: UserId, kind: Option<&str>) -> Result<Vec<Address>>;
        fn address_change_request(&self, id: ChangeRequestId) -> Result<Option<AddressChangeRequest>>;
        fn group(&self, id: GroupId) -> Result<Option<Group>>;
        fn groups(&self) -> Result<Vec<Group>>;
        fn groups_of_user(&self, user_id: UserId) -> Result<Vec<GroupId>>;
        fn users_in_group(&self, group_id: GroupId) -> Result<Vec<UserId>>;
        fn role(&self, id: RoleId) -> Result<Option<AdminRole>>;
        fn roles(&self) -> Result<Vec<AdminRole>>;
        fn roles_of_user(&self, user_id: UserId) -> Result<Vec<RoleId>>;
        fn users_with_role(&self, role_id: RoleId) -> Result<Vec<UserId>>;
        fn password_changes_of_user(&self, user_id: UserId, limit: usize) -> Result<Vec<PasswordChange>>;
        fn address_change_requests_of_user(&self, user_id: UserId) -> Result<Vec<AddressChangeRequest>>;
        fn device_token_by_id(&self, id: u64) -> Result<Option<DeviceToken>>;
    }
    writes {
        fn create_user(&self, user: NewUser, meta: Vec<(String, String, bool)>, token: Option<AccessTokenDraft>) -> Result<(User, Option<AccessToken>)>;
        fn apply(&self, batch: Batch) -> Result<Applied>;
        fn flush(&self) -> Result<()>;
        fn reserve_id(&self, sequence: IdSequence) -> Result<u64>;
    }
}
