//! The account's SSH keypair (`/auth/ssh-keypair`, modern-ssh.md §5 and protocol.md §6): what
//! the manager stores per access key, how `PATCH` generates one and how `POST` checks an
//! uploaded one.
//!
//! - **Storage.** One keypair per access key, in memory ([`crate::State::ssh_keypairs`]). A
//!   fresh sandbox stores none, and `GET` then answers `{"ssh_public_key": null}`: the real
//!   handler returns the keypair row's nullable `ssh_public_key` column as it is.
//! - **Generation** (`PATCH`): `ssh-keygen -t rsa -b 2048 -m PEM -N ""` in a private temporary
//!   directory, so the private key is PEM `BEGIN RSA PRIVATE KEY` like the manager's; no
//!   comment. Both halves are normalised to end in one `\n`.
//! - **Upload** (`POST {"pubkey","privkey"}`): trailing whitespace of each is normalised to one
//!   `\n`. The private key (PEM or OpenSSH; RSA, ECDSA or Ed25519) is written to a private
//!   temporary file and its public key derived with `ssh-keygen -y -P ""`; it must equal the
//!   uploaded public key's type and blob (the comment does not count). Failures are the
//!   manager's three 400 problems: `invalid-ssh-private-key` (also for a password-protected
//!   key), `invalid-ssh-public-key`, `ssh-keypair-mismatch`.
//! - **Effect.** A new session of the account gets the stored keypair (see
//!   [`crate::session`]); running sessions keep what they were created with.

use std::path::Path;
use std::process::Stdio;

use base64::Engine as _;

use crate::problem::ProblemReply;
use crate::session::io_err;
use crate::Error;

/// A stored keypair: an OpenSSH public key line and its private key, both ending in `\n`.
#[derive(Clone)]
pub(crate) struct StoredKeypair {
    pub public_key: String,
    pub private_key: String,
}

impl std::fmt::Debug for StoredKeypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKeypair")
            .field("public_key", &self.public_key)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// Trailing whitespace replaced by one `\n`, as the manager stores keys.
pub(crate) fn normalise(key: &str) -> String {
    format!("{}\n", key.trim_end())
}

/// Runs `ssh-keygen` with `args` (stdin closed); returns (success, stdout, stderr).
async fn ssh_keygen(args: &[&str]) -> Result<(bool, String, String), Error> {
    let out = tokio::process::Command::new("ssh-keygen")
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(io_err("running ssh-keygen"))?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn private_dir() -> Result<tempfile::TempDir, Error> {
    // tempfile makes the directory 0700: the private key is never readable by others.
    tempfile::Builder::new()
        .prefix("bai-sandbox-key-")
        .tempdir()
        .map_err(io_err("creating a private temporary directory"))
}

/// A new RSA 2048 keypair, PEM private key (`PATCH /auth/ssh-keypair`).
pub(crate) async fn generate() -> Result<StoredKeypair, Error> {
    let dir = private_dir()?;
    let key = dir.path().join("key");
    let key_s = key.to_string_lossy().into_owned();
    let (ok, _, stderr) = ssh_keygen(&[
        "-q", "-t", "rsa", "-b", "2048", "-m", "PEM", "-N", "", "-C", "", "-f", &key_s,
    ])
    .await?;
    if !ok {
        return Err(Error::Tool {
            program: "ssh-keygen".into(),
            stderr,
        });
    }
    let private_key = std::fs::read_to_string(&key).map_err(io_err("reading the generated key"))?;
    let public_key = std::fs::read_to_string(dir.path().join("key.pub"))
        .map_err(io_err("reading the generated key"))?;
    Ok(StoredKeypair {
        public_key: normalise(&public_key),
        private_key: normalise(&private_key),
    })
}

/// Key types an uploaded public key may have.
const KEY_TYPES: [&str; 5] = [
    "ssh-rsa",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
];

/// `(type, blob)` of an OpenSSH public key line, checked: a known type, a base64 blob whose
/// own type string is that type.
fn parse_public(line: &str) -> Option<(String, Vec<u8>)> {
    let mut fields = line.split_whitespace();
    let kind = fields.next()?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(fields.next()?)
        .ok()?;
    if !KEY_TYPES.contains(&kind) || blob.len() < 4 {
        return None;
    }
    let len = u32::from_be_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    let inner = blob.get(4..4usize.checked_add(len)?)?;
    (inner == kind.as_bytes()).then(|| (kind.to_owned(), blob))
}

fn invalid_private(msg: impl Into<String>) -> ProblemReply {
    ProblemReply::new(400, "invalid-ssh-private-key", "Invalid SSH private key.").msg(msg)
}

fn invalid_public(msg: impl Into<String>) -> ProblemReply {
    ProblemReply::new(400, "invalid-ssh-public-key", "Invalid SSH public key.").msg(msg)
}

fn mismatch() -> ProblemReply {
    ProblemReply::new(
        400,
        "ssh-keypair-mismatch",
        "The SSH public key does not match the private key.",
    )
    .msg("The public key does not match the private key.")
}

/// Whether a private key text says it is encrypted (PEM or OpenSSH format).
fn looks_encrypted(private: &str) -> bool {
    if private.contains("ENCRYPTED") {
        // PEM `Proc-Type: 4,ENCRYPTED` or PKCS#8 `BEGIN ENCRYPTED PRIVATE KEY`.
        return true;
    }
    let body: String = private
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    if !private.contains("BEGIN OPENSSH PRIVATE KEY") {
        return false;
    }
    // openssh-key-v1\0, then the cipher name as an SSH string: "none" when not encrypted.
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(body.trim()) else {
        return false;
    };
    const MAGIC: &[u8] = b"openssh-key-v1\0";
    let Some(rest) = raw.strip_prefix(MAGIC) else {
        return false;
    };
    match rest.get(..4) {
        Some(l) => {
            let len = u32::from_be_bytes([l[0], l[1], l[2], l[3]]) as usize;
            rest.get(4..4 + len.min(64)).is_some_and(|c| c != b"none")
        }
        None => false,
    }
}

/// Checks an uploaded pair (`POST /auth/ssh-keypair`); returns it normalised.
pub(crate) async fn validate(
    pubkey: &str,
    privkey: &str,
) -> Result<Result<StoredKeypair, ProblemReply>, Error> {
    let public_key = normalise(pubkey);
    let private_key = normalise(privkey);
    if looks_encrypted(&private_key) {
        return Ok(Err(invalid_private(
            "Password-protected private keys are not supported",
        )));
    }
    if !private_key.contains("PRIVATE KEY-----") {
        return Ok(Err(invalid_private(
            "The private key is not in PEM or OpenSSH format",
        )));
    }
    let Some(given) = parse_public(&public_key) else {
        return Ok(Err(invalid_public(
            "The public key is not an OpenSSH RSA, ECDSA or Ed25519 public key",
        )));
    };
    let dir = private_dir()?;
    let key = dir.path().join("key");
    write_private(&key, &private_key)?;
    let key_s = key.to_string_lossy().into_owned();
    let (ok, stdout, stderr) = ssh_keygen(&["-y", "-P", "", "-f", &key_s]).await?;
    if !ok {
        return Ok(Err(if stderr.contains("passphrase") {
            invalid_private("Password-protected private keys are not supported")
        } else {
            invalid_private("The private key could not be loaded")
        }));
    }
    let Some(derived) = parse_public(stdout.trim()) else {
        return Ok(Err(invalid_private(
            "The private key is not an RSA, ECDSA or Ed25519 key",
        )));
    };
    if derived != given {
        return Ok(Err(mismatch()));
    }
    Ok(Ok(StoredKeypair {
        public_key,
        private_key,
    }))
}

fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("creating a private key file"))?;
    f.write_all(text.as_bytes())
        .map_err(io_err("writing a private key file"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_parses() {
        assert_eq!(normalise("abc \r\n\n"), "abc\n");
        let line =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl x";
        assert_eq!(parse_public(line).map(|p| p.0), Some("ssh-ed25519".into()));
        // Type and blob disagree, unknown type, garbage.
        assert!(parse_public(&line.replace("ssh-ed25519", "ssh-rsa")).is_none());
        assert!(parse_public("ssh-dss AAAA").is_none());
        assert!(parse_public("hello").is_none());
        assert!(!looks_encrypted("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n"));
        assert!(looks_encrypted(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
        ));
    }
}
