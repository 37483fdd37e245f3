//! What every command starts from: the config, the selected profile, the environment
//! (`BACKEND_*`, `./.env`), the secret store and per-command overrides.

use std::sync::Arc;

use anyhow::Context as _;
use bai_core::{Config, Connection, EnvOverrides, Overrides, ResolvedProfile, SecretStore};

use crate::cli::{Cli, Command};

/// The command context.
#[derive(Debug)]
pub struct Ctx {
    /// The loaded config.
    pub config: Config,
    /// The selected profile's name.
    pub profile: String,
    /// Whether the profile was chosen explicitly (`--profile` / `BAI_PROFILE`).
    pub explicit_profile: bool,
    /// `BACKEND_*` from the environment and `./.env`.
    pub env: EnvOverrides,
    /// Command-line overrides.
    pub overrides: Overrides,
    /// The secret store.
    pub store: Arc<dyn SecretStore>,
}

impl Ctx {
    /// Loads everything the global options describe.
    pub fn new(cli: &Cli) -> anyhow::Result<Ctx> {
        let config = match &cli.config_dir {
            Some(d) => Config::load_from(d.clone()),
            None => Config::load(),
        }
        .context("loading the configuration")?;
        let profile = config.profile_name(cli.profile.as_deref());
        // `bai proxy --stdio` runs as ssh's ProxyCommand, in whatever directory ssh was started
        // from: a `.env` there must not choose the server it connects to.
        let dotenv_dir = match cli.command {
            Command::Proxy(_) => None,
            _ => std::env::current_dir().ok(),
        };
        let env = EnvOverrides::load(dotenv_dir.as_deref()).context("reading the environment")?;
        let store = bai_core::open_store(config.dir()).context("opening the secret store")?;
        let overrides = Overrides {
            account: cli
                .user
                .as_deref()
                .map(bai_core::config::validate_account)
                .transpose()?,
            ..Overrides::default()
        };
        Ok(Ctx {
            config,
            profile,
            explicit_profile: cli.profile.is_some(),
            env,
            overrides,
            store,
        })
    }

    /// The resolved profile.
    pub fn resolve(&self) -> anyhow::Result<ResolvedProfile> {
        let p = self
            .config
            .resolve(&self.profile, &self.env, &self.overrides)?;
        if p.tls.insecure && p.endpoint.scheme() == "https" {
            eprintln!(
                "warning: TLS certificate verification is disabled (insecure) for {}; \
                 `bai login --no-insecure` turns it back on",
                p.endpoint
            );
        }
        if let Some(w) = p.plain_http_warning() {
            eprintln!("warning: {w}");
        }
        Ok(p)
    }

    /// A connection restored from the stored login (logging in again with a saved password
    /// when the user chose to keep one).
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        let p = self.resolve()?;
        Ok(Connection::restore_or_relogin(p, self.store.clone()).await?)
    }
}
