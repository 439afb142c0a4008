//! WebAssembly plugins: loading components from the plugins folder, their sandbox and limits,
//! typed calls per extension point, failure accounting with quarantine, and atomic reload.
//!
//! - [`manifest`]: the `plugin.toml` format.
//! - [`bindings`]: host bindings of the WIT contract.
//! - [`runtime`]: the engine, per-call store state and host functions.
//! - [`loader`]: a folder of plugins becomes a [`PluginSet`], or the reason it cannot.
//! - [`calls`]: typed calls that take and return domain-level values.
//! - [`trial`]: `crm-users plugin run`, one call against a scratch host with fixtures.
//!
//! Calls run on the set current when they start; a reload swaps the set atomically and calls
//! in flight finish on the old one.

pub mod bindings;
pub mod calls;
pub mod loader;
pub mod manifest;
pub mod runtime;
pub mod trial;

use crate::store::Store;
use loader::Plugin;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// The extension points, one per WIT world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Authenticator,
    SignInHandler,
    AddressType,
    EmailValidator,
    EventListener,
}

impl Kind {
    pub const ALL: [Kind; 5] =
        [Kind::Authenticator, Kind::SignInHandler, Kind::AddressType, Kind::EmailValidator, Kind::EventListener];

    /// The WIT world's name.
    pub fn world(self) -> &'static str {
        match self {
            Kind::Authenticator => "authenticator",
            Kind::SignInHandler => "sign-in-handler",
            Kind::AddressType => "address-type",
            Kind::EmailValidator => "email-validator",
            Kind::EventListener => "event-listener",
        }
    }

    /// The interface the world exports, as it appears in a component's export names.
    pub fn interface(self) -> &'static str {
        match self {
            Kind::Authenticator => "authentication",
            Kind::SignInHandler => "sign-in-handling",
            Kind::AddressType => "addresses",
            Kind::EmailValidator => "email-validation",
            Kind::EventListener => "events",
        }
    }

    /// What a failing call means when the manifest does not say (DESIGN.md section 4).
    /// Authenticators always fail closed, whatever the manifest says.
    pub fn default_failure(self) -> manifest::FailurePolicy {
        use manifest::FailurePolicy::*;
        match self {
            Kind::Authenticator | Kind::AddressType | Kind::EmailValidator => Closed,
            Kind::SignInHandler | Kind::EventListener => Open,
        }
    }

    /// The instance policy of calls of this world when the manifest does not say: warm where
    /// a call sees nothing secret (an email address, an address), fresh where it sees
    /// credentials, a user's data or events about users.
    pub fn default_instances(self) -> manifest::InstancePolicy {
        use manifest::InstancePolicy::*;
        match self {
            Kind::EmailValidator | Kind::AddressType => Warm,
            Kind::Authenticator | Kind::SignInHandler | Kind::EventListener => Fresh,
        }
    }
}

/// The plugins loaded together.
#[derive(Debug, Default)]
pub struct PluginSet {
    /// Highest priority first; equal priorities by name.
    pub plugins: Vec<Arc<Plugin>>,
}

impl PluginSet {
    /// Plugins implementing `kind`, highest priority first.
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.iter().filter(move |p| p.kinds.contains(&kind))
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.iter().find(|p| p.manifest().name == name)
    }
}

/// The plugin host: the engine, the folder, and the current set.
pub struct PluginHost {
    loader: loader::Loader,
    dir: PathBuf,
    current: RwLock<Arc<PluginSet>>,
    /// Serializes reloads; readers never wait on it.
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for PluginHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginHost").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl PluginHost {
    /// A host over `dir` (which need not exist) with compiled code cached in `cache_dir`.
    pub fn new(dir: PathBuf, cache_dir: Option<PathBuf>, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let loader = loader::Loader::new(cache_dir.as_deref(), store)?;
        Ok(PluginHost {
            loader,
            dir,
            current: RwLock::new(Arc::new(PluginSet::default())),
            reloading: Default::default(),
        })
    }

    /// The plugins folder.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The set calls should use now.
    pub fn current(&self) -> Arc<PluginSet> {
        match self.current.read() {
            Ok(set) => set.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Load the folder again and swap the set in, or keep the old set and say why not.
    pub async fn reload(&self) -> anyhow::Result<Arc<PluginSet>> {
        let _one_at_a_time = self.reloading.lock().await;
        let set = Arc::new(self.loader.load_dir(&self.dir).await?);
        match self.current.write() {
            Ok(mut current) => *current = set.clone(),
            Err(poisoned) => *poisoned.into_inner() = set.clone(),
        }
        tracing::info!(
            dir = %self.dir.display(),
            plugins = ?set.plugins.iter().map(|p| format!("{}@{}", p.manifest().name, p.manifest().version)).collect::<Vec<_>>(),
            "plugin set loaded"
        );
        Ok(set)
    }

    /// Inspect one component: which worlds it implements and what it imports, and, with a
    /// manifest, whether it would be loaded.
    pub async fn check(&self, wasm: PathBuf, manifest: Option<PathBuf>) -> anyhow::Result<loader::CheckReport> {
        self.loader.check(wasm, manifest).await
    }

    /// Load one component under a manifest outside the plugin set, for `plugin run`.
    pub async fn load_trial(
        &self,
        wasm: PathBuf,
        manifest: &std::path::Path,
        trial: runtime::Trial,
    ) -> anyhow::Result<Plugin> {
        self.loader.load_trial(wasm, manifest, trial).await
    }

    /// A fingerprint of the folder's files (names, sizes, modification times), to notice edits.
    pub fn folder_fingerprint(&self) -> Vec<(PathBuf, u64, Option<std::time::SystemTime>)> {
        let mut out = Vec::new();
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return out;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if let Ok(files) = std::fs::read_dir(&path) {
                for file in files.flatten() {
                    if let Ok(meta) = file.metadata() {
                        out.push((file.path(), meta.len(), meta.modified().ok()));
                    }
                }
            }
        }
        out.sort();
        out
    }

    /// Reload whenever the folder's contents change, checking every `every`.
    pub async fn watch(self: Arc<Self>, every: std::time::Duration) {
        let mut seen = self.folder_fingerprint();
        loop {
            tokio::time::sleep(every).await;
            let now = self.folder_fingerprint();
            if now == seen {
                continue;
            }
            // Let a copy in progress finish: act once the folder holds still for one period.
            tokio::time::sleep(every).await;
            let settled = self.folder_fingerprint();
            if settled != now {
                continue;
            }
            seen = settled;
            if let Err(e) = self.reload().await {
                tracing::error!(error = %format!("{e:#}"), "plugin folder changed; the new set was refused, the old one keeps serving");
            }
        }
    }
}
