//! `bai-bench tt-proxy`: the plainest tokio-tungstenite proxy, the bench's reference for what
//! bai-tunnel's own RFC 6455 framing gains (docs/architecture.md, "Decision: bai-tunnel's own
//! RFC 6455 framing").
//!
//! It authenticates as bai does in API mode (bai-api's [`TcpproxyTarget`] signs a fresh request
//! per connection) and otherwise does the obvious thing: one WebSocket per accepted connection
//! (`connect_async_tls_with_config`, default config), the stream split in two, local reads sent
//! as `Message::Binary` (a copy into the message, one send and flush each), binary messages
//! written to the local socket with `write_all`, a Close frame on local EOF. No tuning: a fixed
//! read buffer, tungstenite's default buffers, the default multi-thread runtime (as `bai`'s
//! `#[tokio::main]`). Only `TCP_NODELAY` is set on both sockets, as bai sets it, so that the
//! set-up latency compares relaying and not Nagle's algorithm.
//!
//! It runs as its own process (spawned by the bench like `bai app`), so its CPU time and RSS
//! are read from `/proc` the same way.

use anyhow::{Context, Result};
use bai_api::{Client, ClientConfig, Sensitive, TcpproxyTarget};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::Connector;

/// Bytes read from the local socket at a time (what a plain proxy would pick; bai-tunnel's
/// buffers grow from 16 to 256 KiB).
const READ_BUF: usize = 64 * 1024;

/// `bai-bench tt-proxy` (hidden; the bench starts it). The manager and keypair come from the
/// environment the Python client reads too.
#[derive(clap::Args, Debug)]
pub struct Opts {
    /// The session whose app to reach.
    #[arg(long)]
    session: String,
    /// The app (service port name).
    #[arg(long)]
    app: String,
    /// The local port to listen on (127.0.0.1).
    #[arg(long)]
    port: u16,
    /// The manager URL (API mode).
    #[arg(long, env = "BACKEND_ENDPOINT")]
    endpoint: url::Url,
    /// The access key.
    #[arg(long, env = "BACKEND_ACCESS_KEY", hide_env_values = true)]
    access_key: String,
    /// The secret key.
    #[arg(long, env = "BACKEND_SECRET_KEY", hide_env_values = true)]
    secret_key: String,
}

pub fn main(opts: Opts) -> Result<()> {
    tokio::runtime::Runtime::new()
        .context("starting the tokio runtime")?
        .block_on(serve(opts))
}

async fn serve(opts: Opts) -> Result<()> {
    let client = Client::new(ClientConfig::api(
        opts.endpoint,
        Sensitive::new(opts.access_key),
        Sensitive::new(opts.secret_key),
    ))
    .context("building the API client")?;
    let target = client
        .tcpproxy_target(&opts.session, &opts.app)
        .await
        .context("looking up the tcpproxy target")?;
    let listener = TcpListener::bind(("127.0.0.1", opts.port))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", opts.port))?;
    // The bench waits for this line (as for `bai app`'s).
    println!("listening on 127.0.0.1:{}", opts.port);
    loop {
        let (local, _) = listener.accept().await.context("accepting")?;
        let target = target.clone();
        tokio::spawn(async move {
            if let Err(e) = relay(local, &target).await {
                eprintln!("tt-proxy: {e:#}");
            }
        });
    }
}

async fn relay(local: TcpStream, target: &TcpproxyTarget) -> Result<()> {
    local.set_nodelay(true)?;
    let ws = target.request().context("building the request")?;
    let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
        ws.request,
        None,
        true,
        ws.tls.map(Connector::Rustls),
    )
    .await
    .context("opening the WebSocket")?;
    let (mut sink, mut stream) = ws.split();
    let (mut r, mut w) = local.into_split();

    let up = async move {
        let mut buf = vec![0u8; READ_BUF];
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                sink.send(Message::Close(None)).await?;
                return anyhow::Ok(());
            }
            sink.send(Message::binary(buf[..n].to_vec())).await?;
        }
    };
    let down = async move {
        while let Some(msg) = stream.next().await {
            match msg? {
                Message::Binary(b) => w.write_all(&b).await?,
                Message::Close(_) => break,
                _ => {}
            }
        }
        w.shutdown().await?;
        anyhow::Ok(())
    };
    // The server's side ends the connection: after local EOF (Close sent), wait for it.
    let mut down = std::pin::pin!(down);
    tokio::select! {
        r = &mut down => r,
        r = up => {
            r?;
            down.await
        }
    }
}
