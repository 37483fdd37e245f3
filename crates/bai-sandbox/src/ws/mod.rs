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

pub(crate) use handshake::{accept, HandshakeError, Upgrade};

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
pub(crate) mod tests;
