//! Loopback ports and tiny TCP servers (always `127.0.0.1`, always port 0).

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A port nothing listens on right now (bound on port 0, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind port 0")
        .port()
}

/// `127.0.0.1:<a free port>`: an address where nothing listens (connections are refused).
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A port that stays taken while the returned listener lives (for port-in-use cases).
pub fn taken_port() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

/// A TCP echo server: echoes until EOF, then closes its write half. Lives as long as the
/// runtime.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind echo");
    let addr = listener.local_addr().expect("echo addr");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = tcp.set_nodelay(true);
                let (mut r, mut w) = tcp.into_split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// A server that writes `msg` to every connection and closes its write half.
pub async fn greeter(msg: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind greeter");
    let addr = listener.local_addr().expect("greeter addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(msg).await;
            let _ = s.shutdown().await;
            let mut sink = [0u8; 64];
            let _ = s.read(&mut sink).await;
        }
    });
    addr
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::within;

    #[tokio::test]
    async fn echo_and_greeter_answer() {
        within(10, async {
            let mut s = tokio::net::TcpStream::connect(echo_server().await)
                .await
                .expect("connect");
            s.write_all(b"ping").await.expect("write");
            s.shutdown().await.expect("shutdown");
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.expect("read");
            assert_eq!(got, b"ping");

            let mut s = tokio::net::TcpStream::connect(greeter(b"hi").await)
                .await
                .expect("connect");
            let mut got = [0u8; 2];
            s.read_exact(&mut got).await.expect("read");
            assert_eq!(&got, b"hi");
        })
        .await;
    }

    #[test]
    fn a_taken_port_is_refused_until_released() {
        let (listener, port) = taken_port();
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
        drop(listener);
        assert_ne!(free_port(), 0);
        assert!(std::net::TcpStream::connect(free_addr()).is_err());
    }
}
