//! Version ids (`meta.versionId`) and their weak `ETag`s.

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
        custodian_fhir::http::etag(self.0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_their_etags() {
        let v = VersionId::FIRST.next();
        assert_eq!(v.etag(), "W/\"2\"");
        assert_eq!(VersionId::parse("2"), Some(v));
        assert!(VersionId::parse("-1").is_none());
        assert!(VersionId::new(0).is_none());
    }
}
