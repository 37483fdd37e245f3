//! Profiles and settings: the config file in the platform's config directory (or
//! `$BAI_CONFIG_DIR`), the `BACKEND_*` environment variables (also read from `./.env`, as the
//! Python client does), and the resolved, ready-to-use [`ResolvedProfile`].
//!
//! Length: under 500 lines of code; the rest are its unit tests, kept beside it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use bai_api::{Mode, Sensitive, TlsOptions};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::fsutil;
use crate::{Error, Result};

// The input rules live in their own module; `config::validate_port` etc. stay valid paths.
pub use crate::validate::{
    is_loopback, parse_endpoint, same_server, validate_account, validate_port, ACCOUNT_MAX,
    PORT_MAX, PORT_MIN,
};

/// Overrides the configuration directory (hermetic tests, portable installs).
pub const CONFIG_DIR_ENV: &str = "BAI_CONFIG_DIR";
/// Selects the profile when none is given on the command line.
pub const PROFILE_ENV: &str = "BAI_PROFILE";
/// The name of the profile used when none is selected.
pub const DEFAULT_PROFILE: &str = "default";
/// The login account inside sessions, as in production.
pub const DEFAULT_ACCOUNT: &str = "work";
/// The name of the settings file inside the config directory.
pub const CONFIG_FILE: &str = "config.toml";

/// The configuration directory: `$BAI_CONFIG_DIR`, else `<platform config dir>/bai`
/// (`~/.config/bai` on Linux, `~/Library/Application Support/bai` on macOS,
/// `%APPDATA%\bai` on Windows).
pub fn config_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os(CONFIG_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    dirs::config_dir().map(|d| d.join("bai")).ok_or_else(|| {
        Error::Config("cannot determine the configuration directory; set BAI_CONFIG_DIR".into())
    })
}

/// Parses `session` / `api` (case-insensitive), the values of `BACKEND_ENDPOINT_TYPE`.
pub fn parse_mode(s: &str) -> Result<Mode> {
    match s.trim().to_ascii_lowercase().as_str() {
        "session" => Ok(Mode::Session),
        "api" => Ok(Mode::Api),
        other => Err(Error::Config(format!(
            "unknown endpoint type {other:?} (expected \"session\" or \"api\")"
        ))),
    }
}

/// The name of a mode as written in the config file.
pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Api => "api",
        _ => "session",
    }
}

/// TLS settings of a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsSettings {
    /// A PEM file with extra CA certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// Skip certificate verification (self-signed servers).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
}

/// One named profile: a server and how to use it. Secrets are not here (see
/// [`crate::SecretStore`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// The webserver URL (session mode) or the manager URL (API mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// `session` or `api`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Session mode: the login email.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// API mode: the access key (not secret; the secret key lives in the secret store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_key: Option<String>,
    /// The login account inside sessions (default `work`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The local port tunnels try first ("Preferred SSH Port").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preferred_ssh_port: Option<u16>,
    /// Whether to use another port when the preferred one is taken (default true).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port_fallback: Option<bool>,
    /// The user's own private key: the `-i` of sessions without an `id_container` (sessions
    /// that use the user's own `.ssh` folder).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub own_key: Option<PathBuf>,
    /// TLS options.
    #[serde(skip_serializing_if = "is_default_tls")]
    pub tls: TlsSettings,
}

fn is_default_tls(t: &TlsSettings) -> bool {
    *t == TlsSettings::default()
}

/// The whole settings file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The profile used when none is selected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_profile: Option<String>,
    /// The profiles by name.
    pub profiles: BTreeMap<String, Profile>,
}

/// The settings file and the directory it lives in (which also holds saved keys and the
/// fallback secret file).
#[derive(Debug, Clone)]
pub struct Config {
    dir: PathBuf,
    /// The settings.
    pub settings: Settings,
}

impl Config {
    /// Loads `<dir>/config.toml`; a missing file is an empty configuration.
    pub fn load_from(dir: impl Into<PathBuf>) -> Result<Config> {
        let dir = dir.into();
        let path = dir.join(CONFIG_FILE);
        let settings = match fsutil::read_optional(&path)? {
            Some(text) => toml::from_str(&text).map_err(|e| Error::ConfigFile {
                path: path.clone(),
                detail: e.message().to_owned(),
            })?,
            None => Settings::default(),
        };
        Ok(Config { dir, settings })
    }

    /// Loads from [`config_dir`].
    pub fn load() -> Result<Config> {
        Config::load_from(config_dir()?)
    }

    /// The configuration directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The settings file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(CONFIG_FILE)
    }

    /// Writes the settings file atomically (0600: it names accounts and servers).
    pub fn save(&self) -> Result<()> {
        let text = toml::to_string_pretty(&self.settings)
            .map_err(|e| Error::Config(format!("cannot serialize the settings: {e}")))?;
        fsutil::write_private(&self.path(), text.as_bytes())
    }

    /// The profile to use: `explicit`, else `$BAI_PROFILE`, else the file's default, else
    /// `default`.
    pub fn profile_name(&self, explicit: Option<&str>) -> String {
        explicit
            .map(str::to_owned)
            .or_else(|| std::env::var(PROFILE_ENV).ok().filter(|s| !s.is_empty()))
            .or_else(|| self.settings.default_profile.clone())
            .unwrap_or_else(|| DEFAULT_PROFILE.to_owned())
    }

    /// The stored profile (empty when it does not exist).
    pub fn profile(&self, name: &str) -> Profile {
        self.settings
            .profiles
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// The stored profile, created when missing.
    pub fn profile_mut(&mut self, name: &str) -> &mut Profile {
        self.settings.profiles.entry(name.to_owned()).or_default()
    }

    /// Where the saved SSH key of `session` lives: `<dir>/keys/<profile>/<session>/id_container`.
    pub fn key_path(&self, profile: &str, session: &str) -> PathBuf {
        self.dir
            .join("keys")
            .join(sanitize(profile))
            .join(sanitize(session))
            .join("id_container")
    }

    /// Resolves `profile` with the environment and per-command overrides.
    pub fn resolve(
        &self,
        profile: &str,
        env: &EnvOverrides,
        overrides: &Overrides,
    ) -> Result<ResolvedProfile> {
        let p = self.profile(profile);
        let endpoint_str = overrides
            .endpoint
            .clone()
            .or_else(|| env.endpoint.clone())
            .or(p.endpoint.clone())
            .ok_or_else(|| Error::NoEndpoint {
                profile: profile.to_owned(),
            })?;
        let endpoint = parse_endpoint(&endpoint_str)?;
        let endpoint_source = if overrides.endpoint.is_some() {
            EndpointSource::Option
        } else if env.endpoint.is_some() {
            EndpointSource::Environment
        } else {
            EndpointSource::Profile
        };
        // The server the stored secrets were issued by: the profile's saved endpoint. A saved
        // endpoint that no longer parses owns no secret bai will send anywhere.
        let login_endpoint = p.endpoint.as_deref().and_then(|e| parse_endpoint(e).ok());
        let access_key = overrides
            .access_key
            .clone()
            .or_else(|| env.access_key.clone())
            .or(p.access_key.clone());
        let mode = match overrides.mode {
            Some(m) => m,
            None => match env.endpoint_type.as_deref().or(p.mode.as_deref()) {
                Some(m) => parse_mode(m)?,
                None if access_key.is_some() && env.secret_key.is_some() => Mode::Api,
                None => Mode::Session,
            },
        };
        let account = overrides
            .account
            .clone()
            .or(p.account.clone())
            .unwrap_or_else(|| DEFAULT_ACCOUNT.to_owned());
        let mut tls = TlsOptions::default();
        tls.extra_ca = overrides.ca_file.clone().or(p.tls.ca_file.clone());
        tls.insecure = overrides.insecure.unwrap_or(p.tls.insecure);
        Ok(ResolvedProfile {
            name: profile.to_owned(),
            endpoint,
            endpoint_source,
            login_endpoint,
            mode,
            email: p.email.clone(),
            access_key,
            env_secret_key: env.secret_key.clone(),
            account,
            preferred_ssh_port: p.preferred_ssh_port,
            port_fallback: p.port_fallback.unwrap_or(true),
            tls,
            config_dir: self.dir.clone(),
        })
    }
}

/// Where the effective endpoint of a [`ResolvedProfile`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointSource {
    /// A command-line option (`bai login --endpoint`).
    Option,
    /// `BACKEND_ENDPOINT`, from the process environment or `./.env`.
    Environment,
    /// The profile in the config file.
    Profile,
}

impl EndpointSource {
    /// How messages name it.
    pub fn describe(self) -> &'static str {
        match self {
            EndpointSource::Option => "the --endpoint option",
            EndpointSource::Environment => "BACKEND_ENDPOINT (environment or ./.env)",
            EndpointSource::Profile => "the profile",
        }
    }
}

/// Makes a name safe as one path component.
pub(crate) fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match out.as_str() {
        "" | "." | ".." => "_".to_owned(),
        _ => out,
    }
}

/// Per-command overrides (command-line options) applied on top of the profile.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--endpoint`.
    pub endpoint: Option<String>,
    /// `--mode`.
    pub mode: Option<Mode>,
    /// `--access-key`.
    pub access_key: Option<String>,
    /// `--user`: the account inside the session.
    pub account: Option<String>,
    /// `--ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `--insecure` (`Some(true)`) or `--no-insecure` (`Some(false)`); `None` keeps the
    /// profile's setting.
    pub insecure: Option<bool>,
}

/// The `BACKEND_*` variables of the Python client.
#[derive(Debug, Clone, Default)]
pub struct EnvOverrides {
    /// `BACKEND_ENDPOINT`.
    pub endpoint: Option<String>,
    /// `BACKEND_ENDPOINT_TYPE` (`session` or `api`).
    pub endpoint_type: Option<String>,
    /// `BACKEND_ACCESS_KEY`.
    pub access_key: Option<String>,
    /// `BACKEND_SECRET_KEY`.
    pub secret_key: Option<Sensitive<String>>,
}

/// The variables [`EnvOverrides`] reads.
pub const ENV_VARS: [&str; 4] = [
    "BACKEND_ENDPOINT",
    "BACKEND_ENDPOINT_TYPE",
    "BACKEND_ACCESS_KEY",
    "BACKEND_SECRET_KEY",
];

impl EnvOverrides {
    /// From a map of variables (empty values are ignored).
    pub fn from_map(vars: &HashMap<String, String>) -> Self {
        let get = |k: &str| {
            vars.get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        EnvOverrides {
            endpoint: get("BACKEND_ENDPOINT"),
            endpoint_type: get("BACKEND_ENDPOINT_TYPE"),
            access_key: get("BACKEND_ACCESS_KEY"),
            secret_key: get("BACKEND_SECRET_KEY").map(Sensitive::new),
        }
    }

    /// The process environment, completed by `<dir>/.env` (the process environment wins, as
    /// with python-dotenv). A missing `.env` is fine; an unreadable one is an error.
    pub fn load(dotenv_dir: Option<&Path>) -> Result<Self> {
        let mut vars: HashMap<String, String> = HashMap::new();
        if let Some(dir) = dotenv_dir {
            let path = dir.join(".env");
            match dotenvy::from_path_iter(&path) {
                Ok(iter) => {
                    for item in iter {
                        let (k, v) = item.map_err(|e| Error::ConfigFile {
                            path: path.clone(),
                            detail: e.to_string(),
                        })?;
                        if ENV_VARS.contains(&k.as_str()) {
                            vars.insert(k, v);
                        }
                    }
                    tracing::debug!(path = %path.display(), "read .env");
                }
                Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::ConfigFile {
                        path,
                        detail: e.to_string(),
                    })
                }
            }
        }
        for k in ENV_VARS {
            if let Ok(v) = std::env::var(k) {
                if !v.is_empty() {
                    vars.insert(k.to_owned(), v);
                }
            }
        }
        Ok(EnvOverrides::from_map(&vars))
    }
}

/// A profile with everything resolved: what a [`crate::Connection`] is built from.
#[derive(Debug, Clone)]
pub struct ResolvedProfile {
    /// The profile's name.
    pub name: String,
    /// The endpoint.
    pub endpoint: Url,
    /// Where [`ResolvedProfile::endpoint`] came from.
    pub endpoint_source: EndpointSource,
    /// The endpoint saved in the profile: the server its stored secrets were issued by.
    pub login_endpoint: Option<Url>,
    /// Session or API mode.
    pub mode: Mode,
    /// Session mode: the saved login email.
    pub email: Option<String>,
    /// API mode: the access key.
    pub access_key: Option<String>,
    /// API mode: a secret key given by the environment (takes precedence over the store).
    pub env_secret_key: Option<Sensitive<String>>,
    /// The account inside sessions.
    pub account: String,
    /// The preferred local port of SSH tunnels.
    pub preferred_ssh_port: Option<u16>,
    /// Whether a taken preferred port falls back to another.
    pub port_fallback: bool,
    /// TLS options.
    pub tls: TlsOptions,
    /// The configuration directory (saved keys live below it).
    pub config_dir: PathBuf,
}

impl ResolvedProfile {
    /// Whether the profile's stored secrets (login session, saved password, secret key) may be
    /// sent to [`ResolvedProfile::endpoint`]: only when it is the server they were issued by.
    /// Stored secrets belong to their endpoint; `BACKEND_ENDPOINT` in a `./.env` must not
    /// redirect them.
    ///
    /// # Errors
    /// [`Error::EndpointMismatch`] naming both servers.
    pub fn check_stored_secrets(&self) -> Result<()> {
        match &self.login_endpoint {
            Some(saved) if same_server(saved, &self.endpoint) => Ok(()),
            saved => Err(Error::EndpointMismatch {
                profile: self.name.clone(),
                saved: saved
                    .as_ref()
                    .map_or_else(|| "no saved server".to_owned(), Url::to_string),
                effective: self.endpoint.to_string(),
                origin: self.endpoint_source.describe(),
            }),
        }
    }

    /// A warning for the user when the endpoint is plain http to another machine: the login
    /// body's encryption over http (session mode) is reversible by anyone who watches, and API
    /// mode's signed requests and the session's traffic travel in the clear.
    pub fn plain_http_warning(&self) -> Option<String> {
        (self.endpoint.scheme() == "http" && !is_loopback(&self.endpoint)).then(|| {
            format!(
                "{} is plain http to another machine: your login and everything sent to the \
                 server can be read by anyone on the network path; use https:// if the server \
                 offers it",
                self.endpoint
            )
        })
    }

    /// Where the saved SSH key of `session` lives.
    pub fn key_path(&self, session: &str) -> PathBuf {
        self.config_dir
            .join("keys")
            .join(sanitize(&self.name))
            .join(sanitize(session))
            .join("id_container")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> EnvOverrides {
        EnvOverrides::from_map(
            &pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn settings_round_trip_through_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Config::load_from(dir.path()).expect("load empty");
        assert!(c.settings.profiles.is_empty());
        let p = c.profile_mut("lab");
        p.endpoint = Some("https://bai.example.com".into());
        p.preferred_ssh_port = Some(10022);
        p.account = Some("alice".into());
        c.settings.default_profile = Some("lab".into());
        c.save().expect("save");
        let c2 = Config::load_from(dir.path()).expect("reload");
        assert_eq!(c2.settings, c.settings);
        assert_eq!(c2.profile_name(None), "lab");
        assert_eq!(c2.profile_name(Some("x")), "x");
    }

    #[test]
    fn resolve_layers_env_over_profile_and_options_over_env() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Config::load_from(dir.path()).expect("load");
        c.profile_mut("p").endpoint = Some("http://from-profile:1".into());
        let r = c
            .resolve("p", &EnvOverrides::default(), &Overrides::default())
            .expect("resolve");
        assert_eq!(r.endpoint.as_str(), "http://from-profile:1/");
        assert_eq!(r.mode, Mode::Session);
        assert_eq!(r.account, "work");
        let e = env(&[
            ("BACKEND_ENDPOINT", "http://from-env:2"),
            ("BACKEND_ENDPOINT_TYPE", "API"),
        ]);
        let r = c.resolve("p", &e, &Overrides::default()).expect("resolve");
        assert_eq!(r.endpoint.as_str(), "http://from-env:2/");
        assert_eq!(r.mode, Mode::Api);
        let o = Overrides {
            account: Some("bob".into()),
            mode: Some(Mode::Session),
            ..Overrides::default()
        };
        let r = c.resolve("p", &e, &o).expect("resolve");
        assert_eq!((r.mode, r.account.as_str()), (Mode::Session, "bob"));
    }

    #[test]
    fn missing_endpoint_and_bad_values_are_config_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Config::load_from(dir.path()).expect("load");
        let e = c
            .resolve("none", &EnvOverrides::default(), &Overrides::default())
            .expect_err("no endpoint");
        assert!(matches!(e, Error::NoEndpoint { .. }));
        let e = c
            .resolve(
                "x",
                &env(&[("BACKEND_ENDPOINT", "ftp://x")]),
                &Overrides::default(),
            )
            .expect_err("bad scheme");
        assert_eq!(e.code(), crate::ErrorCode::BadUrl);
        assert!(parse_mode("bogus").is_err());
        std::fs::write(dir.path().join(CONFIG_FILE), "profiles = 3").expect("write");
        assert!(matches!(
            Config::load_from(dir.path()),
            Err(Error::ConfigFile { .. })
        ));
    }

    #[test]
    fn dotenv_fills_in_but_process_env_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(".env"),
            "BACKEND_ENDPOINT_TYPE=session\nBACKEND_ENDPOINT=http://dotenv:3\nOTHER=1\n",
        )
        .expect("write");
        let e = EnvOverrides::load(Some(dir.path())).expect("load");
        // BACKEND_ENDPOINT is normally unset in the test environment.
        if std::env::var("BACKEND_ENDPOINT").is_err() {
            assert_eq!(e.endpoint.as_deref(), Some("http://dotenv:3"));
        }
        assert!(EnvOverrides::load(Some(&dir.path().join("missing"))).is_ok());
    }

    #[test]
    fn ports_and_accounts_are_validated_in_one_place() {
        assert_eq!(validate_port(10022).expect("ok"), 10022);
        for bad in [0, 22, 80, 1024, 65535, 70000, -1] {
            let e = validate_port(bad).expect_err("bad port");
            assert_eq!(e.code(), crate::ErrorCode::InvalidInput);
            assert!(e.to_string().contains(&bad.to_string()), "{e}");
        }
        assert_eq!(validate_account(" work ").expect("ok"), "work");
        for bad in [
            "",
            "1x",
            "a b",
            "x\ny",
            "-o",
            "$(id)",
            "a*",
            &"a".repeat(33),
        ] {
            assert!(validate_account(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stored_secrets_belong_to_the_saved_endpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Config::load_from(dir.path()).expect("load");
        c.profile_mut("p").endpoint = Some("https://bai.example.com/".into());
        let same = c
            .resolve(
                "p",
                &env(&[("BACKEND_ENDPOINT", "https://BAI.example.com:443")]),
                &Overrides::default(),
            )
            .expect("resolve");
        assert!(same.check_stored_secrets().is_ok());
        let other = c
            .resolve(
                "p",
                &env(&[("BACKEND_ENDPOINT", "http://elsewhere:8090")]),
                &Overrides::default(),
            )
            .expect("resolve");
        assert_eq!(other.endpoint_source, EndpointSource::Environment);
        let e = other.check_stored_secrets().expect_err("mismatch");
        assert_eq!(e.code(), crate::ErrorCode::LoginRequired);
        assert!(e.to_string().contains("elsewhere"), "{e}");
        assert!(e.to_string().contains("bai.example.com"), "{e}");
        let none = Config::load_from(dir.path())
            .expect("load")
            .resolve(
                "new",
                &env(&[("BACKEND_ENDPOINT", "http://x:1")]),
                &Overrides::default(),
            )
            .expect("resolve");
        assert!(
            none.check_stored_secrets().is_err(),
            "no saved server, no secret"
        );
    }

    #[test]
    fn plain_http_to_another_machine_warns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let c = Config::load_from(dir.path()).expect("load");
        let warn = |url: &str| {
            c.resolve(
                "p",
                &env(&[("BACKEND_ENDPOINT", url)]),
                &Overrides::default(),
            )
            .expect("resolve")
            .plain_http_warning()
        };
        assert!(warn("http://bai.example.com").is_some());
        assert!(warn("http://10.0.0.5:8090").is_some());
        assert!(warn("https://bai.example.com").is_none());
        assert!(warn("http://127.0.0.1:8090").is_none());
        assert!(warn("http://localhost:8090").is_none());
        assert!(warn("http://[::1]:8090").is_none());
    }

    #[test]
    fn key_paths_are_sanitized() {
        assert_eq!(sanitize("../x"), ".._x");
        assert_eq!(sanitize(".."), "_");
        let c = Config::load_from("/cfg").expect("load");
        assert_eq!(
            c.key_path("default", "s/1"),
            PathBuf::from("/cfg/keys/default/s_1/id_container")
        );
    }
}
