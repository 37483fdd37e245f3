//! `~/.ssh/config` entries: one `Host bai-<session>` per running session in a file of bai's
//! own (`~/.ssh/bai/config`), which `~/.ssh/config` includes. The `Include` block goes at the
//! top (an `Include` after a `Host` line would only apply to that host), is added once, and
//! `remove` takes out exactly the bytes it added.

use std::path::{Path, PathBuf};

use crate::commands::{
    config_path_value, config_quote, is_safe_name, join_shell, validate_account, HostKeyPin,
};
use crate::config::DEFAULT_PROFILE;
use crate::fsutil;
use crate::{Error, Result};

const MARK: &str = "# Added by `bai config-ssh`; `bai config-ssh --remove` takes it out.\n";
const MARK_CREATED: &str =
    "# Added by `bai config-ssh` (which created this file); `bai config-ssh --remove` takes it out.\n";

/// The two files involved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfigPaths {
    /// The user's `~/.ssh/config`.
    pub main: PathBuf,
    /// bai's own file: `~/.ssh/bai/config` (`~/.ssh/bai/config-<profile>` for other profiles).
    pub include: PathBuf,
}

impl SshConfigPaths {
    /// The paths under `home` for `profile`.
    pub fn for_home(home: &Path, profile: &str) -> Self {
        let ssh = home.join(".ssh");
        let file = if profile == DEFAULT_PROFILE {
            "config".to_owned()
        } else {
            format!("config-{}", crate::config::sanitize(profile))
        };
        SshConfigPaths {
            main: ssh.join("config"),
            include: ssh.join("bai").join(file),
        }
    }

    /// The paths under the user's home directory (`$HOME` on Unix).
    pub fn for_user(profile: &str) -> Result<Self> {
        let home = dirs::home_dir()
            .ok_or_else(|| Error::Config("cannot determine the home directory".into()))?;
        Ok(Self::for_home(&home, profile))
    }
}

/// The ssh alias of a session: `bai-<session>`, or `bai-<profile>-<session>` for a profile
/// other than `default` (the profile name with anything but `[A-Za-z0-9._-]` as `_`).
/// `None` when the session name is not a safe name ([`is_safe_name`]: `[A-Za-z0-9._-]`, not
/// starting with `-`): such a session gets no entry, since its name would become
/// `ssh_config` syntax (`Host x *`, a line break and a new directive, …).
pub fn host_alias(profile: &str, session: &str) -> Option<String> {
    if !is_safe_name(session) {
        return None;
    }
    let alias = if profile == DEFAULT_PROFILE {
        format!("bai-{session}")
    } else {
        format!("bai-{}-{session}", crate::config::sanitize(profile))
    };
    is_safe_name(&alias).then_some(alias)
}

/// One `Host` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    /// The alias (`bai-<session>`), a safe name ([`is_safe_name`]).
    pub alias: String,
    /// The session (a safe name).
    pub session: String,
    /// The account inside the session ([`crate::commands::is_valid_account`]).
    pub account: String,
    /// The saved key, if any.
    pub identity_file: Option<PathBuf>,
    /// The `ProxyCommand` words, e.g. `[/usr/bin/bai, proxy, --stdio, s1]`.
    pub proxy_command: Vec<String>,
    /// The session's host key, pinned on first use under its id.
    pub pin: HostKeyPin,
}

impl HostEntry {
    /// Renders the block, after checking every value that goes into it.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the alias or session is not a safe name, the account is
    /// not a valid user name, or a path or `ProxyCommand` word holds control characters.
    pub fn render(&self) -> Result<String> {
        for (what, v) in [("alias", &self.alias), ("session name", &self.session)] {
            if !is_safe_name(v) {
                return Err(Error::InvalidInput(format!(
                    "the {what} \"{}\" cannot be written into an ssh config (only letters, digits, `.`, `_`, `-`)",
                    v.escape_debug()
                )));
            }
        }
        validate_account(&self.account)?;
        if self.proxy_command.is_empty()
            || self
                .proxy_command
                .iter()
                .any(|w| w.chars().any(char::is_control))
        {
            return Err(Error::InvalidInput(format!(
                "the ProxyCommand {:?} cannot be written into an ssh config",
                self.proxy_command
            )));
        }
        // ssh hands the rest of the line to `sh -c` after expanding %-tokens: shell-quote
        // every word, then double literal percent signs.
        let proxy = join_shell(&self.proxy_command).replace('%', "%%");
        let mut s = format!(
            "Host {}\n  HostName 127.0.0.1\n  User {}\n",
            self.alias, self.account
        );
        if let Some(k) = &self.identity_file {
            s.push_str(&format!(
                "  IdentityFile {}\n  IdentitiesOnly yes\n",
                config_path_value(k)?
            ));
        }
        s.push_str(&format!("  ProxyCommand {proxy}\n"));
        s.push_str(&self.pin.config_lines()?);
        s.push_str("  LogLevel ERROR\n");
        Ok(s)
    }
}

/// The whole include file.
///
/// # Errors
/// As [`HostEntry::render`].
pub fn render_include_file(profile: &str, entries: &[HostEntry]) -> Result<String> {
    let mut s = format!(
        "# Written by `bai config-ssh` (profile \"{}\"); rewritten on every run, do not edit.\n",
        profile.escape_debug()
    );
    if entries.is_empty() {
        s.push_str("# No running session with SSH.\n");
    }
    for e in entries {
        s.push('\n');
        s.push_str(&e.render()?);
    }
    Ok(s)
}

/// The `Include` line for `include`.
pub fn include_line(include: &Path) -> String {
    format!("Include {}\n", config_quote(&include.display().to_string()))
}

fn block(include: &Path, created: bool) -> String {
    format!(
        "{}{}\n",
        if created { MARK_CREATED } else { MARK },
        include_line(include)
    )
}

/// Whether `main` already includes `include` (by bai or by hand).
pub fn has_include(main: &str, include: &Path) -> bool {
    let want = include_line(include);
    let want = want.trim();
    main.lines().any(|l| {
        let l = l.trim();
        l.len() == want.len() && l.eq_ignore_ascii_case(want)
            || l.strip_prefix("Include ")
                .or_else(|| l.strip_prefix("include "))
                .is_some_and(|rest| rest.trim().trim_matches('"') == include.display().to_string())
    })
}

/// `main` (or `None` when the file does not exist) with the `Include` block added at the top;
/// `None` when it is already there.
pub fn add_include(main: Option<&str>, include: &Path) -> Option<String> {
    match main {
        Some(m) if has_include(m, include) => None,
        Some(m) => Some(format!("{}{m}", block(include, false))),
        None => Some(block(include, true)),
    }
}

/// What removing the block does to the main file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MainChange {
    /// Nothing to change.
    Unchanged,
    /// Write these contents.
    Write(String),
    /// Delete the file (bai created it and nothing else is in it).
    Delete,
}

/// `main` without the block bai added.
pub fn remove_include(main: &str, include: &Path) -> MainChange {
    for created in [false, true] {
        let b = block(include, created);
        if let Some(pos) = main.find(&b) {
            let rest = format!("{}{}", &main[..pos], &main[pos + b.len()..]);
            return if created && rest.is_empty() {
                MainChange::Delete
            } else {
                MainChange::Write(rest)
            };
        }
    }
    MainChange::Unchanged
}

/// What `config-ssh` will write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePlan {
    /// The paths.
    pub paths: SshConfigPaths,
    /// The include file's new contents.
    pub include_contents: String,
    /// The include file's current contents.
    pub include_before: Option<String>,
    /// The main file's new contents (`None`: unchanged).
    pub main_after: Option<String>,
}

/// Plans writing `entries`.
pub fn plan_write(
    paths: &SshConfigPaths,
    profile: &str,
    entries: &[HostEntry],
) -> Result<WritePlan> {
    let main = fsutil::read_optional(&paths.main)?;
    Ok(WritePlan {
        paths: paths.clone(),
        include_contents: render_include_file(profile, entries)?,
        include_before: fsutil::read_optional(&paths.include)?,
        main_after: add_include(main.as_deref(), &paths.include),
    })
}

impl WritePlan {
    /// Writes both files (0600; `~/.ssh` and `~/.ssh/bai` created 0700 if missing). A
    /// symlinked `~/.ssh/config` stays a symlink: its target is written.
    pub fn apply(&self) -> Result<()> {
        fsutil::write_private(&self.paths.include, self.include_contents.as_bytes())?;
        if let Some(main) = &self.main_after {
            let target = resolve_symlinks(&self.paths.main)?;
            let mode = existing_mode(&target).unwrap_or(0o600);
            fsutil::write_atomic(&target, main.as_bytes(), mode)?;
        }
        Ok(())
    }
}

/// `path` with symlinks followed (also a dangling last link), so that an atomic write
/// replaces the file a link points to rather than the link.
pub fn resolve_symlinks(path: &Path) -> Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(&p)
                    .map_err(|e| Error::io(format!("reading the link {}", p.display()), e))?;
                p = if t.is_absolute() {
                    t
                } else {
                    p.parent().unwrap_or_else(|| Path::new("")).join(t)
                };
            }
            _ => return Ok(p),
        }
    }
    Err(Error::InvalidInput(format!(
        "too many levels of symbolic links at {}",
        path.display()
    )))
}

/// Where `config-ssh` saves the keys of `profile`: `<config dir>/keys/<profile>` with the
/// profile name made a single safe path component (as [`crate::Config::key_path`] does), so
/// `--profile ../x` or `/etc` never leaves the keys folder.
pub fn keys_dir(config_dir: &Path, profile: &str) -> PathBuf {
    config_dir
        .join("keys")
        .join(crate::config::sanitize(profile))
}

fn existing_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// What `config-ssh --remove` will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovePlan {
    /// The paths.
    pub paths: SshConfigPaths,
    /// The change to the main file.
    pub main: MainChange,
    /// Whether the include file exists (and will be deleted).
    pub include_exists: bool,
}

/// Plans the removal.
pub fn plan_remove(paths: &SshConfigPaths) -> Result<RemovePlan> {
    let main = match fsutil::read_optional(&paths.main)? {
        Some(m) => remove_include(&m, &paths.include),
        None => MainChange::Unchanged,
    };
    Ok(RemovePlan {
        paths: paths.clone(),
        main,
        include_exists: paths.include.exists(),
    })
}

impl RemovePlan {
    /// Applies it; the `~/.ssh/bai` directory is removed when it ends up empty.
    pub fn apply(&self) -> Result<()> {
        match &self.main {
            MainChange::Unchanged => {}
            MainChange::Write(s) => {
                let target = resolve_symlinks(&self.paths.main)?;
                let mode = existing_mode(&target).unwrap_or(0o600);
                fsutil::write_atomic(&target, s.as_bytes(), mode)?;
            }
            MainChange::Delete => {
                let target = resolve_symlinks(&self.paths.main)?;
                if target == self.paths.main {
                    std::fs::remove_file(&self.paths.main).map_err(|e| {
                        Error::io(format!("removing {}", self.paths.main.display()), e)
                    })?;
                } else {
                    // A link made since: keep the link and its target, just empty.
                    let mode = existing_mode(&target).unwrap_or(0o600);
                    fsutil::write_atomic(&target, b"", mode)?;
                }
            }
        }
        if self.include_exists {
            std::fs::remove_file(&self.paths.include)
                .map_err(|e| Error::io(format!("removing {}", self.paths.include.display()), e))?;
            if let Some(dir) = self.paths.include.parent() {
                // Only succeeds when empty, which is the point.
                let _ = std::fs::remove_dir(dir);
            }
        }
        Ok(())
    }

    /// Whether there is nothing to remove.
    pub fn is_noop(&self) -> bool {
        self.main == MainChange::Unchanged && !self.include_exists
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> HostEntry {
        HostEntry {
            alias: "bai-s1".into(),
            session: "s1".into(),
            account: "work".into(),
            identity_file: Some("/cfg/keys/default/s1/id_container".into()),
            proxy_command: vec![
                "/opt/my bai/bai".into(),
                "proxy".into(),
                "--stdio".into(),
                "s1".into(),
            ],
            pin: HostKeyPin::new("/cfg/known_hosts".into(), "0d4c1b2a-5e6f").expect("pin"),
        }
    }

    #[test]
    fn entry_renders_proxy_command_and_key() {
        let s = entry().render().expect("render");
        assert!(s.starts_with("Host bai-s1\n  HostName 127.0.0.1\n  User work\n"));
        assert!(s.contains("  IdentityFile /cfg/keys/default/s1/id_container\n"));
        assert!(s.contains("  ProxyCommand '/opt/my bai/bai' proxy --stdio s1\n"));
        assert!(s.contains("  HostKeyAlias 0d4c1b2a-5e6f\n"));
        assert!(s.contains("  UserKnownHostsFile /cfg/known_hosts\n"));
        assert!(s.contains("  StrictHostKeyChecking accept-new\n"));
        assert!(!s.contains("StrictHostKeyChecking no"));
    }

    #[test]
    fn include_is_added_once_at_the_top_and_removed_byte_for_byte() {
        let inc = Path::new("/h/.ssh/bai/config");
        let original = "Host *\n  ServerAliveInterval 30\n# no newline at end";
        let added = add_include(Some(original), inc).expect("added");
        assert!(added.starts_with("# Added by `bai config-ssh`"));
        assert!(added.contains("\nInclude /h/.ssh/bai/config\n"));
        assert!(added.find("Include").expect("include") < added.find("Host *").expect("host"));
        assert_eq!(add_include(Some(&added), inc), None, "never duplicated");
        assert_eq!(
            remove_include(&added, inc),
            MainChange::Write(original.into())
        );
        assert_eq!(remove_include(original, inc), MainChange::Unchanged);
        // A hand-written include counts as present.
        assert_eq!(
            add_include(Some("Include \"/h/.ssh/bai/config\"\n"), inc),
            None
        );
    }

    #[test]
    fn a_created_main_file_is_deleted_again() {
        let inc = Path::new("/h/.ssh/bai/config");
        let created = add_include(None, inc).expect("created");
        assert_eq!(remove_include(&created, inc), MainChange::Delete);
        // If the user added something after, the file stays.
        let edited = format!("{created}Host x\n");
        assert_eq!(
            remove_include(&edited, inc),
            MainChange::Write("Host x\n".into())
        );
    }

    #[test]
    fn plan_apply_remove_round_trip_on_disk() {
        let home = tempfile::tempdir().expect("tempdir");
        let paths = SshConfigPaths::for_home(home.path(), "default");
        std::fs::create_dir_all(paths.main.parent().expect("parent")).expect("mkdir");
        let original = "Host github.com\n  User git\n";
        std::fs::write(&paths.main, original).expect("write");
        let plan = plan_write(&paths, "default", &[entry()]).expect("plan");
        plan.apply().expect("apply");
        plan_write(&paths, "default", &[entry()])
            .expect("plan")
            .apply()
            .expect("again");
        let main = std::fs::read_to_string(&paths.main).expect("read");
        assert_eq!(main.matches("Include ").count(), 1);
        assert!(std::fs::read_to_string(&paths.include)
            .expect("inc")
            .contains("Host bai-s1"));
        let rm = plan_remove(&paths).expect("plan remove");
        rm.apply().expect("remove");
        assert_eq!(
            std::fs::read_to_string(&paths.main).expect("read"),
            original
        );
        assert!(!paths.include.exists());
        assert!(plan_remove(&paths).expect("plan").is_noop());
    }

    #[test]
    fn aliases_and_paths_per_profile() {
        assert_eq!(host_alias("default", "s1").as_deref(), Some("bai-s1"));
        assert_eq!(host_alias("lab", "s1").as_deref(), Some("bai-lab-s1"));
        assert_eq!(host_alias("a b", "s1").as_deref(), Some("bai-a_b-s1"));
        let p = SshConfigPaths::for_home(Path::new("/h"), "lab");
        assert_eq!(p.include, Path::new("/h/.ssh/bai/config-lab"));
    }
}
