//! The webserver's encrypted login body (protocol.md §1) and RFC 6238 TOTP codes.

use aes::cipher::{block_padding::Pkcs7, BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use base64::Engine as _;
use hmac::{Hmac, Mac};

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256>;

/// Key for the encrypted login body: `(base64(endpoint) + iv + iv)[:32]`, where `endpoint` is
/// `scheme://host[:port]`.
pub fn login_key(endpoint: &str, iv: &str) -> Vec<u8> {
    let mut key = base64::engine::general_purpose::STANDARD.encode(endpoint);
    key.push_str(iv);
    key.push_str(iv);
    key.into_bytes().into_iter().take(32).collect()
}

/// Encrypts a login body as the official client does: `iv:base64(AES-256-CBC(PKCS7(body)))`.
/// `iv` must be 16 ASCII characters.
pub fn encrypt_login_body(endpoint: &str, iv: &str, plain: &[u8]) -> Option<String> {
    let key = login_key(endpoint, iv);
    let enc = Aes256CbcEnc::new_from_slices(&key, iv.as_bytes()).ok()?;
    let ct = enc.encrypt_padded_vec_mut::<Pkcs7>(plain);
    Some(format!(
        "{iv}:{}",
        base64::engine::general_purpose::STANDARD.encode(ct)
    ))
}

/// Decrypts `iv:base64(ct)`; `None` when the body is malformed or the padding is wrong.
pub fn decrypt_login_body(endpoint: &str, body: &str) -> Option<Vec<u8>> {
    let (iv, ct) = body.trim().split_once(':')?;
    let ct = base64::engine::general_purpose::STANDARD
        .decode(ct.trim())
        .ok()?;
    let key = login_key(endpoint, iv);
    let dec = Aes256CbcDec::new_from_slices(&key, iv.as_bytes()).ok()?;
    dec.decrypt_padded_vec_mut::<Pkcs7>(&ct).ok()
}

/// Decodes RFC 4648 base32 (case-insensitive; spaces and `=` ignored).
pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u64, 0u32);
    for c in s.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u64 - 'A' as u64,
            c @ '2'..='7' => c as u64 - '2' as u64 + 26,
            _ => return None,
        };
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// RFC 6238 TOTP (HMAC-SHA1, 30 s steps, 6 digits) of a base32 secret at a Unix time.
/// An undecodable secret is treated as empty.
pub fn totp_at(secret_base32: &str, unix_secs: u64) -> String {
    let key = base32_decode(secret_base32).unwrap_or_default();
    let counter = unix_secs / 30;
    let mut m = Hmac::<sha1::Sha1>::new_from_slice(&key).expect("BUG: HMAC accepts any key");
    m.update(&counter.to_be_bytes());
    let h = m.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let code = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    format!("{:06}", code % 1_000_000)
}

/// The current TOTP code of a base32 secret, for client tests that log in with `otp`.
pub fn totp_now(secret_base32: &str) -> String {
    totp_at(secret_base32, unix_now())
}

/// Whether `code` is the TOTP of the current step or one step either side.
pub fn totp_matches(secret_base32: &str, code: &str) -> bool {
    let now = unix_now();
    [now.saturating_sub(30), now, now + 30]
        .iter()
        .any(|t| totp_at(secret_base32, *t) == code.trim())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = r#"{"username": "user@example.com", "password": "secret"}"#;
    const CT: &str = "ABCDEFGHIJKLMNOP:0VTC/WpV5VChyvZzx4CuNDpXI9loMkI3t087RODtmIMJtyZDSgpG27Z2ubr47pnnZZ7IFEH7jTRITq8tXvQnXg==";

    #[test]
    fn login_key_vector() {
        assert_eq!(
            login_key("http://127.0.0.1:8090", "ABCDEFGHIJKLMNOP"),
            b"aHR0cDovLzEyNy4wLjAuMTo4MDkwABCD"
        );
    }

    #[test]
    fn login_body_vector_round_trips() {
        assert_eq!(
            encrypt_login_body("http://127.0.0.1:8090", "ABCDEFGHIJKLMNOP", BODY.as_bytes())
                .as_deref(),
            Some(CT)
        );
        assert_eq!(
            decrypt_login_body("http://127.0.0.1:8090", CT).as_deref(),
            Some(BODY.as_bytes())
        );
        assert!(
            decrypt_login_body("http://127.0.0.1:9999", CT).is_none_or(|p| p != BODY.as_bytes())
        );
    }

    #[test]
    fn totp_rfc6238_vectors() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890" (base32 below), 8 digits
        // truncated to the last 6.
        let secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(totp_at(secret, 59), "287082");
        assert_eq!(totp_at(secret, 1111111109), "081804");
        assert_eq!(totp_at(secret, 20000000000), "353130");
        assert!(totp_matches(secret, &totp_now(secret)));
    }
}
