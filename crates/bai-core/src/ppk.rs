//! PuTTY `.ppk` export (PuTTY-User-Key-File-2, unencrypted) of a private key, so that
//! PuTTY, FileZilla and WinSCP users need no PuTTYgen. Accepts PEM PKCS#1
//! (`BEGIN RSA PRIVATE KEY`) RSA keys and unencrypted OpenSSH (`BEGIN OPENSSH PRIVATE KEY`)
//! RSA and Ed25519 keys.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};

use crate::error::{Error, Result};
use crate::keys::{openssh_header, pem_body, put_mpint, put_string, Der, Malformed, Wire};

/// The RSA numbers a `.ppk` needs (big-endian magnitudes).
#[derive(Clone, PartialEq, Eq)]
struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
    d: Vec<u8>,
    p: Vec<u8>,
    q: Vec<u8>,
    iqmp: Vec<u8>,
    comment: Option<String>,
}

fn bad(why: &str) -> Error {
    Error::InvalidInput(format!("cannot convert the key to PuTTY format: {why}"))
}

/// A private key a `.ppk` can hold.
#[derive(Clone, PartialEq, Eq)]
enum Key {
    Rsa(RsaKey),
    Ed25519 {
        public: Vec<u8>,
        seed: Vec<u8>,
        comment: Option<String>,
    },
}

impl Key {
    fn algorithm(&self) -> &'static str {
        match self {
            Key::Rsa(_) => "ssh-rsa",
            Key::Ed25519 { .. } => "ssh-ed25519",
        }
    }

    fn comment(&self) -> Option<&str> {
        match self {
            Key::Rsa(k) => k.comment.as_deref(),
            Key::Ed25519 { comment, .. } => comment.as_deref(),
        }
    }

    /// The public blob and PuTTY's private blob.
    fn blobs(&self) -> (Vec<u8>, Vec<u8>) {
        let mut public = Vec::new();
        let mut private = Vec::new();
        put_string(&mut public, self.algorithm().as_bytes());
        match self {
            Key::Rsa(key) => {
                put_mpint(&mut public, &key.e);
                put_mpint(&mut public, &key.n);
                put_mpint(&mut private, &key.d);
                put_mpint(&mut private, &key.p);
                put_mpint(&mut private, &key.q);
                put_mpint(&mut private, &key.iqmp);
            }
            Key::Ed25519 {
                public: pk, seed, ..
            } => {
                put_string(&mut public, pk);
                // The 32 bytes as they are: puttygen (0.78) writes all 32 even when the last ones
                // are zero (checked against it on keys ending in 0x00: always 32 bytes).
                put_string(&mut private, &seed[..]);
            }
        }
        (public, private)
    }
}

/// Converts a PEM private key (RSA, or Ed25519 in OpenSSH format) to a
/// PuTTY-User-Key-File-2 text with `comment` (the OpenSSH key's own comment wins when it has
/// one and `comment` is empty).
///
/// # Errors
/// [`Error::InvalidInput`] when the key is not an unencrypted RSA or Ed25519 key in a
/// supported format.
pub fn to_ppk(pem: &str, comment: &str) -> Result<String> {
    let key = parse_private_key(pem)?;
    let comment = if comment.is_empty() {
        key.comment().unwrap_or_default().to_owned()
    } else {
        comment.to_owned()
    };
    // The comment is a header line: no line breaks.
    let comment: String = comment
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let algorithm = key.algorithm();
    let (public, private) = key.blobs();

    let mut mac_data = Vec::new();
    put_string(&mut mac_data, algorithm.as_bytes());
    put_string(&mut mac_data, b"none");
    put_string(&mut mac_data, comment.as_bytes());
    put_string(&mut mac_data, &public);
    put_string(&mut mac_data, &private);
    let mac_key = Sha1::digest(b"putty-private-key-file-mac-key");
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&mac_key).map_err(|_| bad("HMAC key"))?;
    mac.update(&mac_data);
    let mac = hex::encode(mac.finalize().into_bytes());

    let mut out = format!("PuTTY-User-Key-File-2: {algorithm}\nEncryption: none\n");
    out.push_str(&format!("Comment: {comment}\n"));
    push_lines(&mut out, "Public-Lines", &public);
    push_lines(&mut out, "Private-Lines", &private);
    out.push_str(&format!("Private-MAC: {mac}\n"));
    Ok(out)
}

/// Converts `key` (see [`to_ppk`]) and writes it at `path` with mode 0600, atomically.
///
/// # Errors
/// As [`to_ppk`], or the write failed.
pub fn save_ppk(
    path: &std::path::Path,
    key: &bai_api::Sensitive<String>,
    comment: &str,
) -> Result<()> {
    let text = to_ppk(key.expose(), comment)?;
    crate::fsutil::write_private(path, text.as_bytes())
}

fn push_lines(out: &mut String, name: &str, data: &[u8]) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    out.push_str(&format!("{name}: {}\n", lines.len()));
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
}

fn parse_private_key(pem: &str) -> Result<Key> {
    parse_key(pem).map_err(|m| bad(m.0))
}

fn parse_key(pem: &str) -> std::result::Result<Key, Malformed> {
    if let Some(der) = pem_body(pem, "RSA PRIVATE KEY") {
        return parse_pkcs1(&der?).map(Key::Rsa);
    }
    if let Some(data) = pem_body(pem, "OPENSSH PRIVATE KEY") {
        return parse_openssh(&data?);
    }
    Err(Malformed(
        "not an RSA or Ed25519 private key (BEGIN RSA PRIVATE KEY or BEGIN OPENSSH PRIVATE KEY)",
    ))
}

fn parse_pkcs1(der: &[u8]) -> std::result::Result<RsaKey, Malformed> {
    let mut outer = Der(der);
    let mut seq = Der(outer.next(0x30)?);
    let _version = seq.int()?;
    let n = seq.int()?;
    let e = seq.int()?;
    let d = seq.int()?;
    let p = seq.int()?;
    let q = seq.int()?;
    let _dp = seq.int()?;
    let _dq = seq.int()?;
    let iqmp = seq.int()?;
    Ok(RsaKey {
        n,
        e,
        d,
        p,
        q,
        iqmp,
        comment: None,
    })
}

fn parse_openssh(data: &[u8]) -> std::result::Result<Key, Malformed> {
    let header = openssh_header(data)?;
    if header.cipher != b"none" {
        return Err(Malformed("the key is encrypted"));
    }
    let mut p = Wire(header.private);
    if p.u32()? != p.u32()? {
        return Err(Malformed("the key's check bytes differ"));
    }
    match p.string()? {
        b"ssh-rsa" => {}
        b"ssh-ed25519" => {
            let public = p.string()?.to_vec();
            let secret = p.string()?;
            // OpenSSH stores seed || public key.
            if public.len() != 32 || secret.len() != 64 || secret[32..] != public[..] {
                return Err(Malformed("malformed Ed25519 key"));
            }
            let comment = String::from_utf8_lossy(p.string()?).into_owned();
            return Ok(Key::Ed25519 {
                public,
                seed: secret[..32].to_vec(),
                comment: Some(comment).filter(|c| !c.is_empty()),
            });
        }
        _ => return Err(Malformed("only RSA and Ed25519 keys can be converted")),
    }
    let n = p.string()?.to_vec();
    let e = p.string()?.to_vec();
    let d = p.string()?.to_vec();
    let iqmp = p.string()?.to_vec();
    let pp = p.string()?.to_vec();
    let q = p.string()?.to_vec();
    let comment = String::from_utf8_lossy(p.string()?).into_owned();
    Ok(Key::Rsa(RsaKey {
        n,
        e,
        d,
        p: pp,
        q,
        iqmp,
        comment: Some(comment).filter(|c| !c.is_empty()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn tool(cmd: &str, args: &[&str]) -> String {
        let out = Command::new(cmd)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
        assert!(
            out.status.success(),
            "{cmd} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn blob(pubkey: &str) -> String {
        pubkey
            .split_whitespace()
            .nth(1)
            .expect("a public key line")
            .to_owned()
    }

    fn roundtrip(format: &[&str]) {
        roundtrip_type(&["-t", "rsa", "-b", "2048"], format);
    }

    /// Generates a key with ssh-keygen, converts it, and checks that puttygen reads the
    /// `.ppk` as the same public key, and (for the OpenSSH format) writes the same `.ppk`.
    fn roundtrip_type(kind: &[&str], format: &[&str]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("id_container");
        let key_s = key.to_string_lossy().into_owned();
        let mut args = vec!["-q", "-N", "", "-C", "c@x"];
        args.extend_from_slice(kind);
        args.extend_from_slice(format);
        args.extend_from_slice(&["-f", &key_s]);
        tool("ssh-keygen", &args);
        let pem = std::fs::read_to_string(&key).expect("key");
        let ppk = to_ppk(&pem, "bai key").expect("converts");
        let algorithm = if kind.contains(&"ed25519") {
            "ssh-ed25519"
        } else {
            "ssh-rsa"
        };
        assert!(ppk.starts_with(&format!(
            "PuTTY-User-Key-File-2: {algorithm}\nEncryption: none\nComment: bai key\n"
        )));
        let ppk_path = dir.path().join("key.ppk");
        std::fs::write(&ppk_path, &ppk).expect("write");
        let from_ppk = tool(
            "puttygen",
            &[&ppk_path.to_string_lossy(), "-O", "public-openssh"],
        );
        let from_key = tool("ssh-keygen", &["-y", "-f", &key_s]);
        assert_eq!(blob(&from_ppk), blob(&from_key));
        // puttygen's own conversion (its comment: the key's own) is byte-identical.
        if format.is_empty() {
            let theirs = dir.path().join("theirs.ppk");
            tool(
                "puttygen",
                &[
                    &key_s,
                    "-O",
                    "private",
                    "--ppk-param",
                    "version=2",
                    "-o",
                    &theirs.to_string_lossy(),
                ],
            );
            assert_eq!(
                to_ppk(&pem, "").expect("converts"),
                std::fs::read_to_string(&theirs).expect("theirs")
            );
        }
    }

    #[test]
    fn ed25519_to_ppk_matches_puttygen() {
        if Command::new("puttygen").arg("--version").output().is_err() {
            eprintln!("puttygen not installed: skipped");
            return;
        }
        // Several keys: a seed may end in zero bytes, which puttygen keeps (all 32 bytes).
        for _ in 0..4 {
            roundtrip_type(&["-t", "ed25519"], &[]);
        }
    }

    #[test]
    fn pkcs1_pem_to_ppk_matches_puttygen() {
        if Command::new("puttygen").arg("--version").output().is_err() {
            eprintln!("puttygen not installed: skipped");
            return;
        }
        roundtrip(&["-m", "PEM"]);
    }

    #[test]
    fn openssh_format_to_ppk_matches_puttygen() {
        if Command::new("puttygen").arg("--version").output().is_err() {
            eprintln!("puttygen not installed: skipped");
            return;
        }
        roundtrip(&[]);
    }

    #[test]
    fn rejects_other_keys() {
        assert!(to_ppk("hello", "").is_err());
        assert!(to_ppk(
            "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n-----END RSA PRIVATE KEY-----\n",
            ""
        )
        .is_err());
    }
}
