//! Turning a plugins folder into a [`PluginSet`]: manifests, compilation (cached on disk),
//! telling worlds from export names, capability checks, and pre-instantiation. A set loads
//! whole or not at all.

use super::bindings::{self, WIT_VERSION};
use super::calls::WarmPool;
use super::manifest::{Capability, FailurePolicy, InstancePolicy, Manifest};
use super::runtime::{self, PluginContext, PluginState};
use super::{Kind, PluginSet};
use crate::store::Store;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};

/// The WIT package whose interfaces plugins export.
const PACKAGE: &str = "crm:users";

/// Call counters and the quarantine state of one plugin.
#[derive(Debug, Default)]
pub struct PluginStats {
    pub calls: AtomicU64,
    pub failures: AtomicU64,
    pub consecutive_failures: AtomicU32,
    pub fuel_consumed: AtomicU64,
    /// Wall-clock time spent in calls (instantiation included), in microseconds.
    pub busy_micros: AtomicU64,
    pub quarantined_until: Mutex<Option<Instant>>,
    pub last_error: Mutex<Option<String>>,
}

/// A loaded plugin: its manifest, its worlds and one pre-instantiated component per world.
pub struct Plugin {
    pub ctx: Arc<PluginContext>,
    pub kinds: Vec<Kind>,
    pub stats: PluginStats,
    pub(super) authenticator: Option<bindings::authenticator::AuthenticatorPre<PluginState>>,
    pub(super) sign_in_handler: Option<bindings::sign_in_handler::SignInHandlerPre<PluginState>>,
    pub(super) address_type: Option<bindings::address_type::AddressTypePre<PluginState>>,
    pub(super) email_validator: Option<bindings::email_validator::EmailValidatorPre<PluginState>>,
    pub(super) event_listener: Option<bindings::event_listener::EventListenerPre<PluginState>>,
    pub(super) engine: Engine,
    /// Instance slots of the engine's pool, shared by every plugin: a live instance holds one.
    pub(super) slots: Arc<tokio::sync::Semaphore>,
    pub(super) warm_authenticator: WarmPool<bindings::authenticator::Authenticator>,
    pub(super) warm_sign_in_handler: WarmPool<bindings::sign_in_handler::SignInHandler>,
    pub(super) warm_address_type: WarmPool<bindings::address_type::AddressType>,
    pub(super) warm_email_validator: WarmPool<bindings::email_validator::EmailValidator>,
    pub(super) warm_event_listener: WarmPool<bindings::event_listener::EventListener>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.ctx.manifest.name)
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub fn manifest(&self) -> &Manifest {
        &self.ctx.manifest
    }

    /// The failure policy for calls of `kind`.
    pub fn failure_policy(&self, kind: Kind) -> FailurePolicy {
        match kind {
            Kind::Authenticator => FailurePolicy::Closed,
            _ => self.ctx.manifest.failure.unwrap_or(kind.default_failure()),
        }
    }

    /// `active`, or `quarantined` while repeated failures keep it out.
    pub fn state(&self) -> &'static str {
        let until = self.stats.quarantined_until.lock().map(|g| *g).unwrap_or(None);
        match until {
            Some(t) if t > Instant::now() => "quarantined",
            _ => "active",
        }
    }
}

/// What `crm-users plugin check` reports.
#[derive(Debug, Clone)]
pub struct CheckReport {
    pub worlds: Vec<Kind>,
    /// Every import, and the capability it needs where one is needed.
    pub imports: Vec<(String, Option<Capability>)>,
    /// With a manifest: `None` when it would load, else why not.
    pub refused: Option<String>,
}

/// Largest component file loaded. Compiling is the one step no fuel or deadline bounds, so the
/// input is; interpreters built into a component (componentize-py's Python is about 18 MiB) fit
/// well within it.
pub const MAX_COMPONENT_BYTES: u64 = 64 << 20;

/// Compiles and links plugins.
pub struct Loader {
    engine: Engine,
    plain: Linker<PluginState>,
    with_http: Linker<PluginState>,
    store: Arc<dyn Store>,
    slots: Arc<tokio::sync::Semaphore>,
}

/// Which of our worlds a component implements, from its export names. A component exporting a
/// `crm:users` interface of another version is refused with the versions this host serves.
fn detect_worlds(engine: &Engine, component: &Component) -> anyhow::Result<Vec<Kind>> {
    let mut kinds = Vec::new();
    let mut foreign = Vec::new();
    for (name, _) in component.component_type().exports(engine) {
        let Some(rest) = name.strip_prefix(PACKAGE).and_then(|r| r.strip_prefix('/')) else {
            continue;
        };
        let (interface, version) = rest.split_once('@').unwrap_or((rest, ""));
        match Kind::ALL.iter().find(|k| k.interface() == interface) {
            Some(kind) if version == WIT_VERSION => kinds.push(*kind),
            _ => foreign.push(name.to_owned()),
        }
    }
    if !foreign.is_empty() {
        bail!(
            "it exports {} which this host does not serve; this host serves {PACKAGE}@{WIT_VERSION} ({})",
            foreign.join(", "),
            Kind::ALL.map(|k| format!("{PACKAGE}/{}@{WIT_VERSION}", k.interface())).join(", ")
        );
    }
    if kinds.is_empty() {
        bail!(
            "it exports none of this host's plugin interfaces; implement one of the worlds of {PACKAGE}@{WIT_VERSION}: {}",
            Kind::ALL.map(|k| k.world()).join(", ")
        );
    }
    kinds.sort();
    Ok(kinds)
}

/// The capability an import needs, if any.
fn import_capability(name: &str) -> Option<Capability> {
    name.starts_with("wasi:http/").then_some(Capability::Http)
}

impl Loader {
    pub fn new(cache_dir: Option<&Path>, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let engine = runtime::engine(cache_dir)?;
        runtime::start_epoch_ticker(&engine);
        Ok(Loader {
            plain: runtime::linker(&engine, false)?,
            with_http: runtime::linker(&engine, true)?,
            engine,
            store,
            slots: Arc::new(tokio::sync::Semaphore::new(runtime::CONCURRENT_INSTANCES as usize)),
        })
    }

    /// Compile a component off the async workers (at load and reload, never on a request),
    /// refusing one over [`MAX_COMPONENT_BYTES`] before reading it.
    async fn compile(&self, wasm: PathBuf) -> anyhow::Result<Component> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || {
            let size = std::fs::metadata(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?.len();
            if size > MAX_COMPONENT_BYTES {
                anyhow::bail!(
                    "{} is {} MiB; a plugin component may be at most {} MiB",
                    wasm.display(),
                    size.div_ceil(1 << 20),
                    MAX_COMPONENT_BYTES >> 20
                );
            }
            let bytes = std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
            Component::new(&engine, &bytes)
                .map_err(|e| anyhow::anyhow!("{} is not a valid component: {e:#}", wasm.display()))
        })
        .await?
    }

    /// Link a compiled component under a manifest.
    fn link(&self, manifest: Manifest, component: &Component, trial: Option<runtime::Trial>) -> anyhow::Result<Plugin> {
        let kinds = detect_worlds(&self.engine, component)?;
        for (name, _) in component.component_type().imports(&self.engine) {
            if let Some(cap) = import_capability(name)
                && !manifest.has(cap)
            {
                bail!("it imports {name}, which needs the capability \"{}\" in its manifest", cap.as_str());
            }
        }
        let linker = if manifest.has(Capability::Http) { &self.with_http } else { &self.plain };
        let pre = linker
            .instantiate_pre(component)
            .map_err(|e| anyhow::anyhow!("it cannot be linked against this host: {e:#}"))?;
        let instances = manifest.instances;
        let warm = |kind: Kind| instances.unwrap_or(kind.default_instances()) == InstancePolicy::Warm;
        let ctx = Arc::new(PluginContext { manifest, store: self.store.clone(), trial });
        let typed = |kind: Kind| kinds.contains(&kind);
        let wrap = |e: wasmtime::Error| anyhow::anyhow!("its exports do not match {PACKAGE}@{WIT_VERSION}: {e:#}");
        Ok(Plugin {
            authenticator: typed(Kind::Authenticator)
                .then(|| bindings::authenticator::AuthenticatorPre::new(pre.clone()))
                .transpose()
                .map_err(wrap)?,
            sign_in_handler: typed(Kind::SignInHandler)
                .then(|| bindings::sign_in_handler::SignInHandlerPre::new(pre.clone()))
                .transpose()
                .map_err(wrap)?,
            address_type: typed(Kind::AddressType)
                .then(|| bindings::address_type::AddressTypePre::new(pre.clone()))
                .transpose()
                .map_err(wrap)?,
            email_validator: typed(Kind::EmailValidator)
                .then(|| bindings::email_validator::EmailValidatorPre::new(pre.clone()))
                .transpose()
                .map_err(wrap)?,
            event_listener: typed(Kind::EventListener)
                .then(|| bindings::event_listener::EventListenerPre::new(pre.clone()))
                .transpose()
                .map_err(wrap)?,
            ctx,
            kinds,
            stats: PluginStats::default(),
            engine: self.engine.clone(),
            slots: self.slots.clone(),
            warm_authenticator: WarmPool::new(warm(Kind::Authenticator)),
            warm_sign_in_handler: WarmPool::new(warm(Kind::SignInHandler)),
            warm_address_type: WarmPool::new(warm(Kind::AddressType)),
            warm_email_validator: WarmPool::new(warm(Kind::EmailValidator)),
            warm_event_listener: WarmPool::new(warm(Kind::EventListener)),
        })
    }

    /// Load one plugin folder.
    async fn load_one(&self, folder: &Path) -> anyhow::Result<Plugin> {
        let manifest = Manifest::from_file(&folder.join("plugin.toml"))?;
        let component = self.compile(folder.join(&manifest.wasm)).await?;
        self.link(manifest, &component, None)
    }

    /// Load one component under a manifest for `crm-users plugin run`, recording what its
    /// calls log and use in `trial`.
    pub async fn load_trial(&self, wasm: PathBuf, manifest: &Path, trial: runtime::Trial) -> anyhow::Result<Plugin> {
        let manifest = Manifest::from_file(manifest)?;
        let component = self.compile(wasm).await?;
        self.link(manifest, &component, Some(trial))
    }

    /// Load every plugin under `dir` (one subfolder each). A missing folder is an empty set;
    /// any broken plugin fails the whole load.
    pub async fn load_dir(&self, dir: &Path) -> anyhow::Result<PluginSet> {
        let mut folders: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PluginSet::default()),
            Err(e) => return Err(e).with_context(|| format!("cannot read the plugins folder {}", dir.display())),
        };
        folders.sort();
        let mut plugins: Vec<Arc<Plugin>> = Vec::new();
        for folder in folders {
            let plugin =
                self.load_one(&folder).await.with_context(|| format!("plugin {} refused", folder.display()))?;
            if plugins.iter().any(|p| p.manifest().name == plugin.manifest().name) {
                bail!("two plugins are named '{}'; names must be unique", plugin.manifest().name);
            }
            plugins.push(Arc::new(plugin));
        }
        plugins.sort_by(|a, b| {
            b.manifest().priority.cmp(&a.manifest().priority).then_with(|| a.manifest().name.cmp(&b.manifest().name))
        });
        Ok(PluginSet { plugins })
    }

    /// Inspect a component, and with a manifest, say whether it would load.
    pub async fn check(&self, wasm: PathBuf, manifest: Option<PathBuf>) -> anyhow::Result<CheckReport> {
        let component = self.compile(wasm).await?;
        let worlds = detect_worlds(&self.engine, &component)?;
        let imports = component
            .component_type()
            .imports(&self.engine)
            .map(|(name, _)| (name.to_owned(), import_capability(name)))
            .collect();
        let refused = match manifest {
            Some(path) => match Manifest::from_file(&path).and_then(|m| self.link(m, &component, None)) {
                Ok(_) => None,
                Err(e) => Some(format!("{e:#}")),
            },
            None => None,
        };
        Ok(CheckReport { worlds, imports, refused })
    }
}

impl PluginStats {
    pub fn snapshot(&self) -> (u64, u64, u64, Option<String>) {
        (
            self.calls.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
            self.fuel_consumed.load(Ordering::Relaxed),
            self.last_error.lock().ok().and_then(|g| g.clone()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        runtime::engine(None).unwrap()
    }

    /// A component exporting one instance named `export` with a `validate` function.
    fn component_exporting(engine: &Engine, export: &str) -> Component {
        let wat = format!(
            r#"(component
                 (core module $m (func (export "f") (result i32) i32.const 0))
                 (core instance $i (instantiate $m))
                 (func $f (result u32) (canon lift (core func $i "f")))
                 (instance $api (export "validate" (func $f)))
                 (export "{export}" (instance $api)))"#
        );
        Component::new(engine, wat).unwrap()
    }

    #[test]
    fn tells_worlds_from_export_names() {
        let engine = engine();
        let c = component_exporting(&engine, "crm:users/email-validation@0.1.0");
        assert_eq!(detect_worlds(&engine, &c).unwrap(), vec![Kind::EmailValidator]);
    }

    #[test]
    fn refuses_another_version_naming_the_supported_one() {
        let engine = engine();
        let c = component_exporting(&engine, "crm:users/email-validation@0.2.0");
        let err = detect_worlds(&engine, &c).unwrap_err().to_string();
        assert!(err.contains("crm:users/email-validation@0.2.0"), "{err}");
        assert!(err.contains("this host serves crm:users@0.1.0"), "{err}");
    }

    #[test]
    fn refuses_a_component_with_none_of_our_exports() {
        let engine = engine();
        let err = detect_worlds(&engine, &Component::new(&engine, "(component)").unwrap()).unwrap_err().to_string();
        assert!(err.contains("exports none of this host's plugin interfaces"), "{err}");
        assert!(err.contains("authenticator, sign-in-handler, address-type, email-validator, event-listener"), "{err}");
    }

    #[test]
    fn http_imports_need_the_http_capability() {
        assert_eq!(import_capability("wasi:http/outgoing-handler@0.2.12"), Some(Capability::Http));
        assert_eq!(import_capability("crm:users/host@0.1.0"), None);
        assert_eq!(import_capability("wasi:io/streams@0.2.12"), None);
    }
}
