//! The one rule for log filters, shared by the CLI and the app: whatever `RUST_LOG` asks for,
//! the HTTP, TLS and WebSocket libraries never log at trace level, where some of them print raw
//! requests (Cookie, `X-BackendAI-SessionID`, `Authorization`).

/// The libraries capped at `debug`.
pub const CAPPED_TARGETS: [&str; 7] = [
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
];

const LEVELS: [&str; 12] = [
    "off", "error", "warn", "info", "debug", "trace", "0", "1", "2", "3", "4", "5",
];

/// Whether one `EnvFilter` directive can enable trace level: `trace`/`5` in any letter case, or
/// a bare target (which enables every level of it).
fn enables_trace(directive: &str) -> bool {
    let d = directive.trim();
    if d.is_empty() {
        return false;
    }
    match d.rsplit_once('=') {
        Some((_, level)) => {
            let l = level.trim();
            l.eq_ignore_ascii_case("trace") || l == "5"
        }
        None => {
            d.eq_ignore_ascii_case("trace")
                || d == "5"
                || !LEVELS.iter().any(|l| d.eq_ignore_ascii_case(l))
        }
    }
}

/// `wanted` (an `EnvFilter` string, e.g. `RUST_LOG`) with [`CAPPED_TARGETS`] held at `debug`
/// when any directive could enable trace; unchanged otherwise (so `info` stays `info`).
pub fn cap_log_filter(wanted: &str) -> String {
    if !wanted.split(',').any(enables_trace) {
        return wanted.to_owned();
    }
    let mut out = wanted.trim_end_matches(',').to_owned();
    for t in CAPPED_TARGETS {
        out.push_str(&format!(",{t}=debug"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_in_any_spelling_is_capped() {
        for w in [
            "trace",
            "TRACE",
            "Trace",
            "bai=TrAcE",
            "info,hyper=5",
            "5",
            "hyper",
            "warn,reqwest",
        ] {
            let c = cap_log_filter(w);
            assert!(c.ends_with("rustls=debug"), "{w:?} -> {c:?}");
            assert!(c.contains("tungstenite=debug"), "{w:?} -> {c:?}");
        }
        for w in ["info", "WARN", "debug,bai_api=off", "off", "hyper=info"] {
            assert_eq!(cap_log_filter(w), w, "{w:?} is left alone");
        }
    }
}
