//! RFC 6455 framing for the client side of the data path: masked frames out, unmasked frames in.
//!
//! The data path owns its buffers, so nothing is copied to frame a payload: a local read lands
//! [`HEADROOM`] bytes into the buffer, the header is written in front of it and the payload is
//! masked in place; incoming payloads are written to the local side straight from the read
//! buffer.
//!
//! Length: about 240 lines of code; the rest are its unit and property tests (every length
//! class, every split point, masking against the naive loop), kept beside the parser.

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
            let len = u16::from_be_bytes([ext[0], ext[1]]);
            if len < 126 {
                return Err(FrameError::Protocol(
                    "the frame length is not minimally encoded",
                ));
            }
            (u64::from(len), 4)
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
            // RFC 6455 §5.2: "the minimal number of bytes MUST be used to encode the length".
            if len <= 0xFFFF {
                return Err(FrameError::Protocol(
                    "the frame length is not minimally encoded",
                ));
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
        assert_eq!(protocol(&[0x82, 126, 0, 125]), 1002, "125 in 16 bits");
        let mut wide = vec![0x82, 127];
        wide.extend_from_slice(&0xFFFFu64.to_be_bytes());
        assert_eq!(protocol(&wide), 1002, "65535 in 64 bits");
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

/// Property tests: bounded and deterministic by default (`PROPTEST_CASES` and
/// `PROPTEST_RNG_SEED` override the case count and the seed).
#[cfg(test)]
mod props {
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;

    fn config() -> ProptestConfig {
        ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// Deterministic filler bytes (xorshift64*), much faster than a strategy per byte.
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

    /// A payload length from each encoding class: 7-bit, 16-bit, 64-bit (rarer: it is big).
    fn data_len() -> impl Strategy<Value = usize> {
        prop_oneof![
            6 => 0usize..126,
            3 => 126usize..=65535,
            1 => 65536usize..70_000,
        ]
    }

    /// One server frame: first byte and payload.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Frame {
        fin: bool,
        opcode: u8,
        payload: Vec<u8>,
    }

    /// Encodes a server frame (unmasked), with the minimal length encoding.
    fn encode(frame: &Frame, out: &mut Vec<u8>) {
        out.push(u8::from(frame.fin) << 7 | frame.opcode);
        let len = frame.payload.len();
        if len < 126 {
            out.push(len as u8);
        } else if let Ok(short) = u16::try_from(len) {
            out.push(126);
            out.extend_from_slice(&short.to_be_bytes());
        } else {
            out.push(127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&frame.payload);
    }

    fn control() -> impl Strategy<Value = Frame> {
        (
            prop::sample::select(vec![OP_PING, OP_PONG, OP_CLOSE]),
            0usize..=MAX_CONTROL,
            any::<u64>(),
        )
            .prop_map(|(opcode, len, seed)| Frame {
                fin: true,
                opcode,
                payload: filler(len, seed),
            })
    }

    /// A valid sequence of server frames: binary and text messages, some fragmented, with
    /// control frames between the fragments and between the messages.
    fn frames() -> impl Strategy<Value = Vec<Frame>> {
        let message = (
            prop::sample::select(vec![OP_BINARY, OP_TEXT]),
            prop::collection::vec(
                (
                    data_len(),
                    any::<u64>(),
                    prop::option::weighted(0.3, control()),
                ),
                1..4,
            ),
        )
            .prop_map(|(opcode, fragments)| {
                let last = fragments.len() - 1;
                let mut out = Vec::new();
                for (i, (len, seed, control)) in fragments.into_iter().enumerate() {
                    out.push(Frame {
                        fin: i == last,
                        opcode: if i == 0 { opcode } else { OP_CONTINUATION },
                        payload: filler(len, seed),
                    });
                    if i != last {
                        out.extend(control);
                    }
                }
                out
            });
        prop::collection::vec(
            prop_oneof![3 => message, 1 => control().prop_map(|c| vec![c])],
            0..6,
        )
        .prop_map(|groups| groups.into_iter().flatten().collect())
    }

    /// Decodes server frames fed in `chunks`, as a reader would: parse a header as soon as it is
    /// complete, take the payload once it is all there. Stops at the first error.
    fn decode<'a>(
        chunks: impl IntoIterator<Item = &'a [u8]>,
        max: u64,
    ) -> (Vec<Frame>, Option<FrameError>) {
        let mut buf = Vec::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            loop {
                match parse_header(&buf, max) {
                    Ok(Some((header, n))) => {
                        assert!(matches!(n, 2 | 4 | 10), "header length {n}");
                        assert!(n <= buf.len());
                        let Ok(len) = usize::try_from(header.len) else {
                            break;
                        };
                        if buf.len() - n < len {
                            break;
                        }
                        frames.push(Frame {
                            fin: header.fin,
                            opcode: header.opcode,
                            payload: buf[n..n + len].to_vec(),
                        });
                        buf.drain(..n + len);
                    }
                    Ok(None) => break,
                    Err(e) => return (frames, Some(e)),
                }
            }
        }
        (frames, None)
    }

    /// Cuts `bytes` at the given points.
    fn split<'a>(bytes: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        at.sort_unstable();
        let mut out = Vec::new();
        let mut start = 0;
        for cut in at {
            out.push(&bytes[start..cut]);
            start = cut;
        }
        out.push(&bytes[start..]);
        out
    }

    fn naive_mask(data: &mut [u8], key: [u8; 4]) {
        for (i, b) in data.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_bytes_never_panic(
            bytes in prop::collection::vec(any::<u8>(), 0..64),
            max in any::<u64>(),
            cuts in prop::collection::vec(any::<Index>(), 0..4),
        ) {
            if let Ok(Some((header, n))) = parse_header(&bytes, max) {
                prop_assert!(n <= bytes.len());
                prop_assert!(header.len < 1 << 63);
                prop_assert!(header.is_control() || header.len <= max);
            }
            let _ = decode(split(&bytes, &cuts), max);
            let _ = parse_close(&bytes);
        }

        #[test]
        fn valid_frames_split_anywhere_decode_as_a_whole(
            frames in frames(),
            cuts in prop::collection::vec(any::<Index>(), 0..12),
        ) {
            let mut bytes = Vec::new();
            for frame in &frames {
                encode(frame, &mut bytes);
            }
            let whole = decode([&bytes[..]], u64::MAX);
            prop_assert_eq!(&whole, &(frames.clone(), None), "encoding then decoding");
            let pieces = decode(split(&bytes, &cuts), u64::MAX);
            prop_assert_eq!(&pieces, &whole);
            // One byte at a time is the hardest split (for the smaller streams: it is slow).
            if bytes.len() <= 16 * 1024 {
                let bytewise = decode(bytes.chunks(1), u64::MAX);
                prop_assert_eq!(&bytewise, &whole);
            }
        }

        #[test]
        fn every_prefix_of_a_header_asks_for_more(
            fin in any::<bool>(),
            opcode in prop::sample::select(vec![OP_CONTINUATION, OP_TEXT, OP_BINARY]),
            len in data_len(),
        ) {
            let frame = Frame { fin, opcode, payload: vec![0; len] };
            let mut bytes = Vec::new();
            encode(&frame, &mut bytes);
            let header_len = bytes.len() - len;
            for cut in 0..header_len {
                prop_assert_eq!(parse_header(&bytes[..cut], u64::MAX), Ok(None));
            }
            prop_assert_eq!(
                parse_header(&bytes[..header_len], u64::MAX),
                Ok(Some((Header { fin, opcode, len: len as u64 }, header_len)))
            );
        }

        #[test]
        fn non_minimal_lengths_are_refused(
            short in 0u16..126,
            medium in 0u64..=0xFFFF,
            opcode in prop::sample::select(vec![OP_BINARY, OP_TEXT, OP_CONTINUATION, OP_PING]),
        ) {
            let mut sixteen = vec![0x80 | opcode, 126];
            sixteen.extend_from_slice(&short.to_be_bytes());
            prop_assert_eq!(parse_header(&sixteen, u64::MAX).map_err(|e| e.close_code()), Err(1002));
            let mut sixty_four = vec![0x80 | opcode, 127];
            sixty_four.extend_from_slice(&medium.to_be_bytes());
            prop_assert_eq!(
                parse_header(&sixty_four, u64::MAX).map_err(|e| e.close_code()),
                Err(1002)
            );
        }

        #[test]
        fn client_frames_round_trip(
            opcode in prop::sample::select(vec![OP_BINARY, OP_PING, OP_PONG, OP_CLOSE]),
            len in data_len(),
            seed in any::<u64>(),
            key in any::<[u8; 4]>(),
        ) {
            let payload = filler(len, seed);
            let mut buf = vec![0u8; HEADROOM + len];
            buf[HEADROOM..].copy_from_slice(&payload);
            apply_mask(&mut buf[HEADROOM..], key);
            let start = put_client_header(&mut buf, HEADROOM, opcode, len, key);
            let frame = &buf[start..];
            // Decode it as a server would (RFC 6455 §5.2), with nothing but the spec.
            prop_assert_eq!(frame[0], 0x80 | opcode, "final, no RSV bits");
            prop_assert!(frame[1] & 0x80 != 0, "masked");
            let (declared, mut at) = match frame[1] & 0x7F {
                126 => (u64::from(u16::from_be_bytes([frame[2], frame[3]])), 4),
                127 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&frame[2..10]);
                    (u64::from_be_bytes(b), 10)
                }
                n => (u64::from(n), 2),
            };
            prop_assert_eq!(declared, len as u64);
            prop_assert_eq!(at, match len { 0..=125 => 2, 126..=65535 => 4, _ => 10 }, "minimal");
            prop_assert_eq!(&frame[at..at + 4], &key[..]);
            at += 4;
            let mut got = frame[at..].to_vec();
            naive_mask(&mut got, key);
            prop_assert_eq!(got, payload);

            let mut out = Vec::new();
            control_frame(&mut out, opcode, &filler(len % 200, seed), key);
            let payload_len = (len % 200).min(MAX_CONTROL);
            prop_assert_eq!(out.len(), 6 + payload_len, "control frames are cut to 125 bytes");
            prop_assert_eq!(usize::from(out[1] & 0x7F), payload_len);
        }

        #[test]
        fn masking_matches_the_naive_loop(
            data in prop::collection::vec(any::<u8>(), 0..300),
            offset in 0usize..16,
            key in any::<[u8; 4]>(),
        ) {
            // At any offset in a larger buffer: alignment must not matter.
            let mut fast = vec![0xA5u8; offset];
            fast.extend_from_slice(&data);
            fast.extend_from_slice(&[0x5A; 9]);
            let mut slow = data.clone();
            apply_mask(&mut fast[offset..offset + data.len()], key);
            naive_mask(&mut slow, key);
            prop_assert_eq!(&fast[offset..offset + data.len()], &slow[..]);
            prop_assert!(fast[..offset].iter().all(|&b| b == 0xA5), "nothing before it");
            prop_assert!(fast[offset + data.len()..].iter().all(|&b| b == 0x5A), "nor after");
        }

        #[test]
        fn close_payloads_fit_and_parse_back(code in any::<u16>(), reason in ".{0,80}") {
            let payload = close_payload(code, &reason);
            prop_assert!(payload.len() <= MAX_CONTROL);
            let close = parse_close(&payload).expect("valid").expect("a code");
            prop_assert_eq!(close.code, code);
            prop_assert!(reason.starts_with(&close.reason));
        }
    }
}
