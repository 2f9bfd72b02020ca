//! Bundles whose entries embed stored resources verbatim (no re-serialisation).

use serde::Serialize;
use serde_json::value::RawValue;

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
    pub etag: String,
    pub last_modified: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
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
    /// None for a history (whose total would cost a count of every visible version).
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
                last_updated: crate::domain::resource::format_instant(chrono::Utc::now()),
            },
            kind,
            total: Some(total),
            link,
            entry,
        }
    }

    /// A Bundle without `total` (histories).
    pub fn without_total(kind: &'static str, link: Vec<Link>, entry: Vec<Entry>) -> Self {
        Self {
            total: None,
            ..Self::new(kind, 0, link, entry)
        }
    }
}

/// A stored resource as an embeddable raw value.
pub fn raw(json: String) -> Option<Box<RawValue>> {
    RawValue::from_string(json).ok()
}
