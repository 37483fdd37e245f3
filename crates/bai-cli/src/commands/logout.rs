//! `bai logout`: logs out on the server (session mode, best effort) and forgets the profile's
//! stored secrets.

use std::process::ExitCode;

use bai_core::{Connection, SecretKind};

use crate::context::Ctx;

/// `bai logout` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `bai logout`.
pub async fn run(ctx: Ctx, _args: Args) -> anyhow::Result<ExitCode> {
    match ctx.resolve() {
        Ok(p) => Connection::logout(&p, ctx.store.as_ref()).await?,
        // No endpoint: nothing to tell a server, but still forget the secrets.
        Err(_) => {
            for kind in SecretKind::ALL {
                ctx.store.delete(&ctx.profile, kind)?;
            }
        }
    }
    println!("✓ Logged out (profile \"{}\").", ctx.profile);
    Ok(ExitCode::SUCCESS)
}
