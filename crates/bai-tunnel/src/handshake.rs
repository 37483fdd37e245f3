//! The client side of the WebSocket opening handshake (RFC 6455 §4.1) over an established
//! stream: send the upgrade request, read the answer, and hand back the bytes the server sent
//! after its `101` (the first frames may arrive in the same read as the headers).

use std::time::Duration;

use bytes::BytesMut;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

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
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let serve = tokio::spawn(async move {
            let mut scratch = vec![0u8; 4096];
            let _ = server.read(&mut scratch).await;
            server.write_all(response).await.expect("write");
            server
        });
        let request = http::Request::get("ws://h/x")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .body(())
            .expect("request");
        let answer = handshake(&mut client, &request).await;
        drop(serve.await);
        answer
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
