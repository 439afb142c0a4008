//! `plugin.toml`: what a plugin is, what it may do and how far it may go. Parsed strictly
//! (unknown keys are errors) and validated into [`Manifest`].

use anyhow::{Context, bail};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Fuel per call when the manifest says nothing: ample for validation and formatting logic
/// (a typical call uses well under a million), small enough to stop a runaway loop in
/// milliseconds.
pub const DEFAULT_FUEL: u64 = 50_000_000;
/// Most fuel a manifest may ask for per call.
pub const MAX_FUEL: u64 = 10_000_000_000;
/// Wall-clock limit per call when the manifest says nothing. Sign-ins wait on plugins, so a
/// plugin gets a second at most unless the operator says otherwise.
pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
/// Longest wall-clock limit a manifest may ask for (Zitadel and Auth0 cap actions at 20 s).
pub const MAX_TIMEOUT_MS: u64 = 20_000;
/// Linear memory per instance when the manifest says nothing.
pub const DEFAULT_MEMORY_MB: u64 = 64;
/// Most memory a manifest may ask for. Python and JavaScript components need tens of MiB.
pub const MAX_MEMORY_MB: u64 = 1024;

/// What a plugin may ask the host for. Deny by default: nothing not listed is granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
pub enum Capability {
    /// Its own key-value store.
    #[serde(rename = "kv")]
    Kv,
    /// User lookups by id and email, and their meta.
    #[serde(rename = "users:read")]
    UsersRead,
    /// Outbound HTTP through `wasi:http` to `allowed_hosts`.
    #[serde(rename = "http")]
    Http,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Kv => "kv",
            Capability::UsersRead => "users:read",
            Capability::Http => "http",
        }
    }
}

/// Whether a call may run in an instance an earlier call of the same plugin left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InstancePolicy {
    /// A new instance for every call: nothing one call leaves in memory reaches the next.
    Fresh,
    /// Instances are kept and reused, with fuel and deadline reset per call; an instance is
    /// dropped after any failure. Calls skip instantiation (the cost of an interpreter's
    /// start-up, for Python or JavaScript plugins).
    Warm,
}

/// What happens when a call fails (trap, timeout, memory, bad result).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    /// The failure counts as a refusal: no sign-in, no valid email, no address.
    Closed,
    /// The failure is logged and the plugin treated as if it had agreed.
    Open,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    fuel: Option<u64>,
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    wasm: String,
    #[serde(default)]
    priority: i32,
    #[serde(default)]
    capabilities: Vec<Capability>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    failure: Option<FailurePolicy>,
    instances: Option<InstancePolicy>,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    config: BTreeMap<String, String>,
}

/// Per-call limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub fuel: u64,
    pub timeout_ms: u64,
    pub memory_bytes: usize,
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    /// File name of the component, in the plugin's folder.
    pub wasm: String,
    pub priority: i32,
    pub capabilities: Vec<Capability>,
    /// `host` or `host:port`, lowercased.
    pub allowed_hosts: Vec<String>,
    /// `None`: the default of each world the plugin implements.
    pub failure: Option<FailurePolicy>,
    /// `None`: the default of each world (warm for email validators and address types, fresh
    /// for the worlds whose calls carry credentials or user data).
    pub instances: Option<InstancePolicy>,
    pub limits: Limits,
    pub config: BTreeMap<String, String>,
}

impl Manifest {
    /// Parse and validate a manifest's text.
    pub fn parse(text: &str) -> anyhow::Result<Manifest> {
        let raw: RawManifest = toml::from_str(text)?;
        let name = raw.name.trim().to_owned();
        if name.is_empty()
            || name.len() > 64
            || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            bail!("name '{name}' must be 1 to 64 of a-z, 0-9, '-' and '_'");
        }
        if !is_semver(&raw.version) {
            bail!("version '{}' is not a semantic version such as 1.0.0", raw.version);
        }
        if raw.wasm.is_empty() || raw.wasm.contains(['/', '\\']) || raw.wasm.starts_with('.') {
            bail!("wasm '{}' must be a file name in the plugin's folder", raw.wasm);
        }
        let mut capabilities = raw.capabilities;
        capabilities.sort();
        capabilities.dedup();
        let allowed_hosts: Vec<String> = raw.allowed_hosts.iter().map(|h| h.trim().to_lowercase()).collect();
        if !allowed_hosts.is_empty() && !capabilities.contains(&Capability::Http) {
            bail!("allowed_hosts is set but the capability \"http\" is not requested");
        }
        if capabilities.contains(&Capability::Http) && allowed_hosts.is_empty() {
            bail!("the capability \"http\" needs allowed_hosts (host or host:port entries)");
        }
        for h in &allowed_hosts {
            if h.is_empty() || h.contains(['/', '*', ' ', '@']) {
                bail!("allowed_hosts entry '{h}' must be host or host:port");
            }
        }
        let fuel = raw.limits.fuel.unwrap_or(DEFAULT_FUEL);
        let timeout_ms = raw.limits.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
        let memory_mb = raw.limits.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
        if !(1..=MAX_FUEL).contains(&fuel) {
            bail!("limits.fuel must be between 1 and {MAX_FUEL}");
        }
        if !(1..=MAX_TIMEOUT_MS).contains(&timeout_ms) {
            bail!("limits.timeout_ms must be between 1 and {MAX_TIMEOUT_MS}");
        }
        if !(1..=MAX_MEMORY_MB).contains(&memory_mb) {
            bail!("limits.memory_mb must be between 1 and {MAX_MEMORY_MB}");
        }
        Ok(Manifest {
            name,
            version: raw.version,
            wasm: raw.wasm,
            priority: raw.priority,
            capabilities,
            allowed_hosts,
            failure: raw.failure,
            instances: raw.instances,
            limits: Limits { fuel, timeout_ms, memory_bytes: (memory_mb as usize) << 20 },
            config: raw.config,
        })
    }

    /// Read and validate `plugin.toml` from a file.
    pub fn from_file(path: &Path) -> anyhow::Result<Manifest> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Manifest::parse(&text).with_context(|| format!("invalid manifest {}", path.display()))
    }

    pub fn has(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// Whether outbound HTTP to `host` (with `port`) is allowed.
    pub fn allows_host(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_lowercase();
        self.allowed_hosts.iter().any(|allowed| match (allowed.rsplit_once(':'), port) {
            (Some((h, p)), Some(port)) if p.parse::<u16>().is_ok() => *h == host && p == port.to_string(),
            (Some((_, p)), _) if p.parse::<u16>().is_ok() => false,
            _ => *allowed == host,
        })
    }
}

fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "name = \"p\"\nversion = \"1.0.0\"\nwasm = \"p.wasm\"\n";

    #[test]
    fn minimal_manifest_gets_safe_defaults() {
        let m = Manifest::parse(MINIMAL).unwrap();
        assert!(m.capabilities.is_empty());
        assert_eq!(m.limits.fuel, DEFAULT_FUEL);
        assert_eq!(m.limits.timeout_ms, DEFAULT_TIMEOUT_MS);
        assert_eq!(m.limits.memory_bytes, 64 << 20);
        assert_eq!(m.failure, None);
    }

    #[test]
    fn rejects_unknown_keys_capabilities_and_limits() {
        assert!(Manifest::parse(&format!("{MINIMAL}colour = 1")).unwrap_err().to_string().contains("colour"));
        assert!(Manifest::parse(&format!("{MINIMAL}capabilities = [\"fs\"]")).is_err());
        assert!(Manifest::parse(&format!("{MINIMAL}[limits]\ntimeout_ms = 999999")).is_err());
        assert!(Manifest::parse(&format!("{MINIMAL}capabilities = [\"http\"]")).is_err());
        assert!(Manifest::parse(&format!("{MINIMAL}allowed_hosts = [\"a\"]")).is_err());
        assert!(Manifest::parse("name = \"Bad Name\"\nversion = \"1.0.0\"\nwasm = \"p.wasm\"").is_err());
        assert!(Manifest::parse("name = \"p\"\nversion = \"1.0.0\"\nwasm = \"../p.wasm\"").is_err());
    }

    #[test]
    fn host_allow_list_matches_host_and_port() {
        let m = Manifest::parse(&format!(
            "{MINIMAL}capabilities = [\"http\"]\nallowed_hosts = [\"127.0.0.1:8089\", \"api.example.com\"]"
        ))
        .unwrap();
        assert!(m.allows_host("127.0.0.1", Some(8089)));
        assert!(!m.allows_host("127.0.0.1", Some(8090)));
        assert!(!m.allows_host("127.0.0.1", None));
        assert!(m.allows_host("API.example.com", Some(443)));
        assert!(!m.allows_host("evil.example.com", Some(443)));
    }
}
