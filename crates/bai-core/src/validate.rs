//! The input rules the CLI and the app share, in one place: preferred SSH ports, accounts
//! inside sessions, server addresses, and whether two addresses are the same server.

use url::Url;

use crate::{Error, Result};

/// Lowest preferred SSH port (unprivileged).
pub const PORT_MIN: u16 = 1025;
/// Highest preferred SSH port.
pub const PORT_MAX: u16 = 65534;
/// Longest account name.
pub const ACCOUNT_MAX: usize = 32;

/// Checks a preferred SSH port (the CLI's `--preferred-port` and the app's Preferences alike).
///
/// # Errors
/// [`Error::InvalidInput`] outside [`PORT_MIN`]..=[`PORT_MAX`].
pub fn validate_port(port: i64) -> Result<u16> {
    u16::try_from(port)
        .ok()
        .filter(|p| (PORT_MIN..=PORT_MAX).contains(p))
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "the preferred SSH port must be between {PORT_MIN} and {PORT_MAX} (or empty for a random port), not {port}"
            ))
        })
}

/// Checks the account inside sessions (trimmed): a POSIX-style user name, because it is
/// written into ssh_config `User` lines and command lines.
///
/// # Errors
/// [`Error::InvalidInput`] naming the rule.
pub fn validate_account(account: &str) -> Result<String> {
    let a = account.trim();
    let ok_start = a
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let ok_rest = a
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok_start || !ok_rest || a.len() > ACCOUNT_MAX {
        let shown: String = a.chars().flat_map(char::escape_debug).take(80).collect();
        return Err(Error::InvalidInput(format!(
            "the account must be a user name (a letter or _ first, then letters, digits, _ - .; up to {ACCOUNT_MAX}), not \"{shown}\""
        )));
    }
    Ok(a.to_owned())
}

/// Parses an endpoint URL: `http://` or `https://`, nothing else.
pub fn parse_endpoint(text: &str) -> Result<Url> {
    let input = text.trim();
    let bad = |why: String| Error::BadUrl {
        input: input.to_owned(),
        why,
    };
    let endpoint = Url::parse(input).map_err(|e| bad(e.to_string()))?;
    if !matches!(endpoint.scheme(), "http" | "https") {
        return Err(bad("it must start with http:// or https://".into()));
    }
    if endpoint.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host".into()));
    }
    Ok(endpoint)
}

/// Whether two endpoints are the same server: scheme, host, port (the scheme's default when
/// absent) and path (ignoring a trailing `/`). Query and fragment do not name a server.
pub fn same_server(a: &Url, b: &Url) -> bool {
    a.scheme().eq_ignore_ascii_case(b.scheme())
        && a.host_str().map(str::to_ascii_lowercase) == b.host_str().map(str::to_ascii_lowercase)
        && a.port_or_known_default() == b.port_or_known_default()
        && a.path().trim_end_matches('/') == b.path().trim_end_matches('/')
}

/// Whether `url` points at this machine (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}
