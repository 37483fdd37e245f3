//! The built-in apps of a session made with [`crate::SessionSpec::web_apps`] (every demo
//! session has them): real servers on loopback that the session's service ports point at, so
//! that a client can open more than SSH through the tcpproxy (or httpproxy, the same handler:
//! protocol.md §4.1).
//!
//! - `jupyter` (protocol `http`, container port 8081) and `jupyterlab` (`http`, 8090): a small
//!   HTTP server answering every path with a page titled `Jupyter (bai sandbox)` /
//!   `JupyterLab (bai sandbox)` that names the session and the path asked for (the launchers
//!   open `/tree` and `/lab`). The names, protocols and container ports are those of the
//!   `ai.backend.service-ports` label of Backend.AI's Python images
//!   (`jupyter:http:8081,jupyterlab:http:8090`).
//! - `tcp-echo` (`tcp`, 7000): echoes what it receives, a plain TCP app.
//!
//! The servers live as long as the session's record (or the sandbox); they are listed as
//! service ports only while the session is RUNNING, like its sshd.

use std::net::SocketAddr;

use axum::extract::State as AxState;
use axum::http::Uri;
use axum::response::Html;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Error;

/// One built-in app of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebApp {
    /// The service port's name (`jupyter`).
    pub name: String,
    /// Its protocol (`http` or `tcp`).
    pub protocol: String,
    /// The container port it reports.
    pub container_port: u16,
    /// Where it listens (127.0.0.1, a free port): the host port.
    pub addr: SocketAddr,
}

/// The HTTP apps: name, container port, page title.
const HTTP_APPS: [(&str, u16, &str); 2] = [
    ("jupyter", 8081, "Jupyter (bai sandbox)"),
    ("jupyterlab", 8090, "JupyterLab (bai sandbox)"),
];

/// The TCP app: name and container port.
const TCP_APP: (&str, u16) = ("tcp-echo", 7000);

async fn bind() -> Result<TcpListener, Error> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|source| Error::Io {
            context: "binding a session app".into(),
            source,
        })
}

fn local_addr(l: &TcpListener) -> Result<SocketAddr, Error> {
    l.local_addr().map_err(|source| Error::Io {
        context: "a session app's address".into(),
        source,
    })
}

/// Escapes text for HTML.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Clone)]
struct Page {
    title: &'static str,
    session: String,
}

async fn page(AxState(p): AxState<Page>, uri: Uri) -> Html<String> {
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    Html(format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1><p>Session <b id=\"session\">{session}</b></p>\
         <p>Path <code id=\"path\">{path}</code></p></body></html>\n",
        title = p.title,
        session = escape(&p.session),
        path = escape(path),
    ))
}

/// Starts the built-in apps of `session`; they stop when `cancel` is cancelled.
pub(crate) async fn start(session: &str, cancel: CancellationToken) -> Result<Vec<WebApp>, Error> {
    let mut apps = Vec::new();
    for (name, container_port, title) in HTTP_APPS {
        let listener = bind().await?;
        let addr = local_addr(&listener)?;
        let router = Router::new().fallback(page).with_state(Page {
            title,
            session: session.to_owned(),
        });
        let stop = cancel.clone();
        tokio::spawn(async move {
            let serve = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stop.cancelled().await });
            if let Err(e) = serve.await {
                tracing::debug!(error = %e, "session app failed");
            }
        });
        apps.push(WebApp {
            name: name.into(),
            protocol: "http".into(),
            container_port,
            addr,
        });
    }
    let listener = bind().await?;
    let addr = local_addr(&listener)?;
    tokio::spawn(echo(listener, cancel));
    apps.push(WebApp {
        name: TCP_APP.0.into(),
        protocol: "tcp".into(),
        container_port: TCP_APP.1,
        addr,
    });
    Ok(apps)
}

async fn echo(listener: TcpListener, cancel: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            a = listener.accept() => a,
        };
        let Ok((mut s, _)) = accepted else { continue };
        let stop = cancel.clone();
        tokio::spawn(async move {
            let (mut r, mut w) = s.split();
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::io::copy(&mut r, &mut w) => {}
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test]
    async fn the_apps_answer_and_stop_with_their_token() {
        tokio::time::timeout(std::time::Duration::from_secs(30), async {
            let cancel = CancellationToken::new();
            let apps = start("a<b", cancel.clone()).await.unwrap();
            let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
            assert_eq!(names, ["jupyter", "jupyterlab", "tcp-echo"]);
            let mut s = tokio::net::TcpStream::connect(apps[1].addr).await.unwrap();
            s.write_all(b"GET /lab?x=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut body = String::new();
            s.read_to_string(&mut body).await.unwrap();
            assert!(
                body.contains("<title>JupyterLab (bai sandbox)</title>"),
                "{body}"
            );
            assert!(
                body.contains("a&lt;b") && body.contains("/lab?x=1"),
                "{body}"
            );
            let mut e = tokio::net::TcpStream::connect(apps[2].addr).await.unwrap();
            e.write_all(b"ping").await.unwrap();
            let mut got = [0u8; 4];
            e.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"ping");
            cancel.cancel();
            let mut n = [0u8; 1];
            assert_eq!(
                e.read(&mut n).await.unwrap_or(0),
                0,
                "stopped with the token"
            );
        })
        .await
        .unwrap();
    }
}
