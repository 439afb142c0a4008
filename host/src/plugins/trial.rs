//! `crm-users plugin run`: one export of one component called against a host of its own, for
//! plugin authors and their tests. The host is the real one (`runtime.rs`, `calls.rs`) over a
//! scratch store: config from the manifest, the plugin's key-value store and users seeded from
//! a fixtures folder, outbound HTTP answered from fixture files. It does not touch a server's
//! data folder or plugins folder.
//!
//! Fixtures folder (every file optional):
//! - `users.json`: `[{"email": "...", "first_name": "...", "last_name": "...", "role": "user",
//!   "active": true, "locale": "en_US", "source": "api", "meta": {"key": "value"}}]`; ids are
//!   given in order from 1.
//! - `kv.json`: `{"key": "value"}`, the plugin's key-value store before the call (UTF-8 values).
//! - `http/<host>[_<port>]/<path>`: the body answering a request to that host and path
//!   (`index` for `/`), status 200; anything else is a 404. `allowed_hosts` still applies.

use super::calls::{Address, AuthDecision, AuthRequest};
use super::loader::Plugin;
use super::runtime::Trial;
use super::{Kind, PluginHost};
use crate::domain::token::ClientInfo;
use crate::domain::user::{NewUser, Role};
use crate::store::{Batch, Change, Store};
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// The functions `plugin run --call` knows, as `interface.function`.
pub const FUNCTIONS: [&str; 8] = [
    "authentication.authenticate",
    "authentication.user-info",
    "sign-in-handling.on-sign-in",
    "addresses.describe",
    "addresses.validate",
    "addresses.format",
    "email-validation.validate",
    "events.on-event",
];

/// What one `plugin run` asks for.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub wasm: PathBuf,
    pub manifest: PathBuf,
    /// `function` or `interface.function`.
    pub function: String,
    pub input: Value,
    pub fixtures: Option<PathBuf>,
}

/// What the call did: its answer (or why it failed) and what it cost.
#[derive(Debug, Clone)]
pub struct RunReport {
    pub plugin: String,
    pub version: String,
    pub function: String,
    /// The export's answer as JSON, or the failure (trap, limit, timeout) in words.
    pub outcome: Result<Value, String>,
    pub fuel_used: u64,
    pub duration: std::time::Duration,
    pub peak_memory_bytes: usize,
    pub log: Vec<String>,
}

impl RunReport {
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "plugin": self.plugin,
            "version": self.version,
            "function": self.function,
            "fuel_used": self.fuel_used,
            "duration_us": u64::try_from(self.duration.as_micros()).unwrap_or(u64::MAX),
            "peak_memory_bytes": self.peak_memory_bytes,
            "log": self.log,
        });
        match &self.outcome {
            Ok(result) => out["result"] = result.clone(),
            Err(failure) => out["failure"] = Value::String(failure.clone()),
        }
        out
    }
}

/// Which export `name` means for a component implementing `kinds`.
fn resolve(name: &str, kinds: &[Kind]) -> anyhow::Result<&'static str> {
    let candidates: Vec<&'static str> = FUNCTIONS
        .iter()
        .copied()
        .filter(|f| *f == name || f.split_once('.').is_some_and(|(_, func)| func == name))
        .filter(|f| kinds.iter().any(|k| f.starts_with(&format!("{}.", k.interface()))))
        .collect();
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => bail!(
            "the component has no function '{name}'; it implements {}, whose functions are {}",
            kinds.iter().map(|k| k.world()).collect::<Vec<_>>().join(", "),
            FUNCTIONS
                .iter()
                .filter(|f| kinds.iter().any(|k| f.starts_with(&format!("{}.", k.interface()))))
                .copied()
                .collect::<Vec<_>>()
                .join(", ")
        ),
        many => bail!("'{name}' is ambiguous for this component: say which of {}", many.join(", ")),
    }
}

/// Load the component, seed the scratch store from the fixtures, make the call.
pub async fn run(host: &PluginHost, store: &Arc<dyn Store>, req: RunRequest) -> anyhow::Result<RunReport> {
    let trial = Trial { http_fixtures: req.fixtures.clone(), ..Trial::default() };
    let plugin = Arc::new(host.load_trial(req.wasm.clone(), &req.manifest, trial).await?);
    let function = resolve(&req.function, &plugin.kinds)?;
    if let Some(dir) = &req.fixtures {
        seed(store, &plugin.manifest().name, dir).await?;
    }
    let started = Instant::now();
    let outcome = call(&plugin, store, function, &req.input).await?;
    let duration = started.elapsed();
    let trial = plugin.ctx.trial.as_ref().context("a trial plugin records its calls")?;
    Ok(RunReport {
        plugin: plugin.manifest().name.clone(),
        version: plugin.manifest().version.clone(),
        function: function.to_owned(),
        outcome,
        fuel_used: plugin.stats.fuel_consumed.load(Ordering::Relaxed),
        duration,
        peak_memory_bytes: trial.peak_memory.load(Ordering::Relaxed),
        log: trial.log.lock().map(|l| l.clone()).unwrap_or_default(),
    })
}

fn read_json(path: &Path) -> anyhow::Result<Option<Value>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            serde_json::from_str(&text).map(Some).with_context(|| format!("{} is not valid JSON", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn opt_str(v: &Value, key: &str) -> anyhow::Result<Option<String>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => bail!("'{key}' must be a string, not {other}"),
    }
}

fn str_or(v: &Value, key: &str, default: &str) -> anyhow::Result<String> {
    Ok(opt_str(v, key)?.unwrap_or_else(|| default.to_owned()))
}

/// Users from `users.json` and key-value entries from `kv.json` into the scratch store.
async fn seed(store: &Arc<dyn Store>, plugin: &str, dir: &Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("the fixtures folder {} does not exist", dir.display());
    }
    if let Some(users) = read_json(&dir.join("users.json"))? {
        let users = users.as_array().context("users.json must hold an array of users")?;
        for (i, u) in users.iter().enumerate() {
            let at = || format!("users.json, user {}", i + 1);
            let email =
                opt_str(u, "email").with_context(at)?.with_context(|| format!("{}: 'email' is required", at()))?;
            let role = match str_or(u, "role", "user").with_context(at)?.as_str() {
                "user" => Role::User,
                "admin" => Role::Admin,
                other => bail!("{}: role '{other}' is neither user nor admin", at()),
            };
            let meta = match u.get("meta") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| match v {
                        Value::String(s) => Ok((k.clone(), s.clone(), false)),
                        other => bail!("{}: meta '{k}' must be a string, not {other}", at()),
                    })
                    .collect::<anyhow::Result<_>>()?,
                Some(other) => bail!("{}: 'meta' must be an object, not {other}", at()),
            };
            let user = NewUser {
                email,
                password_hash: String::new(),
                first_name: opt_str(u, "first_name").with_context(at)?,
                last_name: opt_str(u, "last_name").with_context(at)?,
                role,
                active: u.get("active").and_then(Value::as_bool).unwrap_or(true),
                source: str_or(u, "source", "api").with_context(at)?,
                referer: None,
                registration_channel: "crm".into(),
                locale: str_or(u, "locale", "en_US").with_context(at)?,
                ext_id: None,
                note: None,
            };
            store.create_user(user, meta, None).await.with_context(|| format!("{}: cannot be stored", at()))?;
        }
    }
    if let Some(kv) = read_json(&dir.join("kv.json"))? {
        let kv = kv.as_object().context("kv.json must hold an object of string values")?;
        let mut batch = Batch::new();
        for (key, value) in kv {
            let Value::String(value) = value else { bail!("kv.json: '{key}' must be a string, not {value}") };
            batch.push(Change::PutPluginKv {
                plugin: plugin.to_owned(),
                key: key.clone(),
                value: value.clone().into(),
            });
        }
        store.apply(batch).await.context("kv.json cannot be stored")?;
    }
    Ok(())
}

fn address_from(v: &Value) -> anyhow::Result<Address> {
    let Value::Object(map) = v else { bail!("the input must be an address object, e.g. {{\"street\": \"Main\"}}") };
    const FIELDS: [&str; 12] = [
        "first_name",
        "last_name",
        "company_name",
        "street",
        "number",
        "zip",
        "city",
        "country_iso",
        "phone_number",
        "company_id",
        "company_tax_id",
        "company_vat_id",
    ];
    if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        bail!("unknown address field '{unknown}'; the fields are {}", FIELDS.join(", "));
    }
    Ok(Address {
        first_name: opt_str(v, "first_name")?,
        last_name: opt_str(v, "last_name")?,
        company_name: opt_str(v, "company_name")?,
        street: opt_str(v, "street")?,
        number: opt_str(v, "number")?,
        zip: opt_str(v, "zip")?,
        city: opt_str(v, "city")?,
        country_iso: opt_str(v, "country_iso")?,
        phone_number: opt_str(v, "phone_number")?,
        company_id: opt_str(v, "company_id")?,
        company_tax_id: opt_str(v, "company_tax_id")?,
        company_vat_id: opt_str(v, "company_vat_id")?,
    })
}

fn address_json(a: &Address) -> Value {
    json!({
        "first_name": a.first_name, "last_name": a.last_name, "company_name": a.company_name,
        "street": a.street, "number": a.number, "zip": a.zip, "city": a.city,
        "country_iso": a.country_iso, "phone_number": a.phone_number, "company_id": a.company_id,
        "company_tax_id": a.company_tax_id, "company_vat_id": a.company_vat_id,
    })
}

/// The user an input names by `user_id` or `email`, from the fixtures.
async fn fixture_user(store: &Arc<dyn Store>, input: &Value) -> anyhow::Result<crate::domain::user::User> {
    let found = if let Some(id) = input.get("user_id") {
        let id = id.as_u64().context("'user_id' must be a positive integer")?;
        store.user(id).await?
    } else if let Some(email) = opt_str(input, "email")? {
        store.user_by_email(&email).await?
    } else {
        bail!("the input must name a user of the fixtures' users.json by \"user_id\" or \"email\"")
    };
    found.context("no such user in the fixtures' users.json")
}

fn client(input: &Value) -> anyhow::Result<ClientInfo> {
    Ok(ClientInfo {
        ip: str_or(input, "ip", "127.0.0.1")?,
        user_agent: str_or(input, "user_agent", "crm-users plugin run")?,
    })
}

/// Make the call; `Ok(Err(..))` is a plugin failure, `Err` bad input.
async fn call(
    plugin: &Arc<Plugin>,
    store: &Arc<dyn Store>,
    function: &str,
    input: &Value,
) -> anyhow::Result<Result<Value, String>> {
    let failed = |e: super::calls::PluginFailure| e.to_string();
    Ok(match function {
        "email-validation.validate" => {
            let email = input.as_str().context("the input must be a JSON string: the email address")?;
            plugin.validate_email(email).await.map(|r| match r {
                Ok(()) => json!({"ok": null}),
                Err(reason) => json!({"err": reason}),
            })
        }
        "addresses.describe" => plugin
            .describe_address_type()
            .await
            .map(|t| json!({"name": t.name, "title": t.title, "sorting": t.sorting})),
        "addresses.validate" => {
            let address = address_from(input)?;
            plugin.validate_address(&address).await.map(|r| match r {
                Ok(a) => json!({"ok": address_json(&a)}),
                Err(errors) => json!({"err": errors
                    .iter()
                    .map(|e| json!({"field": e.field, "message": e.message}))
                    .collect::<Vec<_>>()}),
            })
        }
        "addresses.format" => plugin.format_address(&address_from(input)?).await.map(Value::String),
        "authentication.authenticate" => {
            let extra = match input.get("extra") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Object(m)) => m
                    .iter()
                    .map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())).context("'extra' values must be strings"))
                    .collect::<anyhow::Result<_>>()?,
                Some(_) => bail!("'extra' must be an object of strings"),
            };
            let req = AuthRequest {
                username: opt_str(input, "username")?,
                password: opt_str(input, "password")?,
                source: str_or(input, "source", "api")?,
                client: client(input)?,
                extra,
            };
            plugin.authenticate(&req).await.map(|d| match d {
                AuthDecision::Skip => json!("skip"),
                AuthDecision::Existing(id) => json!({"existing": id}),
                AuthDecision::Provision { email, first_name, last_name, meta } => json!({"provision": {
                    "email": email, "first_name": first_name, "last_name": last_name,
                    "meta": meta.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<serde_json::Map<_, _>>(),
                }}),
                AuthDecision::Refused { reason, message } => {
                    json!({"refused": {"reason": format!("{reason:?}"), "message": message}})
                }
            })
        }
        "authentication.user-info" => {
            let user = fixture_user(store, input).await?;
            plugin.user_info(&user).await.map(|info| info.map_or(Value::Null, Value::String))
        }
        "sign-in-handling.on-sign-in" => {
            let user = fixture_user(store, input).await?;
            let (source, method) = (str_or(input, "source", "api")?, str_or(input, "method", "password")?);
            plugin.on_sign_in(&user, &source, &method, &client(input)?).await.map(|d| {
                json!({
                    "deny": d.deny,
                    "set_meta": d.set_meta.iter().map(|(k, v, public)| json!({"key": k, "value": v, "is_public": public})).collect::<Vec<_>>(),
                })
            })
        }
        "events.on-event" => {
            let name = opt_str(input, "name")?.context("the input must have the event's \"name\"")?;
            let user_id = match input.get("user_id") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().context("'user_id' must be a positive integer")?),
            };
            let at = str_or(input, "at", &chrono::Utc::now().to_rfc3339())?;
            let payload = match input.get("payload") {
                None | Some(Value::Null) => "{}".to_owned(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            plugin.on_event(&name, user_id, &at, &payload).await.map(|()| Value::Null)
        }
        other => bail!("unknown function {other}"),
    }
    .map_err(failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_short_names_by_the_worlds_implemented() {
        assert_eq!(resolve("validate", &[Kind::EmailValidator]).unwrap(), "email-validation.validate");
        assert_eq!(resolve("validate", &[Kind::AddressType]).unwrap(), "addresses.validate");
        assert_eq!(resolve("addresses.format", &[Kind::AddressType]).unwrap(), "addresses.format");
    }

    #[test]
    fn refuses_ambiguous_and_unknown_names_with_the_choices() {
        let err = resolve("validate", &[Kind::AddressType, Kind::EmailValidator]).unwrap_err().to_string();
        assert!(err.contains("ambiguous") && err.contains("addresses.validate"), "{err}");
        let err = resolve("authenticate", &[Kind::EmailValidator]).unwrap_err().to_string();
        assert!(err.contains("no function 'authenticate'") && err.contains("email-validation.validate"), "{err}");
    }

    #[test]
    fn address_input_rejects_unknown_fields_and_non_strings() {
        assert!(address_from(&json!({"zipcode": "1"})).unwrap_err().to_string().contains("unknown address field"));
        assert!(address_from(&json!({"zip": 1})).unwrap_err().to_string().contains("'zip' must be a string"));
        assert_eq!(address_from(&json!({"zip": "811 01"})).unwrap().zip.as_deref(), Some("811 01"));
    }
}
