//! Keys, end to end against the sandbox: a key saved by `config-ssh` never goes stale (a
//! session re-created under the same name gets a new `id_container`), and sessions whose
//! `.ssh` folder is the user's own (no `id_container`) work with `-i KEY` / `--identity KEY`.

use std::path::{Path, PathBuf};

use bai_sandbox::SessionSpec;
use bai_testkit::{assert_success as ok, sha256_file, text, within, write_noise_file, CliWorld};

const BAI: &str = env!("CARGO_BIN_EXE_bai");
const TEST_SECS: u64 = 120;

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-N", "", "-t", "ed25519", "-C", "me@laptop", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("pub");
    (key, public)
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

async fn ssh_alias(w: &CliWorld, alias: &str) -> std::process::Output {
    let main = w.home.join(".ssh/config").display().to_string();
    w.run(
        w.command(
            "ssh",
            ["-F", &main, "-o", "BatchMode=yes", alias, "echo", "ok"],
        ),
        None,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_ssh_replaces_a_stale_saved_key_of_a_re_created_session() {
    within(TEST_SECS, async {
        let w = CliWorld::start(BAI).await;
        let s1 = w.session("s1").await;
        w.login(&s1.account).await;
        ok(&w.bai_run(["config-ssh"]).await);
        let saved = w.cfg.join("keys/default/s1/id_container");
        let first = fingerprint(&saved);
        assert_eq!(first, fingerprint(s1.id_container.as_ref().expect("key")));
        let out = ssh_alias(&w, "bai-s1").await;
        ok(&out);

        // Same name, new session, new key.
        w.sb().terminate("s1").await.expect("terminate");
        let again = w.session("s1").await;
        let current = fingerprint(again.id_container.as_ref().expect("key"));
        assert_ne!(first, current);

        let out = w.bai_run(["config-ssh"]).await;
        ok(&out);
        assert!(
            text(&out.stderr).contains("replaced"),
            "says so: {}",
            text(&out.stderr)
        );
        assert_eq!(fingerprint(&saved), current);
        let out = ssh_alias(&w, "bai-s1").await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bai_ssh_replaces_a_stale_saved_key_before_using_it() {
    within(TEST_SECS, async {
        let w = CliWorld::start(BAI).await;
        let s1 = w.session("s1").await;
        w.login(&s1.account).await;
        ok(&w.bai_run(["config-ssh"]).await);
        let saved = w.cfg.join("keys/default/s1/id_container");
        w.sb().terminate("s1").await.expect("terminate");
        let again = w.session("s1").await;
        let current = fingerprint(again.id_container.as_ref().expect("key"));

        let out = w.bai_run(["ssh", "s1", "--", "echo", "ok"]).await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok");
        assert!(text(&out.stderr).contains("stale"), "{}", text(&out.stderr));
        assert_eq!(fingerprint(&saved), current);
        // So the config-ssh entry works again too.
        ok(&ssh_alias(&w, "bai-s1").await);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_key_sessions_with_dash_i_and_config_ssh_identity() {
    within(TEST_SECS, async {
        let w = CliWorld::start(BAI).await;
        let keys = w.tmp.join("mykeys");
        std::fs::create_dir_all(&keys).expect("mkdir");
        let (key, public) = keygen(&keys, "id_mine");
        let mut spec = SessionSpec::running("own");
        spec.authorized_keys = Some(public);
        let own = w.sb().create_session(spec).await.expect("own-key session");
        assert!(own.id_container.is_none());
        w.login(&own.account).await;
        let key_s = key.display().to_string();

        // No id_container and no -i: the error says to pass -i KEY.
        let out = w.bai_run(["ssh", "own", "--", "echo", "ok"]).await;
        assert_ne!(out.status.code(), Some(0));
        let err = text(&out.stderr);
        assert!(err.contains("error: ") && err.contains("-i KEY"), "{err}");

        // The public key passed by mistake is refused locally.
        let out = w
            .bai_run(["ssh", "-i", &format!("{key_s}.pub"), "own", "--", "true"])
            .await;
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
        assert!(text(&out.stderr).contains("public key"));

        let out = w
            .bai_run(["ssh", "-i", &key_s, "own", "--", "echo", "ok"])
            .await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok");

        let local = w.cwd.join("up.bin");
        write_noise_file(&local, 300_000, 7);
        ok(&w
            .bai_run(["scp", "-i", &key_s, "up.bin", "own:up.bin"])
            .await);
        assert_eq!(sha256_file(&own.home.join("up.bin")), sha256_file(&local));
        ok(&w
            .bai_run(["scp", "-i", &key_s, "own:up.bin", "down.bin"])
            .await);
        assert_eq!(sha256_file(&w.cwd.join("down.bin")), sha256_file(&local));

        // config-ssh with a relative --identity writes an absolute IdentityFile.
        std::fs::copy(&key, w.cwd.join("rel_key")).expect("copy");
        let out = w.bai_run(["config-ssh", "--identity", "rel_key"]).await;
        ok(&out);
        let entries =
            std::fs::read_to_string(w.home.join(".ssh/bai/config")).expect("include file");
        assert!(entries.contains("Host bai-own\n"), "{entries}");
        assert!(
            entries.contains(&format!("IdentityFile {}", w.cwd.join("rel_key").display())),
            "{entries}"
        );
        let out = ssh_alias(&w, "bai-own").await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok");
    })
    .await;
}
