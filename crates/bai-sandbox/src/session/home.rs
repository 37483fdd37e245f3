//! The session directory's contents, made before any server starts: `home/` and `.ssh/` with
//! their modes and owner, the host key, the user's keys ([`UserKeys`]), and the
//! `enter` wrapper that puts every command in the session home. Also the small file and tool
//! helpers the Dropbear launcher shares.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::{Account, SshServer};
use crate::keypair::StoredKeypair;
use crate::Error;

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let context = context.into();
    move |source| Error::Io { context, source }
}

/// Creates (or truncates) `path` with `mode` from the start (never briefly world-readable),
/// writes `contents`, then sets `mode` exactly (the umask may have narrowed it).
pub(super) fn write_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode & 0o700)
        .open(path)
        .map_err(io_err(format!("creating {}", path.display())))?;
    f.write_all(contents)
        .map_err(io_err(format!("writing {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("chmod {}", path.display())))
}

fn chown(path: &Path, owner: Option<(u32, u32)>) -> Result<(), Error> {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(io_err(format!("chown {}", path.display())))?;
    }
    Ok(())
}

pub(crate) async fn run_tool(program: &str, args: &[&str]) -> Result<(), Error> {
    let out = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(io_err(format!("running {program}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Tool {
            program: program.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Where a new session's user keys come from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UserKeys<'a> {
    /// The user's own `authorized_keys` text (the `.ssh` folder): no private key written.
    Own(&'a str),
    /// The account's stored keypair (`/auth/ssh-keypair`).
    Account(&'a StoredKeypair),
    /// A keypair generated for this session (the kernel runner's fallback).
    Generate,
}

/// Creates the session's directory, home, host key (for `server`), and keys; does not start
/// the server.
pub(crate) async fn prepare_files(
    dir: &Path,
    account: &Account,
    keys: UserKeys<'_>,
    server: SshServer,
) -> Result<(PathBuf, PathBuf, Option<PathBuf>), Error> {
    let home = dir.join("home");
    let ssh_dir = home.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).map_err(io_err(format!("creating {}", ssh_dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(io_err(format!("chmod {}", dir.display())))?;
    std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755))
        .map_err(io_err(format!("chmod {}", home.display())))?;
    std::fs::set_permissions(&ssh_dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io_err(format!("chmod {}", ssh_dir.display())))?;

    match server {
        SshServer::OpenSsh => {
            let host_key = dir.join("host_key");
            let host_key_s = host_key.to_string_lossy().into_owned();
            run_tool(
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-f", &host_key_s],
            )
            .await?;
        }
        SshServer::Dropbear => crate::dropbear::generate_host_key(dir).await?,
    }

    let ak_file = ssh_dir.join("authorized_keys");
    let id_container = match keys {
        UserKeys::Own(text) => {
            write_file(&ak_file, text.as_bytes(), 0o600)?;
            None
        }
        UserKeys::Account(k) => {
            // As the agent writes the account's keypair: authorized_keys, ~/.ssh/id_rsa and
            // id_container.
            write_file(&ak_file, k.public_key.as_bytes(), 0o600)?;
            let id_rsa = ssh_dir.join("id_rsa");
            write_file(&id_rsa, k.private_key.as_bytes(), 0o600)?;
            chown(&id_rsa, account.owner)?;
            let idc = home.join("id_container");
            write_file(&idc, k.private_key.as_bytes(), 0o600)?;
            chown(&idc, account.owner)?;
            Some(idc)
        }
        UserKeys::Generate => {
            let user_key = dir.join("user_key");
            let user_key_s = user_key.to_string_lossy().into_owned();
            run_tool(
                "ssh-keygen",
                &[
                    "-q",
                    "-t",
                    "rsa",
                    "-b",
                    "2048",
                    "-m",
                    "PEM",
                    "-N",
                    "",
                    "-C",
                    "work@bai-sandbox",
                    "-f",
                    &user_key_s,
                ],
            )
            .await?;
            let private = std::fs::read(&user_key).map_err(io_err("reading generated key"))?;
            let public =
                std::fs::read(dir.join("user_key.pub")).map_err(io_err("reading generated key"))?;
            write_file(&ak_file, &public, 0o600)?;
            let idc = home.join("id_container");
            write_file(&idc, &private, 0o600)?;
            chown(&idc, account.owner)?;
            Some(idc)
        }
    };
    chown(&ak_file, account.owner)?;
    chown(&ssh_dir, account.owner)?;
    chown(&home, account.owner)?;
    Ok((home, ak_file, id_container))
}

/// Quotes `s` for a POSIX shell.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Writes `<dir>/enter`, the forced command (sshd's `ForceCommand`, dropbear's `-c`) that
/// starts every command, shell, scp, rsync and sftp in the session home (with `HOME` pointing
/// there), as `/home/work` in production. Both servers pass the client's request in
/// `SSH_ORIGINAL_COMMAND`: sshd's sftp subsystem arrives as `internal-sftp …` (the `Subsystem`
/// line), dropbear's as its compiled-in sftp-server path (Debian: `/usr/lib/sftp-server`).
/// Without an `sftp_server` the SFTP lines are left out (sftp then fails).
pub(super) fn write_enter_script(
    dir: &Path,
    home: &Path,
    sftp_server: Option<&Path>,
) -> Result<PathBuf, Error> {
    let path = dir.join("enter");
    let home = sh_quote(&home.to_string_lossy());
    let sftp = sftp_server
        .map(|p| {
            format!(
                "\x20 internal-sftp*|*/sftp-server) exec {} -d \"$HOME\" ;;\n",
                sh_quote(&p.to_string_lossy())
            )
        })
        .unwrap_or_default();
    let text = format!(
        "#!/bin/sh\n\
         # bai-sandbox: run the client's command in the session home.\n\
         HOME={home}\n\
         export HOME\n\
         cd \"$HOME\" || exit 1\n\
         [ -n \"$SHELL\" ] || SHELL=/bin/sh\n\
         case \"$SSH_ORIGINAL_COMMAND\" in\n\
         \x20 '') exec \"$SHELL\" -l ;;\n\
         {sftp}\
         \x20 *) exec \"$SHELL\" -c \"$SSH_ORIGINAL_COMMAND\" ;;\n\
         esac\n"
    );
    write_file(&path, text.as_bytes(), 0o755)?;
    Ok(path)
}
