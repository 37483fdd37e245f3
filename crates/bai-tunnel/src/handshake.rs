//! The client side of the WebSocket opening handshake (RFC 6455 §4.1) over an established
//! stream: send the upgrade request, read the answer, and hand back the bytes the server sent
//! after its `101` (the first frames may arrive in the same read as the headers).
//!
//! Over 500 lines on purpose: the handshake is about 260; the rest are its unit and property
//! tests (answers cut at every byte, hostile headers, chunked refusals).

use std::time::Duration;

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::ConnError;

/// The most response header bytes accepted.
const MAX_HEAD: usize = 64 * 1024;
/// The most headers in a response.
const MAX_HEADERS: usize = 128;
/// The most bytes of a refusal's body read (enough for any problem+json).
pub(crate) const MAX_BODY: usize = 4096;
/// How long the body of a refusal may take to arrive after its headers, when its length is
/// known (Content-Length or chunked).
const BODY_WAIT: Duration = Duration::from_secs(1);
/// The same when the body has no length and the server keeps the connection open.
const UNSIZED_BODY_WAIT: Duration = Duration::from_millis(200);

/// The answer to the upgrade request.
pub(crate) enum Answer {
    /// `101`: the WebSocket is open; the bytes the server already sent after the headers.
    Open(BytesMut),
    /// Anything else: the status and the start of the body.
    Refused {
        /// The HTTP status.
        status: u16,
        /// Up to [`MAX_BODY`] bytes of the body.
        body: Vec<u8>,
    },
}

/// Serialises `request` (already prepared: absolute `ws`/`wss` URI, handshake headers set).
fn request_bytes(request: &http::Request<()>) -> Vec<u8> {
    let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(request.method().as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

fn failed(message: impl Into<String>) -> ConnError {
    ConnError::Handshake(message.into())
}

/// The GUID every `Sec-WebSocket-Accept` is derived with (RFC 6455 §1.3).
const ACCEPT_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// A fresh `Sec-WebSocket-Key`: 16 random bytes, base64 (RFC 6455 §4.1).
pub(crate) fn generate_key() -> String {
    use base64::Engine as _;
    let key: [u8; 16] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// The `Sec-WebSocket-Accept` a server must answer `key` with: base64(SHA-1(key + GUID)).
pub(crate) fn derive_accept_key(key: &[u8]) -> String {
    use base64::Engine as _;
    use sha1::Digest as _;
    let mut sha = sha1::Sha1::new();
    sha.update(key);
    sha.update(ACCEPT_GUID);
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// Sends `request` on `io` and reads the server's answer.
pub(crate) async fn handshake<S>(
    io: &mut S,
    request: &http::Request<()>,
) -> Result<Answer, ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let key = request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or_else(|| failed("the request has no Sec-WebSocket-Key"))?
        .as_bytes()
        .to_vec();
    io.write_all(&request_bytes(request))
        .await
        .map_err(|e| failed(format!("sending the upgrade request: {e}")))?;
    io.flush()
        .await
        .map_err(|e| failed(format!("sending the upgrade request: {e}")))?;

    let mut buf = BytesMut::with_capacity(4096);
    let (status, headers, head_len) = loop {
        let n = io
            .read_buf(&mut buf)
            .await
            .map_err(|e| failed(format!("reading the upgrade response: {e}")))?;
        if n == 0 {
            return Err(failed(
                "the server closed the connection before answering the upgrade request",
            ));
        }
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut slots);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => {
                return Err(failed("the upgrade response headers are too large"))
            }
            Ok(httparse::Status::Complete(len)) => {
                let status = response.code.unwrap_or(0);
                let mut headers = HeaderMap::new();
                for h in response.headers.iter() {
                    if let (Ok(name), Ok(value)) = (
                        HeaderName::from_bytes(h.name.as_bytes()),
                        HeaderValue::from_bytes(h.value),
                    ) {
                        headers.append(name, value);
                    }
                }
                break (status, headers, len);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(failed("the upgrade response headers are too large"))
            }
            Err(httparse::Error::TooManyHeaders) => {
                return Err(failed("the upgrade response has too many headers"))
            }
            Err(e) => return Err(failed(format!("the upgrade response is not HTTP: {e}"))),
        }
    };
    let _ = buf.split_to(head_len);

    if status != 101 {
        // These never have a body.
        let body = if matches!(status, 100..=199 | 204 | 304) {
            Vec::new()
        } else {
            read_body(io, buf, &headers).await
        };
        return Ok(Answer::Refused { status, body });
    }
    let has_token = |name: HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::UPGRADE, "websocket") {
        return Err(failed("the 101 response has no `Upgrade: websocket`"));
    }
    if !has_token(header::CONNECTION, "upgrade") {
        return Err(failed("the 101 response has no `Connection: upgrade`"));
    }
    let accept = headers.get(header::SEC_WEBSOCKET_ACCEPT);
    if accept.map(HeaderValue::as_bytes) != Some(derive_accept_key(&key).as_bytes()) {
        return Err(failed(
            "the server's Sec-WebSocket-Accept does not match our key",
        ));
    }
    if headers.contains_key(header::SEC_WEBSOCKET_EXTENSIONS) {
        return Err(failed(
            "the server enabled a WebSocket extension that was not offered",
        ));
    }
    // RFC 6455 §4.1: a subprotocol the client did not offer fails the connection.
    let mut chosen = headers.get_all(header::SEC_WEBSOCKET_PROTOCOL).iter();
    if let Some(value) = chosen.next() {
        let mut offered = request
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let value = value.to_str().map(str::trim).unwrap_or("");
        if chosen.next().is_some() || value.is_empty() || !offered.any(|o| o == value) {
            return Err(failed(
                "the server chose a WebSocket subprotocol that was not offered",
            ));
        }
    }
    Ok(Answer::Open(buf))
}

/// The start of a refusal's body: what arrived with the headers plus what follows, up to the
/// end of a chunked body, `Content-Length`, EOF or [`MAX_BODY`], within [`BODY_WAIT`] (or
/// [`UNSIZED_BODY_WAIT`] for a body without a length). Chunked wins over `Content-Length`
/// (RFC 9112 §6.3).
async fn read_body<S>(io: &mut S, mut buf: BytesMut, headers: &HeaderMap) -> Vec<u8>
where
    S: AsyncRead + Unpin,
{
    let chunked = headers
        .get(header::TRANSFER_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|_| !chunked);
    let complete = |buf: &BytesMut| match length {
        Some(len) => buf.len() >= len,
        None => chunked && dechunk(buf).1,
    };
    let wait = if chunked || length.is_some() {
        BODY_WAIT
    } else {
        UNSIZED_BODY_WAIT
    };
    let fill = async {
        while buf.len() < MAX_BODY && !complete(&buf) {
            match io.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    let _ = tokio::time::timeout(wait, fill).await;
    let raw = if chunked {
        dechunk(&buf).0
    } else {
        buf.to_vec()
    };
    let end = length.unwrap_or(usize::MAX).min(MAX_BODY).min(raw.len());
    raw[..end].to_vec()
}

/// Decodes as much of a chunked body as is there; `true` once the last chunk was seen.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim().to_owned();
        let Ok(size) = usize::from_str_radix(&size_text, 16) else {
            break;
        };
        if size == 0 {
            return (out, true);
        }
        let data = &raw[line_end + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if take < size || data.len() < size + 2 {
            break;
        }
        raw = &data[size + 2..];
    }
    (out, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_match_rfc_6455_and_tungstenite() {
        // The example of RFC 6455 §1.3.
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
        for _ in 0..8 {
            let key = generate_key();
            assert_eq!(key.len(), 24, "{key}");
            assert_ne!(key, generate_key());
            assert_eq!(
                derive_accept_key(key.as_bytes()),
                tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes())
            );
        }
    }

    #[test]
    fn requests_are_serialised_with_path_query_and_headers() {
        let request = http::Request::get("ws://h:1/stream/session/s/tcpproxy?app=sshd")
            .header("Host", "h:1")
            .header("Sec-WebSocket-Key", "k")
            .body(())
            .expect("request");
        let text = String::from_utf8(request_bytes(&request)).expect("utf-8");
        assert!(text.starts_with("GET /stream/session/s/tcpproxy?app=sshd HTTP/1.1\r\n"));
        assert!(text.contains("\r\nhost: h:1\r\n"));
        assert!(text.ends_with("sec-websocket-key: k\r\n\r\n"));
    }

    #[test]
    fn chunked_bodies_are_decoded() {
        let (body, done) = dechunk(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
        assert_eq!((body.as_slice(), done), (&b"hello world"[..], true));
        // Data that ends like the last chunk is still data.
        let (body, done) = dechunk(b"5\r\nab0\r\n\r\n");
        assert_eq!((body.as_slice(), done), (&b"ab0\r\n"[..], false));
        assert_eq!(dechunk(b"5\r\nhel"), (b"hel".to_vec(), false));
        assert_eq!(dechunk(b"zz\r\n"), (Vec::new(), false));
        assert_eq!(dechunk(b"0;ext=1\r\n\r\n"), (Vec::new(), true));
    }

    async fn answer_to(response: &'static [u8]) -> Result<Answer, ConnError> {
        answer_offering(response.to_vec(), None).await
    }

    async fn answer_offering(
        response: Vec<u8>,
        protocols: Option<&'static str>,
    ) -> Result<Answer, ConnError> {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let serve = tokio::spawn(async move {
            let mut scratch = vec![0u8; 4096];
            let _ = server.read(&mut scratch).await;
            server.write_all(&response).await.expect("write");
            server
        });
        let mut request = http::Request::get("ws://h/x")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .expect("request");
        if let Some(protocols) = protocols {
            request.headers_mut().insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(protocols),
            );
        }
        let answer = handshake(&mut client, &request).await;
        drop(serve.await);
        answer
    }

    #[tokio::test]
    async fn a_subprotocol_must_be_one_that_was_offered() {
        const HEAD: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
            Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
        let with = |protocol: &str| -> Vec<u8> {
            let text = if protocol.is_empty() {
                format!("{HEAD}\r\n")
            } else {
                format!("{HEAD}Sec-WebSocket-Protocol: {protocol}\r\n\r\n")
            };
            text.into_bytes()
        };
        let opened = |a: &Result<Answer, ConnError>| matches!(a, Ok(Answer::Open(_)));
        let refused = |a: &Result<Answer, ConnError>| matches!(a, Err(ConnError::Handshake(m)) if m.contains("subprotocol"));
        assert!(opened(&answer_offering(with(""), None).await));
        assert!(opened(&answer_offering(with(""), Some("a, b")).await));
        assert!(opened(&answer_offering(with("b"), Some("a, b")).await));
        assert!(refused(&answer_offering(with("c"), Some("a, b")).await));
        assert!(refused(&answer_offering(with("a, b"), Some("a, b")).await));
        assert!(refused(&answer_offering(with("a"), None).await));
    }

    #[tokio::test]
    async fn a_101_keeps_the_bytes_after_the_headers() {
        let answer = answer_to(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x82\x03SSH",
        )
        .await;
        match answer {
            Ok(Answer::Open(rest)) => assert_eq!(&rest[..], b"\x82\x03SSH"),
            other => panic!("expected open, got {:?}", other.err()),
        }
    }

    #[tokio::test]
    async fn a_wrong_accept_key_or_an_extension_fails() {
        let wrong = answer_to(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: nope\r\n\r\n",
        )
        .await;
        assert!(matches!(wrong, Err(ConnError::Handshake(m)) if m.contains("Accept")));
        let ext = answer_to(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
              Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        )
        .await;
        assert!(matches!(ext, Err(ConnError::Handshake(m)) if m.contains("extension")));
        let garbage = answer_to(b"SSH-2.0-OpenSSH\r\n\r\n").await;
        assert!(matches!(garbage, Err(ConnError::Handshake(m)) if m.contains("not HTTP")));
    }

    #[tokio::test]
    async fn refusals_keep_status_and_body() {
        let answer = answer_to(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: application/problem+json\r\n\
              Content-Length: 27\r\n\r\n{\"title\":\"No such session\"}",
        )
        .await;
        match answer {
            Ok(Answer::Refused { status, body }) => {
                assert_eq!(status, 404);
                assert_eq!(body, br#"{"title":"No such session"}"#);
            }
            other => panic!("expected a refusal, got {:?}", other.err()),
        }
        let chunked = answer_to(
            b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n\
              4\r\nupst\r\n7\r\nream go\r\n0\r\n\r\n",
        )
        .await;
        match chunked {
            Ok(Answer::Refused { status, body }) => {
                assert_eq!(status, 502);
                assert_eq!(body, b"upstream go");
            }
            other => panic!("expected a refusal, got {:?}", other.err()),
        }
    }
}

/// Property tests of the response parser: bounded and deterministic by default
/// (`PROPTEST_CASES` and `PROPTEST_RNG_SEED` override the case count and the seed).
#[cfg(test)]
mod props {
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;

    /// The accept key of the request's key in [`answer`].
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    /// Runs the handshake against a server that sends `response` in pieces cut at `cuts`,
    /// then EOF. Returns the answer and, after a `101`, the rest of the stream.
    fn answer(response: &[u8], cuts: &[Index]) -> (Result<Answer, ConnError>, Vec<u8>) {
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(response.len() + 1)).collect();
        at.sort_unstable();
        at.push(response.len());
        let mut chunks = Vec::new();
        let mut start = 0;
        for end in at {
            chunks.push(response[start..end].to_vec());
            start = end;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let run = async move {
            let (mut client, server) = tokio::io::duplex(1 << 20);
            let (mut server_rd, mut server_wr) = tokio::io::split(server);
            let server = tokio::spawn(async move {
                for chunk in chunks {
                    if server_wr.write_all(&chunk).await.is_err() {
                        break;
                    }
                    tokio::task::yield_now().await;
                }
                let _ = server_wr.shutdown().await;
                let mut request = Vec::new();
                let _ = server_rd.read_to_end(&mut request).await;
            });
            let request = http::Request::get("ws://h/x")
                .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
                .body(())
                .expect("request");
            let answer = handshake(&mut client, &request).await;
            let mut rest = Vec::new();
            if matches!(answer, Ok(Answer::Open(_))) {
                client.read_to_end(&mut rest).await.expect("the rest");
            }
            drop(client);
            server.await.expect("server");
            (answer, rest)
        };
        runtime.block_on(async {
            tokio::time::timeout(Duration::from_secs(10), run)
                .await
                .expect("the handshake ended in time")
        })
    }

    /// Header lines that change nothing for the handshake.
    fn extra_headers() -> impl Strategy<Value = Vec<(String, String)>> {
        prop::collection::vec(("X-[A-Za-z0-9-]{1,12}", "[ -~]{0,40}"), 0..6)
    }

    fn filler(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x >> 12;
                x ^= x << 25;
                x ^= x >> 27;
                (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_responses_end_cleanly(
            prefix in prop::sample::select(vec![
                "", "HTTP/1.1 ", "HTTP/1.1 101 Switching Protocols\r\n", "HTTP/1.1 404 X\r\n",
                "HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n\r\n",
                "HTTP/1.1 400 Bad Request\r\nContent-Length: 7\r\n\r\n",
            ]),
            bytes in prop::collection::vec(any::<u8>(), 0..400),
            cuts in prop::collection::vec(any::<Index>(), 0..4),
        ) {
            let mut response = prefix.as_bytes().to_vec();
            response.extend_from_slice(&bytes);
            let (answer, _) = answer(&response, &cuts);
            if let Ok(Answer::Refused { body, .. }) = answer {
                prop_assert!(body.len() <= MAX_BODY);
            }
        }

        #[test]
        fn a_101_keeps_exactly_the_bytes_after_it(
            extra in extra_headers(),
            lowercase in any::<bool>(),
            trailing in prop::collection::vec(any::<u8>(), 0..3000),
            cuts in prop::collection::vec(any::<Index>(), 0..6),
        ) {
            let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\n");
            let mut lines = vec![
                ("Upgrade".to_owned(), "websocket".to_owned()),
                ("Connection".to_owned(), "Upgrade".to_owned()),
                ("Sec-WebSocket-Accept".to_owned(), ACCEPT.to_owned()),
            ];
            lines.extend(extra);
            for (name, value) in lines {
                let name = if lowercase { name.to_ascii_lowercase() } else { name };
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let mut response = head.into_bytes();
            response.extend_from_slice(&trailing);
            let (answer, rest) = answer(&response, &cuts);
            let Ok(Answer::Open(read_ahead)) = answer else {
                return Err(TestCaseError::fail(format!("not open: {:?}", answer.err())));
            };
            let mut after = read_ahead.to_vec();
            after.extend_from_slice(&rest);
            prop_assert!(after == trailing, "{} bytes after the 101, want {}", after.len(), trailing.len());
        }

        #[test]
        fn refusals_with_a_content_length_keep_that_many_bytes(
            status in prop_oneof![400u16..600, 200u16..204, 300u16..304],
            len in prop_oneof![0usize..100, 100usize..6000],
            declared_delta in -3i64..3,
            seed in any::<u64>(),
            extra in extra_headers(),
            cuts in prop::collection::vec(any::<Index>(), 0..6),
        ) {
            let body = filler(len, seed);
            let declared = usize::try_from(len as i64 + declared_delta).unwrap_or(0);
            let mut head = format!("HTTP/1.1 {status} Whatever\r\nContent-Length: {declared}\r\n");
            for (name, value) in extra {
                head.push_str(&format!("{name}: {value}\r\n"));
            }
            head.push_str("\r\n");
            let mut response = head.into_bytes();
            response.extend_from_slice(&body);
            let (answer, _) = answer(&response, &cuts);
            let Ok(Answer::Refused { status: got, body: kept }) = answer else {
                return Err(TestCaseError::fail(format!("not refused: {:?}", answer.err())));
            };
            prop_assert_eq!(got, status);
            let want = &body[..len.min(declared).min(MAX_BODY)];
            prop_assert!(kept == want, "kept {} bytes, want {}", kept.len(), want.len());
        }

        #[test]
        fn chunked_refusals_are_decoded(
            len in prop_oneof![0usize..200, 200usize..6000],
            seed in any::<u64>(),
            sizes in prop::collection::vec(1usize..700, 1..20),
            upper in any::<bool>(),
            extensions in any::<bool>(),
            also_length in any::<bool>(),
            cuts in prop::collection::vec(any::<Index>(), 0..6),
        ) {
            let body = filler(len, seed);
            let mut encoded = Vec::new();
            let mut rest = &body[..];
            let mut sizes = sizes.iter().cycle();
            while !rest.is_empty() {
                let n = sizes.next().copied().unwrap_or(1).min(rest.len());
                let size = if upper { format!("{n:X}") } else { format!("{n:x}") };
                let ext = if extensions { ";name=value" } else { "" };
                encoded.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                encoded.extend_from_slice(&rest[..n]);
                encoded.extend_from_slice(b"\r\n");
                rest = &rest[n..];
            }
            encoded.extend_from_slice(b"0\r\n\r\n");
            // Chunked wins over a (lying) Content-Length (RFC 9112 §6.3).
            let length = if also_length { "Content-Length: 3\r\n" } else { "" };
            let mut response = format!(
                "HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\n{length}\r\n"
            )
            .into_bytes();
            response.extend_from_slice(&encoded);
            let (answer, _) = answer(&response, &cuts);
            let Ok(Answer::Refused { status, body: kept }) = answer else {
                return Err(TestCaseError::fail(format!("not refused: {:?}", answer.err())));
            };
            prop_assert_eq!(status, 502);
            prop_assert!(kept.len() <= MAX_BODY);
            prop_assert!(body.starts_with(&kept), "a prefix of the body");
            if encoded.len() <= MAX_BODY {
                prop_assert!(kept == body, "kept {} bytes of {}", kept.len(), body.len());
            }
        }

        #[test]
        fn too_many_or_too_large_headers_are_refused_cleanly(
            count in prop_oneof![0usize..20, 100usize..200],
            value_len in prop_oneof![0usize..50, 300usize..700],
            cuts in prop::collection::vec(any::<Index>(), 0..6),
        ) {
            let mut head = String::from("HTTP/1.1 404 Not Found\r\n");
            for i in 0..count {
                head.push_str(&format!("X-{i}: {}\r\n", "v".repeat(value_len)));
            }
            head.push_str("Content-Length: 2\r\n\r\n");
            let size = head.len();
            let headers = count + 1;
            let mut response = head.into_bytes();
            response.extend_from_slice(b"{}");
            let (answer, _) = answer(&response, &cuts);
            match answer {
                Ok(Answer::Refused { status, body }) => {
                    prop_assert!(headers <= MAX_HEADERS && size <= MAX_HEAD, "{headers} headers, {size} bytes accepted");
                    prop_assert_eq!(status, 404);
                    prop_assert_eq!(body, b"{}".to_vec());
                }
                Err(ConnError::Handshake(message)) => {
                    prop_assert!(headers > MAX_HEADERS || size > MAX_HEAD, "{message}");
                    prop_assert!(message.contains("too many") || message.contains("too large"), "{message}");
                }
                Ok(Answer::Open(_)) => return Err(TestCaseError::fail("opened")),
                Err(other) => return Err(TestCaseError::fail(format!("{other:?}"))),
            }
        }
    }
}
