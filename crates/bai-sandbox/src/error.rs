//! The library's one error type.

/// Errors of the sandbox library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A port could not be bound.
    #[error("could not bind 127.0.0.1:{port}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// The cause.
        source: std::io::Error,
    },
    /// A file-system or process operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A helper program (`ssh-keygen`) failed.
    #[error("{program} failed: {stderr}")]
    Tool {
        /// The program.
        program: String,
        /// Its standard error.
        stderr: String,
    },
    /// The SSH server (sshd or dropbear) did not come up.
    #[error("{message}; server log:\n{log}")]
    Sshd {
        /// What went wrong.
        message: String,
        /// The server's log.
        log: String,
    },
    /// A program the chosen SSH server needs is not installed.
    #[error("{program} is not installed: {hint}")]
    NotInstalled {
        /// The program looked for.
        program: String,
        /// What to install.
        hint: String,
    },
    /// A non-terminal session already has this name.
    #[error("a session named {0:?} already exists")]
    SessionExists(String),
    /// No session has this name.
    #[error("no session named {0:?}")]
    SessionNotFound(String),
    /// A bad argument (empty name, unknown status, ...).
    #[error("{0}")]
    InvalidArgument(String),
}
