//! The down half of a connection: the server's stream parsed frame by frame, binary payloads
//! written to the local side straight from the read buffer, pings handed to the up half,
//! text skipped, a close ending it (see the parent module for the whole picture).

#[allow(clippy::wildcard_imports)]
use super::*;

/// Where the down half is within the server's stream.
enum State {
    /// Between frames.
    Header,
    /// Inside a frame of a binary message: this many payload bytes to deliver.
    Data(u64),
    /// Inside a frame of a text message: this many bytes to skip.
    Skip(u64),
    /// A control frame, whole payload needed.
    Control(Header),
}

pub(super) async fn downstream<R, W>(
    input: &mut In<R>,
    writer: &mut W,
    options: &Options,
    counters: &Counters<'_>,
    live: &Liveness,
    shared: &Shared,
) -> DownEnd
where
    R: AsyncRead,
    W: AsyncWrite + Unpin + ?Sized,
{
    let max_frame = options.max_message_size.max(1) as u64;
    let mut state = State::Header;
    // The opcode of the fragmented message in progress.
    let mut message: Option<u8> = None;
    loop {
        // Consume what is buffered.
        match state {
            State::Header => match parse_header(input.available(), max_frame) {
                Ok(Some((header, len))) => {
                    input.start += len;
                    if header.is_control() {
                        state = State::Control(header);
                        continue;
                    }
                    let kind = match (header.opcode, message) {
                        (OP_CONTINUATION, Some(kind)) => kind,
                        (OP_CONTINUATION, None) => {
                            return protocol("a continuation frame outside a message")
                        }
                        (_, Some(_)) => return protocol("a new message inside a fragmented one"),
                        (opcode, None) => opcode,
                    };
                    message = (!header.fin).then_some(kind);
                    state = if kind == OP_BINARY {
                        State::Data(header.len)
                    } else {
                        tracing::trace!(len = header.len, "ignoring a text frame");
                        State::Skip(header.len)
                    };
                    continue;
                }
                Ok(None) => {}
                Err(e) => return DownEnd::Ws(WsError::Frame(e)),
            },
            State::Data(0) | State::Skip(0) => {
                state = State::Header;
                continue;
            }
            State::Data(left) if input.start < input.end => {
                let n = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(input.end - input.start);
                tracing::trace!(n, "down");
                let written = {
                    let _held = counters.hold(n);
                    write_all_flush(writer, &input.buf[input.start..input.start + n]).await
                };
                // Time spent blocked on a slow local reader never counts against the server.
                live.mark();
                if let Err(e) = written {
                    tracing::debug!(error = %e, "local side gone");
                    return DownEnd::LocalGone;
                }
                input.start += n;
                counters.add_down(n);
                state = State::Data(left - n as u64);
                continue;
            }
            State::Skip(left) if input.start < input.end => {
                let n = usize::try_from(left)
                    .unwrap_or(usize::MAX)
                    .min(input.end - input.start);
                input.start += n;
                state = State::Skip(left - n as u64);
                continue;
            }
            State::Control(header) if input.end - input.start >= header.len as usize => {
                let len = header.len as usize;
                let payload = &input.buf[input.start..input.start + len];
                input.start += len;
                state = State::Header;
                match header.opcode {
                    // Answered by the up half between its frames.
                    OP_PING => shared.owe_pong(payload),
                    OP_CLOSE => {
                        return match parse_close(payload) {
                            Ok(close) => {
                                tracing::debug!(?close, "server closed the WebSocket");
                                DownEnd::Closed(close)
                            }
                            Err(e) => DownEnd::Ws(WsError::Frame(e)),
                        };
                    }
                    // A pong only proves the server is alive, which reading it already noted.
                    _ => {}
                }
                continue;
            }
            State::Data(_) | State::Skip(_) | State::Control(_) => {}
        }
        // More bytes are needed.
        input.make_room();
        match read_more(input, options.peer_timeout, live).await {
            Ok(0) if shared.close_sent.load(Ordering::Relaxed) => return DownEnd::Ended,
            Ok(0) => return DownEnd::Ws(WsError::Eof),
            Ok(n) => {
                let room = input.buf.len() - input.end;
                // A read that filled a small tail after a partial header says nothing about
                // the rate.
                let filled = n == room && room >= MIN_CHUNK;
                input.end += n;
                if filled && input.buf.len() < MAX_DOWN_READ {
                    // Bulk data: read more at a time.
                    let bigger = (input.buf.len() * 2).min(MAX_DOWN_READ);
                    input.buf.resize(bigger, 0);
                }
            }
            Err(ReadEnd::Io(e)) => return DownEnd::Ws(WsError::Io(e)),
            Err(ReadEnd::Timeout(limit)) => return DownEnd::PeerTimeout(limit),
        }
    }
}

fn protocol(what: &'static str) -> DownEnd {
    DownEnd::Ws(WsError::Frame(FrameError::Protocol(what)))
}

enum ReadEnd {
    Io(io::Error),
    Timeout(Duration),
}

/// Reads from the server into the free end of the buffer. Fails with `Timeout` when there was
/// no progress either way (see [`Liveness`]) for `limit`: no byte from the server, none of our
/// data leaving, nothing delivered locally. An empty buffer grown by a burst is freed while the
/// server is quiet.
async fn read_more<R: AsyncRead>(
    input: &mut In<R>,
    limit: Option<Duration>,
    live: &Liveness,
) -> Result<usize, ReadEnd> {
    let started = Instant::now();
    loop {
        let deadline = limit.map(|limit| live.last() + limit);
        if let (Some(deadline), Some(limit)) = (deadline, limit) {
            if deadline <= Instant::now() {
                return Err(ReadEnd::Timeout(limit));
            }
        }
        let idle = (input.end == 0 && input.buf.len() > 2 * MIN_CHUNK)
            .then(|| tokio::time::sleep_until(started + IDLE_SHRINK));
        let end = input.end;
        tokio::select! {
            biased;
            // Cancel-safe: a read either happened or did not.
            r = input.io.read(&mut input.buf[end..]) => {
                return match r {
                    // TLS reports a peer that closed TCP without close_notify this way: for the
                    // WebSocket it is the same as a plain EOF.
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                    r => r.map_err(ReadEnd::Io),
                };
            }
            () = maybe_sleep(idle) => {
                tracing::trace!(capacity = input.buf.len(), "server idle; freeing the read buffer");
                input.buf = vec![0u8; MIN_CHUNK];
            }
            () = sleep_until_opt(deadline) => {}
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
