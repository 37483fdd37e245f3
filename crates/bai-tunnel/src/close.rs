//! Why a tunnelled connection ended ([`CloseReason`], carried by [`crate::Event::Closed`]), and
//! what the WebSocket close codes mean in words ([`close_code_meaning`]).
//!
//! The manager's tcpproxy closes with a code and an empty reason (real 26.9.6: 1001 when the
//! session's service ended the connection or the session stopped, 1013 when the service refused
//! the connection, 1011 on other errors), so the code is what tells the user what happened.

use std::fmt;

/// Why one connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The server sent a close frame: its code (1005 when the frame had none) and its reason as
    /// received (often empty).
    Server {
        /// The close code.
        code: u16,
        /// The close reason, possibly empty.
        reason: String,
    },
    /// The server's side ended without a close frame (what RFC 6455 reports as 1006).
    NoCloseFrame,
    /// The local client closed its side; the tunnel closed the WebSocket normally (1000).
    LocalClosed,
    /// The local client went away (its socket failed); the tunnel closed the WebSocket (1001).
    LocalGone,
    /// The tunnel was stopped (by bai: the user, the app quitting).
    Stopped,
    /// The WebSocket could not be opened, or failed mid-way; the text says how (the same as the
    /// connection's [`crate::Event::Failed`]).
    Failed(String),
}

impl CloseReason {
    /// The close code this end stands for: the server's, 1006 without a close frame, 1000/1001
    /// for the local side ending, 1001 for a stop.
    pub fn code(&self) -> Option<u16> {
        match self {
            CloseReason::Server { code, .. } => Some(*code),
            CloseReason::NoCloseFrame => Some(1006),
            CloseReason::LocalClosed => Some(1000),
            CloseReason::LocalGone | CloseReason::Stopped => Some(1001),
            CloseReason::Failed(_) => None,
        }
    }

    /// Whether the server's side ended the connection (a close frame or none at all), rather
    /// than the local client or bai.
    pub fn by_server(&self) -> bool {
        matches!(self, CloseReason::Server { .. } | CloseReason::NoCloseFrame)
    }
}

/// What a WebSocket close code means for a tunnel to a Backend.AI session, in words; `None` for
/// codes with no agreed meaning.
pub fn close_code_meaning(code: u16) -> Option<&'static str> {
    Some(match code {
        1000 => "normal closure",
        1001 => "the session's service ended the connection, the session stopped, or the server went away",
        1002 => "protocol error",
        1003 => "unsupported data",
        1005 => "no close code given",
        1006 => "the connection ended without a close frame",
        1007 => "invalid data",
        1008 => "policy violation",
        1009 => "message too big",
        1011 => "the server failed to reach the session's service",
        1012 => "the server is restarting; try again later",
        1013 => "the session's service is not accepting connections; try again later",
        1014 => "bad gateway",
        _ => return None,
    })
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Server { code, reason } => {
                write!(f, "the server closed the connection ({code}")?;
                if let Some(meaning) = close_code_meaning(*code) {
                    write!(f, ": {meaning}")?;
                }
                f.write_str(")")?;
                let reason = reason.trim();
                if !reason.is_empty() {
                    // The server's words reach a terminal: control and direction characters are
                    // shown escaped, never interpreted.
                    f.write_str(": ")?;
                    for c in reason.chars() {
                        if c.is_control()
                            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
                        {
                            write!(f, "{}", c.escape_unicode())?;
                        } else {
                            write!(f, "{c}")?;
                        }
                    }
                }
                Ok(())
            }
            CloseReason::NoCloseFrame => {
                f.write_str("the server closed the connection without a close frame (1006)")
            }
            CloseReason::LocalClosed => f.write_str("local client closed"),
            CloseReason::LocalGone => f.write_str("local client went away"),
            CloseReason::Stopped => f.write_str("tunnel stopped"),
            CloseReason::Failed(why) => f.write_str(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16, reason: &str) -> String {
        CloseReason::Server {
            code,
            reason: reason.into(),
        }
        .to_string()
    }

    #[test]
    fn known_codes_read_as_words() {
        assert_eq!(
            server(1001, ""),
            "the server closed the connection (1001: the session's service ended the \
             connection, the session stopped, or the server went away)"
        );
        assert!(server(1011, "").contains("failed to reach the session's service"));
        assert!(server(1013, "").contains("try again later"));
        assert_eq!(
            server(1000, ""),
            "the server closed the connection (1000: normal closure)"
        );
        assert_eq!(
            CloseReason::NoCloseFrame.to_string(),
            "the server closed the connection without a close frame (1006)"
        );
        assert!(close_code_meaning(1006).is_some_and(|m| m.contains("without a close frame")));
        assert_eq!(close_code_meaning(4321), None);
    }

    #[test]
    fn the_reason_is_shown_as_received_and_unknown_codes_by_number() {
        assert_eq!(
            server(1001, "session stopped"),
            "the server closed the connection (1001: the session's service ended the \
             connection, the session stopped, or the server went away): session stopped"
        );
        assert_eq!(
            server(4000, "bye"),
            "the server closed the connection (4000): bye"
        );
        assert_eq!(
            server(1005, "  "),
            "the server closed the connection (1005: no close code given)"
        );
    }

    #[test]
    fn local_ends_and_codes() {
        assert_eq!(CloseReason::LocalClosed.to_string(), "local client closed");
        assert_eq!(CloseReason::LocalGone.to_string(), "local client went away");
        assert_eq!(CloseReason::Stopped.to_string(), "tunnel stopped");
        assert_eq!(CloseReason::LocalClosed.code(), Some(1000));
        assert_eq!(CloseReason::NoCloseFrame.code(), Some(1006));
        assert_eq!(CloseReason::Failed("x".into()).code(), None);
        assert!(CloseReason::NoCloseFrame.by_server());
        assert!(!CloseReason::Stopped.by_server());
    }
}

#[cfg(test)]
mod escape_tests {
    use super::*;

    #[test]
    fn a_server_reason_cannot_drive_the_terminal() {
        let r = CloseReason::Server {
            code: 1001,
            reason: "bye\u{1b}]52;c;ZXZpbA==\u{7}\u{202e}x".into(),
        };
        let shown = r.to_string();
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}') && !shown.contains('\u{202e}'),
            "{shown}"
        );
        assert!(
            shown.ends_with(": bye\\u{1b}]52;c;ZXZpbA==\\u{7}\\u{202e}x"),
            "{shown}"
        );
    }
}
