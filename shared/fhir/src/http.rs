//! The HTTP side of FHIR REST (http.html), once for every service that speaks it: media types
//! and content negotiation, `Prefer`, version ETags and the preconditions built on them,
//! `Last-Modified`, and responses carrying a version.

use actix_web::{
    body::{BoxBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, StatusCode},
    middleware::Next,
    HttpRequest, HttpResponse, HttpResponseBuilder, ResponseError,
};
use chrono::{DateTime, NaiveDateTime, Utc};

use crate::{FhirError, OperationOutcome, FHIR_JSON};

/// `Prefer: return=...`: what a write answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Return {
    Minimal,
    #[default]
    Representation,
    OperationOutcome,
}

/// `Prefer: handling=...`: what a search does with parameters it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Handling {
    /// Refuse the search (400).
    Strict,
    /// Ignore them and say so in an `outcome` entry (the default: real clients send
    /// parameters of their own, and must work).
    #[default]
    Lenient,
}

/// The request's `Prefer` header, read once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Prefer {
    pub return_: Return,
    pub handling: Handling,
}

impl Prefer {
    /// Parses `Prefer` (several preferences, separated by `,` or `;`, possibly in several
    /// headers); unknown preferences are ignored, as RFC 7240 asks.
    pub fn parse(values: &[&str]) -> Self {
        let mut prefer = Prefer::default();
        for part in values.iter().flat_map(|v| v.split([',', ';'])) {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "return" => {
                    if value.eq_ignore_ascii_case("minimal") {
                        prefer.return_ = Return::Minimal;
                    } else if value.eq_ignore_ascii_case("representation") {
                        prefer.return_ = Return::Representation;
                    } else if value.eq_ignore_ascii_case("OperationOutcome") {
                        prefer.return_ = Return::OperationOutcome;
                    }
                }
                "handling" => {
                    if value.eq_ignore_ascii_case("strict") {
                        prefer.handling = Handling::Strict;
                    } else if value.eq_ignore_ascii_case("lenient") {
                        prefer.handling = Handling::Lenient;
                    }
                }
                _ => {}
            }
        }
        prefer
    }

    pub fn of(req: &HttpRequest) -> Self {
        let values: Vec<&str> = req
            .headers()
            .get_all("prefer")
            .filter_map(|v| v.to_str().ok())
            .collect();
        Self::parse(&values)
    }
}

/// `Prefer: return=...` of a request.
pub fn prefer_return(req: &HttpRequest) -> Return {
    Prefer::of(req).return_
}

/// The media types a FHIR JSON body may be sent as: R4's, plain JSON, and the DSTU2 spelling
/// older clients still send.
const JSON_TYPES: &[&str] = &[
    "application/fhir+json",
    "application/json",
    "application/json+fhir",
];

fn essence(raw: &str) -> String {
    raw.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// A request body must be FHIR JSON. A body sent without `Content-Type` is taken as JSON (it
/// is parsed as such and refused if it is not); any other declared type is a 415.
pub fn require_json(req: &HttpRequest) -> Result<(), FhirError> {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let raw = value.to_str().unwrap_or_default();
    if JSON_TYPES.contains(&essence(raw).as_str()) {
        Ok(())
    } else {
        Err(FhirError::UnsupportedMediaType(format!(
            "content type {raw:?} is not supported; send application/fhir+json"
        )))
    }
}

/// What the client asked to receive: `_format` (which overrides `Accept`, http.html#mime)
/// or `Accept`. Only JSON is served: XML, Turtle or anything else is a 406.
pub fn acceptable(req: &HttpRequest) -> Result<(), FhirError> {
    let format = form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(name, _)| name == "_format")
        .map(|(_, value)| value.into_owned());
    if let Some(format) = format {
        let wanted = essence(&format);
        return if matches!(
            wanted.as_str(),
            "json" | "application/json" | "application/fhir+json" | "application/json+fhir"
        ) {
            Ok(())
        } else {
            Err(FhirError::NotAcceptable(format!(
                "_format={format} is not served; this server answers in FHIR JSON (_format=json)"
            )))
        };
    }
    let accept: Vec<&str> = req
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .collect();
    if accept.is_empty() {
        return Ok(());
    }
    let served = accept.iter().flat_map(|v| v.split(',')).any(|range| {
        let mut parts = range.split(';');
        let mime = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !refused
            && (JSON_TYPES.contains(&mime.as_str())
                || matches!(
                    mime.as_str(),
                    // Bulk Data files are NDJSON.
                    "*/*"
                        | "application/*"
                        | "text/*"
                        | "text/json"
                        | "application/fhir+ndjson"
                        | "application/ndjson"
                ))
    });
    if served {
        Ok(())
    } else {
        Err(FhirError::NotAcceptable(format!(
            "Accept {:?} names nothing served; this server answers in application/fhir+json",
            accept.join(", ")
        )))
    }
}

/// Middleware for FHIR routes: a request for a format that is not served gets its 406 before
/// anything else is done (and before any access is decided or recorded).
pub async fn negotiate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    if req.path().starts_with("/fhir") {
        if let Err(e) = acceptable(req.request()) {
            let response = e.error_response();
            return Ok(req.into_response(response));
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_boxed_body)
}

/// The answer to a method a FHIR path does not serve (a resource's `default_service`): 405
/// with an `OperationOutcome`, not actix's empty body.
pub async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, FhirError> {
    Err(FhirError::MethodNotAllowed(format!(
        "{} is not supported on {}",
        req.method(),
        req.path()
    )))
}

/// `W/"3"`: the weak ETag of version 3.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The version in an ETag: `W/"3"`, `"3"` or (leniently) `3`.
pub fn parse_etag(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    let unweak = raw.strip_prefix("W/").unwrap_or(raw);
    let bare = unweak
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(unweak);
    bare.parse::<i64>().ok().filter(|v| *v >= 1)
}

/// `If-Match`: the version a write requires, when the request names one.
pub fn if_match(req: &HttpRequest) -> Result<Option<i64>, FhirError> {
    let Some(raw) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    let raw = raw.to_str().unwrap_or_default();
    // An empty field is an empty list of entity tags (RFC 9110 5.6.1): no precondition, as
    // when the header is absent.
    if raw.trim().is_empty() {
        return Ok(None);
    }
    parse_etag(raw).map(Some).ok_or_else(|| {
        FhirError::BadRequest(format!(
            "If-Match {raw:?} is not a version ETag like W/\"1\""
        ))
    })
}

/// `If-None-Match` on a read or a create-on-update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfNoneMatch {
    /// `*`: only if nothing exists.
    Any,
    /// Any of these versions.
    Versions(Vec<i64>),
}

impl IfNoneMatch {
    /// The header, when present. Entity tags that are not version ETags match nothing (the
    /// request then proceeds as if unconditional, as RFC 9110 has it for tags that differ).
    pub fn of(req: &HttpRequest) -> Option<Self> {
        let raw = req.headers().get(header::IF_NONE_MATCH)?;
        let raw = raw.to_str().unwrap_or_default().trim();
        if raw == "*" {
            return Some(Self::Any);
        }
        Some(Self::Versions(
            raw.split(',').filter_map(parse_etag).collect(),
        ))
    }

    /// Whether the current `version` matches (a read then answers 304).
    pub fn matches(&self, version: i64) -> bool {
        match self {
            Self::Any => true,
            Self::Versions(versions) => versions.contains(&version),
        }
    }
}

/// `If-Modified-Since`, when present and well formed (a malformed date is ignored, as RFC
/// 9110 asks).
pub fn if_modified_since(req: &HttpRequest) -> Option<DateTime<Utc>> {
    let raw = req
        .headers()
        .get(header::IF_MODIFIED_SINCE)?
        .to_str()
        .ok()?;
    parse_http_date(raw)
}

/// Whether a resource last updated at `last_updated` counts as not modified since `since`
/// (HTTP dates have whole seconds).
pub fn not_modified_since(last_updated: DateTime<Utc>, since: DateTime<Utc>) -> bool {
    last_updated.timestamp() <= since.timestamp()
}

/// The `304 Not Modified` a conditional read answers when the client's copy is current:
/// `If-None-Match` naming the current version, or (without `If-None-Match`, which takes
/// precedence, RFC 9110 13.2.2) `If-Modified-Since` at or after the last update.
pub fn not_modified(
    req: &HttpRequest,
    version: i64,
    last_updated: DateTime<Utc>,
) -> Option<HttpResponse> {
    let current = match IfNoneMatch::of(req) {
        Some(tags) => tags.matches(version),
        None => if_modified_since(req).is_some_and(|since| not_modified_since(last_updated, since)),
    };
    current.then(|| {
        HttpResponse::NotModified()
            .insert_header((header::ETAG, etag(version)))
            .insert_header((header::LAST_MODIFIED, http_date(last_updated)))
            .finish()
    })
}

/// `Last-Modified` spelling (RFC 9110 IMF-fixdate).
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub fn parse_http_date(raw: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(raw.trim(), "%a, %d %b %Y %H:%M:%S GMT")
        .ok()
        .map(|t| t.and_utc())
}

/// A FHIR JSON response.
pub fn fhir(status: StatusCode) -> HttpResponseBuilder {
    let mut builder = HttpResponse::build(status);
    builder.content_type(FHIR_JSON);
    builder
}

/// A response carrying a version: `ETag` and `Last-Modified`.
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

/// The body of a write according to `Prefer: return`.
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
    fn prefer_has_return_and_handling() {
        let p = Prefer::parse(&["handling=strict, return=OperationOutcome"]);
        assert_eq!(p.return_, Return::OperationOutcome);
        assert_eq!(p.handling, Handling::Strict);
        let p = Prefer::parse(&["return=minimal", "respond-async"]);
        assert_eq!(p.return_, Return::Minimal);
        assert_eq!(p.handling, Handling::Lenient);
        assert_eq!(Prefer::parse(&[]), Prefer::default());
        let req = TestRequest::default()
            .insert_header(("Prefer", "return=minimal"))
            .to_http_request();
        assert_eq!(prefer_return(&req), Return::Minimal);
    }

    #[test]
    fn etags_and_preconditions() {
        assert_eq!(parse_etag(&etag(3)), Some(3));
        assert_eq!(parse_etag("\"4\""), Some(4));
        assert_eq!(parse_etag("4"), Some(4));
        assert_eq!(parse_etag("W/\"0\""), None);
        assert_eq!(parse_etag("nope"), None);
        let req = TestRequest::default()
            .insert_header(("If-Match", "W/\"3\""))
            .to_http_request();
        assert_eq!(if_match(&req).unwrap(), Some(3));
        let req = TestRequest::default()
            .insert_header(("If-Match", "nope"))
            .to_http_request();
        assert!(if_match(&req).is_err());
        let req = TestRequest::default()
            .insert_header(("If-None-Match", "W/\"1\", W/\"2\""))
            .to_http_request();
        let none = IfNoneMatch::of(&req).unwrap();
        assert!(none.matches(2) && !none.matches(3));
        let req = TestRequest::default()
            .insert_header(("If-None-Match", "*"))
            .to_http_request();
        assert_eq!(IfNoneMatch::of(&req), Some(IfNoneMatch::Any));
    }

    #[test]
    fn media_types() {
        for ok in [
            "application/fhir+json; charset=utf-8",
            "application/json",
            "application/json+fhir",
        ] {
            let req = TestRequest::default()
                .insert_header(("Content-Type", ok))
                .to_http_request();
            assert!(require_json(&req).is_ok(), "{ok}");
        }
        assert!(require_json(&TestRequest::default().to_http_request()).is_ok());
        let bad = TestRequest::default()
            .insert_header(("Content-Type", "application/fhir+xml"))
            .to_http_request();
        assert!(require_json(&bad).is_err());
    }

    #[test]
    fn negotiation_serves_json_only() {
        let accept = |value: &str| {
            acceptable(
                &TestRequest::default()
                    .insert_header(("Accept", value))
                    .to_http_request(),
            )
        };
        assert!(accept("application/fhir+json").is_ok());
        assert!(accept("application/fhir+xml;q=0.9, application/fhir+json;q=0.8").is_ok());
        assert!(accept("*/*").is_ok());
        assert!(accept("application/fhir+xml").is_err());
        assert!(accept("application/fhir+json;q=0").is_err());
        let format = |query: &str| acceptable(&TestRequest::with_uri(query).to_http_request());
        assert!(format("/fhir/Patient?_format=json").is_ok());
        assert!(format("/fhir/Patient?_format=application%2Ffhir%2Bjson").is_ok());
        assert!(format("/fhir/Patient?_format=xml").is_err());
        assert!(acceptable(&TestRequest::default().to_http_request()).is_ok());
    }

    #[test]
    fn conditional_reads() {
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let req = |name: &str, value: &str| {
            TestRequest::default()
                .insert_header((name.to_string(), value.to_string()))
                .to_http_request()
        };
        let hit = not_modified(&req("If-None-Match", "W/\"2\""), 2, t);
        assert_eq!(hit.unwrap().status(), StatusCode::NOT_MODIFIED);
        assert!(not_modified(&req("If-None-Match", "W/\"1\""), 2, t).is_none());
        let since = http_date(t);
        assert!(not_modified(&req("If-Modified-Since", &since), 2, t).is_some());
        let earlier = http_date(t - chrono::Duration::seconds(5));
        assert!(not_modified(&req("If-Modified-Since", &earlier), 2, t).is_none());
        assert!(not_modified(&req("If-Modified-Since", "yesterday"), 2, t).is_none());
        assert!(not_modified(&req("If-None-Match", "bad"), 2, t).is_none());
    }

    #[test]
    fn http_dates_round_trip() {
        let t = DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(http_date(t), "Tue, 02 Jan 2024 03:04:05 GMT");
        assert_eq!(parse_http_date(&http_date(t)), Some(t));
        assert!(not_modified_since(t, t));
        assert!(!not_modified_since(t + chrono::Duration::seconds(1), t));
    }
}
