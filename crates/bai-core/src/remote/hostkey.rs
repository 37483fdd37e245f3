//! Host-key trust on first use in bai's own `known_hosts`, the same file and alias (the session
//! id) that OpenSSH uses with a [`HostKeyPin`] (`HostKeyAlias`, `StrictHostKeyChecking
//! accept-new`), so the in-app client and `ssh` agree: a key pinned by one is checked by the
//! other, and a changed key is refused by both.

use std::io::Write as _;

use russh::keys::PublicKey;

use crate::commands::{ensure_known_hosts, HostKeyPin};
use crate::{Error, Result};

/// What the pin says about an offered key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is pinned for the alias.
    Known,
    /// Nothing is pinned for the alias: trust it and pin it.
    New,
    /// Other keys are pinned for the alias, not this one.
    Changed,
}

/// The OpenSSH `type base64` of a key (no comment).
pub fn key_text(key: &PublicKey) -> Option<String> {
    let line = key.to_openssh().ok()?;
    let mut words = line.split_whitespace();
    Some(format!("{} {}", words.next()?, words.next()?))
}

/// Looks `key` up for `alias` in the text of a `known_hosts` file. Hashed entries, markers
/// (`@cert-authority`, `@revoked`: never written by bai) and malformed lines are ignored.
pub fn verdict(known_hosts: &str, alias: &str, key: &PublicKey) -> Verdict {
    let Some(want) = key_text(key) else {
        return Verdict::Changed;
    };
    let mut any = false;
    for line in known_hosts.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(hosts), Some(kind), Some(blob)) = (words.next(), words.next(), words.next())
        else {
            continue;
        };
        if !hosts.split(',').any(|h| h == alias) {
            continue;
        }
        any = true;
        if format!("{kind} {blob}") == want {
            return Verdict::Known;
        }
    }
    if any {
        Verdict::Changed
    } else {
        Verdict::New
    }
}

/// Checks `key` against the pin: known → `Ok`, new → appended (the file created 0600) and
/// `Ok`, changed → [`Error::HostKeyChanged`] naming the new fingerprint and the reset command.
pub fn check(pin: &HostKeyPin, session: &str, key: &PublicKey) -> Result<()> {
    // Read, decide and append as one step: two connections to a new session at once (its
    // terminal and its files) must not pin two different keys.
    static PINNING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = PINNING.lock().unwrap_or_else(|e| e.into_inner());
    let text = match std::fs::read_to_string(&pin.known_hosts) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(Error::io(
                format!("reading {}", pin.known_hosts.display()),
                e,
            ))
        }
    };
    match verdict(&text, &pin.alias, key) {
        Verdict::Known => Ok(()),
        Verdict::Changed => Err(Error::HostKeyChanged {
            session: session.to_owned(),
            alias: pin.alias.clone(),
            fingerprint: fingerprint(key),
            known_hosts: pin.known_hosts.display().to_string(),
            reset: pin.reset_command(),
        }),
        Verdict::New => {
            let line = key_text(key).ok_or_else(|| Error::Remote {
                code: crate::ErrorCode::Network,
                message: "the SSH server's host key cannot be encoded".into(),
            })?;
            ensure_known_hosts(&pin.known_hosts)?;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&pin.known_hosts)
                .map_err(|e| Error::io(format!("opening {}", pin.known_hosts.display()), e))?;
            // A file not ending in a newline gets one first (ssh would do the same).
            let sep = if text.is_empty() || text.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            f.write_all(format!("{sep}{} {line}\n", pin.alias).as_bytes())
                .map_err(|e| Error::io(format!("writing {}", pin.known_hosts.display()), e))?;
            tracing::info!(alias = %pin.alias, fingerprint = %fingerprint(key), "host key pinned on first use");
            Ok(())
        }
    }
}

/// `SHA256:…` of a key.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(russh::keys::HashAlg::Sha256).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
    const B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDb2ZxbmQUU3VZI7hfwv8LqBFvg8bUAu5b8YkRDE9cT7";

    fn key(s: &str) -> PublicKey {
        PublicKey::from_openssh(s).expect("key")
    }

    #[test]
    fn known_new_and_changed() {
        let a = key(A);
        assert_eq!(verdict("", "sid", &a), Verdict::New);
        assert_eq!(verdict(&format!("sid {A}\n"), "sid", &a), Verdict::Known);
        assert_eq!(
            verdict(&format!("other {A}\nx,sid {B} c\n"), "sid", &a),
            Verdict::Changed
        );
        assert_eq!(verdict(&format!("other {B}\n"), "sid", &a), Verdict::New);
        assert_eq!(
            verdict(
                &format!("# c\n\n@revoked sid {B}\nbroken\nsid {A}\n"),
                "sid",
                &a
            ),
            Verdict::Known
        );
    }

    #[test]
    fn check_pins_then_refuses_another_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pin = HostKeyPin::new(dir.path().join("kh"), "sid-1").expect("pin");
        check(&pin, "s1", &key(A)).expect("first use");
        check(&pin, "s1", &key(A)).expect("known");
        let text = std::fs::read_to_string(&pin.known_hosts).expect("read");
        assert_eq!(text, format!("sid-1 {A}\n"));
        let e = check(&pin, "s1", &key(B)).expect_err("changed");
        assert_eq!(e.code(), crate::ErrorCode::HostKeyChanged);
        assert!(e.to_string().contains("has changed"), "{e}");
        assert!(e.hint().is_some_and(|h| h.contains("ssh-keygen -R sid-1")));
    }
}
