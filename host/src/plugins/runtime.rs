//! The wasmtime side: one engine for all plugins (fuel, epochs, async, on-disk compilation
//! cache), the per-call store state with its sandbox (no files, env, args or sockets; HTTP
//! only to allow-listed hosts), and the host functions plugins import.

use super::bindings::{host, types};
use super::manifest::{Capability, Manifest};
use crate::domain::user::User;
use crate::store::{Batch, Change, Store};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// How often the epoch advances; call deadlines are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Bytes of a guest's stdout and stderr kept per call for the log.
pub const OUTPUT_CAPTURE_BYTES: usize = 16 * 1024;
/// Plugin key-value limits (Spin's are 256 B keys and 1 MB values; ours are per call-path).
pub const KV_MAX_KEY: usize = 256;
pub const KV_MAX_VALUE: usize = 64 * 1024;
/// Longest log line a plugin may write; the rest is cut.
const LOG_MAX_LINE: usize = 4096;
/// Table elements and instances per store: enough for any real component, a stop to
/// "table bombs".
const MAX_TABLE_ELEMENTS: usize = 100_000;
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 16;

/// Plugin instances alive at once, across all plugins. Calls beyond this wait for a slot
/// (see `Plugin::slots`) rather than fail.
pub const CONCURRENT_INSTANCES: u32 = 1000;

/// The pooling allocator: memories, tables and fiber stacks are reserved once and reused, so
/// a call's instantiation costs no mmap/munmap and few page faults (the on-demand allocator
/// spent about a third of each call in the kernel).
fn pooling() -> wasmtime::PoolingAllocationConfig {
    let mut pool = wasmtime::PoolingAllocationConfig::new();
    pool.total_component_instances(CONCURRENT_INSTANCES)
        // A component built from a WASI adapter holds a few core instances, memories and
        // tables; interpreters built by componentize-py or jco hold more.
        .total_core_instances(CONCURRENT_INSTANCES * 10)
        .total_memories(CONCURRENT_INSTANCES * 2)
        .total_tables(CONCURRENT_INSTANCES * 4)
        .total_stacks(CONCURRENT_INSTANCES)
        .max_memory_size((super::manifest::MAX_MEMORY_MB as usize) << 20)
        .table_elements(MAX_TABLE_ELEMENTS)
        // Reused slots keep their first pages mapped: reset with a memset, not page faults.
        .linear_memory_keep_resident(64 << 10)
        .table_keep_resident(16 << 10)
        .async_stack_keep_resident(16 << 10);
    pool
}

/// Build the engine every plugin shares. `cache_dir` keeps compiled code so a restart does
/// not recompile.
pub fn engine(cache_dir: Option<&Path>) -> anyhow::Result<Engine> {
    let mut config = wasmtime::Config::new();
    config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pooling()));
    config.consume_fuel(true);
    config.epoch_interruption(true);
    config.wasm_component_model(true);
    // Deep recursion traps at this depth instead of exhausting the host thread.
    config.max_wasm_stack(1 << 20);
    if let Some(dir) = cache_dir {
        std::fs::create_dir_all(dir)?;
        // wasmtime's cache wants an absolute path; the default data folder is `./data`.
        let dir = std::path::absolute(dir)?;
        let mut cache = wasmtime::CacheConfig::new();
        cache.with_directory(&dir);
        config.cache(Some(wasmtime::Cache::new(cache).map_err(|e| anyhow::anyhow!("{e}"))?));
    }
    wasmtime::Engine::new(&config).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Advance the engine's epoch for as long as the engine lives.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| tracing::error!("cannot start the plugin epoch ticker: {e}"));
}

/// What the host imports of one plugin can reach.
pub struct PluginContext {
    pub manifest: Manifest,
    pub store: Arc<dyn Store>,
    /// Set only under `crm-users plugin run`: outbound HTTP answered from fixture files and
    /// the call's log lines and peak memory recorded for the report.
    pub trial: Option<Trial>,
}

/// What `crm-users plugin run` needs from a call beyond its result.
#[derive(Debug, Default)]
pub struct Trial {
    /// `<dir>/http/<host>[_<port>]/<path>` answers any request to `http://<host>:<port>/<path>`
    /// (`index` for `/`); a missing file is a 404.
    pub http_fixtures: Option<std::path::PathBuf>,
    /// The plugin's log lines, host `log` and captured stdout/stderr alike, in order.
    pub log: std::sync::Mutex<Vec<String>>,
    /// The most linear memory the call's instance held at once, in bytes.
    pub peak_memory: std::sync::atomic::AtomicUsize,
}

impl Trial {
    pub fn record(&self, line: String) {
        if let Ok(mut log) = self.log.lock() {
            log.push(line);
        }
    }

    /// The fixture answering a request, or `None` for a 404.
    fn answer(&self, host: &str, port: Option<u16>, path: &str) -> Option<Vec<u8>> {
        let dir = self.http_fixtures.as_ref()?.join("http");
        let folder = match port {
            Some(p) if p != 80 && p != 443 => format!("{host}_{p}"),
            _ => host.to_owned(),
        };
        let path = path.trim_start_matches('/');
        // No way out of the fixtures folder: every segment a plain name.
        let safe = path.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains('\\'));
        let file = if path.is_empty() {
            "index".to_owned()
        } else if safe {
            path.to_owned()
        } else {
            return None;
        };
        std::fs::read(dir.join(folder).join(file)).ok()
    }
}

impl std::fmt::Debug for PluginContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginContext").field("name", &self.manifest.name).finish_non_exhaustive()
    }
}

/// Outbound HTTP policy of one plugin.
struct HttpPolicy {
    ctx: Arc<PluginContext>,
}

impl WasiHttpHooks for HttpPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        let manifest = &self.ctx.manifest;
        let host = request.uri().host().unwrap_or_default().to_owned();
        let port = request.uri().port_u16().or(match request.uri().scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        });
        if !manifest.has(Capability::Http) || !manifest.allows_host(&host, port) {
            tracing::warn!(
                plugin = %manifest.name,
                version = %manifest.version,
                host = %host,
                port = port.unwrap_or_default(),
                "outbound HTTP to a host not in allowed_hosts refused"
            );
            return Box::new(async { Err(wasmtime_wasi_http::Error::HttpRequestDenied) });
        }
        _ = fut;
        if let Some(trial) = &self.ctx.trial {
            let path = request.uri().path().to_owned();
            let answer = trial.answer(&host, port, &path);
            trial.record(format!(
                "[http] {} {} -> {}",
                request.method(),
                request.uri(),
                if answer.is_some() { "200 (fixture)" } else { "404 (no fixture)" }
            ));
            return Box::new(async move {
                use http_body_util::BodyExt;
                // Read what the guest sends, as a server would, so its writes succeed.
                let _ = request.into_body().collect().await;
                let (status, body) = match answer {
                    Some(body) => (200, body),
                    None => (404, Vec::new()),
                };
                let body: wasmtime_wasi_http::WasiBody =
                    http_body_util::Full::new(bytes::Bytes::from(body)).map_err(|e| match e {}).boxed_unsync();
                let mut response = http::Response::new(body);
                *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::NOT_FOUND);
                let io: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send> =
                    Box::new(async { Ok(()) });
                Ok::<_, wasmtime_wasi_http::Error>((response, io))
            });
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((res.map(BodyExt::boxed_unsync), Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

/// Everything one call's store holds. A fresh one per call, so no data of one call is
/// visible to another.
pub struct PluginState {
    pub ctx: Arc<PluginContext>,
    wasi: WasiCtx,
    table: ResourceTable,
    http: WasiHttpCtx,
    hooks: HttpPolicy,
    pub limits: MeteredLimits,
    pub stdout: MemoryOutputPipe,
    pub stderr: MemoryOutputPipe,
    /// Bytes of stdout and stderr already logged: a warm instance's pipes keep what earlier
    /// calls wrote.
    pub logged: (usize, usize),
}

impl PluginState {
    pub fn new(ctx: Arc<PluginContext>) -> Self {
        let stdout = MemoryOutputPipe::new(OUTPUT_CAPTURE_BYTES);
        let stderr = MemoryOutputPipe::new(OUTPUT_CAPTURE_BYTES);
        // No preopened folders, no environment, no arguments, no sockets.
        let wasi = WasiCtx::builder()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(ctx.manifest.limits.memory_bytes)
            .table_elements(MAX_TABLE_ELEMENTS)
            .instances(MAX_INSTANCES)
            .tables(MAX_TABLES)
            .memories(MAX_MEMORIES)
            .trap_on_grow_failure(true)
            .build();
        let limits = MeteredLimits { limits, memory: 0, peak: 0 };
        PluginState {
            hooks: HttpPolicy { ctx: ctx.clone() },
            ctx,
            wasi,
            table: ResourceTable::new(),
            http: WasiHttpCtx::new(),
            limits,
            stdout,
            stderr,
            logged: (0, 0),
        }
    }

    fn name(&self) -> &str {
        &self.ctx.manifest.name
    }

    fn require(&self, capability: Capability) -> Result<(), types::HostError> {
        if self.ctx.manifest.has(capability) {
            Ok(())
        } else {
            Err(types::HostError::Denied(format!(
                "the plugin's manifest does not have the capability \"{}\"",
                capability.as_str()
            )))
        }
    }
}

/// The store's limits, counting the linear memory its instances hold.
pub struct MeteredLimits {
    limits: StoreLimits,
    /// Bytes of linear memory now, over all memories of the store.
    memory: usize,
    /// The most `memory` has been.
    pub peak: usize,
}

impl ResourceLimiter for MeteredLimits {
    fn memory_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory = self.memory.saturating_add(desired.saturating_sub(current));
            self.peak = self.peak.max(self.memory);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.http, table: &mut self.table, hooks: &mut self.hooks }
    }
}

/// Build the linker for plugins: WASI without ambient authority, `wasi:http` when `with_http`,
/// and the `crm:users/host` interface.
pub fn linker(engine: &Engine, with_http: bool) -> anyhow::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;
    if with_http {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    host::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(linker)
}

fn unavailable(e: impl std::fmt::Display) -> types::HostError {
    types::HostError::Unavailable(e.to_string())
}

/// The WIT view of a user.
pub fn wit_user(u: &User) -> types::User {
    types::User {
        id: u.id,
        uuid: u.uuid.clone(),
        email: u.email.clone(),
        first_name: u.first_name.clone(),
        last_name: u.last_name.clone(),
        role: match u.role {
            crate::domain::user::Role::Admin => "admin".into(),
            crate::domain::user::Role::User => "user".into(),
        },
        active: u.active,
        confirmed: u.confirmed_at.is_some(),
        locale: u.locale.clone(),
        source: u.source.clone(),
    }
}

impl types::Host for PluginState {}

impl host::Host for PluginState {
    async fn log(&mut self, level: host::LogLevel, message: String) -> wasmtime::Result<()> {
        let message: String = message.chars().take(LOG_MAX_LINE).collect();
        let (name, version) = (self.name(), self.ctx.manifest.version.as_str());
        if let Some(trial) = &self.ctx.trial {
            let tag = match level {
                host::LogLevel::Trace => "trace",
                host::LogLevel::Debug => "debug",
                host::LogLevel::Info => "info",
                host::LogLevel::Warn => "warn",
                host::LogLevel::Error => "error",
            };
            trial.record(format!("[{tag}] {message}"));
        }
        match level {
            host::LogLevel::Trace => tracing::trace!(plugin = name, version, "{message}"),
            host::LogLevel::Debug => tracing::debug!(plugin = name, version, "{message}"),
            host::LogLevel::Info => tracing::info!(plugin = name, version, "{message}"),
            host::LogLevel::Warn => tracing::warn!(plugin = name, version, "{message}"),
            host::LogLevel::Error => tracing::error!(plugin = name, version, "{message}"),
        }
        Ok(())
    }

    async fn config_get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.ctx.manifest.config.get(&key).cloned())
    }

    async fn kv_get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, types::HostError>> {
        if let Err(e) = self.require(Capability::Kv) {
            return Ok(Err(e));
        }
        Ok(self.ctx.store.plugin_kv(self.name(), &key).await.map_err(unavailable))
    }

    async fn kv_set(&mut self, key: String, value: Vec<u8>) -> wasmtime::Result<Result<(), types::HostError>> {
        if let Err(e) = self.require(Capability::Kv) {
            return Ok(Err(e));
        }
        if key.is_empty() || key.len() > KV_MAX_KEY || value.len() > KV_MAX_VALUE {
            return Ok(Err(types::HostError::Invalid(format!(
                "keys are 1 to {KV_MAX_KEY} bytes and values at most {KV_MAX_VALUE} bytes"
            ))));
        }
        let change = Change::PutPluginKv { plugin: self.name().to_owned(), key, value };
        Ok(self.ctx.store.apply(Batch(vec![change])).await.map(|_| ()).map_err(unavailable))
    }

    async fn kv_delete(&mut self, key: String) -> wasmtime::Result<Result<(), types::HostError>> {
        if let Err(e) = self.require(Capability::Kv) {
            return Ok(Err(e));
        }
        let change = Change::DeletePluginKv { plugin: self.name().to_owned(), key };
        Ok(self.ctx.store.apply(Batch(vec![change])).await.map(|_| ()).map_err(unavailable))
    }

    async fn user_by_id(&mut self, id: u64) -> wasmtime::Result<Result<Option<types::User>, types::HostError>> {
        if let Err(e) = self.require(Capability::UsersRead) {
            return Ok(Err(e));
        }
        Ok(self
            .ctx
            .store
            .user(id)
            .await
            .map(|u| u.filter(|u| !u.is_deleted()).map(|u| wit_user(&u)))
            .map_err(unavailable))
    }

    async fn user_by_email(
        &mut self,
        email: String,
    ) -> wasmtime::Result<Result<Option<types::User>, types::HostError>> {
        if let Err(e) = self.require(Capability::UsersRead) {
            return Ok(Err(e));
        }
        Ok(self
            .ctx
            .store
            .user_by_email(&email)
            .await
            .map(|u| u.filter(|u| !u.is_deleted()).map(|u| wit_user(&u)))
            .map_err(unavailable))
    }

    async fn user_meta(&mut self, id: u64) -> wasmtime::Result<Result<Vec<types::MetaEntry>, types::HostError>> {
        if let Err(e) = self.require(Capability::UsersRead) {
            return Ok(Err(e));
        }
        Ok(self
            .ctx
            .store
            .user_meta(id)
            .await
            .map(|meta| {
                meta.into_iter()
                    .map(|m| types::MetaEntry { key: m.key, value: m.value, is_public: m.is_public })
                    .collect()
            })
            .map_err(unavailable))
    }
}
