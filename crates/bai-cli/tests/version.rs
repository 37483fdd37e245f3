//! `bai --version` and `bai version [--json]`: the workspace version, the build commit, and
//! the server's versions when logged in (none when not; an unreachable server is a field).

use bai_testkit::{assert_success, text, within, CliWorld, TEST_SECS};
use serde_json::Value;

const BAI: &str = env!("CARGO_BIN_EXE_bai");

/// `[workspace.package] version` of the top Cargo.toml.
fn workspace_version() -> String {
    let toml = include_str!("../../../Cargo.toml");
    let section = toml
        .split("[workspace.package]")
        .nth(1)
        .expect("a [workspace.package] section");
    section
        .lines()
        .find_map(|l| {
            let l = l.trim();
            l.strip_prefix("version").map(|v| {
                v.trim_start()
                    .trim_start_matches('=')
                    .trim()
                    .trim_matches('"')
            })
        })
        .expect("a workspace version")
        .to_owned()
}

async fn version_json(w: &CliWorld) -> Value {
    let out = w.bai_run(["version", "--json"]).await;
    assert_success(&out);
    serde_json::from_str(&text(&out.stdout)).expect("JSON on stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dash_dash_version_is_the_workspace_version() {
    within(TEST_SECS, async {
        let w = CliWorld::start(BAI).await;
        let out = w.bai_run(["--version"]).await;
        assert_success(&out);
        assert_eq!(
            text(&out.stdout).trim(),
            format!("bai {}", workspace_version())
        );
        // The app shows bai-core's, which is the same.
        assert_eq!(bai_core::about::VERSION, workspace_version());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_json_logged_out_logged_in_and_unreachable() {
    within(TEST_SECS, async {
        let mut w = CliWorld::start(BAI).await;

        // Not logged in: no server, no error.
        let v = version_json(&w).await;
        assert_eq!(v["version"], workspace_version());
        assert_eq!(v["commit"], bai_core::about::BUILD_COMMIT);
        assert_ne!(v["commit"], "");
        assert!(v["server"].is_null(), "{v}");
        let out = w.bai_run(["version"]).await;
        assert_success(&out);
        let human = text(&out.stdout);
        assert!(
            human.starts_with(&format!(
                "bai {} (commit {})",
                workspace_version(),
                bai_core::about::BUILD_COMMIT
            )),
            "{human}"
        );
        assert!(human.contains("server: not logged in"), "{human}");

        // Logged in: the sandbox's versions.
        w.login("work").await;
        let v = version_json(&w).await;
        let server = &v["server"];
        assert_eq!(server["endpoint"], w.webserver.trim_end_matches('/'), "{v}");
        assert_eq!(server["mode"], "session");
        assert_eq!(
            server["api_version"],
            bai_sandbox::Config::default().server_version,
            "{v}"
        );
        assert_eq!(
            server["manager_version"],
            bai_sandbox::MANAGER_VERSION,
            "{v}"
        );
        assert!(server["error"].is_null(), "{v}");
        let human = text(&w.bai_run(["version"]).await.stdout);
        assert!(human.contains("session mode"), "{human}");
        assert!(human.contains("API v"), "{human}");

        // The server is gone: still a success, the reason in a field.
        w.sb.take().expect("sandbox").shutdown().await;
        let v = version_json(&w).await;
        let server = &v["server"];
        assert!(server["api_version"].is_null(), "{v}");
        assert_eq!(server["error"]["code"], "unreachable", "{v}");
        assert!(
            server["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("cannot reach")),
            "{v}"
        );
    })
    .await;
}

/// The packages install these (scripts/dist.sh): every subcommand is in the completion scripts
/// and the manual page, and neither needs a login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_and_the_manual_page_describe_every_subcommand() {
    within(TEST_SECS, async {
        let out = tokio::process::Command::new(BAI)
            .env("BAI_CONFIG_DIR", "/nonexistent/bai-config")
            .args(["man"])
            .kill_on_drop(true)
            .output()
            .await
            .expect("bai man");
        assert_success(&out);
        let man = text(&out.stdout).replace("\\-", "-");
        assert!(man.starts_with(".ie") || man.contains(".TH bai 1"), "{man}");
        for shell in ["bash", "zsh", "fish"] {
            let out = tokio::process::Command::new(BAI)
                .env("BAI_CONFIG_DIR", "/nonexistent/bai-config")
                .args(["completions", shell])
                .kill_on_drop(true)
                .output()
                .await
                .expect("bai completions");
            assert_success(&out);
            let script = text(&out.stdout);
            for sub in [
                "login",
                "ps",
                "app",
                "ssh",
                "scp",
                "config-ssh",
                "keypair",
                "version",
            ] {
                assert!(script.contains(sub), "{shell} completions lack {sub}");
                assert!(man.contains(sub), "the manual page lacks {sub}");
            }
        }
        let out = tokio::process::Command::new(BAI)
            .args(["completions", "tcsh"])
            .kill_on_drop(true)
            .output()
            .await
            .expect("bai completions tcsh");
        assert!(!out.status.success());
        assert!(text(&out.stderr).contains("tcsh"), "{}", text(&out.stderr));
    })
    .await
}
