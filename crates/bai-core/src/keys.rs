//! SSH keys without decrypting anything: OpenSSH public key lines, their SHA256 fingerprints
//! (as `ssh-keygen -l -E sha256` prints them), the public key of a private key file where the
//! format keeps it readable (`openssh-key-v1`: the public blob is in clear even when the key
//! is encrypted; PEM PKCS#1 RSA: n and e), a local check of a public key a user wants to
//! upload ([`validate_public_key`]), and keeping a saved `id_container` current
//! ([`sync_saved_key`]). The DER/SSH-wire readers here are also what [`crate::ppk`] parses
//! with.

use std::path::Path;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// Why a key could not be parsed (a short phrase; callers add their own context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Malformed(pub &'static str);

type Parse<T> = std::result::Result<T, Malformed>;

fn invalid(what: &str, why: &str) -> Error {
    Error::InvalidInput(format!("{what}: {why}"))
}

/// The key types [`validate_public_key`] accepts (what current OpenSSH servers accept in
/// `authorized_keys`).
pub const KNOWN_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// An OpenSSH public key: its type, its wire-format blob and an optional comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The key type as written before the blob (`ssh-ed25519`, `ssh-rsa`, …).
    pub algorithm: String,
    /// The decoded blob (SSH wire format, starting with the type string).
    pub blob: Vec<u8>,
    /// The comment after the blob, if any.
    pub comment: Option<String>,
}

impl PublicKey {
    /// Parses one OpenSSH public key line, `TYPE BASE64 [COMMENT]` (surrounding whitespace and
    /// a trailing newline allowed). Only the shape is checked; [`validate_public_key`] also
    /// checks the blob. Never panics, whatever the input.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the text is not one such line.
    pub fn parse(line: &str) -> Result<PublicKey> {
        const WHAT: &str = "not an OpenSSH public key line (TYPE BASE64 [COMMENT])";
        let line = line.trim();
        if line.contains(['\n', '\r']) {
            return Err(invalid(WHAT, "more than one line"));
        }
        let mut parts = line.splitn(2, [' ', '\t']);
        let algorithm = parts.next().unwrap_or_default();
        let rest = parts.next().unwrap_or_default().trim_start();
        let (b64, comment) = match rest.find([' ', '\t']) {
            Some(i) => (&rest[..i], rest[i..].trim()),
            None => (rest, ""),
        };
        if algorithm.is_empty() || b64.is_empty() {
            return Err(invalid(WHAT, "a type and a base64 key are needed"));
        }
        if !algorithm
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-@._".contains(&b))
        {
            return Err(invalid(WHAT, "the key type has unexpected characters"));
        }
        let blob = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(b64.trim_end_matches('='))
            .map_err(|_| invalid(WHAT, "the key is not valid base64"))?;
        if blob.is_empty() {
            return Err(invalid(WHAT, "the key is empty"));
        }
        Ok(PublicKey {
            algorithm: algorithm.to_owned(),
            blob,
            comment: Some(comment.to_owned()).filter(|c| !c.is_empty()),
        })
    }

    /// The SHA256 fingerprint, `SHA256:<unpadded base64>`, as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.blob)
    }

    /// The type named inside the blob (its first string), when it is readable.
    pub fn blob_algorithm(&self) -> Option<String> {
        let mut w = Wire(&self.blob);
        let t = w.string().ok()?;
        std::str::from_utf8(t).ok().map(str::to_owned)
    }

    /// The key as one `authorized_keys` line (`TYPE BASE64[ COMMENT]`, no newline).
    pub fn to_line(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.blob);
        match &self.comment {
            Some(c) => format!("{} {b64} {}", self.algorithm, c.replace(['\n', '\r'], " ")),
            None => format!("{} {b64}", self.algorithm),
        }
    }
}

/// The SHA256 fingerprint of a public key blob: `SHA256:` and the unpadded base64 of the
/// digest (`ssh-keygen -l -E sha256`).
pub fn fingerprint(blob: &[u8]) -> String {
    let digest = Sha256::digest(blob);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

/// Checks, locally, a public key a user wants to upload: one OpenSSH line of a known type
/// ([`KNOWN_TYPES`]) whose blob parses and names the same type. Returns the parsed key.
///
/// # Errors
/// [`Error::InvalidInput`] saying what is wrong (a private key pasted by mistake included).
pub fn validate_public_key(text: &str) -> Result<PublicKey> {
    const WHAT: &str = "not a usable SSH public key";
    if text.contains("PRIVATE KEY") {
        return Err(invalid(
            WHAT,
            "this is a private key; upload the public one (the .pub file)",
        ));
    }
    let key = PublicKey::parse(text)?;
    if !KNOWN_TYPES.contains(&key.algorithm.as_str()) {
        return Err(invalid(
            WHAT,
            &format!(
                "unsupported key type \"{}\" (use one of {})",
                crate::display::clean_line(&key.algorithm),
                KNOWN_TYPES.join(", ")
            ),
        ));
    }
    let inner = check_blob(&key.blob).map_err(|m| invalid(WHAT, m.0))?;
    if inner != key.algorithm {
        return Err(invalid(
            WHAT,
            "the type inside the key differs from the type written before it",
        ));
    }
    Ok(key)
}

/// Parses a public key blob of a known type completely (no trailing bytes); returns its type.
fn check_blob(blob: &[u8]) -> Parse<&str> {
    let mut w = Wire(blob);
    let t = std::str::from_utf8(w.string()?).map_err(|_| Malformed("the key type is not text"))?;
    let ec_point = |w: &mut Wire<'_>, curve: &[u8], len: usize| -> Parse<()> {
        if w.string()? != curve {
            return Err(Malformed("the curve does not match the key type"));
        }
        let q = w.string()?;
        if q.len() != len || q.first() != Some(&4) {
            return Err(Malformed("the curve point is malformed"));
        }
        Ok(())
    };
    match t {
        "ssh-ed25519" => {
            if w.string()?.len() != 32 {
                return Err(Malformed("an Ed25519 key is 32 bytes"));
            }
        }
        "sk-ssh-ed25519@openssh.com" => {
            if w.string()?.len() != 32 {
                return Err(Malformed("an Ed25519 key is 32 bytes"));
            }
            w.string()?;
        }
        "ssh-rsa" => {
            let e = w.mpint()?;
            let n = w.mpint()?;
            if e.is_empty() || n.len() < 128 {
                return Err(Malformed("the RSA key is too small (under 1024 bits)"));
            }
        }
        "ecdsa-sha2-nistp256" => ec_point(&mut w, b"nistp256", 65)?,
        "ecdsa-sha2-nistp384" => ec_point(&mut w, b"nistp384", 97)?,
        "ecdsa-sha2-nistp521" => ec_point(&mut w, b"nistp521", 133)?,
        "sk-ecdsa-sha2-nistp256@openssh.com" => {
            ec_point(&mut w, b"nistp256", 65)?;
            w.string()?;
        }
        _ => return Err(Malformed("unsupported key type")),
    }
    if !w.0.is_empty() {
        return Err(Malformed("trailing bytes after the key"));
    }
    Ok(t)
}

/// The public key of a private key text, without decrypting anything: `openssh-key-v1`
/// (encrypted or not; the comment, which sits in the private part, is not read) or PEM
/// PKCS#1 RSA.
///
/// # Errors
/// [`Error::InvalidInput`] when the format hides the public key (encrypted PEM, PKCS#8) or
/// the key is malformed.
pub fn public_key_of_private(pem: &str) -> Result<PublicKey> {
    const WHAT: &str = "cannot read the public key of this private key";
    if let Some(data) = pem_body(pem, "OPENSSH PRIVATE KEY") {
        let data = data.map_err(|m| invalid(WHAT, m.0))?;
        let header = openssh_header(&data).map_err(|m| invalid(WHAT, m.0))?;
        let t = check_blob(header.public).map_err(|m| invalid(WHAT, m.0))?;
        return Ok(PublicKey {
            algorithm: t.to_owned(),
            blob: header.public.to_vec(),
            comment: None,
        });
    }
    if let Some(der) = pem_body(pem, "RSA PRIVATE KEY") {
        let der = der.map_err(|m| invalid(WHAT, m.0))?;
        let (n, e) = pkcs1_public(&der).map_err(|m| invalid(WHAT, m.0))?;
        let mut blob = Vec::new();
        put_string(&mut blob, b"ssh-rsa");
        put_mpint(&mut blob, &e);
        put_mpint(&mut blob, &n);
        return Ok(PublicKey {
            algorithm: "ssh-rsa".into(),
            blob,
            comment: None,
        });
    }
    Err(invalid(
        WHAT,
        "not an OpenSSH (BEGIN OPENSSH PRIVATE KEY) or PEM RSA (BEGIN RSA PRIVATE KEY) key",
    ))
}

/// What [`check_identity`] found in a private key file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Its public key could be read.
    Known(PublicKey),
    /// A private key in a format whose public part bai does not read (ssh may still use it).
    Opaque,
}

/// The longest file bai reads as an SSH key.
pub(crate) const MAX_KEY_FILE: u64 = 64 * 1024;

/// Reads a key file the user named: a regular file (not a FIFO or device), at most
/// [`MAX_KEY_FILE`] bytes, UTF-8.
pub(crate) fn read_key_file(path: &Path) -> Result<String> {
    let io = |source| Error::Io {
        context: format!("reading the key file {}", path.display()),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(Error::InvalidInput(format!(
            "{} is not a file",
            path.display()
        )));
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(Error::InvalidInput(format!(
            "{} is too large to be an SSH private key",
            path.display()
        )));
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(std::fs::File::open(path).map_err(io)?, MAX_KEY_FILE + 1),
        &mut bytes,
    )
    .map_err(io)?;
    if bytes.len() as u64 > MAX_KEY_FILE {
        return Err(Error::InvalidInput(format!(
            "{} is too large to be an SSH private key",
            path.display()
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| Error::InvalidInput(format!("{} is not a text key file", path.display())))
}

/// Checks a private key file a user passes with `-i`/`--identity`: it exists, is a readable
/// file and is not a public key. Returns its public key where the format allows.
///
/// # Errors
/// [`Error::InvalidInput`] or [`Error::Io`] saying what is wrong with the file.
pub fn check_identity(path: &Path) -> Result<Identity> {
    let text = read_key_file(path)?;
    if PublicKey::parse(&text).is_ok() {
        return Err(Error::InvalidInput(format!(
            "{} is a public key; pass the private key (the file without .pub)",
            path.display()
        )));
    }
    if !text.contains("PRIVATE KEY") {
        return Err(Error::InvalidInput(format!(
            "{} does not look like a private key",
            path.display()
        )));
    }
    Ok(public_key_of_private(&text).map_or(Identity::Opaque, Identity::Known))
}

/// The fingerprint of a private key text's public key, when it can be read.
pub fn private_key_fingerprint(pem: &str) -> Option<String> {
    public_key_of_private(pem).ok().map(|k| k.fingerprint())
}

/// What [`sync_saved_key`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavedKey {
    /// There was no saved key; it was written.
    Created,
    /// The saved key is the current one (same fingerprint); left alone.
    Unchanged,
    /// The saved key was stale (another key, e.g. the session was re-created); replaced.
    Replaced {
        /// The old key's fingerprint, when readable.
        old: Option<String>,
        /// The new key's fingerprint, when readable.
        new: Option<String>,
    },
}

/// Makes the key saved at `path` the session's `current` one: compared by fingerprint (by
/// content when a fingerprint cannot be read), written (0600, atomically) when missing or
/// stale.
///
/// # Errors
/// Reading or writing the file failed.
pub fn sync_saved_key(path: &Path, current: &bai_api::Sensitive<String>) -> Result<SavedKey> {
    let old = match std::fs::read(path) {
        Ok(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(Error::Io {
                context: format!("reading the saved key {}", path.display()),
                source,
            })
        }
    };
    let Some(old) = old else {
        crate::connection::save_key(path, current)?;
        return Ok(SavedKey::Created);
    };
    let new_fp = private_key_fingerprint(current.expose());
    let old_fp = private_key_fingerprint(&old);
    let same = match (&old_fp, &new_fp) {
        (Some(a), Some(b)) => a == b,
        _ => old.trim() == current.expose().trim(),
    };
    if same {
        return Ok(SavedKey::Unchanged);
    }
    crate::connection::save_key(path, current)?;
    Ok(SavedKey::Replaced {
        old: old_fp,
        new: new_fp,
    })
}

// ---- shared readers (also used by `ppk`) ----

/// The base64 body of a PEM block `label`, decoded; PEM headers skipped, an encrypted PEM
/// (`Proc-Type: 4,ENCRYPTED`) refused. `None` when there is no such block.
pub(crate) fn pem_body(pem: &str, label: &str) -> Option<Parse<Vec<u8>>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem.find(&begin)? + begin.len();
    let stop = start + pem[start..].find(&end)?;
    let mut b64 = String::new();
    for line in pem[start..stop].lines() {
        if line.contains(':') {
            if line.contains("ENCRYPTED") || line.starts_with("DEK-Info") {
                return Some(Err(Malformed("the key is encrypted")));
            }
            continue;
        }
        b64.extend(line.chars().filter(|c| !c.is_whitespace()));
    }
    Some(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| Malformed("the key is not valid base64")),
    )
}

/// The clear header of an `openssh-key-v1` key.
pub(crate) struct OpensshHeader<'a> {
    /// The cipher name (`none` when unencrypted).
    pub cipher: &'a [u8],
    /// The public key blob.
    pub public: &'a [u8],
    /// The private section (encrypted unless `cipher` is `none`).
    pub private: &'a [u8],
}

/// Reads the header of a decoded `openssh-key-v1` key holding exactly one key.
pub(crate) fn openssh_header(data: &[u8]) -> Parse<OpensshHeader<'_>> {
    const MAGIC: &[u8] = b"openssh-key-v1\0";
    let rest = data
        .strip_prefix(MAGIC)
        .ok_or(Malformed("not an openssh-key-v1 key"))?;
    let mut w = Wire(rest);
    let cipher = w.string()?;
    let _kdf = w.string()?;
    let _kdf_options = w.string()?;
    if w.u32()? != 1 {
        return Err(Malformed("the file holds more than one key"));
    }
    let public = w.string()?;
    let private = w.string()?;
    Ok(OpensshHeader {
        cipher,
        public,
        private,
    })
}

/// n and e of a DER PKCS#1 `RSAPrivateKey`.
pub(crate) fn pkcs1_public(der: &[u8]) -> Parse<(Vec<u8>, Vec<u8>)> {
    let mut outer = Der(der);
    let mut seq = Der(outer.next(0x30)?);
    let _version = seq.int()?;
    let n = seq.int()?;
    let e = seq.int()?;
    Ok((n, e))
}

/// A DER reader: tag, length, content.
pub(crate) struct Der<'a>(pub &'a [u8]);

impl<'a> Der<'a> {
    /// The content of the next element, which must have `tag`.
    pub fn next(&mut self, tag: u8) -> Parse<&'a [u8]> {
        let d = self.0;
        if d.first() != Some(&tag) {
            return Err(Malformed("unexpected DER structure"));
        }
        let first = *d.get(1).ok_or(Malformed("truncated DER"))?;
        let (len, hdr) = if first < 0x80 {
            (usize::from(first), 2)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 {
                return Err(Malformed("unsupported DER length"));
            }
            let bytes = d.get(2..2 + n).ok_or(Malformed("truncated DER"))?;
            (
                bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b)),
                2 + n,
            )
        };
        let end = hdr.checked_add(len).ok_or(Malformed("truncated DER"))?;
        let content = d.get(hdr..end).ok_or(Malformed("truncated DER"))?;
        self.0 = &d[end..];
        Ok(content)
    }

    /// A non-negative INTEGER's bytes.
    pub fn int(&mut self) -> Parse<Vec<u8>> {
        let v = self.next(0x02)?;
        if v.first().is_some_and(|&b| b & 0x80 != 0) {
            return Err(Malformed("negative integer"));
        }
        Ok(v.to_vec())
    }
}

/// An SSH wire-format reader.
pub(crate) struct Wire<'a>(pub &'a [u8]);

impl<'a> Wire<'a> {
    /// A big-endian u32.
    pub fn u32(&mut self) -> Parse<u32> {
        let b = self.0.get(..4).ok_or(Malformed("truncated key"))?;
        self.0 = &self.0[4..];
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A length-prefixed string.
    pub fn string(&mut self) -> Parse<&'a [u8]> {
        let n = usize::try_from(self.u32()?).map_err(|_| Malformed("length"))?;
        let s = self.0.get(..n).ok_or(Malformed("truncated key"))?;
        self.0 = &self.0[n..];
        Ok(s)
    }

    /// A non-negative mpint's magnitude (leading zero bytes dropped).
    pub fn mpint(&mut self) -> Parse<&'a [u8]> {
        let s = self.string()?;
        if s.first().is_some_and(|&b| b & 0x80 != 0) {
            return Err(Malformed("negative integer"));
        }
        let start = s.iter().position(|&b| b != 0).unwrap_or(s.len());
        Ok(&s[start..])
    }
}

/// Appends a length-prefixed string.
pub(crate) fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(s);
}

/// An SSH mpint of a non-negative magnitude: minimal, with a 0 byte when the top bit is set.
pub(crate) fn put_mpint(out: &mut Vec<u8>, magnitude: &[u8]) {
    let start = magnitude
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(magnitude.len());
    let m = &magnitude[start..];
    let mut v = Vec::with_capacity(m.len() + 1);
    if m.first().is_some_and(|&b| b & 0x80 != 0) {
        v.push(0);
    }
    v.extend_from_slice(m);
    put_string(out, &v);
}
