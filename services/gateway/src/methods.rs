//! Which methods each documented path accepts, read from the merged OpenAPI document the gateway
//! serves. A request whose path matches a documented path but whose method is not declared
//! there is answered `405 Method Not Allowed` with an `Allow` header by the gateway itself
//! (RFC 9110 15.5.6), the same answer whichever service is behind, and before a token is
//! checked: the document is public, so the answer reveals nothing. Paths the document does not
//! describe are forwarded as before.

use actix_web::http::Method;
use serde_json::Value;

/// The HTTP methods an OpenAPI path item can declare, in the order `Allow` lists them.
const METHODS: [&str; 8] = [
    "get", "head", "post", "put", "patch", "delete", "options", "trace",
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `{name}`: any one non-empty segment.
    Parameter,
}

#[derive(Debug, Clone)]
struct Template {
    segments: Vec<Segment>,
    methods: Vec<Method>,
}

/// The documented paths and their methods.
#[derive(Debug, Clone, Default)]
pub struct MethodTable {
    templates: Vec<Template>,
}

#[derive(Debug, thiserror::Error)]
pub enum MethodTableError {
    #[error("the OpenAPI document is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the OpenAPI document has no `paths` object")]
    NoPaths,
}

/// `%24everything` and `$everything` are the same segment to the services behind.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The segments of a request path; a trailing `/` adds none.
fn split(path: &str) -> Vec<&str> {
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

impl Template {
    fn parse(path: &str, methods: Vec<Method>) -> Self {
        let segments = split(path)
            .into_iter()
            .map(|s| {
                if s.starts_with('{') && s.ends_with('}') {
                    Segment::Parameter
                } else {
                    Segment::Literal(s.to_string())
                }
            })
            .collect();
        Self { segments, methods }
    }

    fn matches(&self, segments: &[String]) -> bool {
        self.segments.len() == segments.len()
            && self
                .segments
                .iter()
                .zip(segments)
                .all(|(template, actual)| match template {
                    Segment::Literal(l) => l == actual,
                    Segment::Parameter => !actual.is_empty(),
                })
    }

    /// Literal segments win over parameters, from the left: `/fhir/Patient/$everything` over
    /// `/fhir/{type}/{id}` (OpenAPI: concrete paths are matched before templated ones).
    fn specificity(&self) -> Vec<bool> {
        self.segments
            .iter()
            .map(|s| matches!(s, Segment::Literal(_)))
            .collect()
    }
}

impl MethodTable {
    /// Every path of an OpenAPI document (JSON) with the methods it declares.
    pub fn from_document(document: &str) -> Result<Self, MethodTableError> {
        let value: Value = serde_json::from_str(document)?;
        let paths = value
            .get("paths")
            .and_then(Value::as_object)
            .ok_or(MethodTableError::NoPaths)?;
        let templates = paths
            .iter()
            .map(|(path, item)| {
                let methods = METHODS
                    .iter()
                    .filter(|m| item.get(**m).is_some())
                    .filter_map(|m| Method::from_bytes(m.to_ascii_uppercase().as_bytes()).ok())
                    .collect();
                Template::parse(path, methods)
            })
            .collect();
        Ok(Self { templates })
    }

    /// The methods declared for `path` (as received, percent-encoded), from its most specific
    /// documented template; `None` when no documented path matches.
    pub fn allowed(&self, path: &str) -> Option<&[Method]> {
        let segments: Vec<String> = split(path).into_iter().map(percent_decode).collect();
        self.templates
            .iter()
            .filter(|t| t.matches(&segments))
            .max_by_key(|t| t.specificity())
            .map(|t| t.methods.as_slice())
    }

    /// `Some(allow header value)` when `path` is documented and `method` is not declared there.
    pub fn refuses(&self, path: &str, method: &Method) -> Option<String> {
        let allowed = self.allowed(path)?;
        if allowed.contains(method) {
            return None;
        }
        Some(
            allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", "),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> MethodTable {
        MethodTable::from_document(
            r#"{"paths": {
                "/healthz": {"get": {}},
                "/fhir/{type}": {"get": {}, "post": {}, "parameters": []},
                "/fhir/{type}/{id}": {"get": {}, "put": {}, "delete": {}},
                "/fhir/Patient/$everything": {"get": {}},
                "/fhir/Patient/{id}/$everything": {"get": {}, "post": {}},
                "/fhir/Consent": {"get": {}, "post": {}, "put": {}}
            }}"#,
        )
        .unwrap()
    }

    #[test]
    fn undeclared_methods_are_refused_with_the_declared_ones() {
        let t = table();
        assert_eq!(
            t.refuses("/healthz", &Method::TRACE).as_deref(),
            Some("GET")
        );
        assert_eq!(t.refuses("/healthz", &Method::GET), None);
        assert_eq!(
            t.refuses("/fhir/Observation/1", &Method::POST).as_deref(),
            Some("GET, PUT, DELETE")
        );
        assert_eq!(t.refuses("/fhir/Observation/1", &Method::PUT), None);
        // `parameters` is not a method.
        assert_eq!(
            t.refuses("/fhir/Observation", &Method::PATCH).as_deref(),
            Some("GET, POST")
        );
    }

    #[test]
    fn literal_paths_win_over_templates() {
        let t = table();
        assert_eq!(
            t.refuses("/fhir/Patient/$everything", &Method::POST)
                .as_deref(),
            Some("GET")
        );
        assert_eq!(t.refuses("/fhir/Patient/%24everything", &Method::GET), None);
        assert_eq!(
            t.refuses("/fhir/Patient/7/$everything", &Method::POST),
            None
        );
        assert_eq!(t.refuses("/fhir/Consent", &Method::PUT), None);
        assert_eq!(
            t.refuses("/fhir/Consent", &Method::DELETE).as_deref(),
            Some("GET, POST, PUT")
        );
    }

    #[test]
    fn undocumented_paths_are_not_judged() {
        let t = table();
        for path in ["/", "/unknown", "/fhir/a/b/c/d/e", "/healthz/x", "/fhir//x"] {
            assert_eq!(t.refuses(path, &Method::TRACE), None, "{path}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("%24meta"), "$meta");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%"), "%");
    }

    #[test]
    fn the_committed_document_is_readable() {
        let t = MethodTable::from_document(crate::routes::docs::MERGED_OPENAPI).unwrap();
        assert!(t.allowed("/fhir/metadata").is_some());
    }
}
