//! Backend.AI client for bai.
//!
//! - Two modes: [`Mode::Session`] (webserver login, web session id, `/func/…` calls) and
//!   [`Mode::Api`] (HMAC-SHA256 signed requests to the manager).
//! - Version negotiation (`min(client, server)`), typed calls (sessions, apps, downloads,
//!   the SSH key) and one typed [`Error`] with a stable [`ErrorCode`].
//! - [`TcpproxyTarget`] builds the authenticated tcpproxy WebSocket request a tunnel opens
//!   for every connection.
//! - Secrets travel as [`Sensitive`] and never reach `Debug`, `Display` or logs.
//!
//! The library never creates a runtime or a tracing subscriber.

mod client;
mod download;
mod error;
mod model;
mod sensitive;
mod sign;
mod tcpproxy;
mod tls;
mod version;

pub use client::{
    id_container_path, Client, ClientConfig, Mode, ServerInfo, CONTAINER_HOME, ID_CONTAINER,
    MAX_DOWNLOAD_FILES, MAX_LISTED_SESSIONS,
};
pub use download::MAX_FILE_SIZE;
pub use error::{Error, ErrorCode, ErrorKind, Problem, Result};
pub use model::{
    AccountInfo, App, DownloadStyle, DownloadedFile, LoginCheck, LoginInfo, ServicePort, Session,
    SessionInfo, StatusFilter,
};
pub use sensitive::Sensitive;
pub use tcpproxy::{TcpproxyTarget, WsRequest};
pub use tls::TlsOptions;
pub use version::{ApiVersion, ParseVersionError, CLIENT_API_VERSION, MIN_SUPPORTED_MAJOR};
