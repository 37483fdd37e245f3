//! Sandbox fixtures: a [`Sandbox`] started in-process on port 0, with sessions; logged-in
//! webserver sessions. Its URLs, user and keys are the sandbox's own (`webserver_url()`,
//! `manager_url()`, `user()`, a session's `id_container`).

use bai_sandbox::{Config, Generation, Sandbox, SessionInfo, SessionSpec, Status};

/// Starts a sandbox with `config`.
pub async fn start(config: Config) -> Sandbox {
    Sandbox::start(config).await.expect("sandbox starts")
}

/// A sandbox with `n` RUNNING demo sessions (`demo-1`, …).
pub async fn demo(n: usize) -> Sandbox {
    start(Config {
        demo_sessions: n,
        ..Config::default()
    })
    .await
}

/// A sandbox playing `generation` (`bai-sandbox --emulate`), otherwise default.
pub fn emulating(generation: Generation) -> Config {
    Config {
        generation,
        ..Config::default()
    }
}

/// Starts a sandbox with `config` and creates `sessions`, in order.
pub async fn with_sessions(
    config: Config,
    sessions: impl IntoIterator<Item = SessionSpec>,
) -> (Sandbox, Vec<SessionInfo>) {
    let sb = start(config).await;
    let mut infos = Vec::new();
    for spec in sessions {
        let name = spec.name.clone();
        let info = sb
            .create_session(spec)
            .await
            .unwrap_or_else(|e| panic!("create session {name:?}: {e}"));
        infos.push(info);
    }
    (sb, infos)
}

/// What the desktop app's tests see: `s1` RUNNING (with sshd and the built-in apps:
/// `jupyter`, `jupyterlab`, `tcp-echo`) and `prep` PREPARING.
pub fn desktop_sessions() -> [SessionSpec; 2] {
    [
        SessionSpec::running("s1").web_apps(),
        SessionSpec::with_status("prep", Status::Preparing),
    ]
}

/// Logs the demo user in at the webserver; returns the `X-BackendAI-SessionID`.
pub async fn login_sid(sb: &Sandbox) -> String {
    let r = reqwest::Client::new()
        .post(format!("{}/server/login", sb.webserver_url()))
        .json(&serde_json::json!({"username": sb.user().email, "password": sb.user().password}))
        .send()
        .await
        .expect("login request");
    r.headers()["x-backendai-sessionid"]
        .to_str()
        .expect("a text session id")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::within;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sessions_are_created_and_the_user_can_log_in() {
        within(60, async {
            let (sb, infos) = with_sessions(Config::default(), desktop_sessions()).await;
            assert_eq!(infos.len(), 2);
            assert_eq!(infos[0].name, "s1");
            assert!(infos[0].sshd_port.is_some() && infos[0].id_container.is_some());
            assert_eq!(infos[1].status, Status::Preparing);
            assert!(!login_sid(&sb).await.is_empty());
            sb.shutdown().await;
        })
        .await;
    }
}
