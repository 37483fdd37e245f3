//! Which Backend.AI server generation the sandbox plays (`bai-sandbox --emulate GEN`).
//!
//! One [`Generation`] holds every switch that differs between releases for SSH/SFTP clients;
//! the routes ask it instead of checking versions themselves. The facts come from the protocol
//! notes (`protocol.md` §1, §3, §5, §8, §9, `modern-ssh.md`) and, where they are silent, from
//! the `lablup/backend.ai` release branches (see `docs/compatibility.md`, which has the table).
//!
//! The default generation is the newest ([`Generation::G26`]): without `--emulate` the sandbox
//! behaves exactly as it always has.

use std::fmt;
use std::str::FromStr;

/// A Backend.AI server generation (manager + webserver of one release line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Generation {
    /// 22.09 (API v6.20220615): prefix session lookup, GET downloads.
    G22_09,
    /// 23.09 (23.09.10, API v7.20230615): exact session lookup, the webserver swallows closes.
    G23_09,
    /// 24.03 (24.03.11, API v8.20240315): POST downloads (GET deprecated).
    G24_03,
    /// 24.09 (API v8.20240915): `compute_session_nodes`, `extend-login-session`.
    G24_09,
    /// 25.x (25.15, API v9.20250722): typed TOTP answers, `error_code` in problems.
    G25,
    /// The 26.4.4 release candidates (main 2026-05-29 … 06-18): as 26.x, but a session UUID
    /// in a stream path is refused (BA-6240, fixed by BA-6341).
    G26_4Rc,
    /// 26.x (26.8 … 26.9.6, API v9.20250722), the newest and the default; its answers follow
    /// the real 26.9.6 where it was run (docs/compatibility.md, "The real manager").
    #[default]
    G26,
}

/// How the manager finds the session a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    /// 22.09: session-ID prefix, exact name, name prefix (in that order) among the caller's
    /// live sessions; more than one match is 404 `too-many-sessions-matched`.
    Prefix,
    /// 23.09 … 26.4.3: UUID, else exact name, among the caller's (access key's) live sessions.
    Exact,
}

/// What a download route does with a request method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerbAnswer {
    /// Served.
    Serve,
    /// 405 Method Not Allowed (no route for this method).
    NotAllowed,
    /// 400 `deprecated` ("Use the HTTP POST method…"), 23.09 … 25.x for GET.
    Deprecated,
}

impl Generation {
    /// Every generation, oldest first.
    pub const ALL: [Generation; 7] = [
        Generation::G22_09,
        Generation::G23_09,
        Generation::G24_03,
        Generation::G24_09,
        Generation::G25,
        Generation::G26_4Rc,
        Generation::G26,
    ];

    /// The oldest generation.
    pub const OLDEST: Generation = Generation::G22_09;
    /// The newest generation (the default).
    pub const NEWEST: Generation = Generation::G26;

    /// The name `--emulate` takes (`22.09`, …, `25.x`, `26.4rc`, `26.x`).
    pub fn name(self) -> &'static str {
        match self {
            Generation::G22_09 => "22.09",
            Generation::G23_09 => "23.09",
            Generation::G24_03 => "24.03",
            Generation::G24_09 => "24.09",
            Generation::G25 => "25.x",
            Generation::G26_4Rc => "26.4rc",
            Generation::G26 => "26.x",
        }
    }

    /// The API version `GET /` reports (the manager's `LATEST_API_VERSION`).
    pub fn api_version(self) -> &'static str {
        match self {
            Generation::G22_09 => "v6.20220615",
            Generation::G23_09 => "v7.20230615",
            Generation::G24_03 => "v8.20240315",
            Generation::G24_09 => "v8.20240915",
            Generation::G25 | Generation::G26_4Rc | Generation::G26 => "v9.20250722",
        }
    }

    /// The manager release `GET /` reports.
    pub fn manager_version(self) -> &'static str {
        match self {
            Generation::G22_09 => "22.09.23",
            Generation::G23_09 => "23.09.10",
            Generation::G24_03 => "24.03.11",
            Generation::G24_09 => "24.09.14",
            Generation::G25 => "25.15.12",
            Generation::G26_4Rc => "26.4.4rc7",
            Generation::G26 => crate::MANAGER_VERSION,
        }
    }

    /// Whether an `X-BackendAI-Version` is accepted: a known version no newer than this
    /// generation's own (a real manager checks membership in its `VALID_VERSIONS`, which ends
    /// at its `LATEST_API_VERSION`; anything else is 400 "Unsupported API version.").
    pub fn accepts_version(self, v: &str) -> bool {
        let (Some(sent), Some(own)) = (
            crate::sign::parse_version(v),
            crate::sign::parse_version(self.api_version()),
        ) else {
            return false;
        };
        crate::sign::version_supported(v) && sent <= own
    }

    /// How sessions are found by the name or id in a path.
    pub fn lookup(self) -> Lookup {
        match self {
            Generation::G22_09 => Lookup::Prefix,
            _ => Lookup::Exact,
        }
    }

    /// Whether a session UUID in a stream path (`/stream/session/{uuid}/…`) is refused (404
    /// "No such session."): only the 26.4.4 release candidates.
    pub fn stream_refuses_uuid(self) -> bool {
        self == Generation::G26_4Rc
    }

    /// Whether the stream routes take `service` as an alias of `app` (up to 25.x; 26.x's
    /// request model knows `app` only).
    pub fn accepts_service_alias(self) -> bool {
        self <= Generation::G25
    }

    /// Whether GraphQL has the relay connection `compute_session_nodes` (added in 24.09).
    pub fn has_compute_session_nodes(self) -> bool {
        self >= Generation::G24_09
    }

    /// `ComputeSession` fields this generation's GraphQL schema does not have yet (a query
    /// selecting one gets "Cannot query field …").
    pub fn missing_session_fields(self) -> &'static [&'static str] {
        match self {
            Generation::G22_09 => &[
                "priority",
                "requested_slots",
                "main_kernel_id",
                "main_kernel_role",
                "scheduled_at",
                "agent_ids",
                "agents",
                "vfolder_mounts",
                "occupying_slots",
                "inference_metrics",
            ],
            Generation::G23_09 => &["priority", "requested_slots"],
            Generation::G24_03 => &["priority"],
            _ => &[],
        }
    }

    /// What `download` and `download_single` do with `method` (GET or POST): GET only up to
    /// 23.09 (23.09.10; the switch to POST, BAI PR #2635, reached 24.03.7 and 24.09 but no
    /// 23.09 release); POST from 24.03 on, where GET is a 400 `deprecated` stub until 25.x and
    /// has no route in 26.x.
    pub fn download_verb(self, post: bool) -> VerbAnswer {
        match (self, post) {
            (Generation::G22_09 | Generation::G23_09, false) => VerbAnswer::Serve,
            (Generation::G22_09 | Generation::G23_09, true) => VerbAnswer::NotAllowed,
            (_, true) => VerbAnswer::Serve,
            (Generation::G26_4Rc | Generation::G26, false) => VerbAnswer::NotAllowed,
            (_, false) => VerbAnswer::Deprecated,
        }
    }

    /// Whether the download routes read their parameters from a JSON body when there is one
    /// (up to 25.x: `check_api_params`); 26.x reads the query only.
    pub fn download_reads_body(self) -> bool {
        self <= Generation::G25
    }

    /// Whether problem bodies carry `error_code` (25.x and newer).
    pub fn has_error_code(self) -> bool {
        self >= Generation::G25
    }

    /// Whether an unknown session is the repository layer's 404 `entity-not-found` ("Entity not
    /// found.", `msg` "No SessionRow matches the given key"), as the real 26.9.6 answers on
    /// `/stream/session/X/apps`, `…/tcpproxy` and `/session/X`; older generations raise
    /// `SessionNotFound` (`object-not-found` "No such session.").
    pub fn entity_not_found(self) -> bool {
        self == Generation::G26
    }

    /// Whether the tcpproxy's query is checked by the pydantic model `StreamProxyRequest`
    /// (26.x, the same model that dropped the `service` alias): a bad `app`/`port` is 400
    /// `generic-bad-request` "Invalid or Missing API Parameters." with the schema report as
    /// `msg`; before, `check_api_params` answered `invalid-api-params`.
    pub fn schema_checked_stream_params(self) -> bool {
        self >= Generation::G26_4Rc
    }

    /// Whether the webserver relays a close the manager sends on a `/func/stream` WebSocket.
    /// None does: 23.09 was observed not to (protocol.md §9), and the real 26.9.6 does not
    /// either (its `web/proxy.py` closes only the manager's side; seen against the real
    /// webserver, docs/compatibility.md). The client's WebSocket stays open until it ends it.
    pub fn webserver_relays_close(self) -> bool {
        false
    }

    /// Whether the webserver has `POST /server/extend-login-session` (24.09 and newer).
    pub fn has_extend_login_session(self) -> bool {
        self >= Generation::G24_09
    }

    /// Whether a refused webserver login keeps the manager's status (26.x: e.g. 401); up to
    /// 25.x it is 200 with `authenticated: false`.
    pub fn login_failure_keeps_status(self) -> bool {
        self >= Generation::G26_4Rc
    }

    /// Whether the webserver answers a missing TOTP with its own typed problem
    /// (`require-totp-authentication`, 25.x and newer); before, the manager's refusal is
    /// passed on (`auth-failed`, details "OTP not provided").
    pub fn typed_totp(self) -> bool {
        self >= Generation::G25
    }
}

impl fmt::Display for Generation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `--emulate` value that names no generation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown generation {0:?} (expected one of 22.09, 23.09, 24.03, 24.09, 25.x, 26.4rc, 26.x)"
)]
pub struct ParseGenerationError(String);

impl FromStr for Generation {
    type Err = ParseGenerationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        let t = t.strip_prefix('v').unwrap_or(&t);
        Ok(match t {
            "22.09" | "22.9" => Generation::G22_09,
            "23.09" | "23.9" => Generation::G23_09,
            "24.03" | "24.3" => Generation::G24_03,
            "24.09" | "24.9" => Generation::G24_09,
            "25" | "25.x" | "25.15" => Generation::G25,
            "26.4rc" | "26.4-rc" | "26.4.4rc" => Generation::G26_4Rc,
            "26" | "26.x" | "26.8" | "26.9" | "26.9.6" | "newest" => Generation::G26,
            _ => return Err(ParseGenerationError(s.to_owned())),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_round_trip_and_versions_grow() {
        for g in Generation::ALL {
            assert_eq!(g.name().parse::<Generation>(), Ok(g));
            assert!(g.accepts_version(g.api_version()), "{g}");
            assert!(g.accepts_version("v4.20181215"), "{g}");
        }
        assert_eq!(Generation::default(), Generation::NEWEST);
        assert_eq!(
            Generation::NEWEST.api_version(),
            crate::DEFAULT_SERVER_VERSION
        );
        for w in Generation::ALL.windows(2) {
            let (a, b) = (
                crate::sign::parse_version(w[0].api_version()),
                crate::sign::parse_version(w[1].api_version()),
            );
            assert!(a <= b, "{} {}", w[0], w[1]);
        }
        assert!(!Generation::G22_09.accepts_version("v7.20230615"));
        assert!(!Generation::G24_03.accepts_version("v8.20240915"));
        assert!(Generation::G24_09.accepts_version("v8.20240315"));
        assert!("27.x".parse::<Generation>().is_err());
    }

    #[test]
    fn download_verbs_follow_the_routes() {
        use VerbAnswer::*;
        assert_eq!(Generation::G22_09.download_verb(false), Serve);
        assert_eq!(Generation::G22_09.download_verb(true), NotAllowed);
        assert_eq!(Generation::G23_09.download_verb(false), Serve);
        assert_eq!(Generation::G24_03.download_verb(false), Deprecated);
        assert_eq!(Generation::G25.download_verb(true), Serve);
        assert_eq!(Generation::G26.download_verb(false), NotAllowed);
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_text_parses_or_errs_without_panic(s in ".{0,16}") {
            let _ = s.parse::<Generation>();
        }

        #[test]
        fn any_version_header_never_panics(s in "v?[0-9]{0,3}\\.?[0-9]{0,9}") {
            for g in Generation::ALL {
                let _ = g.accepts_version(&s);
            }
        }
    }
}
