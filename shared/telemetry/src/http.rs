//! The middleware every service wraps its app in: a request id (taken from `X-Request-Id` when
//! the caller sent a well-formed one, otherwise new), a tracing span carrying it, one access log
//! line per request, and the HTTP metrics.

use std::time::Instant;

use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{
        header::{HeaderName, HeaderValue},
        Method,
    },
    middleware::Next,
    Error, HttpMessage,
};
use tracing::Instrument;

use crate::metrics::{status_class, Metrics};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The request id of the request being served; handlers read it with `req.extensions()`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// The method as a metric label and log field: the standard methods by name, anything else a
/// client invents (`FOO`, 10 KB of letters) as `other`, so no client can grow `/metrics`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Use with `actix_web::middleware::from_fn(custodian_telemetry::http::observe)`.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = method_label(req.method());
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let metrics = req.app_data::<actix_web::web::Data<Metrics>>().cloned();
    // The span records the route pattern, never the path: paths carry resource ids.
    let span = tracing::info_span!("http_request", request_id = %request_id, method = %method, route = %route);
    let result = next.call(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = match &result {
        Ok(res) => res.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    if let Some(metrics) = metrics {
        metrics
            .http_requests
            .with_label_values(&[method, &route, &status.to_string()])
            .inc();
        metrics
            .http_duration
            .with_label_values(&[method, &route, status_class(status)])
            .observe(elapsed.as_secs_f64());
    }
    span.in_scope(|| {
        tracing::info!(
            status,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            "request served"
        );
    });
    result.map(|mut res| {
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            res.headers_mut()
                .insert(HeaderName::from_static(REQUEST_ID_HEADER), value);
        }
        res
    })
}

#[cfg(test)]
mod tests {
    use super::{method_label, well_formed, Method};

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        for raw in ["FOO", "get", "PROPFIND", &"X".repeat(1000)] {
            let method = Method::from_bytes(raw.as_bytes()).unwrap();
            assert_eq!(method_label(&method), "other", "{raw}");
        }
    }

    #[test]
    fn request_ids_are_checked() {
        assert!(well_formed("3f2c-abc_1.2"));
        assert!(!well_formed(""));
        assert!(!well_formed("a b"));
        assert!(!well_formed(&"x".repeat(200)));
    }
}
