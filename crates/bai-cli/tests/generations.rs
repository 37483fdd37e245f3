//! The CLI against every Backend.AI generation the sandbox plays (`--emulate`,
//! docs/compatibility.md): the full end-to-end flow (login in both modes, ps, `app` + a real
//! ssh with the downloaded key, scp with sha256, `session download`, config-ssh, `ssh` by name
//! and by UUID) on **every** generation, one test each (about a second apiece). The smoke
//! subset (session login, ps, `ssh -- echo`) also runs over all of them in one test, as the
//! quick check the issue asked for when time is short.

use bai_sandbox::Generation;
use bai_testkit::sandbox::emulating;
use bai_testkit::{
    assert_success as ok, mode, sha256_file, text, within, CliWorld, SshTarget, CMD_TIMEOUT,
};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const BAI: &str = env!("CARGO_BIN_EXE_bai");

async fn world(generation: Generation) -> CliWorld {
    CliWorld::start_with(BAI, emulating(generation)).await
}

/// Session login, ps, and `ssh -- echo ok` by name and by UUID.
async fn smoke(generation: Generation) {
    let w = world(generation).await;
    let s1 = w.session("s1").await;
    w.login(&s1.account).await;
    let out = w.bai_run(&["ps"]).await;
    ok(&out);
    let table = text(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("s1 ") && l.contains("RUNNING") && l.contains("sshd")),
        "{generation}: {table}"
    );
    for name in [s1.name.clone(), s1.id.to_string()] {
        let out = w.bai_run(&["ssh", &name, "--", "echo", "ok"]).await;
        ok(&out);
        assert_eq!(text(&out.stdout).trim(), "ok", "{generation} {name}");
    }
    // A name prefix never reaches a session, whatever the server's lookup (22.09 matches
    // prefixes; bai names sessions exactly).
    let out = w.bai_run(&["ssh", "s", "--", "true"]).await;
    assert!(
        !out.status.success(),
        "{generation}: a prefix reached a session"
    );
    if let Some(sb) = w.sb {
        sb.shutdown().await;
    }
}

/// The whole guide flow in session mode, then API mode.
async fn full(generation: Generation) {
    let w = world(generation).await;
    let s1 = w.session("s1").await;
    w.login(&s1.account).await;
    let out = w.bai_run(&["ps", "--json"]).await;
    ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v[0]["name"], "s1", "{generation}: {v}");
    assert_eq!(v[0]["ssh"], true, "{generation}: {v}");

    // session download (the key, 0600) …
    let keys = w.cwd.join("keys");
    ok(&w
        .bai_run(&[
            "session",
            "download",
            "s1",
            "id_container",
            "-o",
            keys.to_str().expect("utf8"),
        ])
        .await);
    let key = keys.join("id_container");
    assert_eq!(mode(&key), 0o600);
    assert_eq!(
        std::fs::read(&key).expect("key"),
        std::fs::read(s1.id_container.as_ref().expect("id_container")).expect("original"),
        "{generation}"
    );

    // … `bai app` and a plain ssh with that key …
    let mut cmd = w.bai(["app", "s1", "-b", "127.0.0.1:0"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .stdin(std::process::Stdio::null());
    let mut app = cmd.spawn().expect("spawn app");
    let mut lines = BufReader::new(app.stdout.take().expect("stdout")).lines();
    let url = tokio::time::timeout(CMD_TIMEOUT, lines.next_line())
        .await
        .expect("app ready in time")
        .expect("read")
        .expect("a line");
    let port: u16 = url
        .strip_prefix("tcp://127.0.0.1:")
        .unwrap_or_else(|| panic!("unexpected line {url:?}"))
        .parse()
        .expect("port");
    let args = SshTarget::new(port, &key, s1.account.clone()).ssh_args(&["echo", "ok"]);
    let out = w.run(w.command("ssh", &args), None).await;
    ok(&out);
    assert_eq!(text(&out.stdout).trim(), "ok", "{generation}");
    app.kill().await.expect("stop app");

    // … scp both ways with sha256 …
    let local = w.cwd.join("up.bin");
    bai_testkit::write_noise_file(&local, 4 * 1024 * 1024, 7);
    let remote = s1.home.join("up.bin");
    ok(&w
        .bai_run(&["scp", "up.bin", &format!("s1:{}", remote.display())])
        .await);
    assert_eq!(sha256_file(&remote), sha256_file(&local), "{generation}");
    ok(&w
        .bai_run(&["scp", &format!("s1:{}", remote.display()), "down.bin"])
        .await);
    assert_eq!(
        sha256_file(&w.cwd.join("down.bin")),
        sha256_file(&local),
        "{generation}"
    );

    // … config-ssh and ssh by its alias.
    let ssh_dir = w.home.join(".ssh");
    std::fs::create_dir_all(&ssh_dir).expect("mkdir");
    ok(&w.bai_run(&["config-ssh"]).await);
    let main = ssh_dir.join("config").display().to_string();
    let out = w
        .run(
            w.command(
                "ssh",
                ["-F", &main, "-o", "BatchMode=yes", "bai-s1", "echo", "ok"],
            ),
            None,
        )
        .await;
    ok(&out);
    assert_eq!(text(&out.stdout).trim(), "ok", "{generation}");
    ok(&w.bai_run(&["config-ssh", "--remove"]).await);
    ok(&w.bai_run(&["logout"]).await);

    // API mode: a keypair against the manager.
    let user = w.sb().user().clone();
    let out = w
        .run(
            w.bai([
                "--user",
                &s1.account,
                "login",
                "--endpoint",
                &w.manager,
                "--access-key",
                &user.access_key,
                "--password-stdin",
            ]),
            Some(&format!("{}\n", user.secret_key)),
        )
        .await;
    ok(&out);
    assert!(
        text(&out.stdout).contains("api mode"),
        "{}",
        text(&out.stdout)
    );
    ok(&w.bai_run(&["ps"]).await);
    let out = w.bai_run(&["ssh", "s1", "--", "echo", "ok"]).await;
    ok(&out);
    assert_eq!(text(&out.stdout).trim(), "ok", "{generation}");
    if let Some(sb) = w.sb {
        sb.shutdown().await;
    }
}

macro_rules! full_flow {
    ($($name:ident => $generation:expr),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            within(180, full($generation)).await;
        }
    )*};
}

full_flow! {
    full_flow_22_09 => Generation::G22_09,
    full_flow_23_09 => Generation::G23_09,
    full_flow_24_03 => Generation::G24_03,
    full_flow_24_09 => Generation::G24_09,
    full_flow_25_x => Generation::G25,
    full_flow_26_4rc => Generation::G26_4Rc,
    full_flow_26_x => Generation::G26,
}

#[test]
fn every_generation_has_its_full_flow_test() {
    // The macro above lists them by hand: a new generation must be added there too.
    assert_eq!(Generation::ALL.len(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_on_every_generation() {
    within(300, async {
        for generation in Generation::ALL {
            smoke(generation).await;
        }
    })
    .await;
}
