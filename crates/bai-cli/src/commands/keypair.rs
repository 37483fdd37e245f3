//! `bai keypair show|generate|upload|ppk`: the account's SSH keypair (`/auth/ssh-keypair`),
//! which the server puts into sessions created **after** it changes, and a PuTTY `.ppk` export
//! of a key of the user's own. Private keys are never printed.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use bai_core::bai_api::Sensitive;
use bai_core::keys::{self, Identity, PublicKey};
use bai_core::Connection;

use crate::context::Ctx;
use crate::exit::CliError;

/// `bai keypair` arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The operation.
    #[command(subcommand)]
    pub command: KeypairCommand,
}

/// `bai keypair` operations.
#[derive(Debug, clap::Subcommand)]
pub enum KeypairCommand {
    /// Show the account's SSH public key and its SHA256 fingerprint.
    Show,
    /// Make the server generate a new account keypair (for NEW sessions only) and save its
    /// private key (0600) under the config directory.
    Generate(GenerateArgs),
    /// Store your own keypair as the account's (for NEW sessions only).
    Upload(UploadArgs),
    /// Export a private key of your own as a PuTTY .ppk file (for PuTTY, FileZilla, WinSCP).
    Ppk(PpkArgs),
}

/// `bai keypair generate` arguments.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub yes: bool,
}

/// `bai keypair upload` arguments.
#[derive(Debug, clap::Args)]
pub struct UploadArgs {
    /// The private key file (unencrypted: the server refuses password-protected keys).
    #[arg(value_name = "PRIVATE_KEY")]
    pub private_key: PathBuf,
    /// The public key file (default: PRIVATE_KEY.pub, else derived from the private key).
    #[arg(long, value_name = "FILE")]
    pub public_key: Option<PathBuf>,
}

/// `bai keypair ppk` arguments.
#[derive(Debug, clap::Args)]
pub struct PpkArgs {
    /// The private key file (RSA or Ed25519, unencrypted).
    #[arg(value_name = "PRIVATE_KEY")]
    pub private_key: PathBuf,
    /// Where to write the .ppk (default: PRIVATE_KEY with the extension .ppk).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Runs `bai keypair …`.
pub async fn run(ctx: Ctx, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        KeypairCommand::Show => show(ctx).await,
        KeypairCommand::Generate(a) => generate(ctx, a).await,
        KeypairCommand::Upload(a) => upload(ctx, a).await,
        KeypairCommand::Ppk(a) => ppk(a),
    }
}

const NEW_SESSIONS_ONLY: &str =
    "The account keypair reaches sessions created from now on; running sessions keep their key.";

/// The fingerprint of a public key line the server sent, or a placeholder.
fn fingerprint_of_line(line: &str) -> String {
    PublicKey::parse(line).map_or_else(|_| "(unreadable key)".to_owned(), |k| k.fingerprint())
}

async fn show(ctx: Ctx) -> anyhow::Result<ExitCode> {
    let conn = ctx.connect().await?;
    let Some(line) = conn
        .ssh_keypair()
        .await
        .context("reading the account's SSH keypair")?
    else {
        println!("no keypair: the account has no stored SSH keypair");
        eprintln!(
            "hint: `bai keypair generate` makes one, `bai keypair upload KEY` stores your own; \
             sessions without one get a key of their own (id_container)"
        );
        return Ok(ExitCode::SUCCESS);
    };
    let fp = fingerprint_of_line(&line);
    println!(
        "public key:  {}",
        bai_core::display::clean_line(line.trim())
    );
    println!("fingerprint: {fp}");
    let saved = conn.account_key_path();
    if let Ok(text) = std::fs::read_to_string(&saved) {
        if keys::private_key_fingerprint(&text).as_deref() == Some(fp.as_str()) {
            println!("private key: {}", saved.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Asks "yes/no" on the terminal; without one, `--yes` is required.
fn confirm(question: &str) -> anyhow::Result<bool> {
    let answer = crate::prompt::line(
        &format!("{question} [y/N] "),
        "cannot ask for confirmation",
        "pass --yes to replace the account keypair without asking",
    )?;
    Ok(matches!(answer.to_ascii_lowercase().as_str(), "y" | "yes"))
}

async fn generate(ctx: Ctx, args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let conn = ctx.connect().await?;
    eprintln!(
        "This replaces the account's SSH keypair with a new one made by the server. \
         It affects NEW sessions only; running sessions keep their key."
    );
    if !args.yes && !confirm("Generate a new account keypair?")? {
        eprintln!("Nothing changed.");
        return Ok(ExitCode::from(1));
    }
    let pair = conn
        .generate_ssh_keypair()
        .await
        .context("generating the account's SSH keypair")?;
    let path = conn.account_key_path();
    bai_core::save_key(&path, &pair.private_key).with_context(|| {
        format!(
            "saving the new private key at {} (the server shows it only once; \
             `bai session download SESSION id_container` fetches it from a new session)",
            path.display()
        )
    })?;
    let fp = PublicKey::parse(&pair.public_key)
        .map(|k| k.fingerprint())
        .ok()
        .or_else(|| keys::private_key_fingerprint(pair.private_key.expose()))
        .unwrap_or_else(|| "(unreadable key)".to_owned());
    println!("fingerprint: {fp}");
    println!("private key: {}", path.display());
    Ok(ExitCode::SUCCESS)
}

/// Reads a private key file the user named: it must look like a private key (not a public
/// one) and must not be password-protected.
fn read_private_key(
    path: &Path,
    refusal_hint: &str,
) -> anyhow::Result<(Sensitive<String>, Identity)> {
    let identity = keys::check_identity(path)?;
    let bytes = std::fs::read(path)
        .with_context(|| format!("reading the private key {}", path.display()))?;
    let text = Sensitive::new(String::from_utf8_lossy(&bytes).into_owned());
    if Connection::private_key_is_encrypted(text.expose()) {
        return Err(CliError::usage(
            format!(
                "{} is password-protected (encrypted); bai does not decrypt keys",
                path.display()
            ),
            Some(refusal_hint),
        ));
    }
    Ok((text, identity))
}

/// The public key to upload with `private`: from `--public-key`, else `PRIVATE_KEY.pub`, else
/// derived from the private key; checked locally.
fn public_key_for(args: &UploadArgs, identity: &Identity) -> anyhow::Result<PublicKey> {
    let mut pub_path = args.private_key.clone().into_os_string();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    let file = match &args.public_key {
        Some(f) => Some(f.clone()),
        None if pub_path.is_file() => Some(pub_path),
        None => None,
    };
    match file {
        Some(f) => {
            let text = std::fs::read_to_string(&f)
                .with_context(|| format!("reading the public key {}", f.display()))?;
            Ok(keys::validate_public_key(&text)
                .with_context(|| format!("checking the public key {}", f.display()))?)
        }
        None => match identity {
            Identity::Known(k) => Ok(keys::validate_public_key(&k.to_line())?),
            Identity::Opaque => Err(CliError::usage(
                format!(
                    "cannot read the public key of {}, and there is no {}",
                    args.private_key.display(),
                    pub_path_display(&args.private_key)
                ),
                Some("pass it with --public-key FILE (`ssh-keygen -y -f KEY > KEY.pub` makes one)"),
            )),
        },
    }
}

fn pub_path_display(private: &Path) -> String {
    format!("{}.pub", private.display())
}

async fn upload(ctx: Ctx, args: UploadArgs) -> anyhow::Result<ExitCode> {
    let (private, identity) = read_private_key(
        &args.private_key,
        "the server refuses password-protected keys: upload an unencrypted copy \
         (`cp KEY COPY && ssh-keygen -p -f COPY -N ''`), or generate one with `bai keypair generate`",
    )?;
    let public = public_key_for(&args, &identity)?;
    let conn = ctx.connect().await?;
    conn.upload_ssh_keypair(&public.to_line(), &private)
        .await
        .context("uploading the account's SSH keypair")?;
    println!("fingerprint: {}", public.fingerprint());
    eprintln!("Uploaded. {NEW_SESSIONS_ONLY}");
    Ok(ExitCode::SUCCESS)
}

fn ppk(args: PpkArgs) -> anyhow::Result<ExitCode> {
    let (private, identity) = read_private_key(
        &args.private_key,
        "decrypt a copy first (`cp KEY COPY && ssh-keygen -p -f COPY -N ''` asks the passphrase \
         once) and run `bai keypair ppk COPY`, or convert it in PuTTYgen (Conversions → Import key, then \"Save private key\")",
    )?;
    let output = args
        .output
        .unwrap_or_else(|| args.private_key.with_extension("ppk"));
    let same_file = output == args.private_key
        || std::fs::canonicalize(&output)
            .ok()
            .is_some_and(|o| std::fs::canonicalize(&args.private_key).ok() == Some(o));
    if same_file {
        return Err(CliError::usage(
            "the .ppk would overwrite the private key itself",
            Some("name another file with -o FILE"),
        ));
    }
    bai_core::ppk::save_ppk(&output, &private, "")
        .with_context(|| format!("exporting {} as .ppk", args.private_key.display()))?;
    if let Identity::Known(k) = identity {
        println!("fingerprint: {}", k.fingerprint());
    }
    println!("ppk:         {}", output.display());
    Ok(ExitCode::SUCCESS)
}
