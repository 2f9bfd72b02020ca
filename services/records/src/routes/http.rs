//! HTTP details of the FHIR API: media types, `Prefer`, `If-Match`, and building responses.

use actix_web::{
    http::{header, StatusCode},
    HttpRequest, HttpResponse, HttpResponseBuilder,
};
use chrono::{DateTime, Utc};
use custodian_fhir::{FhirError, OperationOutcome, FHIR_JSON};

use crate::domain::{AddressError, ResourceId, ResourceType};

/// `Prefer: return=...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Minimal,
    Representation,
    OperationOutcome,
}

pub fn prefer_return(req: &HttpRequest) -> Return {
    let Some(prefer) = req.headers().get("prefer").and_then(|v| v.to_str().ok()) else {
        return Return::Representation;
    };
    for part in prefer.split([',', ';']) {
        match part.trim().to_ascii_lowercase().as_str() {
            "return=minimal" => return Return::Minimal,
            "return=operationoutcome" => return Return::OperationOutcome,
            "return=representation" => return Return::Representation,
            _ => {}
        }
    }
    Return::Representation
}

/// Request bodies must be FHIR JSON (`application/fhir+json` or `application/json`).
pub fn require_json(req: &HttpRequest) -> Result<(), FhirError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime == "application/fhir+json" || mime == "application/json" {
        Ok(())
    } else {
        Err(FhirError::UnsupportedMediaType(format!(
            "content type {:?} is not supported; send application/fhir+json",
            mime
        )))
    }
}

/// `If-Match: W/"3"` -> 3.
pub fn if_match(req: &HttpRequest) -> Result<Option<i64>, FhirError> {
    let Some(raw) = req
        .headers()
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(None);
    };
    let raw = raw.trim();
    let inner = raw.strip_prefix("W/").unwrap_or(raw).trim_matches('"');
    inner.parse::<i64>().map(Some).map_err(|_| {
        FhirError::BadRequest(format!(
            "If-Match {raw:?} is not a version ETag like W/\"1\""
        ))
    })
}

/// `If-None-Match` on a read: the versions it names, or every version (`*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoneMatch {
    Any,
    Versions(Vec<i64>),
}

impl NoneMatch {
    pub fn matches(&self, version: i64) -> bool {
        match self {
            NoneMatch::Any => true,
            NoneMatch::Versions(v) => v.contains(&version),
        }
    }
}

/// `If-None-Match: W/"3", "4"` or `*`. Entity tags that are not versions match nothing.
pub fn if_none_match(req: &HttpRequest) -> Option<NoneMatch> {
    let raw = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())?;
    if raw.trim() == "*" {
        return Some(NoneMatch::Any);
    }
    Some(NoneMatch::Versions(
        raw.split(',')
            .filter_map(|tag| {
                let tag = tag.trim();
                tag.strip_prefix("W/")
                    .unwrap_or(tag)
                    .trim_matches('"')
                    .parse::<i64>()
                    .ok()
            })
            .collect(),
    ))
}

/// `If-Modified-Since` (an HTTP date); unparseable dates are ignored, as RFC 9110 says.
pub fn if_modified_since(req: &HttpRequest) -> Option<DateTime<Utc>> {
    let raw = req
        .headers()
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())?;
    DateTime::parse_from_rfc2822(raw.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Whether a read of `version`, written at `last_updated`, is answered 304: `If-None-Match`
/// names it, or (without `If-None-Match`) it was not modified since `If-Modified-Since`.
pub fn not_modified(req: &HttpRequest, version: i64, last_updated: DateTime<Utc>) -> bool {
    match if_none_match(req) {
        Some(tags) => tags.matches(version),
        None => if_modified_since(req)
            .is_some_and(|since| last_updated.timestamp() <= since.timestamp()),
    }
}

pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub fn parse_type(raw: &str) -> Result<ResourceType, FhirError> {
    ResourceType::parse(raw).map_err(|e| match e {
        AddressError::NotServedHere { .. } => FhirError::NotFound(e.to_string()),
        other => FhirError::NotFound(other.to_string()),
    })
}

pub fn parse_id(raw: &str) -> Result<ResourceId, FhirError> {
    ResourceId::parse(raw).map_err(|e| FhirError::BadRequest(e.to_string()))
}

/// A FHIR JSON response.
pub fn fhir(status: StatusCode) -> HttpResponseBuilder {
    let mut builder = HttpResponse::build(status);
    builder.content_type(FHIR_JSON);
    builder
}

/// A response carrying a version: ETag and Last-Modified.
pub fn versioned(
    status: StatusCode,
    version: i64,
    last_updated: DateTime<Utc>,
) -> HttpResponseBuilder {
    let mut builder = fhir(status);
    builder.insert_header((header::ETAG, etag(version)));
    builder.insert_header((header::LAST_MODIFIED, http_date(last_updated)));
    builder
}

/// The body of a write according to `Prefer`.
pub fn write_body(
    mut builder: HttpResponseBuilder,
    prefer: Return,
    json: String,
    message: &str,
) -> HttpResponse {
    match prefer {
        Return::Minimal => builder.finish(),
        Return::OperationOutcome => {
            builder.body(OperationOutcome::information(message).to_string())
        }
        Return::Representation => builder.body(json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn reads_prefer_and_if_match() {
        let req = TestRequest::default()
            .insert_header(("Prefer", "return=minimal"))
            .to_http_request();
        assert_eq!(prefer_return(&req), Return::Minimal);
        let req = TestRequest::default()
            .insert_header(("Prefer", "handling=strict, return=OperationOutcome"))
            .to_http_request();
        assert_eq!(prefer_return(&req), Return::OperationOutcome);
        assert_eq!(
            prefer_return(&TestRequest::default().to_http_request()),
            Return::Representation
        );
        let req = TestRequest::default()
            .insert_header(("If-Match", "W/\"3\""))
            .to_http_request();
        assert_eq!(if_match(&req).unwrap(), Some(3));
        let req = TestRequest::default()
            .insert_header(("If-Match", "\"4\""))
            .to_http_request();
        assert_eq!(if_match(&req).unwrap(), Some(4));
        let req = TestRequest::default()
            .insert_header(("If-Match", "nope"))
            .to_http_request();
        assert!(if_match(&req).is_err());
    }

    #[test]
    fn media_types() {
        let ok = TestRequest::default()
            .insert_header(("Content-Type", "application/fhir+json; charset=utf-8"))
            .to_http_request();
        assert!(require_json(&ok).is_ok());
        let ok = TestRequest::default()
            .insert_header(("Content-Type", "application/json"))
            .to_http_request();
        assert!(require_json(&ok).is_ok());
        let bad = TestRequest::default()
            .insert_header(("Content-Type", "application/xml"))
            .to_http_request();
        assert!(require_json(&bad).is_err());
    }

    #[test]
    fn read_preconditions() {
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let req = |k: &str, v: &str| {
            TestRequest::default()
                .insert_header((k, v))
                .to_http_request()
        };
        assert!(not_modified(&req("If-None-Match", "W/\"3\""), 3, t));
        assert!(not_modified(&req("If-None-Match", "\"2\", W/\"3\""), 3, t));
        assert!(!not_modified(&req("If-None-Match", "W/\"2\""), 3, t));
        assert!(not_modified(&req("If-None-Match", "*"), 3, t));
        assert!(!not_modified(&req("If-None-Match", "junk"), 3, t));
        assert!(not_modified(
            &req("If-Modified-Since", "Tue, 02 Jan 2024 03:04:05 GMT"),
            3,
            t
        ));
        assert!(!not_modified(
            &req("If-Modified-Since", "Tue, 02 Jan 2024 03:04:04 GMT"),
            3,
            t
        ));
        assert!(!not_modified(&req("If-Modified-Since", "yesterday"), 3, t));
        assert!(!not_modified(
            &TestRequest::default().to_http_request(),
            3,
            t
        ));
    }

    #[test]
    fn http_dates() {
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(http_date(t), "Tue, 02 Jan 2024 03:04:05 GMT");
    }
}
