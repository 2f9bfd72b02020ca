//! Which service answers a path, and which paths need no token. Pure functions of the path
//! (percent-encoded, as received); the proxy forwards the path unchanged.

/// The services behind the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Upstream {
    Identity,
    Consent,
    Records,
    Ledger,
    Anomaly,
}

impl Upstream {
    pub const ALL: [Upstream; 5] = [
        Upstream::Identity,
        Upstream::Consent,
        Upstream::Records,
        Upstream::Ledger,
        Upstream::Anomaly,
    ];

    /// The service's name (metric label, readiness check name).
    pub fn name(self) -> &'static str {
        match self {
            Upstream::Identity => "identity",
            Upstream::Consent => "consent",
            Upstream::Records => "records",
            Upstream::Ledger => "ledger",
            Upstream::Anomaly => "anomaly",
        }
    }
}

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub upstream: Upstream,
    /// Served without a token (token endpoint, discovery documents, public ledger data).
    pub public: bool,
}

/// Why a path is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unroutable {
    /// No service serves it, or it is internal (`/internal/*`).
    NotFound,
    /// It has `.` or `..` segments (possibly percent-encoded): refused rather than guessing how
    /// the service behind would resolve them.
    DotSegment,
}

/// True when `path` is `prefix` or below it (`/fhir` and `/fhir/x`, not `/fhirx`).
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|segment| {
        let decoded = segment.replace("%2e", ".").replace("%2E", ".");
        decoded == "." || decoded == ".."
    })
}

/// Paths served without a token (beside the gateway's own `/healthz`, `/docs` ...).
fn is_public(path: &str) -> bool {
    matches!(
        path,
        "/auth/token" | "/auth/revoke" | "/fhir/metadata" | "/ledger/checkpoint" | "/ledger/key"
    ) || under(path, "/.well-known")
        || under(path, "/fhir/.well-known")
        // The ledger's hash tiles (C2SP tlog-tiles) carry hashes only; its entry bundles name
        // patients and need a token.
        || (under(path, "/ledger/tile") && !under(path, "/ledger/tile/entries"))
}

/// The service for `path` (the path only, without the query string).
pub fn route(path: &str) -> Result<Route, Unroutable> {
    if has_dot_segment(path) {
        return Err(Unroutable::DotSegment);
    }
    let upstream = if under(path, "/internal") {
        return Err(Unroutable::NotFound);
    } else if under(path, "/auth")
        || under(path, "/.well-known")
        || under(path, "/fhir/.well-known")
    {
        Upstream::Identity
    } else if under(path, "/fhir/Consent") || under(path, "/consent") {
        Upstream::Consent
    } else if under(path, "/fhir/AuditEvent") {
        // The audit trail is the ledger's log, served as FHIR there, not a record.
        Upstream::Ledger
    } else if under(path, "/fhir") {
        Upstream::Records
    } else if under(path, "/ledger") {
        Upstream::Ledger
    } else if under(path, "/anomaly") {
        Upstream::Anomaly
    } else {
        return Err(Unroutable::NotFound);
    };
    Ok(Route {
        upstream,
        public: is_public(path),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(path: &str) -> Option<Upstream> {
        route(path).ok().map(|r| r.upstream)
    }

    #[test]
    fn prefixes_go_to_their_service() {
        use Upstream::*;
        let cases = [
            ("/auth/token", Identity),
            ("/auth/admin/users", Identity),
            ("/.well-known/jwks.json", Identity),
            ("/fhir/.well-known/smart-configuration", Identity),
            ("/fhir/Consent", Consent),
            ("/fhir/Consent/123", Consent),
            ("/fhir/Consent/123/_history/2", Consent),
            ("/consent/decisions", Consent),
            ("/fhir", Records),
            ("/fhir/metadata", Records),
            ("/fhir/Patient/1", Records),
            ("/fhir/ConsentLike", Records),
            ("/ledger/checkpoint", Ledger),
            ("/ledger/entries/5", Ledger),
            ("/fhir/AuditEvent", Ledger),
            ("/fhir/AuditEvent/17", Ledger),
            ("/fhir/AuditEventX", Records),
            ("/fhir/Patient/1/AuditEvent", Records),
            ("/anomaly/alerts", Anomaly),
        ];
        for (path, expected) in cases {
            assert_eq!(upstream(path), Some(expected), "{path}");
        }
    }

    #[test]
    fn internal_and_unknown_paths_are_not_forwarded() {
        for path in [
            "/internal/suspended",
            "/internal",
            "/",
            "/authx",
            "/fhirx/Patient",
            "/ledgers",
            "/metrics/x",
            "",
        ] {
            assert_eq!(route(path), Err(Unroutable::NotFound), "{path}");
        }
    }

    #[test]
    fn dot_segments_are_refused() {
        for path in [
            "/auth/../internal/suspended",
            "/fhir/./Patient",
            "/auth/%2e%2e/internal",
            "/fhir/%2E./x",
            "/ledger/..",
        ] {
            assert_eq!(route(path), Err(Unroutable::DotSegment), "{path}");
        }
        assert!(route("/fhir/Patient/a.b").is_ok());
        assert!(route("/fhir/Binary/...").is_ok());
    }

    #[test]
    fn public_paths() {
        for path in [
            "/auth/token",
            "/auth/revoke",
            "/.well-known/jwks.json",
            "/fhir/.well-known/smart-configuration",
            "/fhir/metadata",
            "/ledger/checkpoint",
            "/ledger/key",
            "/ledger/tile/0/000",
            "/ledger/tile/1/x001/234.p/7",
        ] {
            assert!(route(path).unwrap().public, "{path}");
        }
        for path in [
            "/auth/admin/users",
            "/auth/tokens",
            "/fhir/Patient",
            "/fhir/metadata/x",
            "/fhir/Consent",
            "/ledger/entries",
            "/anomaly/alerts",
            "/ledger/checkpoints",
            "/fhir/AuditEvent",
            "/fhir/AuditEvent/0",
            "/ledger/tile/entries/000",
            "/ledger/tile/entries/x001/234.p/9",
            "/ledger/tiles",
        ] {
            assert!(!route(path).unwrap().public, "{path}");
        }
    }
}
