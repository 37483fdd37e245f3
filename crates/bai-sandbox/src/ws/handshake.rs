//! The WebSocket opening handshake (RFC 6455 §4.2): checks the upgrade request, echoes the
//! first subprotocol offered, and answers 101 with `Sec-WebSocket-Accept`; the upgraded
//! connection is then handed over.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use base64::Engine as _;
use hyper::upgrade::OnUpgrade;
use sha1::{Digest as _, Sha1};

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub(crate) fn accept_key(key: &[u8]) -> String {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Why a request is not a WebSocket upgrade this server accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HandshakeError {
    /// Not a GET.
    #[error("the method is not GET")]
    NotGet,
    /// `Upgrade` is not `websocket`.
    #[error("the Upgrade header is not websocket")]
    Upgrade,
    /// `Connection` has no `upgrade` token.
    #[error("the Connection header has no upgrade token")]
    Connection,
    /// `Sec-WebSocket-Version` is not 13.
    #[error("Sec-WebSocket-Version is not 13")]
    Version,
    /// `Sec-WebSocket-Key` is missing or empty.
    #[error("Sec-WebSocket-Key is missing")]
    Key,
    /// The connection cannot be taken over (not HTTP/1.1).
    #[error("the connection cannot be upgraded")]
    NotUpgradable,
}

/// A checked opening handshake: the 101 answer and the connection it hands over.
#[derive(Debug)]
pub(crate) struct Upgrade {
    accept: String,
    protocol: Option<HeaderValue>,
    on_upgrade: OnUpgrade,
}

fn has_token(req: &Request, name: header::HeaderName, token: &str) -> bool {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Checks the upgrade request (RFC 6455 §4.2.1) and takes over its connection.
pub(crate) fn accept(req: &mut Request) -> Result<Upgrade, HandshakeError> {
    if req.method() != Method::GET {
        return Err(HandshakeError::NotGet);
    }
    if !has_token(req, header::UPGRADE, "websocket") {
        return Err(HandshakeError::Upgrade);
    }
    if !has_token(req, header::CONNECTION, "upgrade") {
        return Err(HandshakeError::Connection);
    }
    let version = req.headers().get(header::SEC_WEBSOCKET_VERSION);
    if version.is_none_or(|v| v.as_bytes().trim_ascii() != b"13") {
        return Err(HandshakeError::Version);
    }
    let key = match req.headers().get(header::SEC_WEBSOCKET_KEY) {
        Some(k) if !k.as_bytes().trim_ascii().is_empty() => k.as_bytes().trim_ascii(),
        _ => return Err(HandshakeError::Key),
    };
    let accept = accept_key(key);
    let protocol = offered_protocols(req.headers())
        .into_iter()
        .find_map(|p| HeaderValue::from_str(&p).ok());
    if req.extensions().get::<OnUpgrade>().is_none() {
        return Err(HandshakeError::NotUpgradable);
    }
    Ok(Upgrade {
        accept,
        protocol,
        on_upgrade: hyper::upgrade::on(req),
    })
}

impl Upgrade {
    /// The 101 response, and the future that yields the connection once it has been sent.
    pub(crate) fn into_parts(self) -> (Response, OnUpgrade) {
        let mut resp = Response::new(axum::body::Body::empty());
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(v) = HeaderValue::from_str(&self.accept) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        if let Some(p) = self.protocol {
            h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
        }
        (resp, self.on_upgrade)
    }
}

/// The `Sec-WebSocket-Protocol` values the client offered (echoed so strict clients accept).
fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
