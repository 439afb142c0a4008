//! The `crm-users` command line, and the composition root that builds the store, the services
//! and the HTTP app from a validated config.

use crate::api::{self, App};
use crate::config::{Config, Overrides, RawConfig};
use crate::domain::email::{DomainBlocklist, EmailValidator};
use crate::plugins::PluginHost;
use crate::service::sso::SsoProviders;
use crate::service::{Services, accounts::NewAccount, passwords::PasswordHasher, tokens::parse_allowed_routes};
use crate::store::{
    Store, StoreLocation, UserScan,
    postgres::PostgresStore,
    sled::{RecoveringStore, SledStore},
};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

mod maintenance;

/// A users service speaking the REMP CRM users API, with WebAssembly plugins.
///
/// Start it with `crm-users serve` (data in ./data, listening on 127.0.0.1:8080), create an API
/// token for your backend with `crm-users api-token create --name backend --allow '*'`, and call
/// e.g. POST /api/v1/users/create with `Authorization: Bearer <token>`.
#[derive(Debug, Parser)]
#[command(name = "crm-users", version, about, long_about)]
pub struct Cli {
    /// TOML config file (unknown keys are errors).
    #[arg(long, global = true, env = "CRM_USERS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data folder [default: ./data].
    #[arg(long, global = true, env = "CRM_USERS_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Plugins folder, one subfolder per plugin [default: ./plugins.d].
    #[arg(long, global = true, env = "CRM_USERS_PLUGINS", value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// Storage backend: `sled` (in the data folder) or `postgres` [default: postgres when a
    /// database URL is given, else sled].
    #[arg(long, global = true, env = "CRM_USERS_STORAGE", value_name = "BACKEND")]
    storage: Option<String>,
    /// PostgreSQL database shared by every host, e.g. postgres://crm:secret@db:5432/crm_users.
    #[arg(long, global = true, env = "CRM_USERS_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Log lines as `text` (default) or `json` (one object a line), on stderr.
    #[arg(long, global = true, env = "CRM_USERS_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service until SIGTERM or Ctrl-C.
    Serve {
        /// Address to listen on [default: 127.0.0.1:8080]; port 0 picks a free port.
        #[arg(long, env = "CRM_USERS_LISTEN", value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Manage API tokens for servers calling the API.
    #[command(name = "api-token", subcommand)]
    ApiToken(ApiTokenCommand),
    /// Manage users (REMP's user:add, user:disable, user:check-emails).
    #[command(subcommand)]
    User(UserCommand),
    /// Work with plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Issue sign-in links (REMP autologin tokens).
    #[command(name = "autologin-token", subcommand)]
    AutologinToken(AutologinCommand),
    /// Manage address types (REMP's address_types rows).
    #[command(name = "address-type", subcommand)]
    AddressType(AddressTypeCommand),
    /// Manage user groups.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Manage admin roles and their permissions (route names or '*').
    #[command(subcommand)]
    Role(RoleCommand),
    /// Bring users over from another system (`import remp`), or restore a backup written by
    /// `export` (`import --input FILE`).
    Import(ImportArgs),
    /// Write every record (users, tokens as digests, meta, groups, roles, addresses, logs,
    /// plugin data, server secrets) as JSON lines, for backups and migrations. Run it while no
    /// server holds the data folder.
    Export {
        /// Where to write; `-` is stdout. A file is written beside and renamed into place when
        /// complete, so an interrupted export never looks like a finished one.
        #[arg(long, value_name = "FILE|-", default_value = "-")]
        output: PathBuf,
    },
    /// Check the store like fsck: every record readable and under its own key, every index
    /// entry matching its record both ways, every reference resolving, sequences past every
    /// id. Prints each inconsistency; exit status 1 when there is any. Read only.
    Check,
    /// Copy every record from one store into another, empty one, then verify the copy by
    /// counts and a checksum of every record of each kind. Stores are `sled:DIR` (a data
    /// folder) or `postgres:URL` (also a bare postgres:// URL). No server may write to the
    /// source meanwhile (a sled folder is locked; stop the hosts of a database).
    Migrate {
        /// The store to copy from.
        #[arg(long, value_name = "sled:DIR|postgres:URL")]
        from: String,
        /// The store to copy into; it must be empty. Into sled or PostgreSQL alike it is all
        /// or nothing.
        #[arg(long, value_name = "sled:DIR|postgres:URL")]
        to: String,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct ImportArgs {
    #[command(subcommand)]
    source: Option<ImportCommand>,
    /// A backup written by `crm-users export`; `-` is stdin. The whole file is checked before
    /// anything is written; into an empty data folder it is all or nothing.
    #[arg(long, value_name = "FILE|-")]
    input: Option<PathBuf>,
    /// Write into a data folder that holds data already: each record replaces the one with
    /// its id (users keep a different user's email or uuid out). Without it, a folder with
    /// data is refused.
    #[arg(long)]
    merge: bool,
}

#[derive(Debug, Subcommand)]
enum ImportCommand {
    /// Import a REMP CRM database (MySQL or MariaDB): users with their passwords, meta,
    /// groups, addresses, access, device, autologin and API tokens, keeping REMP's ids.
    /// Running it again updates what it imported before and duplicates nothing.
    Remp {
        /// mysql://USER:PASS@HOST[:PORT]/DB of REMP's database (read only).
        #[arg(long, value_name = "URL", env = "CRM_USERS_MYSQL_URL")]
        mysql_url: String,
        /// Read and check every row, print the report, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Time zone REMP wrote its dates in (its PHP default) [default: the config's timezone].
        #[arg(long, value_name = "ZONE")]
        timezone: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum RoleCommand {
    /// Create a role; its id is printed alone on the last line.
    Add {
        /// The role's name (unique, any case).
        name: String,
        /// Comma-separated route names the role grants, or '*' for all.
        #[arg(long, value_name = "ROUTE[,ROUTE..]|'*'", default_value = "")]
        permissions: String,
    },
    /// Give a user one more role (by id or name); prints the user's id and role ids. Roles
    /// grant permissions only to admin users (`user add --admin`).
    Assign {
        /// The user's email.
        email: String,
        /// The role's id or name.
        role: String,
    },
}

#[derive(Debug, Subcommand)]
enum AutologinCommand {
    /// Issue a token for a user; it is printed alone on the last line.
    Create {
        /// The user's email.
        #[arg(long)]
        email: String,
        /// RFC 3339 start of validity [default: now].
        #[arg(long)]
        valid_from: Option<String>,
        /// RFC 3339 end of validity [default: ten minutes after the start].
        #[arg(long)]
        valid_to: Option<String>,
        /// How many sign-ins the token allows [default: 1].
        #[arg(long)]
        max_count: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
enum AddressTypeCommand {
    /// Store a new address type.
    Add {
        /// The key, e.g. invoice: 1 to 64 lowercase letters, digits, '-' or '_'.
        #[arg(value_name = "TYPE")]
        kind: String,
        /// A human title, e.g. "Invoice address".
        #[arg(long)]
        title: String,
        /// Order among types [default: 100].
        #[arg(long)]
        sorting: Option<i32>,
    },
    /// List every address type with its source (config, stored, plugin).
    List,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// Create a group; its id is printed alone on the last line.
    Add {
        /// The group's name (1 to 255 characters; need not be unique).
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Tell which plugin worlds a component implements and what it needs, or why the host
    /// would refuse it.
    Check {
        /// The component (.wasm).
        wasm: PathBuf,
        /// Its plugin.toml, to check capabilities and limits too.
        #[arg(long, value_name = "FILE")]
        manifest: Option<PathBuf>,
    },
    /// Call one export of a component against a scratch host (config from the manifest, users,
    /// key-value entries and HTTP answers from a fixtures folder) and print, as JSON, its
    /// result, fuel used, duration, peak memory and log lines. Exit status 1 when the call
    /// failed (trap, limit, timeout), 2 on bad input.
    Run {
        /// The component (.wasm).
        wasm: PathBuf,
        /// Its plugin.toml.
        #[arg(long, value_name = "FILE")]
        manifest: PathBuf,
        /// The export: `validate`, `describe`, `format`, `authenticate`, `user-info`,
        /// `on-sign-in`, `on-event`, or `interface.function` such as `addresses.validate`.
        #[arg(long, value_name = "FUNCTION")]
        call: String,
        /// The argument as JSON: an email string, an address object, credentials, ...
        #[arg(long, value_name = "JSON", default_value = "null")]
        input: String,
        /// Folder with users.json, kv.json and http/<host>/<path> answers.
        #[arg(long, value_name = "DIR")]
        fixtures: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum ApiTokenCommand {
    /// Create a token; it is printed once, alone on the last line.
    Create {
        /// A name to recognise the token by.
        #[arg(long)]
        name: String,
        /// '*' for every route, or a comma list of route names such as users/create,users/list.
        #[arg(long, value_name = "ROUTES")]
        allow: String,
    },
    /// List tokens (never their values).
    List,
    /// Revoke a token by id, or every active token with that name.
    Revoke {
        #[arg(value_name = "ID_OR_NAME")]
        token: String,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user.
    Add(AddUser),
    /// Deactivate a user and sign them out everywhere.
    Disable { email: String },
    /// Run the email validators on one address, or on every active user.
    CheckEmails { email: Option<String> },
    /// Print a user's record (never the password hash, only its algorithm) and the groups they
    /// belong to.
    Show { email: String },
}

#[derive(Debug, Args)]
struct AddUser {
    email: String,
    /// At least 6 characters.
    #[arg(long)]
    password: String,
    #[arg(long)]
    first_name: Option<String>,
    #[arg(long)]
    last_name: Option<String>,
    /// Give the user the admin role.
    #[arg(long)]
    admin: bool,
    /// Create the user deactivated.
    #[arg(long)]
    inactive: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, fields at the top level.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => anyhow::bail!("log_format '{other}' is not text or json"),
        }
    }
}

/// Parse the command line, run the command, and turn failures into a one-line message.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("crm-users: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CRM_USERS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
    };
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let raw = match &cli.config {
        Some(path) => RawConfig::from_file(path),
        None => Ok(RawConfig::default()),
    };
    let configured = raw.as_ref().ok().and_then(|r| r.log_format.as_deref()).map(str::parse::<LogFormat>);
    let format = match (cli.log_format, configured) {
        (Some(f), _) => f,
        (None, Some(parsed)) => parsed?,
        (None, None) => LogFormat::default(),
    };
    init_tracing(format);
    let raw = raw?;
    let listen = match &cli.command {
        Command::Serve { listen } => listen.clone(),
        _ => None,
    };
    let overrides = Overrides {
        listen,
        data: cli.data.clone(),
        plugins: cli.plugins.clone(),
        storage: cli.storage.clone(),
        database_url: cli.database_url.clone(),
    };
    let config = raw.validate(&overrides)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve { .. } => serve(config).await,
            Command::ApiToken(cmd) => api_token(config, cmd).await,
            Command::User(cmd) => user(config, cmd).await,
            Command::Plugin(cmd) => plugin(config, cmd).await,
            Command::AutologinToken(cmd) => autologin_token(config, cmd).await,
            Command::AddressType(cmd) => address_type(config, cmd).await,
            Command::Group(cmd) => group(config, cmd).await,
            Command::Role(cmd) => role(config, cmd).await,
            Command::Import(ImportArgs { source: Some(cmd), .. }) => import(config, cmd).await,
            Command::Import(ImportArgs { source: None, input, merge }) => {
                let Some(input) = input else {
                    anyhow::bail!("import needs --input FILE (a backup from `crm-users export`) or `remp`");
                };
                maintenance::import(&config, &input, merge).await
            }
            Command::Export { output } => maintenance::export(&config, &output).await,
            Command::Check => maintenance::check(&config).await,
            Command::Migrate { from, to } => maintenance::migrate(&config, &from, &to).await,
        }
    })
}

/// An open store: for sled, the data folder's lock that keeps a second process out; the
/// services over it.
pub struct Opened {
    _lock: Option<File>,
    pub services: Services,
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opened").finish_non_exhaustive()
    }
}

/// Open the configured store: a sled store under the data folder's lock, or the PostgreSQL
/// database, which hosts and CLI runs share (no lock: the data folder then holds only this
/// host's plugin compilation cache).
async fn open_store(config: &Config) -> anyhow::Result<(Option<File>, Arc<dyn Store>)> {
    match &config.storage {
        StoreLocation::Sled { dir, commit } => {
            let lock = lock_data_folder(&config.data)?;
            Ok((Some(lock), Arc::new(RecoveringStore::open(dir, *commit)?)))
        }
        StoreLocation::Postgres(options) => {
            std::fs::create_dir_all(&config.data)
                .with_context(|| format!("cannot create the data folder {}", config.data.display()))?;
            Ok((None, Arc::new(PostgresStore::open(options).await?)))
        }
    }
}

/// Open the store and build the services over it: the composition root. With
/// `load_plugins`, the plugins folder is loaded, and a broken plugin stops the start.
pub async fn open(config: &Config, load_plugins: bool) -> anyhow::Result<Opened> {
    let (lock, store) = open_store(config).await?;
    let plugins =
        Arc::new(PluginHost::new(config.plugins.clone(), Some(config.data.join("plugin-cache")), store.clone())?);
    if load_plugins {
        plugins.reload().await.with_context(|| format!("cannot load the plugins in {}", config.plugins.display()))?;
    }
    let email = EmailValidator::new(DomainBlocklist::builtin().with_extra(&config.extra_blocked_domains));
    let passwords = PasswordHasher::new(config.hash_cost, config.hash_workers);
    let sso = SsoProviders::new(config.sso_google.clone(), config.sso_apple.clone())?;
    let services = Services::new(store, passwords, email, config.service.clone(), plugins, sso);
    Ok(Opened { _lock: lock, services })
}

/// Take the folder's lock file, so that a CLI command never writes under a running server.
pub(crate) fn lock_data_folder(dir: &Path) -> anyhow::Result<File> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create the data folder {}", dir.display()))?;
    let path = dir.join("LOCK");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "the data folder {} is in use by a running crm-users server; stop it first, or do this through its HTTP API",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

async fn serve(config: Config) -> anyhow::Result<ExitCode> {
    let opened = open(&config, true).await?;
    let services = opened.services.clone();
    services.start_event_listeners();
    if config.watch_plugins {
        tokio::spawn(services.plugins.clone().watch(PLUGIN_WATCH_PERIOD));
    }
    spawn_reload_on_sighup(services.plugins.clone());
    let app = App::new(services.clone(), config.api.clone());
    // Before the ready line: a SIGTERM right after it must find the handler in place.
    let shutdown = crate::server::shutdown_signal();
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data = %config.data.display(), "crm-users ready");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{addr}")?;
        out.flush()?;
    }
    crate::server::run(listener, api::router(app), shutdown).await?;
    services.store.flush().await?;
    drop(opened);
    Ok(ExitCode::SUCCESS)
}

async fn api_token(config: Config, cmd: ApiTokenCommand) -> anyhow::Result<ExitCode> {
    let opened = open(&config, false).await?;
    let services = &opened.services;
    match cmd {
        ApiTokenCommand::Create { name, allow } => {
            let routes = parse_allowed_routes(&allow)?;
            let (token, plain) = services.create_api_token(&name, routes).await?;
            println!("created API token {} '{}' for {}", token.id, token.name, token.allowed_routes.join(","));
            println!("{plain}");
        }
        ApiTokenCommand::List => {
            for t in services.store.api_tokens().await? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.name,
                    if t.active { "active" } else { "revoked" },
                    t.allowed_routes.join(","),
                    t.created_at.to_rfc3339()
                );
            }
        }
        ApiTokenCommand::Revoke { token } => {
            for t in services.revoke_api_token(&token).await? {
                println!("revoked API token {} '{}'", t.id, t.name);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn user(config: Config, cmd: UserCommand) -> anyhow::Result<ExitCode> {
    // Plugin email validators take part in check-emails, as in every validation.
    let opened = open(&config, matches!(cmd, UserCommand::CheckEmails { .. })).await?;
    let services = &opened.services;
    match cmd {
        UserCommand::Add(a) => {
            let user = services
                .add_account(NewAccount {
                    email: a.email,
                    password: a.password,
                    first_name: a.first_name,
                    last_name: a.last_name,
                    admin: a.admin,
                    active: !a.inactive,
                })
                .await?;
            println!("created user {} {}", user.id, user.email);
        }
        UserCommand::Disable { email } => match services.disable_user(&email).await {
            Ok(true) => println!("User {email} disabled"),
            Ok(false) => println!("User {email} is already inactive"),
            Err(crate::domain::Error::NotFound(_)) => {
                eprintln!("User not found: {email}");
                return Ok(ExitCode::FAILURE);
            }
            Err(e) => return Err(e.into()),
        },
        UserCommand::Show { email } => {
            let Some(user) = services.store.user_by_email(&email).await? else {
                eprintln!("User not found: {email}");
                return Ok(ExitCode::FAILURE);
            };
            let date = |at: Option<crate::domain::Timestamp>| at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into());
            let groups = services.store.groups_of_user(user.id).await?;
            let groups = if groups.is_empty() {
                "-".to_owned()
            } else {
                groups.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
            };
            println!("id: {}", user.id);
            println!("uuid: {}", user.uuid);
            println!("email: {}", user.email);
            println!("active: {}", user.active);
            println!("password: {}", crate::service::passwords::hash_algorithm(&user.password_hash));
            println!("confirmed_at: {}", date(user.confirmed_at));
            println!("email_validated_at: {}", date(user.email_validated_at));
            println!("groups: {groups}");
        }
        UserCommand::CheckEmails { email } => {
            let emails = match email {
                Some(e) => vec![e],
                None => {
                    let mut out = Vec::new();
                    let mut scan = UserScan::default();
                    loop {
                        let page = services.store.scan_users(&scan, 0, 1000).await?;
                        let Some(last) = page.last() else { break };
                        scan.after = Some(last.id);
                        out.extend(page.into_iter().map(|u| u.email));
                    }
                    out
                }
            };
            for e in emails {
                match services.check_email(&e).await? {
                    Ok(()) => println!("{e} VALID"),
                    Err(validator) => println!("{e} INVALID ({validator})"),
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn address_type(config: Config, cmd: AddressTypeCommand) -> anyhow::Result<ExitCode> {
    // Listing shows plugin types too; adding checks the config and the store, and works while
    // a plugin in the folder is broken.
    let opened = open(&config, matches!(cmd, AddressTypeCommand::List)).await?;
    let services = &opened.services;
    match cmd {
        AddressTypeCommand::Add { kind, title, sorting } => {
            let added = services.add_address_type(&kind, &title, sorting).await?;
            println!("added address type {} '{}' (sorting {})", added.key, added.title, added.sorting);
        }
        AddressTypeCommand::List => {
            for t in services.address_types().await? {
                println!("{}\t{}\t{}\t{}", t.kind.key, t.kind.title, t.kind.sorting, t.source.as_str());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
async fn group(config: Config, cmd: GroupCommand) -> anyhow::Result<ExitCode> {
    let opened = open(&config, false).await?;
    match cmd {
        GroupCommand::Add { name } => {
            let group = opened.services.create_group(&name).await?;
            println!("created group {} '{}'", group.id, group.name);
            println!("{}", group.id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn role(config: Config, cmd: RoleCommand) -> anyhow::Result<ExitCode> {
    let opened = open(&config, false).await?;
    let services = &opened.services;
    match cmd {
        RoleCommand::Add { name, permissions } => {
            let perms: Vec<&str> = permissions.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
            let role = services.create_role(&name, &perms).await?;
            println!("created role {} '{}' with permissions [{}]", role.id, role.name, role.permissions.join(","));
            println!("{}", role.id);
        }
        RoleCommand::Assign { email, role } => {
            let user = services
                .store
                .user_by_email(&email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user with email {email}"))?;
            let role = services.role_by_id_or_name(&role).await?;
            let roles = services.assign_role(user.id, role.id).await?;
            let ids: Vec<String> = roles.iter().map(|r| r.id.to_string()).collect();
            if user.role != crate::domain::user::Role::Admin {
                eprintln!("note: {email} is not an admin; roles grant permissions to admin users only");
            }
            println!("user {} roles {}", user.id, ids.join(","));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn import(config: Config, cmd: ImportCommand) -> anyhow::Result<ExitCode> {
    let ImportCommand::Remp { mysql_url, dry_run, timezone } = cmd;
    let timezone = match timezone {
        Some(name) => name
            .parse()
            .map_err(|_| anyhow::anyhow!("--timezone '{name}' is not an IANA zone name (e.g. Europe/Bratislava)"))?,
        None => config.api.timezone,
    };
    let opened = open(&config, false).await?;
    let options = crate::import::remp::Options {
        mysql_url,
        dry_run,
        timezone,
        default_locale: config.service.default_locale.clone(),
        known_address_types: config.service.address_types.iter().map(|t| t.key.clone()).collect(),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let report = crate::import::remp::import(opened.services.store.as_ref(), &options).await?;
    opened.services.store.flush().await?;
    print!("{}", report.render());
    Ok(ExitCode::SUCCESS)
}

/// How often the plugins folder is checked for changes.
const PLUGIN_WATCH_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// SIGHUP reloads the plugins, as daemons reload their configuration.
fn spawn_reload_on_sighup(plugins: Arc<PluginHost>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; reload plugins through the API instead");
            return;
        };
        while hup.recv().await.is_some() {
            if let Err(e) = plugins.reload().await {
                tracing::error!(error = %format!("{e:#}"), "SIGHUP: the new plugin set was refused; the old one keeps serving");
            }
        }
    });
    #[cfg(not(unix))]
    let _ = plugins;
}

async fn plugin(config: Config, cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::Check { wasm, manifest } => {
            // Checking needs no data folder; the scratch store is thrown away.
            let scratch = std::env::temp_dir().join(format!("crm-users-plugin-check-{}", std::process::id()));
            let store: Arc<dyn Store> = Arc::new(SledStore::open(&scratch)?);
            let host = PluginHost::new(config.plugins.clone(), None, store)?;
            let report = host.check(wasm.clone(), manifest.clone()).await;
            let _ = std::fs::remove_dir_all(&scratch);
            let report = report?;
            println!("{}", wasm.display());
            println!("  worlds: {}", report.worlds.iter().map(|k| k.world()).collect::<Vec<_>>().join(", "));
            for (import, capability) in &report.imports {
                match capability {
                    Some(c) => println!("  imports {import} (needs capability \"{}\")", c.as_str()),
                    None => println!("  imports {import}"),
                }
            }
            match (&manifest, &report.refused) {
                (Some(_), None) => println!("OK: the host would load it with this manifest"),
                (Some(_), Some(why)) => {
                    println!("REFUSED: {why}");
                    return Ok(ExitCode::FAILURE);
                }
                (None, _) => println!("OK: a component the host can serve (add --manifest to check capabilities)"),
            }
        }
        PluginCommand::Run { wasm, manifest, call, input, fixtures } => {
            let input: serde_json::Value = match serde_json::from_str(&input) {
                Ok(v) => v,
                Err(e) => {
                    eprintln!("--input is not valid JSON: {e} (a string needs quotes: --input '\"ada@example.org\"')");
                    return Ok(ExitCode::from(2));
                }
            };
            // The scratch store holds the fixtures for this one call and is thrown away.
            let scratch = std::env::temp_dir().join(format!("crm-users-plugin-run-{}", std::process::id()));
            let store: Arc<dyn Store> = Arc::new(SledStore::open(&scratch)?);
            // The server's compilation cache: a Python or JavaScript component compiles once.
            let cache = config.data.join("plugin-cache");
            let host = PluginHost::new(config.plugins.clone(), Some(cache), store.clone())?;
            let request = crate::plugins::trial::RunRequest { wasm, manifest, function: call, input, fixtures };
            let report = crate::plugins::trial::run(&host, &store, request).await;
            drop((host, store));
            let _ = std::fs::remove_dir_all(&scratch);
            let report = match report {
                Ok(report) => report,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    return Ok(ExitCode::from(2));
                }
            };
            println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            if report.outcome.is_err() {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn autologin_token(config: Config, cmd: AutologinCommand) -> anyhow::Result<ExitCode> {
    let AutologinCommand::Create { email, valid_from, valid_to, max_count } = cmd;
    let parse = |value: Option<String>, name: &str| -> anyhow::Result<Option<crate::domain::Timestamp>> {
        value
            .map(|v| {
                chrono::DateTime::parse_from_rfc3339(&v)
                    .map(|d| d.with_timezone(&chrono::Utc))
                    .with_context(|| format!("--{name} '{v}' is not an RFC 3339 date"))
            })
            .transpose()
    };
    let req = crate::service::autologin::AutologinRequest {
        owner: crate::service::autologin::TokenOwner::Email(email),
        valid_from: parse(valid_from, "valid-from")?,
        valid_to: parse(valid_to, "valid-to")?,
        max_count,
    };
    let opened = open(&config, false).await?;
    let issued = opened.services.create_autologin_token(req).await?;
    println!(
        "autologin token for user {} valid {} to {}, {} use(s)",
        issued.user.id,
        issued.valid_from.to_rfc3339(),
        issued.valid_to.to_rfc3339(),
        issued.max_count
    );
    println!("{}", issued.token);
    Ok(ExitCode::SUCCESS)
}
