//! Typed calls into plugins. A call runs in a fresh store instantiated from the pre-linked
//! component, or, where the plugin's instance policy is warm, in an instance an earlier call
//! left (`WarmPool`); either way with the manifest's fuel, memory cap and wall-clock limit,
//! reset per call. Calls run on plugin workers of their own, and the guest yields to them every
//! epoch tick: a spinning plugin holds no request worker and delays no other request. Failures are counted; a plugin failing
//! `QUARANTINE_AFTER` times in a row sits out `QUARANTINE_FOR`. An instance that failed in
//! any way is dropped, never reused.

use super::bindings::{address_type, authenticator, event_listener, sign_in_handler};
use super::loader::Plugin;
use super::runtime::{OUTPUT_CAPTURE_BYTES, PluginState, wit_user};
use crate::domain::{error::AuthReason, token::ClientInfo, user::User};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Consecutive failures that put a plugin in quarantine.
pub const QUARANTINE_AFTER: u32 = 5;
/// How long a quarantined plugin is skipped (then it gets one call to prove itself).
pub const QUARANTINE_FOR: Duration = Duration::from_secs(30);
/// Stderr lines of the guest kept in a failure's explanation.
const STDERR_TAIL_LINES: usize = 5;

pub use address_type::exports::crm::users::addresses::{Address, FieldError, TypeInfo};

/// Calls one warm instance serves before it is replaced, bounding what a guest's leaks cost.
const WARM_CALLS_PER_INSTANCE: u32 = 10_000;
/// Idle warm instances kept per plugin and world.
const WARM_IDLE_PER_PLUGIN: usize = 8;

/// A store with its instance (once instantiated) and the pool slot it holds.
pub(super) struct Instance<I> {
    store: wasmtime::Store<PluginState>,
    bindings: Option<I>,
    calls: u32,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// The idle warm instances of one world of a plugin; always empty when its policy is fresh.
pub(super) struct WarmPool<I> {
    warm: bool,
    idle: std::sync::Mutex<Vec<Instance<I>>>,
}

impl<I> WarmPool<I> {
    pub(super) fn new(warm: bool) -> Self {
        WarmPool { warm, idle: std::sync::Mutex::new(Vec::new()) }
    }

    fn take(&self) -> Option<Instance<I>> {
        if !self.warm {
            return None;
        }
        self.idle.lock().ok()?.pop()
    }

    /// Keep an instance whose call succeeded, unless it has served its share or its output
    /// pipes are filling up.
    fn give_back(&self, instance: Instance<I>) {
        let (out, err) = instance.store.data().logged;
        if !self.warm || instance.calls >= WARM_CALLS_PER_INSTANCE || out.max(err) > OUTPUT_CAPTURE_BYTES / 2 {
            return;
        }
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < WARM_IDLE_PER_PLUGIN
        {
            idle.push(instance);
        }
    }
}

/// A plugin call that did not produce an answer: trap, limit, timeout, quarantine.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin {plugin}@{version} failed in {function}: {cause}")]
pub struct PluginFailure {
    pub plugin: String,
    pub version: String,
    pub function: &'static str,
    pub cause: String,
}

/// What an authenticator decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthDecision {
    Skip,
    Existing(u64),
    Provision { email: String, first_name: Option<String>, last_name: Option<String>, meta: Vec<(String, String)> },
    Refused { reason: AuthReason, message: String },
}

/// What a sign-in handler decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInDecision {
    /// `Some(reason)` refuses the sign-in.
    pub deny: Option<String>,
    /// `(key, value, is_public)` to set on the user when allowed.
    pub set_meta: Vec<(String, String, bool)>,
}

/// The credentials an authenticator sees.
#[derive(Debug, Clone, Default)]
pub struct AuthRequest {
    pub username: Option<String>,
    pub password: Option<String>,
    pub source: String,
    pub client: ClientInfo,
    pub extra: Vec<(String, String)>,
}

impl Plugin {
    fn failure(&self, function: &'static str, cause: impl Into<String>) -> PluginFailure {
        PluginFailure {
            plugin: self.manifest().name.clone(),
            version: self.manifest().version.clone(),
            function,
            cause: cause.into(),
        }
    }

    /// Refuse at once while quarantined.
    fn admit(&self, function: &'static str) -> Result<(), PluginFailure> {
        let until = self.stats.quarantined_until.lock().map(|g| *g).unwrap_or(None);
        match until {
            Some(t) if t > Instant::now() => Err(self.failure(function, "quarantined after repeated failures")),
            _ => Ok(()),
        }
    }

    /// A warm instance of the world, or a new store (with a pool slot) to instantiate in.
    async fn instance<I>(&self, pool: &WarmPool<I>, function: &'static str) -> Result<Instance<I>, PluginFailure> {
        if let Some(warm) = pool.take() {
            return Ok(warm);
        }
        // Waiting for a free slot is not the plugin's fault: outside its time limit.
        let slot =
            self.slots.clone().acquire_owned().await.map_err(|_| self.failure(function, "the host is closing"))?;
        let mut store = wasmtime::Store::new(&self.engine, PluginState::new(self.ctx.clone()));
        store.limiter(|s| &mut s.limits);
        Ok(Instance { store, bindings: None, calls: 0, _slot: slot })
    }

    /// The call's own budget: full fuel and a fresh epoch deadline, whatever came before.
    fn arm(&self, store: &mut wasmtime::Store<PluginState>) {
        // It cannot fail on an engine with fuel enabled.
        let _ = store.set_fuel(self.manifest().limits.fuel);
        store.epoch_deadline_async_yield_and_update(1);
    }

    /// Account for a finished call and turn its result into ours.
    fn settle<R>(
        &self,
        function: &'static str,
        result: Result<wasmtime::Result<R>, tokio::time::error::Elapsed>,
        store: &mut wasmtime::Store<PluginState>,
        took: std::time::Duration,
    ) -> Result<R, PluginFailure> {
        let limits = self.manifest().limits;
        let fuel_left = store.get_fuel().unwrap_or(0);
        if let Some(trial) = &self.ctx.trial {
            trial.peak_memory.fetch_max(store.data().limits.peak, Ordering::Relaxed);
        }
        let stats = &self.stats;
        stats.calls.fetch_add(1, Ordering::Relaxed);
        stats.busy_micros.fetch_add(u64::try_from(took.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        stats.fuel_consumed.fetch_add(limits.fuel.saturating_sub(fuel_left), Ordering::Relaxed);
        let cause = match result {
            Ok(Ok(value)) => {
                stats.consecutive_failures.store(0, Ordering::Relaxed);
                self.log_output(store, false);
                return Ok(value);
            }
            Ok(Err(e)) => describe_error(&e, limits.fuel, fuel_left, limits.memory_bytes),
            Err(_) => format!("did not finish within {} ms", limits.timeout_ms),
        };
        let tail = self.log_output(store, true);
        let cause = if tail.is_empty() { cause } else { format!("{cause}; guest stderr: {tail}") };
        stats.failures.fetch_add(1, Ordering::Relaxed);
        let failure = self.failure(function, cause);
        if let Ok(mut last) = stats.last_error.lock() {
            *last = Some(failure.to_string());
        }
        let streak = stats.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(
            plugin = %failure.plugin,
            version = %failure.version,
            function,
            cause = %failure.cause,
            streak,
            "plugin call failed"
        );
        if streak >= QUARANTINE_AFTER {
            if let Ok(mut until) = stats.quarantined_until.lock() {
                *until = Some(Instant::now() + QUARANTINE_FOR);
            }
            stats.consecutive_failures.store(0, Ordering::Relaxed);
            tracing::error!(plugin = %failure.plugin, version = %failure.version, "plugin quarantined for {QUARANTINE_FOR:?}");
        }
        Err(failure)
    }

    /// Send the guest's captured stdout/stderr to the log; return stderr's last lines.
    fn log_output(&self, store: &mut wasmtime::Store<PluginState>, failed: bool) -> String {
        let m = self.manifest();
        let state = store.data_mut();
        let (stdout, stderr) = (state.stdout.contents(), state.stderr.contents());
        let (out_from, err_from) = state.logged;
        state.logged = (stdout.len(), stderr.len());
        let (stdout, stderr) = (stdout.slice(out_from.min(stdout.len())..), stderr.slice(err_from.min(stderr.len())..));
        let trial = self.ctx.trial.as_ref();
        for line in String::from_utf8_lossy(&stdout).lines().filter(|l| !l.is_empty()) {
            tracing::info!(plugin = %m.name, version = %m.version, stream = "stdout", "{line}");
            trial.inspect(|t| t.record(format!("[stdout] {line}")));
        }
        let stderr = String::from_utf8_lossy(&stderr).into_owned();
        for line in stderr.lines().filter(|l| !l.is_empty()) {
            trial.inspect(|t| t.record(format!("[stderr] {line}")));
            if failed {
                tracing::warn!(plugin = %m.name, version = %m.version, stream = "stderr", "{line}");
            } else {
                tracing::info!(plugin = %m.name, version = %m.version, stream = "stderr", "{line}");
            }
        }
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join(" | ")
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.manifest().limits.timeout_ms)
    }
}

/// A trap or error in words an operator can act on.
fn describe_error(e: &wasmtime::Error, fuel: u64, fuel_left: u64, memory_bytes: usize) -> String {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return match trap {
            wasmtime::Trap::OutOfFuel => format!("ran out of fuel (limit {fuel})"),
            wasmtime::Trap::StackOverflow => "overflowed its stack (too deep a recursion)".into(),
            wasmtime::Trap::UnreachableCodeReached => format!("trapped (a panic or `unreachable`): {trap}"),
            other => format!("trapped: {other}"),
        };
    }
    let text = format!("{e:#}");
    if text.contains("memory") && (text.contains("grow") || text.contains("limit")) {
        return format!("exceeded its memory limit of {} MiB ({text})", memory_bytes >> 20);
    }
    if fuel_left == 0 {
        return format!("ran out of fuel (limit {fuel})");
    }
    text
}

/// Most an answer of a plugin may hold, in bytes of text over all its strings, each list
/// element counting [`LIST_ITEM_BYTES`] more. Real answers (a reason, a failure message, a JSON
/// object of extras, a line of address, a few field errors) are a few KiB at most; anything
/// beyond is refused as a failure before the host stores it, logs it or sends it to a client.
/// The guest's memory limit bounds what the host copies out of it before this check.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;
/// What each list element counts towards [`MAX_ANSWER_BYTES`], so a list of a million empty
/// field errors is as big as it costs the host to lift it.
const LIST_ITEM_BYTES: usize = 64;

/// The size of an answer, as [`MAX_ANSWER_BYTES`] counts it.
trait AnswerSize {
    fn answer_bytes(&self) -> usize;
}

impl AnswerSize for () {
    fn answer_bytes(&self) -> usize {
        0
    }
}

impl AnswerSize for String {
    fn answer_bytes(&self) -> usize {
        self.len()
    }
}

impl<T: AnswerSize> AnswerSize for Option<T> {
    fn answer_bytes(&self) -> usize {
        self.as_ref().map_or(0, T::answer_bytes)
    }
}

impl<T: AnswerSize, E: AnswerSize> AnswerSize for Result<T, E> {
    fn answer_bytes(&self) -> usize {
        match self {
            Ok(value) => value.answer_bytes(),
            Err(error) => error.answer_bytes(),
        }
    }
}

impl<T: AnswerSize> AnswerSize for Vec<T> {
    fn answer_bytes(&self) -> usize {
        self.iter().fold(0usize, |sum, item| sum.saturating_add(item.answer_bytes()).saturating_add(LIST_ITEM_BYTES))
    }
}

impl<A: AnswerSize, B: AnswerSize> AnswerSize for (A, B) {
    fn answer_bytes(&self) -> usize {
        self.0.answer_bytes().saturating_add(self.1.answer_bytes())
    }
}

impl AnswerSize for authenticator::exports::crm::users::authentication::Outcome {
    fn answer_bytes(&self) -> usize {
        use authenticator::exports::crm::users::authentication::Outcome;
        match self {
            Outcome::Skip | Outcome::Existing(_) => 0,
            Outcome::Provision(u) => {
                [u.email.answer_bytes(), u.first_name.answer_bytes(), u.last_name.answer_bytes(), u.meta.answer_bytes()]
                    .into_iter()
                    .fold(0, usize::saturating_add)
            }
        }
    }
}

impl AnswerSize for authenticator::exports::crm::users::authentication::Failure {
    fn answer_bytes(&self) -> usize {
        self.message.answer_bytes()
    }
}

impl AnswerSize for sign_in_handler::exports::crm::users::sign_in_handling::Decision {
    fn answer_bytes(&self) -> usize {
        use sign_in_handler::exports::crm::users::sign_in_handling::Verdict;
        let reason = match &self.verdict {
            Verdict::Allow => 0,
            Verdict::Deny(reason) => reason.answer_bytes(),
        };
        let meta = self.set_meta.iter().fold(0usize, |sum, m| {
            sum.saturating_add(m.key.len()).saturating_add(m.value.len()).saturating_add(LIST_ITEM_BYTES)
        });
        reason.saturating_add(meta)
    }
}

impl AnswerSize for TypeInfo {
    fn answer_bytes(&self) -> usize {
        self.name.len().saturating_add(self.title.len())
    }
}

impl AnswerSize for Address {
    fn answer_bytes(&self) -> usize {
        [
            &self.first_name,
            &self.last_name,
            &self.company_name,
            &self.street,
            &self.number,
            &self.zip,
            &self.city,
            &self.country_iso,
            &self.phone_number,
            &self.company_id,
            &self.company_tax_id,
            &self.company_vat_id,
        ]
        .into_iter()
        .fold(0, |sum, field| sum.saturating_add(field.answer_bytes()))
    }
}

impl AnswerSize for FieldError {
    fn answer_bytes(&self) -> usize {
        self.field.len().saturating_add(self.message.len())
    }
}

/// Refuse an answer bigger than [`MAX_ANSWER_BYTES`], as a failure of the call.
fn within_answer_limit(answer: &impl AnswerSize) -> wasmtime::Result<()> {
    let size = answer.answer_bytes();
    if size > MAX_ANSWER_BYTES {
        return Err(wasmtime::Error::msg(format!(
            "answered with {size} bytes, more than the {MAX_ANSWER_BYTES} bytes the host accepts"
        )));
    }
    Ok(())
}

/// Run one export call with the plugin's limits, in a warm instance of the world (`$warm`) when
/// there is one, else in a new one; the instance goes back to the pool only after a success.
macro_rules! invoke {
    ($plugin:expr, $pre:ident, $warm:ident, $function:literal, |$inst:ident, $store:ident| $call:expr) => {{
        let plugin: &Plugin = $plugin;
        let Some(pre) = plugin.$pre.as_ref() else {
            return Err(plugin.failure($function, concat!("does not implement ", stringify!($pre))));
        };
        plugin.admit($function)?;
        let mut instance = plugin.instance(&plugin.$warm, $function).await?;
        plugin.arm(&mut instance.store);
        let started = Instant::now();
        let Instance { store, bindings, .. } = &mut instance;
        let result = tokio::time::timeout(plugin.timeout(), async {
            let $inst = match bindings {
                Some(ready) => ready,
                None => bindings.insert(pre.instantiate_async(&mut *store).await?),
            };
            let $store = &mut *store;
            let answer = $call.await?;
            within_answer_limit(&answer)?;
            Ok::<_, wasmtime::Error>(answer)
        })
        .await;
        let succeeded = matches!(result, Ok(Ok(_)));
        let settled = plugin.settle($function, result, &mut instance.store, started.elapsed());
        if succeeded {
            instance.calls += 1;
            plugin.$warm.give_back(instance);
        }
        settled
    }};
}

/// Threads running plugin code. Guests yield every epoch tick, but on the request workers a
/// few dozen spinning guests would still make every other request wait its turn behind them
/// (p99 437 ms for `/healthz` with 64 of them on 2 cores). On threads of their own, the request
/// workers stay idle until a request comes, and the kernel runs a thread that wakes up from
/// idle ahead of ones that have been spinning. Normal priority: at the lowest, as password
/// hashing, any busy process on the machine would starve sign-ins that wait on a plugin. One
/// per core, since host calls made by guests (key-value, HTTP) run here too.
fn plugin_workers() -> Option<&'static tokio::runtime::Handle> {
    static WORKERS: std::sync::OnceLock<Option<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    WORKERS
        .get_or_init(|| {
            let threads = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .thread_name("plugin-worker")
                .enable_all()
                .build()
                .inspect_err(|e| {
                    tracing::error!("cannot start the plugin workers, plugins run on the request workers: {e}")
                })
                .ok()
        })
        .as_ref()
        .map(tokio::runtime::Runtime::handle)
}

impl Plugin {
    /// Run a call: its first slice here, the rest, if any, on the plugin workers. Most calls
    /// finish within the first slice (a warm call takes microseconds) and cost no hop between
    /// threads; a call that yields (at an epoch tick, or waiting for a pool slot or a host
    /// call) moves to the plugin workers, so it holds a request worker for one tick at most.
    async fn off_request_workers<T: Send + 'static>(
        &self,
        function: &'static str,
        call: impl Future<Output = Result<T, PluginFailure>> + Send + 'static,
    ) -> Result<T, PluginFailure> {
        let Some(workers) = plugin_workers() else {
            return call.await;
        };
        let mut call = Box::pin(call);
        let first_slice = std::future::poll_fn(|cx| std::task::Poll::Ready(call.as_mut().poll(cx))).await;
        if let std::task::Poll::Ready(answer) = first_slice {
            return answer;
        }
        // The request's span goes along, so the call's log lines name the request.
        workers
            .spawn(tracing::Instrument::instrument(call, tracing::Span::current()))
            .await
            .unwrap_or_else(|e| Err(self.failure(function, format!("the call's task ended early: {e}"))))
    }
}

impl Plugin {
    /// An authenticator's decision on a sign-in.
    pub async fn authenticate(self: &Arc<Self>, req: &AuthRequest) -> Result<AuthDecision, PluginFailure> {
        use authenticator::exports::crm::users::authentication as wit;
        let creds = wit::Credentials {
            username: req.username.clone(),
            password: req.password.clone(),
            source: req.source.clone(),
            ip: req.client.ip.clone(),
            user_agent: req.client.user_agent.clone(),
            extra: req.extra.clone(),
        };
        let plugin = Arc::clone(self);
        let outcome = self
            .off_request_workers("authenticate", async move {
                invoke!(&plugin, authenticator, warm_authenticator, "authenticate", |inst, store| inst
                    .crm_users_authentication()
                    .call_authenticate(store, &creds))
            })
            .await?;
        Ok(match outcome {
            Ok(wit::Outcome::Skip) => AuthDecision::Skip,
            Ok(wit::Outcome::Existing(id)) => AuthDecision::Existing(id),
            Ok(wit::Outcome::Provision(u)) => AuthDecision::Provision {
                email: u.email,
                first_name: u.first_name,
                last_name: u.last_name,
                meta: u.meta,
            },
            Err(f) => AuthDecision::Refused {
                reason: match f.kind {
                    wit::FailureKind::IdentityNotFound => AuthReason::IdentityNotFound,
                    wit::FailureKind::InvalidCredential => AuthReason::InvalidCredential,
                    wit::FailureKind::Failure => AuthReason::Failure,
                    wit::FailureKind::NotApproved => AuthReason::NotApproved,
                },
                message: f.message,
            },
        })
    }

    /// An authenticator's extra data for `user/info`, as a JSON text.
    pub async fn user_info(self: &Arc<Self>, user: &User) -> Result<Option<String>, PluginFailure> {
        let (plugin, user) = (Arc::clone(self), wit_user(user));
        self.off_request_workers("user-info", async move {
            invoke!(&plugin, authenticator, warm_authenticator, "user-info", |inst, store| inst
                .crm_users_authentication()
                .call_user_info(store, &user))
        })
        .await
    }

    /// A sign-in handler's decision.
    pub async fn on_sign_in(
        self: &Arc<Self>,
        user: &User,
        source: &str,
        method: &str,
        client: &ClientInfo,
    ) -> Result<SignInDecision, PluginFailure> {
        use sign_in_handler::exports::crm::users::sign_in_handling as wit;
        let event = wit::SignIn {
            user: wit_user(user),
            source: source.to_owned(),
            method: method.to_owned(),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        };
        let plugin = Arc::clone(self);
        let decision = self
            .off_request_workers("on-sign-in", async move {
                invoke!(&plugin, sign_in_handler, warm_sign_in_handler, "on-sign-in", |inst, store| inst
                    .crm_users_sign_in_handling()
                    .call_on_sign_in(store, &event))
            })
            .await?;
        Ok(SignInDecision {
            deny: match decision.verdict {
                wit::Verdict::Allow => None,
                wit::Verdict::Deny(reason) => Some(reason),
            },
            set_meta: decision.set_meta.into_iter().map(|m| (m.key, m.value, m.is_public)).collect(),
        })
    }

    /// An email validator's verdict: `Err(reason)` rejects.
    pub async fn validate_email(self: &Arc<Self>, email: &str) -> Result<Result<(), String>, PluginFailure> {
        let (plugin, email) = (Arc::clone(self), email.to_owned());
        self.off_request_workers("validate", async move {
            invoke!(&plugin, email_validator, warm_email_validator, "validate", |inst, store| inst
                .crm_users_email_validation()
                .call_validate(store, &email))
        })
        .await
    }

    /// Deliver one event to a listener.
    pub async fn on_event(
        self: &Arc<Self>,
        name: &str,
        user_id: Option<u64>,
        at: &str,
        payload: &str,
    ) -> Result<(), PluginFailure> {
        let event = event_listener::exports::crm::users::events::Event {
            name: name.to_owned(),
            user_id,
            at: at.to_owned(),
            payload: payload.to_owned(),
        };
        let plugin = Arc::clone(self);
        self.off_request_workers("on-event", async move {
            invoke!(&plugin, event_listener, warm_event_listener, "on-event", |inst, store| inst
                .crm_users_events()
                .call_on_event(store, &event))
        })
        .await
    }

    /// An address type's description.
    pub async fn describe_address_type(self: &Arc<Self>) -> Result<TypeInfo, PluginFailure> {
        let plugin = Arc::clone(self);
        self.off_request_workers("describe", async move {
            invoke!(&plugin, address_type, warm_address_type, "describe", |inst, store| inst
                .crm_users_addresses()
                .call_describe(store))
        })
        .await
    }

    /// An address type's validation: the normalized address, or every field error.
    pub async fn validate_address(
        self: &Arc<Self>,
        address: &Address,
    ) -> Result<Result<Address, Vec<FieldError>>, PluginFailure> {
        let (plugin, address) = (Arc::clone(self), address.clone());
        self.off_request_workers("validate", async move {
            invoke!(&plugin, address_type, warm_address_type, "validate", |inst, store| inst
                .crm_users_addresses()
                .call_validate(store, &address))
        })
        .await
    }

    /// An address type's one-line formatting.
    pub async fn format_address(self: &Arc<Self>, address: &Address) -> Result<String, PluginFailure> {
        let (plugin, address) = (Arc::clone(self), address.clone());
        self.off_request_workers("format", async move {
            invoke!(&plugin, address_type, warm_address_type, "format", |inst, store| inst
                .crm_users_addresses()
                .call_format(store, &address))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_over_the_limit_are_refused_however_they_are_made_up() {
        let reason: Result<(), String> = Err("x".repeat(MAX_ANSWER_BYTES));
        assert!(within_answer_limit(&reason).is_ok());
        let reason: Result<(), String> = Err("x".repeat(MAX_ANSWER_BYTES + 1));
        let refused = within_answer_limit(&reason).unwrap_err().to_string();
        assert!(refused.contains("262145 bytes, more than the 262144 bytes the host accepts"), "{refused}");
        // Many empty field errors weigh what they cost to lift.
        let errors: Result<Address, Vec<FieldError>> =
            Err(vec![
                FieldError { field: String::new(), message: String::new() };
                MAX_ANSWER_BYTES / LIST_ITEM_BYTES + 1
            ]);
        assert!(within_answer_limit(&errors).is_err());
        let few: Result<Address, Vec<FieldError>> =
            Err(vec![FieldError { field: "zip".into(), message: "Invalid zip".into() }; 10]);
        assert!(within_answer_limit(&few).is_ok());
    }
}
