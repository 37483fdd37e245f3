//! The command line (clap derive). Each subcommand's arguments live next to its code in
//! `commands/*.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::commands::{
    app, completions, config_ssh, keypair, login, logout, proxy, ps, scp, session, ssh, version,
};
use crate::exit::EXIT_CODES_HELP;

/// SSH/SFTP access to Backend.AI compute sessions.
#[derive(Debug, Parser)]
// The version is bai-core's (the workspace version), the same the desktop app shows.
#[command(name = "bai", version = bai_core::about::VERSION, about, after_help = EXIT_CODES_HELP)]
pub struct Cli {
    /// The profile to use (default: the config file's default, else "default").
    #[arg(long, global = true, env = "BAI_PROFILE")]
    pub profile: Option<String>,
    /// The configuration directory (default: the platform's config dir + /bai).
    #[arg(long, global = true, env = "BAI_CONFIG_DIR", value_name = "DIR")]
    pub config_dir: Option<PathBuf>,
    /// The login account inside the session (default: the profile's, else "work").
    #[arg(long, global = true, value_name = "ACCOUNT")]
    pub user: Option<String>,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in (session mode: email/password; API mode: access/secret key) and save the profile.
    Login(login::Args),
    /// Log out and forget the profile's stored credentials.
    Logout(logout::Args),
    /// List compute sessions.
    Ps(ps::Args),
    /// Run a local proxy to a session's app (default sshd) until Ctrl-C.
    App(app::Args),
    /// SSH into a session (key, tunnel and options handled for you).
    Ssh(ssh::Args),
    /// Copy files to or from a session: `bai scp FILE SESSION:path`, `bai scp SESSION:path .`.
    Scp(scp::Args),
    /// Session operations (download).
    Session(session::Args),
    /// Carry one connection to a session's app over stdin/stdout (for ssh's ProxyCommand).
    Proxy(proxy::Args),
    /// Write `Host bai-<session>` entries for running sessions into ~/.ssh (Include'd once).
    ConfigSsh(config_ssh::Args),
    /// The account's SSH keypair (show, generate, upload; new sessions only) and .ppk export.
    Keypair(keypair::Args),
    /// Print bai's version and build commit, and the server's versions when logged in.
    Version(version::Args),
    /// Print a shell completion script: `bai completions bash > ~/.local/share/bash-completion/completions/bai`.
    Completions(completions::Args),
    /// Print the manual page (roff) for packaging.
    #[command(hide = true)]
    Man,
}
