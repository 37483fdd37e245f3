//! A small Backend.AI HMAC-SHA256 signer of the tests' own (protocol.md §2), deliberately
//! neither bai-api's nor the sandbox's, so that a signing mistake cannot hide in both sides.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The API version the tests sign for.
pub const API_VERSION: &str = "v9.20250722";

/// sha256 of the empty body (every signed request here has none).
const EMPTY_BODY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// A `Date` header value, `offset_secs` from now, as the Python client writes it.
pub fn now_date(offset_secs: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_secs))
        .format("%Y-%m-%dT%H:%M:%S%.6f+00:00")
        .to_string()
}

/// The `Authorization` value for a request, signed like the Python client (`ct` is the signed
/// content type, `version` the `X-BackendAI-Version`).
#[allow(clippy::too_many_arguments)] // the signed fields, in the protocol's order
pub fn sign_at(
    access_key: &str,
    secret_key: &str,
    method: &str,
    path_and_query: &str,
    host: &str,
    ct: &str,
    version: &str,
    date: &str,
) -> String {
    let to_sign = format!(
        "{method}\n{path_and_query}\n{date}\nhost:{host}\ncontent-type:{ct}\nx-backendai-version:{version}\n{EMPTY_BODY_SHA256}"
    );
    let ymd: String = date[..10].chars().filter(|c| *c != '-').collect();
    let k1 = mac(secret_key.as_bytes(), ymd.as_bytes());
    let k2 = mac(&k1, host.as_bytes());
    let sig = hex::encode(mac(&k2, to_sign.as_bytes()));
    format!("BackendAI signMethod=HMAC-SHA256, credential={access_key}:{sig}")
}

/// [`sign_at`] for a body-less request signed as `application/octet-stream` with
/// [`API_VERSION`] (how the Python client signs WebSockets, which it sends without a
/// Content-Type).
pub fn authorization(
    access_key: &str,
    secret_key: &str,
    method: &str,
    path_and_query: &str,
    date: &str,
    host: &str,
) -> String {
    sign_at(
        access_key,
        secret_key,
        method,
        path_and_query,
        host,
        "application/octet-stream",
        API_VERSION,
        date,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_matches_the_protocol_vector() {
        // protocol.md §2, vector 1.
        let auth = authorization(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "GET",
            "/stream/session/mysess/tcpproxy?app=sshd",
            "2025-01-02T03:04:05.678901+00:00",
            "127.0.0.1:8081",
        );
        assert!(auth.ends_with(":1217841933a3b65a1f8a99ea609ced3bcc2b298070dde82142fcc652cd9622f8"));
    }
}
