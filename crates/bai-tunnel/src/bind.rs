//! Binding the local listener: loopback by default, a preferred port when it is free, otherwise
//! a port the OS assigns, and a report of which port was used and why.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use tokio::net::TcpListener;

use crate::Error;

/// What to bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindOptions {
    /// The address to listen on. Default `127.0.0.1`; anything else only when asked explicitly,
    /// since whoever reaches the port reaches the session.
    pub ip: IpAddr,
    /// The port to try first. `None` lets the OS assign one.
    pub preferred_port: Option<u16>,
    /// Whether to fall back to an OS-assigned port when the preferred one cannot be used.
    /// Default `true`.
    pub fallback: bool,
}

impl Default for BindOptions {
    fn default() -> Self {
        BindOptions {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            preferred_port: None,
            fallback: true,
        }
    }
}

impl BindOptions {
    /// Loopback, trying `preferred` first (if any), falling back to an OS-assigned port.
    pub fn loopback(preferred: Option<u16>) -> Self {
        BindOptions {
            preferred_port: preferred,
            ..BindOptions::default()
        }
    }
}

/// How the port of a [`Bound`] listener was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PortChoice {
    /// The preferred port was free and is used.
    Preferred,
    /// No port was asked for; the OS assigned one.
    Assigned,
    /// The preferred port could not be used; the OS assigned another.
    Fallback {
        /// The port that was asked for.
        preferred: u16,
        /// Why it could not be used.
        reason: FallbackReason,
    },
}

/// Why a preferred port was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FallbackReason {
    /// Another program listens on it.
    InUse,
    /// The OS refused it (privileged port, sandbox policy).
    PermissionDenied,
    /// It is not a usable port (0).
    Invalid,
}

impl fmt::Display for FallbackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FallbackReason::InUse => "it is in use",
            FallbackReason::PermissionDenied => "permission to use it was denied",
            FallbackReason::Invalid => "it is not a valid port",
        })
    }
}

/// A bound listener, ready for [`crate::Tunnel::new`].
#[derive(Debug)]
pub struct Bound {
    /// The listener.
    pub listener: TcpListener,
    /// Its real address (with the port actually used).
    pub local_addr: SocketAddr,
    /// How the port was chosen.
    pub choice: PortChoice,
}

impl Bound {
    /// A one-line explanation for users, e.g. "port 2222 is in use; using 41235 instead".
    pub fn describe(&self) -> String {
        let port = self.local_addr.port();
        match &self.choice {
            PortChoice::Preferred => format!("using the preferred port {port}"),
            PortChoice::Assigned => format!("using port {port}"),
            PortChoice::Fallback { preferred, reason } => {
                format!("port {preferred} cannot be used ({reason}); using {port} instead")
            }
        }
    }
}

/// Binds the listener described by `options`.
///
/// # Errors
/// [`Error::Bind`] when the address cannot be bound at all (or the preferred port cannot be
/// used and `fallback` is off); [`Error::InvalidPort`] for a preferred port 0 without fallback.
pub async fn bind(options: &BindOptions) -> Result<Bound, Error> {
    let any = SocketAddr::new(options.ip, 0);
    let (listener, choice) = match options.preferred_port {
        None => (listen(any).await?, PortChoice::Assigned),
        Some(0) if options.fallback => (
            listen(any).await?,
            PortChoice::Fallback {
                preferred: 0,
                reason: FallbackReason::Invalid,
            },
        ),
        Some(0) => return Err(Error::InvalidPort { port: 0 }),
        Some(port) => {
            let addr = SocketAddr::new(options.ip, port);
            match TcpListener::bind(addr).await {
                Ok(listener) => (listener, PortChoice::Preferred),
                Err(source) => {
                    let reason = match source.kind() {
                        io::ErrorKind::AddrInUse => FallbackReason::InUse,
                        io::ErrorKind::PermissionDenied => FallbackReason::PermissionDenied,
                        _ => return Err(Error::Bind { addr, source }),
                    };
                    if !options.fallback {
                        return Err(Error::Bind { addr, source });
                    }
                    tracing::info!(port, %reason, "preferred port unavailable; falling back");
                    (
                        listen(any).await?,
                        PortChoice::Fallback {
                            preferred: port,
                            reason,
                        },
                    )
                }
            }
        }
    };
    let local_addr = listener
        .local_addr()
        .map_err(|source| Error::Bind { addr: any, source })?;
    tracing::debug!(%local_addr, ?choice, "bound");
    Ok(Bound {
        listener,
        local_addr,
        choice,
    })
}

async fn listen(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn preferred_port_taken_falls_back_and_says_why() {
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let first = bind(&BindOptions::default()).await.expect("bind");
            assert_eq!(first.choice, PortChoice::Assigned);
            assert!(first.local_addr.ip().is_loopback());
            let taken = first.local_addr.port();

            let second = bind(&BindOptions::loopback(Some(taken)))
                .await
                .expect("fallback bind");
            assert_ne!(second.local_addr.port(), taken);
            assert_eq!(
                second.choice,
                PortChoice::Fallback {
                    preferred: taken,
                    reason: FallbackReason::InUse
                }
            );
            assert!(second.describe().contains("in use"));

            let strict = BindOptions {
                fallback: false,
                ..BindOptions::loopback(Some(taken))
            };
            assert!(matches!(bind(&strict).await, Err(Error::Bind { .. })));

            // Free the port, then the preferred port is used.
            drop(first);
            let third = bind(&BindOptions::loopback(Some(taken)))
                .await
                .expect("preferred bind");
            assert_eq!(third.choice, PortChoice::Preferred);
            assert_eq!(third.local_addr.port(), taken);
        })
        .await
        .expect("test timed out");
    }

    #[tokio::test]
    async fn port_zero_is_invalid_preferred() {
        tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let bound = bind(&BindOptions::loopback(Some(0))).await.expect("bind");
            assert_eq!(
                bound.choice,
                PortChoice::Fallback {
                    preferred: 0,
                    reason: FallbackReason::Invalid
                }
            );
            assert_ne!(bound.local_addr.port(), 0);
            let strict = BindOptions {
                fallback: false,
                ..BindOptions::loopback(Some(0))
            };
            assert!(matches!(
                bind(&strict).await,
                Err(Error::InvalidPort { port: 0 })
            ));
        })
        .await
        .expect("test timed out");
    }
}
