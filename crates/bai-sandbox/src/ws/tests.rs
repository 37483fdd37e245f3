//! Unit tests of the parent module (kept apart so that the module itself stays readable).

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
