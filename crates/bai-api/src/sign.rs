//! HMAC-SHA256 request signing (API mode) and the encrypted login body (session mode over http).

use base64::Engine as _;
use chrono::{DateTime, Timelike, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// SHA-256 of the empty body: signed for every request since v4.20181215.
const EMPTY_BODY_HASH: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The inputs of one signature.
#[derive(Debug, Clone)]
pub(crate) struct SignInput<'a> {
    pub method: &'a str,
    /// Raw path plus `?query` if present, exactly as sent.
    pub path_and_query: &'a str,
    /// The date string exactly as sent in the `Date` header.
    pub date_str: &'a str,
    /// The same date (for the `YYYYMMDD` key derivation).
    pub date: DateTime<Utc>,
    /// `host[:port]` (port only when not the scheme's default).
    pub host: &'a str,
    /// Media type without parameters.
    pub content_type: &'a str,
    pub version: &'a str,
}

fn hmac(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("BUG: HMAC accepts keys of any length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// The signing key chain: `(k1, k2)`.
pub(crate) fn sign_keys(secret_key: &str, date: DateTime<Utc>, host: &str) -> (Vec<u8>, Vec<u8>) {
    let k1 = hmac(
        secret_key.as_bytes(),
        date.format("%Y%m%d").to_string().as_bytes(),
    );
    let k2 = hmac(&k1, host.as_bytes());
    (k1, k2)
}

/// The seven-line string to sign.
pub(crate) fn string_to_sign(i: &SignInput<'_>) -> String {
    [
        i.method.to_ascii_uppercase(),
        i.path_and_query.to_owned(),
        i.date_str.to_owned(),
        format!("host:{}", i.host),
        format!("content-type:{}", i.content_type.to_ascii_lowercase()),
        format!("x-backendai-version:{}", i.version),
        EMPTY_BODY_HASH.to_owned(),
    ]
    .join("\n")
}

/// Hex signature.
pub(crate) fn signature(secret_key: &str, i: &SignInput<'_>) -> String {
    let (_, k2) = sign_keys(secret_key, i.date, i.host);
    hex::encode(hmac(&k2, string_to_sign(i).as_bytes()))
}

/// The `Authorization` header value.
pub(crate) fn authorization(access_key: &str, secret_key: &str, i: &SignInput<'_>) -> String {
    use bai_problem::header::{AUTH_SCHEME, SIGN_METHOD};
    format!(
        "{AUTH_SCHEME} signMethod={SIGN_METHOD}, credential={access_key}:{}",
        signature(secret_key, i)
    )
}

/// The date as Python's `datetime.now(UTC).isoformat()` writes it.
pub(crate) fn python_iso_date(d: DateTime<Utc>) -> String {
    if d.nanosecond() / 1000 == 0 {
        d.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        d.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}

/// `host[:port]` of a URL, port only when not the scheme default (the `Host` header).
pub(crate) fn host_header(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

/// `path?query` exactly as sent.
pub(crate) fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// Encrypts a login body as the webserver's `decrypt_payload` expects: `iv:base64(AES-256-CBC)`.
///
/// `origin` is `scheme://host[:port]`; `iv` is 16 ASCII alphanumerics.
pub(crate) fn encrypt_login_body(origin: &str, iv: &str, body: &[u8]) -> String {
    use cbc::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
    let key = login_key(origin, iv);
    let enc = cbc::Encryptor::<aes::Aes256>::new_from_slices(&key, iv.as_bytes())
        .expect("BUG: key is 32 bytes and iv 16 bytes")
        .encrypt_padded_vec_mut::<Pkcs7>(body);
    format!(
        "{iv}:{}",
        base64::engine::general_purpose::STANDARD.encode(enc)
    )
}

/// `(base64(origin) + iv + iv)[:32]`.
pub(crate) fn login_key(origin: &str, iv: &str) -> Vec<u8> {
    let mut k = base64::engine::general_purpose::STANDARD
        .encode(origin)
        .into_bytes();
    k.extend_from_slice(iv.as_bytes());
    k.extend_from_slice(iv.as_bytes());
    k.truncate(32);
    k
}

/// A random 16-character alphanumeric IV.
pub(crate) fn random_iv() -> String {
    use rand::Rng as _;
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(16)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn date(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("date")
            .with_timezone(&Utc)
    }

    fn sig(method: &str, pq: &str, host: &str, d: &str, ct: &str, ver: &str) -> String {
        signature(
            SK,
            &SignInput {
                method,
                path_and_query: pq,
                date_str: d,
                date: date(d),
                host,
                content_type: ct,
                version: ver,
            },
        )
    }

    #[test]
    fn vector_1_tcpproxy_and_keys() {
        let d = "2025-01-02T03:04:05.678901+00:00";
        let (k1, k2) = sign_keys(SK, date(d), "127.0.0.1:8081");
        assert_eq!(
            hex::encode(k1),
            "2cb1769c737c9bdcd5f1422561a2f0c0d8fb1b2a619ebd901f25cb4178398b4b"
        );
        assert_eq!(
            hex::encode(k2),
            "cc9688819780ff69998ea19cb171bbeeaf691f3921f12edc1515d6cce82ed7cd"
        );
        let i = SignInput {
            method: "GET",
            path_and_query: "/stream/session/mysess/tcpproxy?app=sshd",
            date_str: d,
            date: date(d),
            host: "127.0.0.1:8081",
            content_type: "application/octet-stream",
            version: "v9.20250722",
        };
        assert_eq!(
            authorization(AK, SK, &i),
            "BackendAI signMethod=HMAC-SHA256, credential=AKIAIOSFODNN7EXAMPLE:1217841933a3b65a1f8a99ea609ced3bcc2b298070dde82142fcc652cd9622f8"
        );
    }

    #[test]
    fn vector_2_apps() {
        assert_eq!(
            sig(
                "GET",
                "/stream/session/mysess/apps",
                "api.example.com",
                "2025-01-02T03:04:05.678901+00:00",
                "application/octet-stream",
                "v9.20250722"
            ),
            "60ec6eb2c13e526a5ab76098f51926d9540a1209068d59951cc3ef47da2330bd"
        );
    }

    #[test]
    fn vector_3_download_single() {
        assert_eq!(
            sig(
                "POST",
                "/session/mysess/download_single?file=%2Fhome%2Fwork%2Fid_container",
                "127.0.0.1:8081",
                "2024-12-31T23:59:59+00:00",
                "text/plain",
                "v8.20240915"
            ),
            "470b029b862d7ccd1e0c60852546344f626c8ea4918f58a288c74966105729cd"
        );
    }

    #[test]
    fn vector_4_gql() {
        assert_eq!(
            sig(
                "POST",
                "/admin/gql",
                "api.example.com",
                "2025-01-02T03:04:05.678901+00:00",
                "application/json",
                "v9.20250722"
            ),
            "063641dd1a5af1c3b885f6468f8dd6c20940e289b9c224e498bbba46f257b5f2"
        );
    }

    #[test]
    fn vector_5_js_style() {
        assert_eq!(
            sig(
                "GET",
                "/stream/session/mysess/tcpproxy?app=sshd",
                "127.0.0.1:8081",
                "2025-01-02T03:04:05.678Z",
                "application/json",
                "v8.20240915"
            ),
            "a830bb7f7e6604fbb319563a39c1b313ac741948c08be120d4eb3372219513f5"
        );
    }

    #[test]
    fn python_date_format() {
        assert_eq!(
            python_iso_date(date("2025-01-02T03:04:05.678901+00:00")),
            "2025-01-02T03:04:05.678901+00:00"
        );
        assert_eq!(
            python_iso_date(date("2024-12-31T23:59:59+00:00")),
            "2024-12-31T23:59:59+00:00"
        );
    }

    #[test]
    fn url_parts_for_signing() {
        let u = url::Url::parse("https://api.example.com:443/a/b?x=1").expect("url");
        assert_eq!(host_header(&u), "api.example.com");
        assert_eq!(path_and_query(&u), "/a/b?x=1");
        let u = url::Url::parse("http://127.0.0.1:8081/a").expect("url");
        assert_eq!(host_header(&u), "127.0.0.1:8081");
    }

    #[test]
    fn encrypted_login_vector() {
        assert_eq!(
            login_key("http://127.0.0.1:8090", "ABCDEFGHIJKLMNOP"),
            b"aHR0cDovLzEyNy4wLjAuMTo4MDkwABCD".to_vec()
        );
        assert_eq!(
            encrypt_login_body(
                "http://127.0.0.1:8090",
                "ABCDEFGHIJKLMNOP",
                br#"{"username": "user@example.com", "password": "secret"}"#
            ),
            "ABCDEFGHIJKLMNOP:0VTC/WpV5VChyvZzx4CuNDpXI9loMkI3t087RODtmIMJtyZDSgpG27Z2ubr47pnnZZ7IFEH7jTRITq8tXvQnXg=="
        );
    }

    #[test]
    fn random_iv_is_alphanumeric() {
        let iv = random_iv();
        assert_eq!(iv.len(), 16);
        assert!(iv.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
