//! `bai keypair`, end to end against the sandbox, in both login modes: show → generate → show,
//! the saved private key opens sessions created after `generate` (older ones keep their own
//! key), upload of a user's pair (and the server's refusal of a mismatched one), the `.ppk`
//! export checked with `puttygen -L`, and encrypted keys refused locally.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Output;

use bai_testkit::{assert_success as ok, text, within, CliWorld};

const BAI: &str = env!("CARGO_BIN_EXE_bai");
const TEST_SECS: u64 = 150;

#[derive(Debug, Clone, Copy)]
enum Mode {
    Session,
    Api,
}

/// Logs in in `mode` with `--user account`; asserts success.
async fn login(w: &CliWorld, mode: Mode, account: &str) {
    match mode {
        Mode::Session => w.login(account).await,
        Mode::Api => {
            let user = w.sb().user().clone();
            let cmd = w.bai([
                "--user",
                account,
                "login",
                "--endpoint",
                &w.manager,
                "--access-key",
                &user.access_key,
                "--password-stdin",
            ]);
            ok(&w.run(cmd, Some(&format!("{}\n", user.secret_key))).await);
        }
    }
}

fn fails_with(out: &Output, code: i32, needle: &str) {
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit code\nstdout: {}\nstderr: {err}",
        text(&out.stdout)
    );
    assert!(err.contains(needle), "{needle:?} not in: {err}");
}

fn keygen(dir: &Path, name: &str, kind: &str, passphrase: &str) -> PathBuf {
    let key = dir.join(name);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", passphrase, "-C", "me@laptop", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "{}", text(&out.stderr));
    key
}

fn pub_of(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

fn fingerprint(file: &Path) -> String {
    let out = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(file)
        .output()
        .expect("ssh-keygen -l");
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("fingerprint")
        .to_owned()
}

/// The value after `label:` in the command's stdout.
fn field(out: &Output, label: &str) -> String {
    let stdout = text(&out.stdout);
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{label}:")))
        .unwrap_or_else(|| panic!("no {label:?} in: {stdout}"))
        .trim()
        .to_owned()
}

fn no_private_key_shown(out: &Output) {
    for s in [text(&out.stdout), text(&out.stderr)] {
        assert!(!s.contains("PRIVATE KEY"), "a private key was printed: {s}");
    }
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

async fn show_generate_show_then_new_sessions_use_the_key(mode: Mode) {
    let w = CliWorld::start(BAI).await;
    let older = w.session("older").await;
    login(&w, mode, &older.account).await;

    let out = w.bai_run(["keypair", "show"]).await;
    ok(&out);
    assert!(
        text(&out.stdout).contains("no keypair"),
        "{}",
        text(&out.stdout)
    );

    // No terminal and no --yes: nothing happens.
    let out = w.bai_run(["keypair", "generate"]).await;
    fails_with(&out, 2, "--yes");
    assert!(text(&w.bai_run(["keypair", "show"]).await.stdout).contains("no keypair"));

    let out = w.bai_run(["keypair", "generate", "--yes"]).await;
    ok(&out);
    no_private_key_shown(&out);
    assert!(
        text(&out.stderr).contains("NEW sessions only"),
        "{}",
        text(&out.stderr)
    );
    let saved = w.cfg.join("account-keys/default/id_rsa");
    assert_eq!(PathBuf::from(field(&out, "private key")), saved);
    assert_eq!(mode_of(&saved), 0o600);
    let fp = field(&out, "fingerprint");
    assert_eq!(fingerprint(&saved), fp);

    let out = w.bai_run(["keypair", "show"]).await;
    ok(&out);
    no_private_key_shown(&out);
    assert_eq!(field(&out, "fingerprint"), fp);
    assert!(field(&out, "public key").starts_with("ssh-rsa "));

    // A session created now carries the account keypair: the saved key opens it.
    let newer = w.session("newer").await;
    let out = w
        .bai_run([
            "ssh",
            "-i",
            saved.to_str().expect("utf8"),
            "newer",
            "--",
            "echo",
            "ok",
        ])
        .await;
    ok(&out);
    assert_eq!(text(&out.stdout).trim(), "ok");
    assert_eq!(fingerprint(newer.id_container.as_ref().expect("key")), fp);
    // The older one keeps its own key, which bai fetches as before.
    assert_ne!(fingerprint(older.id_container.as_ref().expect("key")), fp);
    let out = w.bai_run(["ssh", "older", "--", "echo", "ok"]).await;
    ok(&out);
    assert_eq!(text(&out.stdout).trim(), "ok");
}

async fn upload_pairs(mode: Mode) {
    let w = CliWorld::start(BAI).await;
    let s = w.session("s1").await;
    login(&w, mode, &s.account).await;
    let dir = w.tmp.join("mykeys");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mine = keygen(&dir, "id_mine", "ed25519", "");
    let other = keygen(&dir, "id_other", "ed25519", "");
    let mine_s = mine.to_str().expect("utf8");

    // Public key from PRIVATE_KEY.pub.
    let out = w.bai_run(["keypair", "upload", mine_s]).await;
    ok(&out);
    no_private_key_shown(&out);
    let fp = fingerprint(&pub_of(&mine));
    assert_eq!(field(&out, "fingerprint"), fp);
    let out = w.bai_run(["keypair", "show"]).await;
    ok(&out);
    assert_eq!(field(&out, "fingerprint"), fp);

    // A mismatched pair: the server's refusal, with its message.
    let out = w
        .bai_run([
            "keypair",
            "upload",
            mine_s,
            "--public-key",
            pub_of(&other).to_str().expect("utf8"),
        ])
        .await;
    assert!(!out.status.success());
    fails_with(&out, 2, "does not match the private key");
    assert_eq!(
        field(&w.bai_run(["keypair", "show"]).await, "fingerprint"),
        fp
    );

    // No .pub: derived from the private key.
    std::fs::remove_file(pub_of(&other)).expect("rm");
    let out = w
        .bai_run(["keypair", "upload", other.to_str().expect("utf8")])
        .await;
    ok(&out);
    assert_eq!(field(&out, "fingerprint"), fingerprint(&other));
    let out = w.bai_run(["keypair", "show"]).await;
    assert_eq!(field(&out, "fingerprint"), fingerprint(&other));

    // A public key passed as the private one is refused locally.
    let out = w
        .bai_run(["keypair", "upload", pub_of(&mine).to_str().expect("utf8")])
        .await;
    fails_with(&out, 2, "public key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_generate_show_session_mode() {
    within(
        TEST_SECS,
        show_generate_show_then_new_sessions_use_the_key(Mode::Session),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_generate_show_api_mode() {
    within(
        TEST_SECS,
        show_generate_show_then_new_sessions_use_the_key(Mode::Api),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_session_mode() {
    within(TEST_SECS, upload_pairs(Mode::Session)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_api_mode() {
    within(TEST_SECS, upload_pairs(Mode::Api)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_keys_are_refused_locally() {
    within(TEST_SECS, async {
        let w = CliWorld::start(BAI).await;
        let s = w.session("s1").await;
        w.login(&s.account).await;
        let dir = w.tmp.join("mykeys");
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (name, kind) in [("id_ed", "ed25519"), ("id_rsa", "rsa")] {
            let key = keygen(&dir, name, kind, "secret phrase");
            let key_s = key.to_str().expect("utf8");

            let out = w.bai_run(["keypair", "upload", key_s]).await;
            fails_with(&out, 2, "password-protected");
            assert!(
                text(&out.stderr).contains("ssh-keygen -p"),
                "{}",
                text(&out.stderr)
            );

            let out = w.bai_run(["keypair", "ppk", key_s]).await;
            fails_with(&out, 2, "password-protected");
            let err = text(&out.stderr);
            assert!(err.contains("ssh-keygen -p -f COPY -N ''"), "{err}");
            assert!(err.contains("PuTTYgen"), "{err}");
            assert!(!key.with_extension("ppk").exists());
        }
        // A PEM-encrypted RSA key (Proc-Type: 4,ENCRYPTED) too.
        let key = keygen(&dir, "id_pem", "rsa", "");
        let out = std::process::Command::new("ssh-keygen")
            .args([
                "-q",
                "-p",
                "-m",
                "PEM",
                "-N",
                "secret phrase",
                "-P",
                "",
                "-f",
            ])
            .arg(&key)
            .output()
            .expect("ssh-keygen -p");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(std::fs::read_to_string(&key)
            .expect("key")
            .contains("ENCRYPTED"));
        let out = w
            .bai_run(["keypair", "ppk", key.to_str().expect("utf8")])
            .await;
        fails_with(&out, 2, "password-protected");

        let out = w.bai_run(["keypair", "show"]).await;
        assert!(
            text(&out.stdout).contains("no keypair"),
            "nothing was uploaded"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ppk_export_is_accepted_by_puttygen() {
    within(TEST_SECS, async {
        // No login needed: the key is the user's own.
        let w = CliWorld::start(BAI).await;
        let dir = w.tmp.join("mykeys");
        std::fs::create_dir_all(&dir).expect("mkdir");
        for (name, kind) in [("id_ed25519", "ed25519"), ("id_rsa", "rsa"), ("pem", "rsa")] {
            let key = keygen(&dir, name, kind, "");
            if name == "pem" {
                // PEM PKCS#1, as id_container and the server-generated account key are.
                let out = std::process::Command::new("ssh-keygen")
                    .args(["-q", "-p", "-m", "PEM", "-N", "", "-P", "", "-f"])
                    .arg(&key)
                    .output()
                    .expect("ssh-keygen -p");
                assert!(out.status.success(), "{}", text(&out.stderr));
                let pem = std::fs::read_to_string(&key).expect("key");
                assert!(pem.contains("BEGIN RSA PRIVATE KEY"), "{pem}");
            }
            let out_file = dir.join(format!("{name}-export.ppk"));
            let out = w
                .bai_run([
                    "keypair",
                    "ppk",
                    key.to_str().expect("utf8"),
                    "-o",
                    out_file.to_str().expect("utf8"),
                ])
                .await;
            ok(&out);
            no_private_key_shown(&out);
            assert_eq!(mode_of(&out_file), 0o600);
            assert_eq!(field(&out, "fingerprint"), fingerprint(&pub_of(&key)));
            let ppk = std::fs::read_to_string(&out_file).expect("ppk");
            assert!(ppk.starts_with("PuTTY-User-Key-File-"), "{ppk}");

            let pg = std::process::Command::new("puttygen")
                .arg("-L")
                .arg(&out_file)
                .output()
                .expect("puttygen");
            assert!(pg.status.success(), "puttygen: {}", text(&pg.stderr));
            let theirs = text(&pg.stdout);
            let mine = std::fs::read_to_string(pub_of(&key)).expect("pub");
            let first_two = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            assert_eq!(first_two(&theirs), first_two(&mine));

            // Default output: next to the key, with the extension .ppk.
            let out = w
                .bai_run(["keypair", "ppk", key.to_str().expect("utf8")])
                .await;
            ok(&out);
            assert_eq!(PathBuf::from(field(&out, "ppk")), key.with_extension("ppk"));
            assert_eq!(mode_of(&key.with_extension("ppk")), 0o600);
        }
    })
    .await;
}
