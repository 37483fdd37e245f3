//! The Dropbear backend: a session's SSH server as production runs it.
//!
//! Production starts `dropbear -r <hostkey> -E -F -g -w -K 15 -I 0 -p 0.0.0.0:2200` in the
//! container and logs in `work`, whose home is `/home/work` (protocol.md §6). Here each RUNNING
//! session gets `dropbear -r <dir>/dropbear_rsa_host_key -E -F -w -s -K 15 -I 0 -c <enter>
//! -p 127.0.0.1:PORT`: the production flags, plus `-s` (no password logins at all, not only
//! root's), `-P` (the pid file stays in the session directory) and `-c` (the forced `enter`
//! wrapper that starts every command in the session home). As root, `-G <the account's group>`
//! also keeps other local accounts out, as sshd's `AllowUsers` does. Port forwarding stays on,
//! as in production and in the sshd config.
//!
//! # One `authorized_keys` and one home per session
//!
//! Dropbear 2022.83 has no `AuthorizedKeysFile`: it reads `~/.ssh/authorized_keys` from the
//! account's home in the passwd database (`getpwnam`), and starts shells there. So each dropbear
//! runs in a private mount namespace in which the account's passwd home is a bind mount of the
//! session home. Every session thus has its own `authorized_keys` and home while all share one
//! OS account, and the real home is never touched: with private propagation the mount is
//! invisible outside the namespace and vanishes with it. Rejected alternatives: writing keys into
//! the real home (sessions would clobber one file, and the user's own keys would open every
//! session), a `getpwnam` shim through `LD_PRELOAD` (C code, fragile), or an OS account per
//! session (root only, and accounts left behind after a crash).
//!
//! - **As root:** `unshare --mount --propagation private --pid --fork --kill-child=KILL --
//!   sh -c 'mount --bind HOME PASSWD_HOME && exec dropbear …'`. Dropbear runs as root and
//!   switches to the account for each login (`-w`: never root).
//! - **As another user:** mounting needs capabilities, and a process keeps them across `exec`
//!   only as root of its user namespace. So `unshare --user --map-root-user --mount …` bind-mounts
//!   as that namespace's root, then a nested `unshare --map-user=UID --map-group=GID` maps the
//!   user back to their own ids before `exec dropbear`: a non-root dropbear logs in only the user
//!   it runs as, and now it runs as them. This needs unprivileged user namespaces; where they are
//!   disabled (sysctls, AppArmor), starting fails with an error that says so.
//!
//! # Clean-up
//!
//! `--pid --fork` makes dropbear the init of its own PID namespace: when it dies the kernel kills
//! every per-connection child and shell inside (they call `setsid()`, so a process-group kill
//! would miss them). `--kill-child=KILL` kills dropbear when `unshare` dies, and `unshare` runs
//! under `setpriv --pdeathsig KILL` like sshd, so even a SIGKILLed sandbox takes all of it down.
//!
//! # SFTP, scp, rsync
//!
//! Debian's dropbear runs its compiled-in `/usr/lib/sftp-server` (a link to OpenSSH's) for the
//! sftp subsystem. With `-c` that path arrives in `SSH_ORIGINAL_COMMAND` instead, like any other
//! command, and the `enter` wrapper runs OpenSSH's sftp-server with `-d <home>`. scp (both modes)
//! and rsync run `scp -t`/`rsync --server` through the wrapper's shell.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::session::{io_err, run_tool, running_as_root, setpriv, sh_quote, Account};
use crate::Error;

/// What to install when Dropbear is missing.
const DROPBEAR_HINT: &str = "install the Debian package dropbear-bin (not `dropbear`, which also \
                             starts a system service), as make deps does";

/// The host key's file name in the session directory (as production names it).
const HOST_KEY: &str = "dropbear_rsa_host_key";

/// Bind-mounts `$2` over `$3` with `$1` (mount), then becomes dropbear (the rest).
const ROOT_SCRIPT: &str =
    r#"m=$1 src=$2 dst=$3; shift 3; "$m" --bind "$src" "$dst" || exit 111; exec "$@""#;

/// Like [`ROOT_SCRIPT`], then maps the user back to uid `$4`/gid `$5` with `$6` (unshare).
const USER_SCRIPT: &str = r#"m=$1 src=$2 dst=$3 u=$4 g=$5 un=$6; shift 6; "$m" --bind "$src" "$dst" || exit 111; exec "$un" --map-user="$u" --map-group="$g" -- "$@""#;

/// The programs a Dropbear session needs.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    dropbear: PathBuf,
    dropbearkey: PathBuf,
    unshare: PathBuf,
    mount: PathBuf,
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The first executable among `preferred`, then `name` on `PATH`.
fn find(name: &str, preferred: &[&str]) -> Option<PathBuf> {
    let on_path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
        .unwrap_or_default();
    preferred
        .iter()
        .map(PathBuf::from)
        .chain(on_path)
        .find(|p| is_executable(p))
}

fn require(name: &str, preferred: &[&str], hint: &str) -> Result<PathBuf, Error> {
    find(name, preferred).ok_or_else(|| Error::NotInstalled {
        program: name.to_owned(),
        hint: hint.to_owned(),
    })
}

impl Tools {
    /// Finds dropbear (`/usr/sbin/dropbear`, else on `PATH`) and its helpers, or says what to
    /// install.
    pub(crate) fn find() -> Result<Tools, Error> {
        Ok(Tools {
            dropbear: require("dropbear", &["/usr/sbin/dropbear"], DROPBEAR_HINT)?,
            dropbearkey: require("dropbearkey", &["/usr/bin/dropbearkey"], DROPBEAR_HINT)?,
            unshare: require(
                "unshare",
                &["/usr/bin/unshare"],
                "install util-linux (dropbear sessions run in their own namespaces)",
            )?,
            mount: require(
                "mount",
                &["/usr/bin/mount", "/bin/mount"],
                "install mount (dropbear sessions bind-mount their home)",
            )?,
        })
    }
}

/// Generates the session's RSA-2048 host key (`dropbearkey`, as production does).
pub(crate) async fn generate_host_key(dir: &Path) -> Result<(), Error> {
    let tools = Tools::find()?;
    let key = dir.join(HOST_KEY);
    let program = tools.dropbearkey.to_string_lossy().into_owned();
    let key = key.to_string_lossy().into_owned();
    run_tool(&program, &["-t", "rsa", "-s", "2048", "-f", &key]).await
}

/// The account's passwd home, which the session home is mounted over; checks that it can be.
pub(crate) fn passwd_home(account: &Account, home: &Path) -> Result<PathBuf, Error> {
    let name = &account.name;
    let Some(target) = account.passwd_home.clone() else {
        return Err(Error::InvalidArgument(format!(
            "dropbear reads authorized_keys from {name}'s home in the passwd database, and it \
             has none"
        )));
    };
    let resolved = std::fs::canonicalize(&target).ok().filter(|p| p.is_dir());
    let Some(resolved) = resolved.filter(|p| p.as_path() != Path::new("/")) else {
        return Err(Error::InvalidArgument(format!(
            "dropbear reads authorized_keys from {name}'s passwd home {}, which is not an \
             existing directory other than /; create it (useradd -m, or mkdir and chown)",
            target.display()
        )));
    };
    let session = std::fs::canonicalize(home).map_err(io_err(format!(
        "resolving the session home {}",
        home.display()
    )))?;
    if session.starts_with(&resolved) {
        return Err(Error::InvalidArgument(format!(
            "the session home {} lies inside {name}'s home {}, which dropbear sessions \
             bind-mount over; put the sandbox elsewhere (TMPDIR)",
            session.display(),
            resolved.display()
        )));
    }
    Ok(target)
}

/// The name of group `gid` (`getent group`).
fn group_name(gid: u32) -> Option<String> {
    let out = Command::new("getent")
        .args(["group", &gid.to_string()])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.split(':')
        .next()
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
}

/// The command line that runs dropbear for one session on 127.0.0.1:`port` (see the module
/// docs): `setpriv` (when installed) → `unshare` → `sh` (bind mount) → [`unshare`] → dropbear.
pub(crate) fn command(
    tools: &Tools,
    dir: &Path,
    home: &Path,
    passwd_home: &Path,
    account: &Account,
    enter: &Path,
    port: u16,
) -> Command {
    let root = running_as_root();
    let mut cmd = match setpriv() {
        Some(sp) => {
            let mut c = Command::new(sp);
            c.args(["--pdeathsig", "KILL", "--"]).arg(&tools.unshare);
            c
        }
        None => Command::new(&tools.unshare),
    };
    if !root {
        cmd.args(["--user", "--map-root-user"]);
    }
    cmd.args([
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--kill-child=KILL",
        "--",
        "/bin/sh",
        "-c",
        if root { ROOT_SCRIPT } else { USER_SCRIPT },
        "sh",
    ])
    .arg(&tools.mount)
    .arg(home)
    .arg(passwd_home);
    if !root {
        cmd.arg(account.uid.to_string())
            .arg(account.gid.to_string())
            .arg(&tools.unshare);
    }
    cmd.arg(&tools.dropbear)
        .arg("-r")
        .arg(dir.join(HOST_KEY))
        .args(["-E", "-F", "-w", "-s", "-K", "15", "-I", "0"])
        .arg("-P")
        .arg(dir.join("dropbear.pid"))
        // Dropbear runs this through the account's shell (`$SHELL -c`), hence the quoting.
        .arg("-c")
        .arg(sh_quote(&enter.to_string_lossy()))
        .arg("-p")
        .arg(format!("127.0.0.1:{port}"));
    if root {
        if let Some(group) = group_name(account.gid) {
            cmd.arg("-G").arg(group);
        }
    }
    cmd
}

/// A hint for a dropbear that exited early, from its log (which holds unshare's and mount's
/// errors too).
pub(crate) fn explain_failure(log: &str) -> Option<&'static str> {
    if log.contains("unshare failed") || log.contains("unshare: ") {
        return Some(if running_as_root() {
            "could not create the mount and PID namespaces that give each dropbear session its \
             own home (a container without CAP_SYS_ADMIN?); use --sshd openssh"
        } else {
            "could not create the user, mount and PID namespaces that give each dropbear session \
             its own home: unprivileged user namespaces look disabled (user.max_user_namespaces, \
             kernel.unprivileged_userns_clone, or AppArmor's \
             kernel.apparmor_restrict_unprivileged_userns); run the sandbox as root or use \
             --sshd openssh"
        });
    }
    if log.contains("mount: ") {
        return Some(
            "could not bind-mount the session home over the account's passwd home inside \
             dropbear's mount namespace",
        );
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_missing_program_says_what_to_install() {
        assert!(find("bai-sandbox-no-such-program", &["/nonexistent/dropbear"]).is_none());
        let e = require("bai-sandbox-no-such-program", &[], DROPBEAR_HINT).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("bai-sandbox-no-such-program"), "{msg}");
        assert!(msg.contains("dropbear-bin"), "{msg}");
        assert!(find("sh", &[]).is_some(), "sh is on PATH");
    }

    #[test]
    fn early_exits_are_explained() {
        assert!(
            explain_failure("unshare: unshare failed: Operation not permitted\n")
                .is_some_and(|h| h.contains("namespaces"))
        );
        assert!(explain_failure("mount: /home/work: permission denied.\n")
            .is_some_and(|h| h.contains("bind-mount")));
        assert_eq!(explain_failure("Early exit: Failed listening"), None);
    }

    #[test]
    fn the_session_home_may_not_lie_inside_the_passwd_home() {
        let outer = tempfile::tempdir().unwrap();
        let inner = outer.path().join("sandbox/home");
        std::fs::create_dir_all(&inner).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let account = |home: Option<&Path>| Account {
            name: "someone".into(),
            owner: None,
            uid: 1,
            gid: 1,
            passwd_home: home.map(Path::to_path_buf),
        };
        let e = passwd_home(&account(Some(outer.path())), &inner).unwrap_err();
        assert!(e.to_string().contains("TMPDIR"), "{e}");
        let e = passwd_home(&account(Some(Path::new("/"))), &inner).unwrap_err();
        assert!(e.to_string().contains("not an existing directory"), "{e}");
        let e = passwd_home(&account(Some(&outer.path().join("nope"))), &inner).unwrap_err();
        assert!(e.to_string().contains("useradd -m"), "{e}");
        assert!(passwd_home(&account(None), &inner).is_err());
        assert_eq!(
            passwd_home(&account(Some(elsewhere.path())), &inner).unwrap(),
            elsewhere.path()
        );
    }
}
