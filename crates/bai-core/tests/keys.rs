//! `bai_core::keys` against the real `ssh-keygen`: fingerprints as `ssh-keygen -l` prints
//! them, public keys read from private key files without decrypting, and the upload check;
//! hostile input never panics (proptest).

use std::process::Command;

use bai_core::keys::{
    check_identity, fingerprint, public_key_of_private, sync_saved_key, validate_public_key,
    Identity, PublicKey, SavedKey,
};
use proptest::prelude::*;

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

/// Generates a key (`kind`, extra `format` args, passphrase) in `dir`; returns its path.
fn keygen(dir: &std::path::Path, name: &str, kind: &[&str], pass: &str) -> String {
    let key = dir.join(name).to_string_lossy().into_owned();
    let mut args = vec!["-q", "-N", pass, "-C", "me@host"];
    args.extend_from_slice(kind);
    args.extend_from_slice(&["-f", &key]);
    tool("ssh-keygen", &args);
    key
}

/// The fingerprint field of `ssh-keygen -l -E sha256 -f FILE`.
fn keygen_fingerprint(file: &str) -> String {
    tool("ssh-keygen", &["-l", "-E", "sha256", "-f", file])
        .split_whitespace()
        .nth(1)
        .expect("fingerprint field")
        .to_owned()
}

const KINDS: &[&[&str]] = &[
    &["-t", "ed25519"],
    &["-t", "rsa", "-b", "2048"],
    &["-t", "rsa", "-b", "3072", "-m", "PEM"],
    &["-t", "ecdsa", "-b", "256"],
    &["-t", "ecdsa", "-b", "384"],
    &["-t", "ecdsa", "-b", "521"],
];

#[test]
fn fingerprints_and_public_keys_match_ssh_keygen() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (i, kind) in KINDS.iter().enumerate() {
        let key = keygen(dir.path(), &format!("k{i}"), kind, "");
        let pub_file = format!("{key}.pub");
        let line = std::fs::read_to_string(&pub_file).expect("pub");
        let expected = keygen_fingerprint(&pub_file);
        assert!(expected.starts_with("SHA256:") && !expected.ends_with('='));

        let parsed = PublicKey::parse(&line).expect("parses");
        assert_eq!(parsed.fingerprint(), expected, "{kind:?}");
        assert_eq!(parsed.comment.as_deref(), Some("me@host"));
        assert_eq!(parsed.to_line(), line.trim());
        assert_eq!(validate_public_key(&line).expect("valid"), parsed);

        // The private key file gives the same public key, nothing decrypted.
        let pem = std::fs::read_to_string(&key).expect("key");
        let from_private = public_key_of_private(&pem).expect("public part");
        assert_eq!(from_private.blob, parsed.blob, "{kind:?}");
        assert_eq!(from_private.fingerprint(), expected);
        assert_eq!(keygen_fingerprint(&key), expected);
        assert_eq!(
            check_identity(std::path::Path::new(&key)).expect("identity"),
            Identity::Known(from_private)
        );
    }
}

#[test]
fn an_encrypted_openssh_key_gives_its_public_key_without_the_passphrase() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "enc", &["-t", "ed25519"], "secret passphrase");
    let pem = std::fs::read_to_string(&key).expect("key");
    let expected = keygen_fingerprint(&format!("{key}.pub"));
    assert_eq!(
        public_key_of_private(&pem)
            .expect("public part")
            .fingerprint(),
        expected
    );
    // Encrypted PEM RSA hides n and e: an error, never a guess.
    let key = keygen(
        dir.path(),
        "encpem",
        &["-t", "rsa", "-b", "2048", "-m", "PEM"],
        "secret passphrase",
    );
    let pem = std::fs::read_to_string(&key).expect("key");
    assert!(public_key_of_private(&pem).is_err());
    assert_eq!(
        check_identity(std::path::Path::new(&key)).expect("still a private key"),
        Identity::Opaque
    );
}

#[test]
fn validation_refuses_what_a_server_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = keygen(dir.path(), "k", &["-t", "ed25519"], "");
    let line = std::fs::read_to_string(format!("{key}.pub")).expect("pub");
    let b64 = line.split_whitespace().nth(1).expect("b64");
    // The type before the blob must be the one inside it.
    assert!(validate_public_key(&format!("ssh-rsa {b64}")).is_err());
    // Unknown types, DSA, garbage, truncation, trailing bytes, private keys, two lines.
    assert!(validate_public_key(&format!("ssh-foo {b64}")).is_err());
    assert!(validate_public_key("ssh-dss AAAAB3NzaC1kc3MAAACBAP").is_err());
    assert!(validate_public_key("ssh-ed25519 !!!").is_err());
    assert!(validate_public_key(&format!("ssh-ed25519 {}", &b64[..b64.len() - 8])).is_err());
    let mut blob = PublicKey::parse(&line).expect("parses").blob;
    blob.push(0);
    let padded = PublicKey {
        algorithm: "ssh-ed25519".into(),
        blob,
        comment: None,
    };
    assert!(validate_public_key(&padded.to_line()).is_err());
    let pem = std::fs::read_to_string(&key).expect("key");
    let e = validate_public_key(&pem).expect_err("a private key");
    assert!(e.to_string().contains("private key"), "{e}");
    assert!(validate_public_key(&format!("{line}\n{line}")).is_err());
    assert!(validate_public_key("").is_err());
    // Surrounding whitespace and no comment are fine.
    assert!(validate_public_key(&format!("  ssh-ed25519 {b64}  \n")).is_ok());
    // A public key passed as an identity is refused with a clear word.
    let e = check_identity(std::path::Path::new(&format!("{key}.pub"))).expect_err("pub");
    assert!(e.to_string().contains("public key"), "{e}");
    assert!(check_identity(&dir.path().join("missing")).is_err());
    assert_eq!(
        fingerprint(b""),
        "SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU"
    );
}

#[test]
fn a_saved_key_is_replaced_only_when_stale() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = keygen(
        dir.path(),
        "a",
        &["-t", "rsa", "-b", "2048", "-m", "PEM"],
        "",
    );
    let b = keygen(dir.path(), "b", &["-t", "ed25519"], "");
    let key = |p: &str| bai_core::bai_api::Sensitive::new(std::fs::read_to_string(p).expect("key"));
    let saved = dir.path().join("keys/default/s1/id_container");
    assert_eq!(
        sync_saved_key(&saved, &key(&a)).expect("sync"),
        SavedKey::Created
    );
    assert_eq!(
        sync_saved_key(&saved, &key(&a)).expect("sync"),
        SavedKey::Unchanged
    );
    let got = sync_saved_key(&saved, &key(&b)).expect("sync");
    assert_eq!(
        got,
        SavedKey::Replaced {
            old: Some(keygen_fingerprint(&a)),
            new: Some(keygen_fingerprint(&b)),
        }
    );
    assert_eq!(
        keygen_fingerprint(&saved.to_string_lossy()),
        keygen_fingerprint(&b)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&saved)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hostile_public_key_lines_never_panic(s in "\\PC*") {
        if let Ok(k) = PublicKey::parse(&s) {
            let _ = k.fingerprint();
            let _ = k.blob_algorithm();
            let _ = k.to_line();
        }
        let _ = validate_public_key(&s);
    }

    #[test]
    fn arbitrary_blobs_never_panic(t in "(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp256|sk-ssh-ed25519@openssh.com|x)",
                                   blob in proptest::collection::vec(any::<u8>(), 0..300)) {
        use base64::Engine as _;
        let line = format!("{t} {}", base64::engine::general_purpose::STANDARD.encode(&blob));
        let _ = validate_public_key(&line);
        // A blob with a correct type prefix and random tail.
        let mut framed = Vec::new();
        framed.extend_from_slice(&u32::try_from(t.len()).unwrap_or(0).to_be_bytes());
        framed.extend_from_slice(t.as_bytes());
        framed.extend_from_slice(&blob);
        let line = format!("{t} {}", base64::engine::general_purpose::STANDARD.encode(&framed));
        let _ = validate_public_key(&line);
    }

    #[test]
    fn arbitrary_private_key_files_never_panic(
        label in "(OPENSSH|RSA) PRIVATE KEY",
        body in proptest::collection::vec(any::<u8>(), 0..400),
        magic in any::<bool>(),
    ) {
        use base64::Engine as _;
        let mut data = if magic { b"openssh-key-v1\0".to_vec() } else { Vec::new() };
        data.extend_from_slice(&body);
        let pem = format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            base64::engine::general_purpose::STANDARD.encode(&data)
        );
        let _ = public_key_of_private(&pem);
        let _ = bai_core::ppk::to_ppk(&pem, "");
    }
}
