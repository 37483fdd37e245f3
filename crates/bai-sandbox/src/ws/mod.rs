//! The server side of RFC 6455 as the tcpproxy route needs it: the opening handshake
//! (`handshake`), server frame headers, and an incremental parser of client frames that
//! unmasks data in place.
//!
//! Written from the RFC for this crate alone (it shares no code with the client crates, so a
//! framing mistake cannot hide on both sides of the wire). No extension is ever negotiated, so
//! the RSV bits must be clear; subprotocols are echoed (the first one offered).
//!
//! Why this file is over ~500 lines: it is one cohesive implementation of RFC 6455 §5 server
//! framing (frame headers, masking, control frames, fragmentation, close codes; under 480
//! lines, the parser a single state machine) followed by its unit tests (about 370 lines),
//! which split streams at every byte boundary and cover each protocol error. Splitting the
//! parser from the frames it parses, or the tests from the code they check, would only scatter
//! one state machine.

mod handshake;

use std::ops::Range;

pub(crate) use handshake::{accept, Upgrade};

/// Largest frame payload, and largest message, a client may send (the manager's
/// `max_msg_size`); more gets close 1009.
pub(crate) const MAX_MESSAGE: u64 = 16 << 20;
/// Longest header of a server frame: 2 bytes plus a 64-bit length (server frames are unmasked).
pub(crate) const MAX_SERVER_HEADER: usize = 10;
/// Longest control frame payload (RFC 6455 §5.5).
pub(crate) const MAX_CONTROL: usize = 125;

/// Frame opcodes (RFC 6455 §5.2).
pub(crate) mod opcode {
    /// Continuation of a fragmented message.
    pub const CONTINUATION: u8 = 0x0;
    /// First frame of a text message.
    pub const TEXT: u8 = 0x1;
    /// First frame of a binary message.
    pub const BINARY: u8 = 0x2;
    /// Close.
    pub const CLOSE: u8 = 0x8;
    /// Ping.
    pub const PING: u8 = 0x9;
    /// Pong.
    pub const PONG: u8 = 0xA;
}

/// Close codes the server sends on bad input.
pub(crate) mod close {
    /// Protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// Data inconsistent with the message type (a close reason that is not UTF-8).
    pub const INVALID_DATA: u16 = 1007;
    /// Message too big.
    pub const TOO_BIG: u16 = 1009;
}

/// The header of a final, unmasked server frame with `len` payload bytes: the bytes and how
/// many of them are used (2, 4 or 10).
pub(crate) fn server_header(opcode: u8, len: usize) -> ([u8; MAX_SERVER_HEADER], usize) {
    let mut h = [0u8; MAX_SERVER_HEADER];
    h[0] = 0x80 | opcode;
    let used = if len <= 125 {
        h[1] = len as u8;
        2
    } else if len <= usize::from(u16::MAX) {
        h[1] = 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        4
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    };
    (h, used)
}

/// A whole control frame (header + at most 125 payload bytes) in a fixed buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ControlFrame {
    bytes: [u8; 2 + MAX_CONTROL],
    len: usize,
}

impl ControlFrame {
    /// A control frame; a payload over 125 bytes is cut there.
    pub(crate) fn new(opcode: u8, payload: &[u8]) -> Self {
        let n = payload.len().min(MAX_CONTROL);
        let mut bytes = [0u8; 2 + MAX_CONTROL];
        bytes[0] = 0x80 | opcode;
        bytes[1] = n as u8;
        bytes[2..2 + n].copy_from_slice(&payload[..n]);
        ControlFrame { bytes, len: 2 + n }
    }

    /// A close frame with a code and a reason (cut to fit 125 bytes at a char boundary).
    pub(crate) fn close(code: u16, reason: &str) -> Self {
        let mut payload = [0u8; MAX_CONTROL];
        payload[..2].copy_from_slice(&code.to_be_bytes());
        let mut end = reason.len().min(MAX_CONTROL - 2);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        payload[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
        Self::new(opcode::CLOSE, &payload[..2 + end])
    }

    /// The frame's bytes on the wire.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// XORs `data` with the 4-byte `mask`, starting at mask position `phase` (0..4); returns the
/// phase after the last byte. Works eight bytes at a time with a rotated 64-bit mask.
pub(crate) fn unmask(data: &mut [u8], mask: [u8; 4], phase: usize) -> usize {
    let m = [
        mask[phase & 3],
        mask[(phase + 1) & 3],
        mask[(phase + 2) & 3],
        mask[(phase + 3) & 3],
    ];
    let wide = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut words = data.chunks_exact_mut(8);
    for w in &mut words {
        let mut b = [0u8; 8];
        b.copy_from_slice(w);
        w.copy_from_slice(&(u64::from_ne_bytes(b) ^ wide).to_ne_bytes());
    }
    for (i, b) in words.into_remainder().iter_mut().enumerate() {
        *b ^= m[i & 3];
    }
    (phase + data.len()) & 3
}

/// Bad client input: the connection is failed with this close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (close {code})")]
pub(crate) struct ProtocolError {
    /// The close code to send.
    pub code: u16,
    /// The close reason to send.
    pub reason: &'static str,
}

const fn protocol(reason: &'static str) -> ProtocolError {
    ProtocolError {
        code: close::PROTOCOL,
        reason,
    }
}

/// What one [`Parser::step`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Binary message data: the first `n` bytes of the input, unmasked in place.
    Data(usize),
    /// A ping with its payload (answer with a pong carrying the same bytes).
    Ping(Vec<u8>),
    /// A pong (ignored by the tunnel).
    Pong,
    /// A close with its payload (empty, or a valid code and a UTF-8 reason), to be echoed.
    Close(Vec<u8>),
}

/// The result of one [`Parser::step`]: how many input bytes it used, and what it found.
/// `consumed == 0` with no event means the input holds only part of a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    /// Input bytes used (the caller drops them).
    pub consumed: usize,
    /// What they were, if anything the caller acts on.
    pub event: Option<Event>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Binary,
    Text,
}

#[derive(Debug, Clone, Copy)]
enum State {
    Header,
    /// Inside the payload of a data frame.
    Data {
        fin: bool,
        kind: Kind,
        remaining: u64,
        mask: [u8; 4],
        phase: usize,
    },
    /// Inside the payload of a control frame (collected in `Parser::control`).
    Control {
        opcode: u8,
        remaining: usize,
        mask: [u8; 4],
    },
}

/// An incremental parser of client frames: feed it the unread bytes, as many or as few as
/// arrived; it never needs more than one header (≤ 14 bytes) kept back.
#[derive(Debug)]
pub(crate) struct Parser {
    state: State,
    /// The data message in progress (its first frame had no FIN).
    message: Option<Kind>,
    message_len: u64,
    control: Vec<u8>,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            state: State::Header,
            message: None,
            message_len: 0,
            control: Vec::with_capacity(MAX_CONTROL),
        }
    }
}

fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

impl Parser {
    /// Parses from the start of `input` (which it may unmask in place).
    pub(crate) fn step(&mut self, input: &mut [u8]) -> Result<Step, ProtocolError> {
        match self.state {
            State::Header => self.header(input),
            State::Data {
                fin,
                kind,
                remaining,
                mask,
                phase,
            } => {
                let n = remaining.min(input.len() as u64) as usize;
                let event = match kind {
                    Kind::Binary if n > 0 => {
                        let phase = unmask(&mut input[..n], mask, phase);
                        Some((phase, Event::Data(n)))
                    }
                    // Text is ignored, so it is not even unmasked.
                    _ => None,
                };
                let remaining = remaining - n as u64;
                if remaining == 0 {
                    self.end_data_frame(fin);
                } else if let State::Data {
                    remaining: r,
                    phase: p,
                    ..
                } = &mut self.state
                {
                    *r = remaining;
                    *p = event.as_ref().map_or((*p + n) & 3, |(ph, _)| *ph);
                }
                Ok(Step {
                    consumed: n,
                    event: event.map(|(_, e)| e),
                })
            }
            State::Control {
                opcode,
                remaining,
                mask,
            } => {
                let n = remaining.min(input.len());
                let start = self.control.len();
                self.control.extend_from_slice(&input[..n]);
                unmask(&mut self.control[start..], mask, start & 3);
                if n == remaining {
                    self.state = State::Header;
                    let event = self.end_control(opcode)?;
                    Ok(Step {
                        consumed: n,
                        event: Some(event),
                    })
                } else {
                    self.state = State::Control {
                        opcode,
                        remaining: remaining - n,
                        mask,
                    };
                    Ok(Step {
                        consumed: n,
                        event: None,
                    })
                }
            }
        }
    }

    fn header(&mut self, input: &[u8]) -> Result<Step, ProtocolError> {
        const NEED_MORE: Step = Step {
            consumed: 0,
            event: None,
        };
        let (Some(&b0), Some(&b1)) = (input.first(), input.get(1)) else {
            return Ok(NEED_MORE);
        };
        if b0 & 0x70 != 0 {
            return Err(protocol("reserved bits set"));
        }
        if b1 & 0x80 == 0 {
            return Err(protocol("unmasked client frame"));
        }
        let fin = b0 & 0x80 != 0;
        let op = b0 & 0x0F;
        let (len, at) = match b1 & 0x7F {
            126 => match input.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(NEED_MORE),
            },
            127 => match input.get(2..10) {
                Some(b) => {
                    let mut be = [0u8; 8];
                    be.copy_from_slice(b);
                    let len = u64::from_be_bytes(be);
                    if len >> 63 != 0 {
                        return Err(protocol("payload length with the top bit set"));
                    }
                    (len, 10)
                }
                None => return Ok(NEED_MORE),
            },
            l => (u64::from(l), 2),
        };
        let Some(m) = input.get(at..at + 4) else {
            return Ok(NEED_MORE);
        };
        let mask = [m[0], m[1], m[2], m[3]];
        let consumed = at + 4;

        match op {
            opcode::CLOSE | opcode::PING | opcode::PONG => {
                if !fin {
                    return Err(protocol("fragmented control frame"));
                }
                if len > MAX_CONTROL as u64 {
                    return Err(protocol("control frame over 125 bytes"));
                }
                self.control.clear();
                if len == 0 {
                    return Ok(Step {
                        consumed,
                        event: Some(self.end_control(op)?),
                    });
                }
                self.state = State::Control {
                    opcode: op,
                    remaining: len as usize,
                    mask,
                };
                Ok(Step {
                    consumed,
                    event: None,
                })
            }
            opcode::CONTINUATION | opcode::TEXT | opcode::BINARY => {
                let kind = match (op, self.message) {
                    (opcode::CONTINUATION, Some(k)) => k,
                    (opcode::CONTINUATION, None) => {
                        return Err(protocol("continuation outside a message"))
                    }
                    (_, Some(_)) => return Err(protocol("new message inside a fragmented one")),
                    (opcode::TEXT, None) => Kind::Text,
                    _ => Kind::Binary,
                };
                if len > MAX_MESSAGE || self.message_len + len > MAX_MESSAGE {
                    return Err(ProtocolError {
                        code: close::TOO_BIG,
                        reason: "message over 16 MiB",
                    });
                }
                self.message = Some(kind);
                self.message_len += len;
                if len == 0 {
                    self.end_data_frame(fin);
                } else {
                    self.state = State::Data {
                        fin,
                        kind,
                        remaining: len,
                        mask,
                        phase: 0,
                    };
                }
                Ok(Step {
                    consumed,
                    event: None,
                })
            }
            _ => Err(protocol("unknown opcode")),
        }
    }

    fn end_data_frame(&mut self, fin: bool) {
        self.state = State::Header;
        if fin {
            self.message = None;
            self.message_len = 0;
        }
    }

    fn end_control(&mut self, op: u8) -> Result<Event, ProtocolError> {
        let payload = std::mem::take(&mut self.control);
        self.control = Vec::with_capacity(MAX_CONTROL);
        match op {
            opcode::PING => Ok(Event::Ping(payload)),
            opcode::PONG => Ok(Event::Pong),
            _ => {
                match payload.len() {
                    0 => {}
                    1 => return Err(protocol("close payload of one byte")),
                    _ => {
                        if !valid_close_code(u16::from_be_bytes([payload[0], payload[1]])) {
                            return Err(protocol("invalid close code"));
                        }
                        if std::str::from_utf8(&payload[2..]).is_err() {
                            return Err(ProtocolError {
                                code: close::INVALID_DATA,
                                reason: "close reason is not UTF-8",
                            });
                        }
                    }
                }
                Ok(Event::Close(payload))
            }
        }
    }
}

/// The byte ranges of `buf` that hold data, in order; adjacent ranges merge.
#[derive(Debug, Default)]
pub(crate) struct Ranges(Vec<Range<usize>>);

impl Ranges {
    /// Adds a range (merged with the last one when they touch).
    pub(crate) fn push(&mut self, r: Range<usize>) {
        match self.0.last_mut() {
            Some(last) if last.end == r.start => last.end = r.end,
            _ => self.0.push(r),
        }
    }
    /// The ranges.
    pub(crate) fn as_slice(&self) -> &[Range<usize>] {
        &self.0
    }
    /// Total bytes.
    pub(crate) fn total(&self) -> usize {
        self.0.iter().map(|r| r.len()).sum()
    }
    /// Number of ranges.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
    /// Keeps only the first `n` bytes.
    pub(crate) fn truncate_bytes(&mut self, mut n: usize) {
        let mut keep = 0;
        for r in &mut self.0 {
            if n == 0 {
                break;
            }
            let take = r.len().min(n);
            r.end = r.start + take;
            n -= take;
            keep += 1;
        }
        self.0.truncate(keep);
    }
    /// Removes every range.
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    /// A masked client frame.
    pub(crate) fn frame(b0: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut f = vec![b0];
        match payload.len() {
            n if n <= 125 => f.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    fn fin(op: u8) -> u8 {
        0x80 | op
    }

    fn noise(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// What came out of a whole byte stream, fed in pieces of `piece` bytes (the way the
    /// tunnel feeds it: unread bytes are kept and more are appended).
    #[derive(Debug, Default, PartialEq)]
    struct Out {
        data: Vec<u8>,
        /// Control events, with the data length seen before each.
        events: Vec<(usize, Event)>,
        error: Option<ProtocolError>,
    }

    fn run(stream: &[u8], piece: usize) -> Out {
        let mut p = Parser::default();
        let mut out = Out::default();
        let mut pending: Vec<u8> = Vec::new();
        for chunk in stream.chunks(piece.max(1)) {
            pending.extend_from_slice(chunk);
            let mut at = 0;
            loop {
                match p.step(&mut pending[at..]) {
                    Ok(Step {
                        consumed: 0,
                        event: None,
                    }) => break,
                    Ok(s) => {
                        match s.event {
                            Some(Event::Data(n)) => {
                                assert_eq!(n, s.consumed);
                                out.data.extend_from_slice(&pending[at..at + n]);
                            }
                            Some(e) => out.events.push((out.data.len(), e)),
                            None => {}
                        }
                        at += s.consumed;
                    }
                    Err(e) => {
                        out.error = Some(e);
                        return out;
                    }
                }
                if at == pending.len() {
                    break;
                }
            }
            pending.drain(..at);
            assert!(pending.len() < 14, "only a partial header is kept back");
        }
        out
    }

    #[test]
    fn server_headers_use_each_length_class() {
        for (len, used, second) in [
            (0usize, 2, 0u8),
            (125, 2, 125),
            (126, 4, 126),
            (65535, 4, 126),
            (65536, 10, 127),
            (256 * 1024, 10, 127),
        ] {
            let (h, n) = server_header(opcode::BINARY, len);
            assert_eq!((n, h[0], h[1]), (used, 0x82, second), "len {len}");
            let decoded = match n {
                2 => usize::from(h[1]),
                4 => usize::from(u16::from_be_bytes([h[2], h[3]])),
                _ => u64::from_be_bytes(h[2..10].try_into().unwrap()) as usize,
            };
            assert_eq!(decoded, len);
        }
    }

    #[test]
    fn close_frames_carry_code_and_a_cut_reason() {
        let f = ControlFrame::close(1001, "TCP connection closed");
        assert_eq!(&f.as_bytes()[..4], &[0x88, 23, 0x03, 0xE9]);
        assert_eq!(&f.as_bytes()[4..], b"TCP connection closed");
        let long = "é".repeat(100);
        let f = ControlFrame::close(1000, &long);
        assert!(f.as_bytes().len() <= 127);
        assert!(std::str::from_utf8(&f.as_bytes()[4..]).is_ok());
    }

    #[test]
    fn unmask_matches_a_naive_loop_at_every_offset_and_length() {
        let data = noise(300, 1);
        for start in 0..9 {
            for len in 0..(300 - start) {
                for phase in 0..4 {
                    let mut fast = data.clone();
                    let next = unmask(&mut fast[start..start + len], MASK, phase);
                    let mut slow = data.clone();
                    for i in 0..len {
                        slow[start + i] ^= MASK[(phase + i) % 4];
                    }
                    assert_eq!(fast, slow, "start {start} len {len} phase {phase}");
                    assert_eq!(next, (phase + len) % 4);
                }
            }
        }
    }

    #[test]
    fn every_length_class_survives_every_split() {
        for len in [0usize, 1, 7, 125, 126, 200, 65535, 65536, 70_000] {
            let payload = noise(len, len as u64);
            let stream = frame(fin(opcode::BINARY), &payload, MASK);
            let pieces: &[usize] = if len > 1000 {
                &[1, 3, 13, 4096, usize::MAX]
            } else {
                &[1, 2, 3, 5, 8, 13, 100, usize::MAX]
            };
            for &piece in pieces {
                let out = run(&stream, piece.min(stream.len()));
                assert_eq!(out.error, None);
                assert!(out.data == payload, "len {len} piece {piece}");
                assert!(out.events.is_empty());
            }
        }
    }

    #[test]
    fn a_stream_splits_at_every_byte_boundary() {
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for (i, len) in [0usize, 5, 126, 300, 1].into_iter().enumerate() {
            let p = noise(len, 100 + i as u64);
            stream.extend(frame(fin(opcode::BINARY), &p, [i as u8, 1, 2, 3]));
            want.extend(p);
        }
        stream.extend(frame(fin(opcode::PING), b"hi", MASK));
        for cut in 0..=stream.len() {
            let mut p = Parser::default();
            let mut got = Vec::new();
            let mut events = Vec::new();
            let mut buf = stream[..cut].to_vec();
            let mut at = 0;
            let mut feed = |buf: &mut Vec<u8>, at: &mut usize| loop {
                let s = p.step(&mut buf[*at..]).unwrap();
                match s.event {
                    Some(Event::Data(n)) => got.extend_from_slice(&buf[*at..*at + n]),
                    Some(e) => events.push(e),
                    None if s.consumed == 0 => break,
                    None => {}
                }
                *at += s.consumed;
            };
            feed(&mut buf, &mut at);
            buf.extend_from_slice(&stream[cut..]);
            feed(&mut buf, &mut at);
            assert_eq!(at, stream.len(), "cut {cut}");
            assert!(got == want, "cut {cut}");
            assert_eq!(events, vec![Event::Ping(b"hi".to_vec())], "cut {cut}");
        }
    }

    #[test]
    fn control_frames_interleave_with_fragments() {
        let mut s = Vec::new();
        s.extend(frame(opcode::BINARY, b"abc", MASK));
        s.extend(frame(fin(opcode::PING), b"p1", [9, 8, 7, 6]));
        s.extend(frame(opcode::CONTINUATION, b"defg", MASK));
        s.extend(frame(fin(opcode::PONG), b"ignored", MASK));
        s.extend(frame(fin(opcode::PING), b"", MASK));
        s.extend(frame(fin(opcode::CONTINUATION), b"hij", [1, 2, 3, 4]));
        // A fragmented text message is skipped, and binary resumes after it.
        s.extend(frame(opcode::TEXT, b"text ", MASK));
        s.extend(frame(fin(opcode::PING), &[0xAB; 125], MASK));
        s.extend(frame(fin(opcode::CONTINUATION), b"ignored", MASK));
        s.extend(frame(fin(opcode::BINARY), b"klm", MASK));
        s.extend(frame(fin(opcode::CLOSE), b"\x03\xe8bye", MASK));
        for piece in [1, 2, 7, s.len()] {
            let out = run(&s, piece);
            assert_eq!(out.error, None);
            assert_eq!(out.data, b"abcdefghijklm");
            assert_eq!(
                out.events,
                vec![
                    (3, Event::Ping(b"p1".to_vec())),
                    (7, Event::Pong),
                    (7, Event::Ping(Vec::new())),
                    (10, Event::Ping(vec![0xAB; 125])),
                    (13, Event::Close(b"\x03\xe8bye".to_vec())),
                ],
                "piece {piece}"
            );
        }
    }

    fn error_of(stream: &[u8]) -> Option<ProtocolError> {
        let whole = run(stream, stream.len()).error;
        assert_eq!(run(stream, 1).error, whole, "the same byte by byte");
        whole
    }

    fn code_of(stream: &[u8]) -> Option<u16> {
        error_of(stream).map(|e| e.code)
    }

    #[test]
    fn unmasked_frames_are_a_protocol_error() {
        assert_eq!(code_of(&[0x82, 0x03, b'a', b'b', b'c']), Some(1002));
        assert_eq!(code_of(&[0x89, 0x00]), Some(1002));
    }

    #[test]
    fn reserved_bits_and_unknown_opcodes_are_protocol_errors() {
        for rsv in [0x40, 0x20, 0x10] {
            assert_eq!(
                code_of(&frame(fin(opcode::BINARY) | rsv, b"x", MASK)),
                Some(1002)
            );
        }
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xF] {
            assert_eq!(code_of(&frame(fin(op), b"x", MASK)), Some(1002), "op {op}");
        }
    }

    #[test]
    fn bad_control_frames_are_protocol_errors() {
        // Over 125 bytes (a 16-bit length), and fragmented.
        assert_eq!(
            code_of(&frame(fin(opcode::PING), &[0; 126], MASK)),
            Some(1002)
        );
        assert_eq!(code_of(&frame(opcode::PING, b"x", MASK)), Some(1002));
        assert_eq!(code_of(&frame(opcode::CLOSE, b"", MASK)), Some(1002));
    }

    #[test]
    fn fragmentation_errors_are_protocol_errors() {
        assert_eq!(
            code_of(&frame(fin(opcode::CONTINUATION), b"x", MASK)),
            Some(1002)
        );
        let mut s = frame(opcode::BINARY, b"a", MASK);
        s.extend(frame(fin(opcode::BINARY), b"b", MASK));
        assert_eq!(code_of(&s), Some(1002));
        let mut s = frame(opcode::TEXT, b"a", MASK);
        s.extend(frame(fin(opcode::BINARY), b"b", MASK));
        assert_eq!(code_of(&s), Some(1002));
    }

    #[test]
    fn oversized_frames_and_messages_get_1009() {
        // A frame header announcing 16 MiB + 1 fails before any payload arrives.
        let mut h = vec![fin(opcode::BINARY), 0x80 | 127];
        h.extend_from_slice(&(MAX_MESSAGE + 1).to_be_bytes());
        h.extend_from_slice(&MASK);
        assert_eq!(code_of(&h), Some(1009));
        // Exactly 16 MiB is fine.
        let mut h = vec![fin(opcode::BINARY), 0x80 | 127];
        h.extend_from_slice(&MAX_MESSAGE.to_be_bytes());
        h.extend_from_slice(&MASK);
        assert_eq!(code_of(&h), None);
        // The top bit of a 64-bit length is a protocol error.
        let mut h = vec![fin(opcode::BINARY), 0x80 | 127];
        h.extend_from_slice(&(1u64 << 63).to_be_bytes());
        h.extend_from_slice(&MASK);
        assert_eq!(code_of(&h), Some(1002));
        // A fragmented message adding up to more than 16 MiB.
        let mut p = Parser::default();
        let mut total = 0u64;
        let chunk = 4 << 20;
        let mut last = None;
        while total <= MAX_MESSAGE {
            let mut h = vec![opcode::CONTINUATION, 0x80 | 127];
            if total == 0 {
                h[0] = opcode::BINARY;
            }
            h.extend_from_slice(&(chunk as u64).to_be_bytes());
            h.extend_from_slice(&MASK);
            match p.step(&mut h) {
                Ok(s) => assert_eq!(s.consumed, 14),
                Err(e) => {
                    last = Some(e.code);
                    break;
                }
            }
            let mut body = vec![0u8; chunk];
            let mut at = 0;
            while at < chunk {
                at += p.step(&mut body[at..]).unwrap().consumed;
            }
            total += chunk as u64;
        }
        assert_eq!(total, MAX_MESSAGE);
        assert_eq!(last, Some(1009));
    }

    #[test]
    fn ping_payloads_come_back_unmasked() {
        let payload = noise(125, 5);
        let out = run(&frame(fin(opcode::PING), &payload, MASK), 3);
        assert_eq!(out.events, vec![(0, Event::Ping(payload))]);
    }

    #[test]
    fn close_payloads_are_checked() {
        let close = |p: &[u8]| frame(fin(opcode::CLOSE), p, MASK);
        assert_eq!(
            run(&close(b""), 1).events,
            vec![(0, Event::Close(Vec::new()))]
        );
        assert_eq!(
            run(&close(b"\x0f\xa0app"), 1).events,
            vec![(0, Event::Close(b"\x0f\xa0app".to_vec()))]
        );
        assert_eq!(code_of(&close(b"\x03")), Some(1002));
        for bad in [999u16, 1004, 1005, 1006, 1015, 2000, 5000] {
            assert_eq!(code_of(&close(&bad.to_be_bytes())), Some(1002), "{bad}");
        }
        assert_eq!(code_of(&close(b"\x03\xe8\xff\xfe")), Some(1007));
    }

    #[test]
    fn ranges_merge_and_truncate() {
        let mut r = Ranges::default();
        r.push(0..4);
        r.push(4..6);
        r.push(20..30);
        r.push(31..32);
        assert_eq!(r.as_slice(), &[0..6, 20..30, 31..32]);
        assert_eq!(r.total(), 17);
        r.truncate_bytes(9);
        assert_eq!(r.as_slice(), &[0..6, 20..23]);
        r.truncate_bytes(0);
        assert_eq!(r.len(), 0);
    }
}
