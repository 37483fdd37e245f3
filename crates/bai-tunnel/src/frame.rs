//! RFC 6455 framing for the client side of the data path: masked frames out, unmasked frames in.
//!
//! The data path owns its buffers, so nothing is copied to frame a payload: a local read lands
//! [`HEADROOM`] bytes into the buffer, the header is written in front of it and the payload is
//! masked in place; incoming payloads are written to the local side straight from the read
//! buffer.

/// Continuation of a fragmented message.
pub(crate) const OP_CONTINUATION: u8 = 0x0;
/// A text message (the tcpproxy never sends one; ignored).
pub(crate) const OP_TEXT: u8 = 0x1;
/// A binary message: the tunnel's data.
pub(crate) const OP_BINARY: u8 = 0x2;
/// Close.
pub(crate) const OP_CLOSE: u8 = 0x8;
/// Ping.
pub(crate) const OP_PING: u8 = 0x9;
/// Pong.
pub(crate) const OP_PONG: u8 = 0xA;

/// The longest client frame header: 2 bytes, a 64-bit length and the 4-byte masking key.
pub(crate) const HEADROOM: usize = 14;

/// Longest payload of a control frame.
pub(crate) const MAX_CONTROL: usize = 125;

/// A frame the server sent that breaks RFC 6455.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FrameError {
    /// A protocol violation (close code 1002).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A frame longer than the configured limit (close code 1009).
    #[error("a frame of {len} bytes is larger than the limit of {max} bytes")]
    TooLarge {
        /// The frame's declared length.
        len: u64,
        /// The limit.
        max: u64,
    },
}

impl FrameError {
    /// The close code to send for this error.
    pub(crate) fn close_code(&self) -> u16 {
        match self {
            FrameError::Protocol(_) => 1002,
            FrameError::TooLarge { .. } => 1009,
        }
    }
}

/// The header of a frame from the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Last frame of its message.
    pub fin: bool,
    /// The opcode.
    pub opcode: u8,
    /// Payload length.
    pub len: u64,
}

impl Header {
    pub(crate) fn is_control(&self) -> bool {
        self.opcode & 0x8 != 0
    }
}

/// Parses the header at the start of `buf`: `Ok(None)` when more bytes are needed, otherwise the
/// header and its length in bytes. Frames from a server must not be masked.
pub(crate) fn parse_header(
    buf: &[u8],
    max_len: u64,
) -> Result<Option<(Header, usize)>, FrameError> {
    let [b0, b1, ..] = *buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(FrameError::Protocol(
            "reserved bits set (no extension was negotiated)",
        ));
    }
    let fin = b0 & 0x80 != 0;
    let opcode = b0 & 0x0F;
    if !matches!(
        opcode,
        OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Err(FrameError::Protocol("unknown opcode"));
    }
    if b1 & 0x80 != 0 {
        return Err(FrameError::Protocol("the server sent a masked frame"));
    }
    let (len, header_len) = match b1 & 0x7F {
        126 => {
            let Some(ext) = buf.get(2..4) else {
                return Ok(None);
            };
            (u64::from(u16::from_be_bytes([ext[0], ext[1]])), 4)
        }
        127 => {
            let Some(ext) = buf.get(2..10) else {
                return Ok(None);
            };
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(ext);
            let len = u64::from_be_bytes(bytes);
            if len >> 63 != 0 {
                return Err(FrameError::Protocol("the frame length has its top bit set"));
            }
            (len, 10)
        }
        short => (u64::from(short), 2),
    };
    let header = Header { fin, opcode, len };
    if header.is_control() {
        if !fin {
            return Err(FrameError::Protocol("fragmented control frame"));
        }
        if len > MAX_CONTROL as u64 {
            return Err(FrameError::Protocol("control frame longer than 125 bytes"));
        }
    } else if len > max_len {
        return Err(FrameError::TooLarge { len, max: max_len });
    }
    Ok(Some((header, header_len)))
}

/// Writes the header of a final, masked frame of `len` payload bytes so that it ends exactly at
/// `buf[end]`, and returns where it starts. `end` must be at least [`HEADROOM`].
pub(crate) fn put_client_header(
    buf: &mut [u8],
    end: usize,
    opcode: u8,
    len: usize,
    key: [u8; 4],
) -> usize {
    let mut header = [0u8; HEADROOM];
    header[0] = 0x80 | opcode;
    let n = if len < 126 {
        // `len` < 126 fits in the seven bits.
        header[1] = 0x80 | len as u8;
        2
    } else if let Ok(short) = u16::try_from(len) {
        header[1] = 0x80 | 126;
        header[2..4].copy_from_slice(&short.to_be_bytes());
        4
    } else {
        header[1] = 0x80 | 127;
        header[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    header[n..n + 4].copy_from_slice(&key);
    let total = n + 4;
    let start = end - total;
    buf[start..end].copy_from_slice(&header[..total]);
    start
}

/// XORs `data` with the masking `key` (the frame's payload starting at offset 0).
pub(crate) fn apply_mask(data: &mut [u8], key: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3],
    ]);
    let mut words = data.chunks_exact_mut(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        word.copy_from_slice(&(u64::from_ne_bytes(bytes) ^ wide).to_ne_bytes());
    }
    // The remainder starts at a multiple of 8, so the key phase is 0 again.
    for (i, byte) in words.into_remainder().iter_mut().enumerate() {
        *byte ^= key[i % 4];
    }
}

/// Builds a complete masked control frame (`payload` ≤ 125 bytes) into `out`.
pub(crate) fn control_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8], key: [u8; 4]) {
    let payload = &payload[..payload.len().min(MAX_CONTROL)];
    out.clear();
    out.resize(HEADROOM + payload.len(), 0);
    out[HEADROOM..].copy_from_slice(payload);
    apply_mask(&mut out[HEADROOM..], key);
    let start = put_client_header(out, HEADROOM, opcode, payload.len(), key);
    out.drain(..start);
}

/// The payload of a close frame: the code and a reason cut to fit 125 bytes.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CONTROL - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// A close frame's code and reason. An empty payload has no code (1005 on the receiving end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Close {
    /// The status code.
    pub code: u16,
    /// The reason, possibly empty.
    pub reason: String,
}

/// Parses a close frame's payload: `Ok(None)` for an empty one.
pub(crate) fn parse_close(payload: &[u8]) -> Result<Option<Close>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::Protocol("a close frame of one byte")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let reason = std::str::from_utf8(reason)
                .map_err(|_| FrameError::Protocol("the close reason is not UTF-8"))?;
            Ok(Some(Close {
                code,
                reason: reason.to_owned(),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_mask(data: &mut [u8], key: [u8; 4]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }

    #[test]
    fn mask_matches_the_naive_loop_at_every_length() {
        let key = [0x12, 0x34, 0x56, 0x78];
        for len in 0..70 {
            let data: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut fast = data.clone();
            let mut slow = data.clone();
            apply_mask(&mut fast, key);
            naive_mask(&mut slow, key);
            assert_eq!(fast, slow, "len {len}");
            apply_mask(&mut fast, key);
            assert_eq!(fast, data, "masking twice is the identity");
        }
    }

    #[test]
    fn client_headers_in_each_length_class() {
        let key = [1, 2, 3, 4];
        for (len, expect) in [
            (0usize, vec![0x82, 0x80]),
            (125, vec![0x82, 0x80 | 125]),
            (126, vec![0x82, 0x80 | 126, 0, 126]),
            (65535, vec![0x82, 0x80 | 126, 0xFF, 0xFF]),
            (65536, vec![0x82, 0x80 | 127, 0, 0, 0, 0, 0, 1, 0, 0]),
        ] {
            let mut buf = [0u8; HEADROOM];
            let start = put_client_header(&mut buf, HEADROOM, OP_BINARY, len, key);
            let mut want = expect.clone();
            want.extend_from_slice(&key);
            assert_eq!(&buf[start..], &want[..], "len {len}");
        }
    }

    /// A server frame (unmasked) with the given first byte and payload length.
    fn server_header(b0: u8, len: u64) -> Vec<u8> {
        let mut out = vec![b0];
        if len < 126 {
            out.push(len as u8);
        } else if len <= 0xFFFF {
            out.push(126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            out.push(127);
            out.extend_from_slice(&len.to_be_bytes());
        }
        out
    }

    #[test]
    fn parses_server_headers_of_each_length_class_from_any_prefix() {
        for len in [0u64, 1, 125, 126, 65535, 65536, 1 << 24] {
            let bytes = server_header(0x82, len);
            for cut in 0..bytes.len() {
                assert_eq!(parse_header(&bytes[..cut], u64::MAX), Ok(None), "len {len}");
            }
            let (header, n) = parse_header(&bytes, u64::MAX)
                .expect("valid")
                .expect("complete");
            assert_eq!(n, bytes.len());
            assert_eq!(
                header,
                Header {
                    fin: true,
                    opcode: OP_BINARY,
                    len
                }
            );
        }
    }

    #[test]
    fn rejects_what_the_rfc_forbids() {
        let protocol = |bytes: &[u8]| match parse_header(bytes, 1 << 20) {
            Err(e @ FrameError::Protocol(_)) => e.close_code(),
            other => panic!("expected a protocol error for {bytes:?}, got {other:?}"),
        };
        assert_eq!(protocol(&[0xC2, 0x00]), 1002, "RSV1");
        assert_eq!(protocol(&[0x83, 0x00]), 1002, "opcode 3");
        assert_eq!(protocol(&[0x82, 0x81, 0, 0, 0, 0]), 1002, "masked");
        assert_eq!(protocol(&[0x09, 0x00]), 1002, "fragmented ping");
        assert_eq!(protocol(&[0x89, 126, 0, 126]), 1002, "long ping");
        let mut huge = vec![0x82, 127];
        huge.extend_from_slice(&(1u64 << 63).to_be_bytes());
        assert_eq!(protocol(&huge), 1002, "top bit of the length");
        let big = server_header(0x82, (1 << 20) + 1);
        assert_eq!(
            parse_header(&big, 1 << 20),
            Err(FrameError::TooLarge {
                len: (1 << 20) + 1,
                max: 1 << 20
            })
        );
    }

    #[test]
    fn control_frames_are_masked_and_complete() {
        let key = [9, 8, 7, 6];
        let mut out = Vec::new();
        control_frame(&mut out, OP_PONG, b"hello", key);
        assert_eq!(&out[..2], &[0x8A, 0x85]);
        assert_eq!(&out[2..6], &key);
        let mut payload = out[6..].to_vec();
        naive_mask(&mut payload, key);
        assert_eq!(payload, b"hello");

        let long = "é".repeat(100);
        let payload = close_payload(1001, &long);
        assert!(payload.len() <= MAX_CONTROL);
        let close = parse_close(&payload).expect("valid").expect("a code");
        assert_eq!(close.code, 1001);
        assert!(long.starts_with(&close.reason));
        assert_eq!(parse_close(&[]), Ok(None));
        assert!(parse_close(&[3]).is_err());
        assert!(parse_close(&[3, 232, 0xFF]).is_err());
    }
}
