//! Why a server could not be used, in words a user can act on:
//!
//! - [`TlsReason`]: the certificate is not trusted, has expired, is not valid yet, is for
//!   another host name, or the port does not speak TLS at all (an `https://` address for an
//!   `http` server);
//! - [`UnreachableReason`]: the connection was refused, the host name does not resolve, there
//!   is no route to the host, or the connection was reset;
//! - [`ServerKind`]: which Backend.AI server an endpoint is when it is not the one the login
//!   mode needs. A manager answers its version document at `/` (`{"version", "manager"}`); a
//!   webserver relays that document at `/func/` and answers `POST /server/login-check` with
//!   `{"authenticated": …}` (protocol.md §1). Its `/` is the WebUI's `index.html`, which alone
//!   tells nothing (any web server serves HTML), so it is not what identifies it.
//!
//! [`Client::identify_wrong_kind`] asks only after the version probe failed in a way a server
//! of the other kind would cause, so a working login never pays for it.

use std::fmt;

use reqwest::Method;
use serde_json::Value;

use crate::client::Client;
use crate::credentials::Mode;
use crate::error::{redact, Error, ErrorKind};
use crate::wire::ERROR_BODY_LIMIT;

/// A kind of Backend.AI server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerKind {
    /// The manager: the API endpoint of API mode (access/secret keys).
    Manager,
    /// The webserver: the WebUI's address, the endpoint of session mode (email/password).
    Webserver,
}

/// Why a TLS handshake failed ([`ErrorKind::Tls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsReason {
    /// The server did not answer in TLS: probably a plain `http` port.
    NotTls,
    /// The certificate is not signed by a trusted authority (self-signed, private CA).
    Untrusted,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet (or the local clock is wrong).
    NotYetValid,
    /// The certificate is for another host name.
    WrongHost,
    /// The certificate was revoked.
    Revoked,
    /// Any other TLS failure.
    Other,
}

impl fmt::Display for TlsReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotTls => {
                "the server does not speak TLS on this port (is it an http:// address?)"
            }
            Self::Untrusted => {
                "the server's certificate is not trusted (self-signed or issued by an unknown \
                 certificate authority)"
            }
            Self::Expired => "the server's certificate has expired",
            Self::NotYetValid => {
                "the server's certificate is not valid yet (or the local clock is wrong)"
            }
            Self::WrongHost => "the server's certificate is not valid for this host name",
            Self::Revoked => "the server's certificate has been revoked",
            Self::Other => "the TLS handshake failed",
        })
    }
}

impl TlsReason {
    /// The reason of a rustls error.
    pub(crate) fn of(e: &rustls::Error) -> TlsReason {
        use rustls::CertificateError as C;
        match e {
            rustls::Error::InvalidMessage(_) => TlsReason::NotTls,
            rustls::Error::InvalidCertificate(c) => match c {
                C::UnknownIssuer | C::BadSignature => TlsReason::Untrusted,
                C::Expired | C::ExpiredContext { .. } => TlsReason::Expired,
                C::NotValidYet | C::NotValidYetContext { .. } => TlsReason::NotYetValid,
                C::NotValidForName | C::NotValidForNameContext { .. } => TlsReason::WrongHost,
                C::Revoked => TlsReason::Revoked,
                _ => TlsReason::Other,
            },
            _ => TlsReason::Other,
        }
    }
}

/// Why a host could not be reached ([`ErrorKind::Unreachable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnreachableReason {
    /// Nothing listens on the port (or a firewall refuses the connection).
    Refused,
    /// The host name does not resolve.
    Dns,
    /// No route to the host or its network.
    NoRoute,
    /// The connection was reset or aborted while being set up.
    Reset,
    /// Any other connection failure.
    Other,
}

impl fmt::Display for UnreachableReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Refused => {
                "connection refused (nothing listens on that port, or a firewall refuses it)"
            }
            Self::Dns => "the host name does not resolve (DNS lookup failed)",
            Self::NoRoute => "no route to the host (network or host unreachable)",
            Self::Reset => "the connection was reset",
            Self::Other => "the connection failed",
        })
    }
}

impl UnreachableReason {
    /// The reason of a connection error, from the first cause in its chain that tells.
    pub(crate) fn of(e: &(dyn std::error::Error + 'static)) -> UnreachableReason {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = cur {
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                use std::io::ErrorKind as K;
                match io.kind() {
                    K::ConnectionRefused => return UnreachableReason::Refused,
                    K::HostUnreachable | K::NetworkUnreachable => {
                        return UnreachableReason::NoRoute
                    }
                    K::ConnectionReset | K::ConnectionAborted => return UnreachableReason::Reset,
                    _ => {}
                }
            }
            // hyper-util's resolver says "dns error"; getaddrinfo "failed to lookup address".
            let text = err.to_string().to_ascii_lowercase();
            if text.contains("dns error") || text.contains("failed to lookup address") {
                return UnreachableReason::Dns;
            }
            cur = match err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => err.source(),
            };
        }
        UnreachableReason::Other
    }
}

/// Whether a failed version probe may mean "a server of the other kind": it answered, but not
/// with the document the mode expects there.
fn may_be_other_kind(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::WrongUrl { .. }
            | ErrorKind::Api { .. }
            | ErrorKind::InvalidResponse { .. }
            | ErrorKind::UnsupportedVersion { .. }
            | ErrorKind::NotLoggedIn
            | ErrorKind::LoginExpired
            | ErrorKind::AuthFailed { .. }
    )
}

/// A JSON object with a parsable `version`: the manager's root document.
fn is_version_document(v: &Value) -> bool {
    v.get("version")
        .and_then(Value::as_str)
        .is_some_and(|s| s.parse::<crate::ApiVersion>().is_ok())
}

impl Client {
    /// After a failed version probe: when the endpoint is a Backend.AI server of the other
    /// kind than the mode needs, [`ErrorKind::WrongServerKind`]; else `e` unchanged.
    pub(crate) async fn identify_wrong_kind(&self, e: Error) -> Error {
        if !may_be_other_kind(&e) {
            return e;
        }
        let found = match self.inner.wire.mode {
            Mode::Session => self
                .answers_json(Method::GET, &[""], is_version_document)
                .await
                .then_some(ServerKind::Manager),
            Mode::Api => {
                let webserver = self
                    .answers_json(Method::GET, &["func", ""], is_version_document)
                    .await
                    || self
                        .answers_json(Method::POST, &["server", "login-check"], |v| {
                            v.get("authenticated").is_some_and(Value::is_boolean)
                        })
                        .await;
                webserver.then_some(ServerKind::Webserver)
            }
        };
        match found {
            Some(found) => {
                tracing::debug!(?found, original = %e, "the endpoint is the other kind of server");
                ErrorKind::WrongServerKind {
                    url: redact(&self.inner.endpoint),
                    found,
                }
                .into()
            }
            None => e,
        }
    }

    /// Whether an anonymous request to `segments` answers 2xx JSON that `test` accepts.
    async fn answers_json(
        &self,
        method: Method,
        segments: &[&str],
        test: impl Fn(&Value) -> bool,
    ) -> bool {
        let url = self.build_url(segments, &[]);
        let Ok(resp) = self
            .inner
            .wire
            .http
            .request(method, url.clone())
            .send()
            .await
        else {
            return false;
        };
        if !resp.status().is_success() {
            return false;
        }
        let Ok(body) = self
            .inner
            .wire
            .read_limited(resp, &url, ERROR_BODY_LIMIT, "probe answer", true)
            .await
        else {
            return false;
        };
        serde_json::from_slice::<Value>(&body).is_ok_and(|v| test(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_reasons_of_rustls_errors() {
        use rustls::CertificateError as C;
        let cases = [
            (
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
                TlsReason::NotTls,
            ),
            (
                rustls::Error::InvalidCertificate(C::UnknownIssuer),
                TlsReason::Untrusted,
            ),
            (
                rustls::Error::InvalidCertificate(C::Expired),
                TlsReason::Expired,
            ),
            (
                rustls::Error::InvalidCertificate(C::NotValidYet),
                TlsReason::NotYetValid,
            ),
            (
                rustls::Error::InvalidCertificate(C::NotValidForName),
                TlsReason::WrongHost,
            ),
            (
                rustls::Error::InvalidCertificate(C::Revoked),
                TlsReason::Revoked,
            ),
            (rustls::Error::HandshakeNotComplete, TlsReason::Other),
        ];
        for (e, want) in cases {
            assert_eq!(TlsReason::of(&e), want, "{e}");
        }
    }

    #[test]
    fn unreachable_reasons_of_io_errors() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(UnreachableReason::of(&refused), UnreachableReason::Refused);
        let dns = std::io::Error::other("dns error: failed to lookup address information");
        assert_eq!(UnreachableReason::of(&dns), UnreachableReason::Dns);
        let nested =
            std::io::Error::other(std::io::Error::from(std::io::ErrorKind::HostUnreachable));
        assert_eq!(UnreachableReason::of(&nested), UnreachableReason::NoRoute);
        let other = std::io::Error::other("something");
        assert_eq!(UnreachableReason::of(&other), UnreachableReason::Other);
    }
}
