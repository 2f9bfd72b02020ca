//! Version ids (`meta.versionId`), weak `ETag`s and `If-Match` preconditions.

use std::fmt;

/// A resource version: 1 for a create, one more for every update or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct VersionId(i64);

impl VersionId {
    pub const FIRST: VersionId = VersionId(1);

    pub fn new(value: i64) -> Option<Self> {
        (value >= 1).then_some(Self(value))
    }

    pub fn next(self) -> Self {
        Self(self.0 + 1)
    }

    pub fn get(self) -> i64 {
        self.0
    }

    /// `W/"<n>"`, the FHIR spelling of a version's ETag.
    pub fn etag(self) -> String {
        format!("W/\"{}\"", self.0)
    }

    /// A path segment or `meta.versionId` value.
    pub fn parse(raw: &str) -> Option<Self> {
        raw.trim().parse::<i64>().ok().and_then(Self::new)
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The version an `If-Match` header requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfMatch(VersionId);

impl IfMatch {
    /// Accepts `W/"3"`, `"3"` and (leniently) `3`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let unweak = raw.strip_prefix("W/").unwrap_or(raw);
        let bare = unweak
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or(unweak);
        VersionId::parse(bare)
            .map(Self)
            .ok_or_else(|| format!("If-Match {raw:?} is not a version ETag like W/\"1\""))
    }

    pub fn matches(self, current: VersionId) -> bool {
        self.0 == current
    }

    pub fn version(self) -> VersionId {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_round_trip_through_if_match() {
        let v = VersionId::FIRST.next();
        assert_eq!(v.etag(), "W/\"2\"");
        assert!(IfMatch::parse(&v.etag()).unwrap().matches(v));
        assert!(IfMatch::parse("\"2\"").unwrap().matches(v));
        assert!(!IfMatch::parse("W/\"1\"").unwrap().matches(v));
    }

    #[test]
    fn rejects_malformed_preconditions() {
        assert!(IfMatch::parse("W/\"x\"").is_err());
        assert!(IfMatch::parse("*").is_err());
        assert!(IfMatch::parse("W/\"0\"").is_err());
        assert!(VersionId::parse("-1").is_none());
    }
}
