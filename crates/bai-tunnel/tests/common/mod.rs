//! Shared rig of the integration tests: a bai-sandbox started in-process on port 0, a small
//! HMAC signer of our own (protocol.md §2; deliberately not bai-api's nor the sandbox's, so a
//! signing mistake cannot hide in both sides), the signed [`Connector`], an echo app, OpenSSH
//! command builders, and fast test data.
#![allow(dead_code, unused_imports)] // each test binary uses a different part of the rig

use std::net::SocketAddr;
use std::process::Stdio;

use bai_sandbox::{Config, Sandbox, SessionInfo, SessionSpec, Status};
pub use bai_testkit::sign::API_VERSION;
use bai_testkit::sign::{authorization, now_date};
pub use bai_testkit::{echo_server, noise, sha256_file, within, write_noise_file, SshTarget};
use bai_tunnel::{BoxError, BoxFuture, Connector, Event, Options, Target, Tunnel, TunnelHandle};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::broadcast;

/// Builds a freshly signed tcpproxy request for every connection.
#[derive(Debug, Clone)]
pub struct SignedConnector {
    /// `127.0.0.1:PORT` of the manager.
    pub host: String,
    pub session: String,
    pub app: String,
    pub access_key: String,
    pub secret_key: String,
}

impl SignedConnector {
    pub fn target(&self) -> Result<Target, BoxError> {
        let path = format!("/stream/session/{}/tcpproxy?app={}", self.session, self.app);
        let date = now_date(0);
        let auth = authorization(
            &self.access_key,
            &self.secret_key,
            "GET",
            &path,
            &date,
            &self.host,
        );
        let request = http::Request::get(format!("ws://{}{}", self.host, path))
            .header("Host", &self.host)
            .header("Date", &date)
            .header("X-BackendAI-Version", API_VERSION)
            .header("Authorization", auth)
            .body(())?;
        Ok(Target::new(request))
    }
}

impl Connector for SignedConnector {
    fn target(&self) -> BoxFuture<'_, Result<Target, BoxError>> {
        let target = SignedConnector::target(self);
        Box::pin(async move { target })
    }
}

/// A sandbox with one RUNNING session (`sess`) that also has an `echo` app.
pub struct Env {
    pub sandbox: Sandbox,
    pub session: SessionInfo,
    pub echo: SocketAddr,
}

impl Env {
    pub async fn start() -> Env {
        let sandbox = Sandbox::start(Config::default())
            .await
            .expect("sandbox starts");
        let echo = echo_server().await;
        let session = sandbox
            .create_session(SessionSpec {
                name: "sess".into(),
                status: Status::Running,
                apps: vec![("echo".into(), echo)],
                authorized_keys: None,
                ssh_server: None,
                web_apps: false,
            })
            .await
            .expect("session starts");
        Env {
            sandbox,
            session,
            echo,
        }
    }

    pub fn connector(&self, app: &str) -> SignedConnector {
        let user = self.sandbox.user();
        SignedConnector {
            host: self.sandbox.manager_addr().to_string(),
            session: self.session.name.clone(),
            app: app.into(),
            access_key: user.access_key.clone(),
            secret_key: user.secret_key.clone(),
        }
    }

    /// A tunnel to `app` on a port-0 listener, and a subscription to its events.
    pub async fn tunnel(
        &self,
        app: &str,
        options: Options,
    ) -> (TunnelHandle, broadcast::Receiver<Event>) {
        tunnel_with(self.connector(app), options).await
    }

    /// The session's sshd through the tunnel on `port`, with the hermetic client options.
    pub fn target(&self, port: u16) -> SshTarget {
        SshTarget::via(&self.session, port).hermetic()
    }

    /// `ssh … account@127.0.0.1 <remote command>` through the tunnel on `port`.
    pub fn ssh(&self, port: u16, remote: &str) -> Command {
        let mut cmd = self.target(port).ssh(&[remote]);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }
}

pub async fn tunnel_with(
    connector: impl Connector,
    options: Options,
) -> (TunnelHandle, broadcast::Receiver<Event>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let tunnel = Tunnel::new(listener, connector, options).expect("tunnel");
    let events = tunnel.subscribe();
    (tunnel.spawn(), events)
}

/// Events up to and including the `Closed` of one connection.
pub async fn events_until_closed(events: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    bai_testkit::recv_until(events, |e| matches!(e, Event::Closed { .. })).await
}

/// The error of the first `Failed` among `events`.
pub fn failure(events: &[Event]) -> Option<bai_tunnel::ConnError> {
    events.iter().find_map(|e| match e {
        Event::Failed { error, .. } => Some(error.clone()),
        _ => None,
    })
}
