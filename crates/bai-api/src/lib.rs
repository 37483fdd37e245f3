//! Backend.AI client for bai.
//!
//! - Two modes: [`Mode::Session`] (webserver login, web session id, `/func/…` calls) and
//!   [`Mode::Api`] (HMAC-SHA256 signed requests to the manager).
//! - Version negotiation (`min(client, server)`), typed calls (sessions, apps, downloads,
//!   the SSH key, the account's SSH keypair) and one typed [`Error`] whose [`ErrorKind`]
//!   callers match on.
//! - [`TcpproxyTarget`] builds the authenticated tcpproxy WebSocket request a tunnel opens
//!   for every connection.
//! - Secrets travel as [`Sensitive`] and never reach `Debug`, `Display` or logs.
//!
//! The library never creates a runtime or a tracing subscriber.
//!
//! Layout: `client` (configuration, URLs, version negotiation) with one module per API area
//! (`auth` and its `keypair`, `sessions`, `apps`, `download`); `credentials` stamps auth
//! headers on HTTP and WebSocket requests alike; `wire` sends and reads; `classify` turns
//! failed answers into [`ErrorKind`]s, `diagnose` says why a server cannot be used (TLS,
//! unreachable, the other kind of server); `tcpproxy` is the WebSocket request.

mod apps;
mod auth;
mod classify;
mod client;
mod credentials;
mod diagnose;
mod dialect;
mod download;
mod error;
mod keypair;
mod model;
mod sensitive;
mod sessions;
mod sign;
mod tcpproxy;
mod tls;
mod version;
mod wire;

pub use client::{Client, ClientConfig, ServerInfo};
pub use credentials::Mode;
pub use diagnose::{ServerKind, TlsReason, UnreachableReason};
pub use dialect::Dialect;
pub use download::{
    id_container_path, CONTAINER_HOME, ID_CONTAINER, MAX_DOWNLOAD_FILES, MAX_FILE_SIZE,
};
pub use error::{Error, ErrorKind, InvalidKeyReason, Problem, Result};
pub use keypair::GeneratedKeypair;
pub use model::{
    AccountInfo, App, DownloadStyle, DownloadedFile, LoginCheck, LoginInfo, ServicePort, Session,
    SessionInfo, StatusFilter,
};
pub use sensitive::Sensitive;
pub use sessions::MAX_LISTED_SESSIONS;
pub use tcpproxy::{TcpproxyTarget, WsRequest};
pub use tls::TlsOptions;
pub use version::{ApiVersion, ParseVersionError, CLIENT_API_VERSION, MIN_SUPPORTED_MAJOR};
