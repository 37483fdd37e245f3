//! API version strings (`vMAJOR.YYYYMMDD`) and negotiation.

use std::fmt;
use std::str::FromStr;

/// A Backend.AI API version, `vMAJOR.YYYYMMDD`, ordered numerically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Major version (9 for 26.x).
    pub major: u32,
    /// Revision date as `YYYYMMDD`.
    pub date: u32,
}

/// The version this client speaks (the same as backend.ai-client 26.x).
pub const CLIENT_API_VERSION: ApiVersion = ApiVersion {
    major: 9,
    date: 20250722,
};

/// The oldest major version this client supports.
pub const MIN_SUPPORTED_MAJOR: u32 = 4;

impl ApiVersion {
    /// The path prefix of the session routes: `session` (≥ v5) or `kernel` (≤ v4).
    pub fn session_prefix(&self) -> &'static str {
        if self.major >= 5 {
            "session"
        } else {
            "kernel"
        }
    }

    /// `min(client, server)`.
    pub fn negotiate(server: ApiVersion) -> ApiVersion {
        server.min(CLIENT_API_VERSION)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{:08}", self.major, self.date)
    }
}

/// A version string that is not `vMAJOR.YYYYMMDD`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an API version (expected vMAJOR.YYYYMMDD): {0:?}")]
pub struct ParseVersionError(String);

impl FromStr for ApiVersion {
    type Err = ParseVersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ParseVersionError(s.to_owned());
        let rest = s.strip_prefix('v').ok_or_else(bad)?;
        let (major, date) = rest.split_once('.').ok_or_else(bad)?;
        if major.is_empty()
            || !major.bytes().all(|b| b.is_ascii_digit())
            || date.len() != 8
            || !date.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        Ok(ApiVersion {
            major: major.parse().map_err(|_| bad())?,
            date: date.parse().map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_compare_negotiate() {
        let v: ApiVersion = "v8.20240915".parse().expect("parse");
        assert_eq!(v.to_string(), "v8.20240915");
        assert!(v < CLIENT_API_VERSION);
        assert_eq!(ApiVersion::negotiate(v), v);
        let newer: ApiVersion = "v10.20270101".parse().expect("parse");
        assert_eq!(ApiVersion::negotiate(newer), CLIENT_API_VERSION);
        assert_eq!(
            "v4.20181215"
                .parse::<ApiVersion>()
                .expect("p")
                .session_prefix(),
            "kernel"
        );
        assert_eq!(CLIENT_API_VERSION.session_prefix(), "session");
        for bad in [
            "",
            "9.20250722",
            "v9",
            "v9.2025",
            "vx.20250722",
            "v9.2025072a",
        ] {
            assert!(bad.parse::<ApiVersion>().is_err(), "{bad}");
        }
        // Numeric, not lexicographic.
        assert!(
            "v10.20200101".parse::<ApiVersion>().expect("p")
                > "v9.20250722".parse::<ApiVersion>().expect("p")
        );
    }
}
