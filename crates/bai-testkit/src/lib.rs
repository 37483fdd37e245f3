//! Test helpers that every crate's tests share, kept once: timeouts ([`within`]), sandbox
//! fixtures ([`sandbox`]), an isolated world for CLI tests ([`Isolated`], [`CliWorld`]), the
//! OpenSSH clients with their options ([`SshTarget`]), process runners and `/proc` checks
//! ([`process`]), hashes, file modes and test data ([`files`]), ports and tiny servers
//! ([`net`]), servers that are not a working Backend.AI endpoint ([`fake`]: a foreign page,
//! the WebUI's `GET /`, bad TLS certificates), a Backend.AI request signer of its own ([`sign`]),
//! and the real Backend.AI manager, agent and webserver on loopback ([`realstack`]).
//!
//! Dev-only: it depends on bai-sandbox and general crates, never on bai-api, bai-tunnel,
//! bai-core, bai-cli or bai-desktop, so that each of them can use it in its tests. Helpers
//! panic on failure (with what failed), as test code does.
#![allow(clippy::unwrap_used)] // test code: a failed step is a failed test

pub mod fake;
pub mod files;
pub mod net;
pub mod process;
pub mod realstack;
pub mod sandbox;
pub mod sign;
pub mod ssh;
pub mod time;
pub mod world;

pub use files::{mode, noise, sha256_file, sha256_hex, write_noise_file};
pub use net::{echo_server, free_addr, free_port, greeter, taken_port};
pub use process::{assert_success, output_within, run_ok, text};
pub use ssh::{ssh_g, SshTarget, NONINTERACTIVE};
pub use time::{recv_until, within, CMD_TIMEOUT, TEST_SECS};
pub use world::{CliWorld, Isolated};
