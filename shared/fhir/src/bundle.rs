//! Bundles (searchset, history, transaction-response ...) whose entries embed stored
//! resources verbatim (no re-serialisation), and the paging rules every search shares.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::{dates::format_instant, FhirError};

/// `_count` when the client gives none.
pub const DEFAULT_COUNT: usize = 50;
/// The largest page any search or history returns (a larger `_count` is lowered to it, as
/// search.html allows).
pub const MAX_COUNT: usize = 1000;

/// `_count`: a non-negative integer (0 asks for the total only), at most [`MAX_COUNT`].
pub fn page_size(raw: &str) -> Result<usize, FhirError> {
    raw.trim()
        .parse::<usize>()
        .map(|n| n.min(MAX_COUNT))
        .map_err(|_| FhirError::BadRequest(format!("_count={raw} is not a non-negative integer")))
}

#[derive(Serialize)]
pub struct Link {
    pub relation: &'static str,
    pub url: String,
}

#[derive(Serialize)]
pub struct Search {
    pub mode: &'static str,
}

#[derive(Serialize)]
pub struct Request {
    pub method: &'static str,
    pub url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub etag: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_modified: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub full_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<Search>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<Request>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
}

/// A search parameter a lenient search left out, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub name: String,
    pub reason: String,
}

impl Entry {
    /// A searchset entry (`search.mode = outcome`) holding an `OperationOutcome` of `issues`.
    pub fn outcome(issues: Vec<serde_json::Value>) -> Entry {
        let outcome = serde_json::json!({"resourceType": "OperationOutcome", "issue": issues});
        Entry {
            full_url: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            resource: raw(outcome.to_string()),
            search: Some(Search { mode: "outcome" }),
            request: None,
            response: None,
        }
    }

    /// The outcome entry that tells the client which of its parameters were ignored under
    /// `Prefer: handling=lenient` (one warning each); none when nothing was.
    pub fn ignored_parameters(ignored: &[Ignored]) -> Option<Entry> {
        if ignored.is_empty() {
            return None;
        }
        let issues = ignored
            .iter()
            .map(|i| {
                serde_json::json!({
                    "severity": "warning",
                    "code": "not-supported",
                    "diagnostics": format!("{} was ignored: {}", i.name, i.reason),
                    "expression": [i.name],
                })
            })
            .collect();
        Some(Entry::outcome(issues))
    }
}

#[derive(Serialize)]
pub struct Meta {
    #[serde(rename = "lastUpdated")]
    pub last_updated: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub resource_type: &'static str,
    pub id: String,
    pub meta: Meta,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
    pub link: Vec<Link>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<Entry>,
}

impl Bundle {
    pub fn new(kind: &'static str, total: usize, link: Vec<Link>, entry: Vec<Entry>) -> Self {
        Self {
            resource_type: "Bundle",
            id: uuid::Uuid::new_v4().to_string(),
            meta: Meta {
                last_updated: format_instant(chrono::Utc::now()),
            },
            kind,
            total: Some(total),
            link,
            entry,
        }
    }

    /// The same Bundle without `total` (`_total=none`, or a kind that has none).
    pub fn without_total(mut self) -> Self {
        self.total = None;
        self
    }
}

/// A stored resource as an embeddable raw value.
pub fn raw(json: String) -> Option<Box<RawValue>> {
    RawValue::from_string(json).ok()
}

/// A search or history URL: `{base}/{path}?{params}`.
pub fn page_url(base: &str, path: &str, params: &[(String, String)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    let query = query.finish();
    if query.is_empty() {
        format!("{base}/{path}")
    } else {
        format!("{base}/{path}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes() {
        assert_eq!(page_size("10").unwrap(), 10);
        assert_eq!(page_size("0").unwrap(), 0);
        assert_eq!(page_size("100000").unwrap(), MAX_COUNT);
        assert!(page_size("-1").is_err());
        assert!(page_size("ten").is_err());
    }

    #[test]
    fn searchsets_say_what_they_ignored() {
        assert!(Entry::ignored_parameters(&[]).is_none());
        let entry = Entry::ignored_parameters(&[Ignored {
            name: "_foo".into(),
            reason: "unknown".into(),
        }])
        .unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&entry).unwrap()).unwrap();
        assert_eq!(json["search"]["mode"], "outcome");
        assert_eq!(json["resource"]["resourceType"], "OperationOutcome");
        assert!(json["resource"]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("_foo"));
        let bundle = Bundle::new("searchset", 0, vec![], vec![]).without_total();
        let json = serde_json::to_value(&bundle).unwrap();
        assert!(json.get("total").is_none());
        assert_eq!(
            page_url("http://x", "fhir/Patient", &[("name".into(), "a b".into())]),
            "http://x/fhir/Patient?name=a+b"
        );
    }
}
