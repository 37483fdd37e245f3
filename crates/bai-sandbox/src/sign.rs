//! HMAC-SHA256 request signing as the Backend.AI manager verifies it (protocol.md §2), plus
//! the API-version rules. Public so that tests (and the webserver's `/func` proxy) can sign.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// SHA-256 of the empty body: always the last line of the string to sign (API ≥ v4.20181215).
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Oldest API version the sandbox accepts.
pub const MIN_VERSION: &str = "v4.20181215";
/// Newest API version the sandbox accepts (and advertises by default).
pub const MAX_VERSION: &str = "v9.20250722";

/// The inputs of one signature.
#[derive(Debug, Clone, Copy)]
pub struct SignInput<'a> {
    /// HTTP method, upper case (`GET`).
    pub method: &'a str,
    /// Raw path plus `?query`, exactly as sent.
    pub path_and_query: &'a str,
    /// The date string exactly as in the `Date`/`X-BackendAI-Date` header.
    pub date: &'a str,
    /// The `Host` header (with `:port` when not default).
    pub host: &'a str,
    /// Media type, lower case, no parameters.
    pub content_type: &'a str,
    /// The `X-BackendAI-Version` header.
    pub version: &'a str,
}

fn mac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(key).expect("BUG: HMAC accepts keys of any length");
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

/// The seven-line string to sign.
pub fn string_to_sign(input: &SignInput<'_>) -> String {
    format!(
        "{}\n{}\n{}\nhost:{}\ncontent-type:{}\nx-backendai-version:{}\n{}",
        input.method,
        input.path_and_query,
        input.date,
        input.host,
        input.content_type,
        input.version,
        EMPTY_BODY_SHA256
    )
}

/// Hex HMAC-SHA256 signature. `ymd` is the `YYYYMMDD` of the date (in the date's own zone).
pub fn signature(secret_key: &str, ymd: &str, input: &SignInput<'_>) -> String {
    let k1 = mac(secret_key.as_bytes(), ymd.as_bytes());
    let k2 = mac(&k1, input.host.as_bytes());
    hex::encode(mac(&k2, string_to_sign(input).as_bytes()))
}

/// The full `Authorization` header value for a request.
pub fn authorization(
    access_key: &str,
    secret_key: &str,
    ymd: &str,
    input: &SignInput<'_>,
) -> String {
    format!(
        "BackendAI signMethod=HMAC-SHA256, credential={access_key}:{}",
        signature(secret_key, ymd, input)
    )
}

/// Constant-time check of a hex signature.
pub fn verify(secret_key: &str, ymd: &str, input: &SignInput<'_>, hex_sig: &str) -> bool {
    let Ok(sig) = hex::decode(hex_sig.trim()) else {
        return false;
    };
    let k1 = mac(secret_key.as_bytes(), ymd.as_bytes());
    let k2 = mac(&k1, input.host.as_bytes());
    let mut m = HmacSha256::new_from_slice(&k2).expect("BUG: HMAC accepts keys of any length");
    m.update(string_to_sign(input).as_bytes());
    m.verify_slice(&sig).is_ok()
}

/// A parsed request date: the instant, and the `YYYYMMDD` used for the first signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDate {
    /// The instant in UTC.
    pub instant: DateTime<Utc>,
    /// `YYYYMMDD` in the date's own zone (what the client's `strftime` produced).
    pub ymd: String,
}

/// Parses ISO-8601 (with or without fraction, `Z`, `±hh:mm` or no zone = UTC) or RFC 1123.
pub fn parse_date(raw: &str) -> Option<ParsedDate> {
    let raw = raw.trim();
    let fixed: Option<DateTime<FixedOffset>> = DateTime::parse_from_rfc3339(raw)
        .ok()
        .or_else(|| DateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .or_else(|| DateTime::parse_from_rfc2822(raw).ok());
    if let Some(d) = fixed {
        return Some(ParsedDate {
            instant: d.with_timezone(&Utc),
            ymd: d.format("%Y%m%d").to_string(),
        });
    }
    let naive = NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S%.f"))
        .ok()?;
    Some(ParsedDate {
        instant: naive.and_utc(),
        ymd: naive.format("%Y%m%d").to_string(),
    })
}

/// Formats "now" the way the Python client does (`isoformat()` of an aware UTC datetime).
pub fn python_date(now: DateTime<Utc>) -> String {
    if now.timestamp_subsec_micros() == 0 {
        now.format("%Y-%m-%dT%H:%M:%S+00:00").to_string()
    } else {
        now.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }
}

/// Splits `vMAJOR.YYYYMMDD`.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let rest = v.trim().strip_prefix('v')?;
    let (major, date) = rest.split_once('.')?;
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) || major.is_empty() {
        return None;
    }
    let major: u32 = major.parse().ok()?;
    let date: u32 = date.parse().ok()?;
    NaiveDate::parse_from_str(&date.to_string(), "%Y%m%d").ok()?;
    Some((major, date))
}

/// Whether the server accepts this `X-BackendAI-Version` (v4.20181215 ≤ v ≤ v9.20250722).
pub fn version_supported(v: &str) -> bool {
    let Some((major, date)) = parse_version(v) else {
        return false;
    };
    (4..=9).contains(&major) && (20181215..=20250722).contains(&date)
}

/// Media type of a `Content-Type` value as signed: lower case, no parameters;
/// `application/octet-stream` when absent or empty.
pub fn signed_content_type(header: Option<&str>) -> String {
    let media = header
        .and_then(|h| h.split(';').next())
        .map(|s| s.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if media.is_empty() {
        "application/octet-stream".to_owned()
    } else {
        media
    }
}

/// A parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The access key.
    pub access_key: String,
    /// The hex signature.
    pub signature: String,
}

/// Parses `BackendAI signMethod=HMAC-SHA256, credential=AK:SIG` (`Sorna` is an alias).
pub fn parse_authorization(h: &str) -> Option<Credential> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(char::is_whitespace)?;
    if scheme != "BackendAI" && scheme != "Sorna" {
        return None;
    }
    let mut method = None;
    let mut credential = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k.trim() {
            "signMethod" => method = Some(v.trim()),
            "credential" => credential = Some(v.trim()),
            _ => {}
        }
    }
    if !method?.eq_ignore_ascii_case("HMAC-SHA256") {
        return None;
    }
    let (ak, sig) = credential?.split_once(':')?;
    if ak.is_empty() || sig.is_empty() {
        return None;
    }
    Some(Credential {
        access_key: ak.to_owned(),
        signature: sig.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SK: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    fn sig(method: &str, path: &str, date: &str, host: &str, ct: &str, ver: &str) -> String {
        let d = parse_date(date).expect("date parses");
        let input = SignInput {
            method,
            path_and_query: path,
            date,
            host,
            content_type: ct,
            version: ver,
        };
        let s = signature(SK, &d.ymd, &input);
        assert!(verify(SK, &d.ymd, &input, &s));
        s
    }

    #[test]
    fn keys_match_vector_1() {
        let k1 = mac(SK.as_bytes(), b"20250102");
        assert_eq!(
            hex::encode(&k1),
            "2cb1769c737c9bdcd5f1422561a2f0c0d8fb1b2a619ebd901f25cb4178398b4b"
        );
        assert_eq!(
            hex::encode(mac(&k1, b"127.0.0.1:8081")),
            "cc9688819780ff69998ea19cb171bbeeaf691f3921f12edc1515d6cce82ed7cd"
        );
    }

    #[test]
    fn five_protocol_vectors() {
        let d1 = "2025-01-02T03:04:05.678901+00:00";
        assert_eq!(
            sig(
                "GET",
                "/stream/session/mysess/tcpproxy?app=sshd",
                d1,
                "127.0.0.1:8081",
                "application/octet-stream",
                "v9.20250722"
            ),
            "1217841933a3b65a1f8a99ea609ced3bcc2b298070dde82142fcc652cd9622f8"
        );
        assert_eq!(
            sig(
                "GET",
                "/stream/session/mysess/apps",
                d1,
                "api.example.com",
                "application/octet-stream",
                "v9.20250722"
            ),
            "60ec6eb2c13e526a5ab76098f51926d9540a1209068d59951cc3ef47da2330bd"
        );
        assert_eq!(
            sig(
                "POST",
                "/session/mysess/download_single?file=%2Fhome%2Fwork%2Fid_container",
                "2024-12-31T23:59:59+00:00",
                "127.0.0.1:8081",
                "text/plain",
                "v8.20240915"
            ),
            "470b029b862d7ccd1e0c60852546344f626c8ea4918f58a288c74966105729cd"
        );
        assert_eq!(
            sig(
                "POST",
                "/admin/gql",
                d1,
                "api.example.com",
                "application/json",
                "v9.20250722"
            ),
            "063641dd1a5af1c3b885f6468f8dd6c20940e289b9c224e498bbba46f257b5f2"
        );
        assert_eq!(
            sig(
                "GET",
                "/stream/session/mysess/tcpproxy?app=sshd",
                "2025-01-02T03:04:05.678Z",
                "127.0.0.1:8081",
                "application/json",
                "v8.20240915"
            ),
            "a830bb7f7e6604fbb319563a39c1b313ac741948c08be120d4eb3372219513f5"
        );
    }

    #[test]
    fn dates_parse_in_every_accepted_form() {
        for raw in [
            "2025-01-02T03:04:05+00:00",
            "2025-01-02T03:04:05.5Z",
            "2025-01-02T03:04:05",
            "2025-01-02T03:04:05.123456",
            "Thu, 02 Jan 2025 03:04:05 GMT",
        ] {
            let d = parse_date(raw).unwrap_or_else(|| panic!("{raw} should parse"));
            assert_eq!(d.ymd, "20250102");
        }
        assert!(parse_date("yesterday").is_none());
    }

    #[test]
    fn versions() {
        assert!(version_supported("v9.20250722"));
        assert!(version_supported("v4.20181215"));
        assert!(version_supported("v8.20240915"));
        assert!(!version_supported("v9.20250723"));
        assert!(!version_supported("v3.20170615"));
        assert!(!version_supported("v10.20250101"));
        assert!(!version_supported("9.20250722"));
        assert!(!version_supported("v9.2025072"));
    }

    #[test]
    fn authorization_parses_both_schemes() {
        let c =
            parse_authorization("Sorna signMethod=HMAC-SHA256, credential=AK:abc").expect("parses");
        assert_eq!(c.access_key, "AK");
        assert_eq!(c.signature, "abc");
        assert!(parse_authorization("Bearer x").is_none());
        assert!(parse_authorization("BackendAI signMethod=HMAC-MD5, credential=AK:abc").is_none());
    }
}
