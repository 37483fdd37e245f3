//! The one place where bai chooses the shape of a call by the server's generation: a
//! [`Dialect`] is made from the negotiated API version, and every API area asks it instead of
//! comparing versions itself. A version newer than any known gets the newest shapes.
//!
//! Where one API version spans releases that differ (23.03 and 23.09 both report
//! `v7.20230615`, 25.x and 26.x both `v9.20250722`), the call that may be refused has a
//! fallback driven by the server's answer, in the module that makes the call:
//! - downloads: a 405, or a 400 `deprecated`, retries with the other method (and the client
//!   remembers it), [`crate::Client::download_single`];
//! - a session UUID refused in a stream path (the 26.4.4 release candidates) is retried by the
//!   session's name, [`crate::Client::session_apps`].
//!
//! The table of generations is `docs/compatibility.md`.

use reqwest::Method;

use crate::version::ApiVersion;

/// `v6.20210815`: `/admin/gql` (before: `/admin/graphql`).
const GQL_SINCE: ApiVersion = ApiVersion {
    major: 6,
    date: 20210815,
};
/// `v7.20230615` (23.03/23.09): exact session lookup (23.09).
const V7_2023: ApiVersion = ApiVersion {
    major: 7,
    date: 20230615,
};
/// `v8.20240315` (24.03): POST downloads (24.03.7 and later; 24.03.0 … 24.03.6 still GET).
const V8_2024: ApiVersion = ApiVersion {
    major: 8,
    date: 20240315,
};

/// The call shapes of one server generation, chosen by its API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dialect {
    version: ApiVersion,
}

impl Dialect {
    /// The dialect of a negotiated API version.
    pub fn of(version: ApiVersion) -> Dialect {
        Dialect { version }
    }

    /// The negotiated API version this dialect is for.
    pub fn version(&self) -> ApiVersion {
        self.version
    }

    /// The path prefix of the session routes: `session` (≥ v5) or `kernel` (≤ v4).
    pub fn session_prefix(&self) -> &'static str {
        self.version.session_prefix()
    }

    /// The GraphQL endpoint under `/admin/`: `gql`, or `graphql` before v6.20210815.
    pub fn graphql_path(&self) -> &'static str {
        if self.version < GQL_SINCE {
            "graphql"
        } else {
            "gql"
        }
    }

    /// The method of `download` and `download_single`: GET up to 23.09 (API < v8), POST from
    /// 24.03 on (24.03.0 … 24.03.6 share v8.20240315 but still want GET: the fallback finds
    /// it). Parameters always go in the query, which every generation reads when there is no
    /// body.
    pub fn download_method(&self) -> Method {
        if self.version < V8_2024 {
            Method::GET
        } else {
            Method::POST
        }
    }

    /// Whether the server finds sessions by prefix (22.09: session-ID prefix, exact name, then
    /// name prefix, per access key). bai then addresses a named session by its UUID, looked
    /// up in the session list, so that a name can never reach another session whose ID or
    /// name starts with it.
    pub fn prefix_lookup(&self) -> bool {
        self.version < V7_2023
    }
}

/// The other download method, for the fallback.
pub(crate) fn other_download_method(m: &Method) -> Method {
    if m == Method::GET {
        Method::POST
    } else {
        Method::GET
    }
}

/// Whether `s` is a session UUID (hyphenated, as paths and GraphQL carry it).
pub(crate) fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::version::CLIENT_API_VERSION;
    use proptest::prelude::*;

    fn d(v: &str) -> Dialect {
        Dialect::of(ApiVersion::negotiate(v.parse().expect("version")))
    }

    #[test]
    fn shapes_by_generation() {
        // 22.09
        assert_eq!(d("v6.20220615").download_method(), Method::GET);
        assert!(d("v6.20220615").prefix_lookup());
        assert_eq!(d("v6.20220615").graphql_path(), "gql");
        // 23.09 … 26.x
        assert_eq!(d("v7.20230615").download_method(), Method::GET);
        assert!(!d("v7.20230615").prefix_lookup());
        for v in ["v8.20240315", "v8.20240915", "v9.20250722"] {
            assert_eq!(d(v).download_method(), Method::POST, "{v}");
            assert!(!d(v).prefix_lookup(), "{v}");
            assert_eq!(d(v).session_prefix(), "session");
        }
        // Old and unknown-future versions.
        assert_eq!(d("v5.20191215").graphql_path(), "graphql");
        assert_eq!(d("v4.20190615").session_prefix(), "kernel");
        let future = d("v12.20300101");
        assert_eq!(
            future,
            Dialect::of(CLIENT_API_VERSION),
            "newer → newest shapes"
        );
        assert_eq!(other_download_method(&Method::GET), Method::POST);
        assert_eq!(other_download_method(&Method::POST), Method::GET);
    }

    #[test]
    fn uuids() {
        assert!(is_uuid("8c338aa0-1b2c-4d5e-8f90-0123456789ab"));
        assert!(!is_uuid("8c338aa0"));
        assert!(!is_uuid("demo-1"));
        assert!(!is_uuid("8c338aa0x1b2c-4d5e-8f90-0123456789ab"));
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn any_text_is_judged_without_panic(s in ".{0,40}") {
            let _ = is_uuid(&s);
        }

        #[test]
        fn every_version_has_a_dialect(major in 0u32..20, date in 0u32..99_999_999) {
            let d = Dialect::of(ApiVersion::negotiate(ApiVersion { major, date }));
            prop_assert!(d.version() <= CLIENT_API_VERSION);
            let _ = (d.graphql_path(), d.download_method(), d.prefix_lookup(), d.session_prefix());
        }
    }
}
