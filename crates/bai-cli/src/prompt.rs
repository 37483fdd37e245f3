//! Reading one line from the terminal (never from a pipe: scripts pass options instead).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use anyhow::Context as _;

use crate::exit::CliError;

/// Shows `prompt` on stderr and reads one trimmed line from the terminal. Without a terminal
/// it is a usage error: `no_terminal` says what could not be asked, `hint` what to pass instead.
pub fn line(prompt: &str, no_terminal: &str, hint: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(CliError::usage(
            format!("{no_terminal}: stdin is not a terminal"),
            Some(hint),
        ));
    }
    eprint!("{prompt}");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading from the terminal")?;
    Ok(line.trim().to_owned())
}
