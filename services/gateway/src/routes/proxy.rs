//! The proxy: every path that is not the gateway's own goes through [`forward`]. It picks the
//! service ([`crate::routing`]), checks the token at the edge (no call to identity: keys are
//! cached, the deny list is in memory), then streams the request to the service and the answer
//! back, over the worker's pooled `awc` client.

use std::time::Instant;

use actix_web::{
    body::SizedStream,
    http::{
        header::{self, HeaderMap, HeaderName, HeaderValue},
        Method, StatusCode,
    },
    web, HttpMessage, HttpRequest, HttpResponse,
};
use awc::error::SendRequestError;
use custodian_auth::{AuthError, TokenVerifier};
use custodian_telemetry::http::RequestId;
use futures_util::StreamExt;

use crate::{
    configuration::Upstreams,
    error::GatewayError,
    forwarding::{self, Incoming, TrustedProxies},
    methods::MethodTable,
    metrics::GatewayMetrics,
    routing::{self, Unroutable, Upstream},
};

/// What every worker shares (the `awc::Client` is per worker: it is not `Send`).
pub struct ProxyState {
    pub upstreams: Upstreams,
    pub max_body_bytes: usize,
    pub verifier: TokenVerifier,
    pub metrics: GatewayMetrics,
    /// `TRUSTED_PROXIES`: peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// The methods each documented path declares: any other is a 405 here.
    pub methods: MethodTable,
}

/// Resource patterns of the forwarded prefixes. They only name the traffic in the HTTP
/// metrics and logs (route pattern, never the path): [`forward`] decides from the path itself,
/// and is the default service too, for everything else (`/fhir`, `/internal/*`, unknown paths).
const PROXIED: [&str; 6] = [
    "/auth/{tail:.*}",
    "/.well-known/{tail:.*}",
    "/fhir/{tail:.*}",
    "/consent/{tail:.*}",
    "/ledger/{tail:.*}",
    "/anomaly/{tail:.*}",
];

/// Mounts the forwarded prefixes; the app's default service must be [`forward`] as well.
pub fn configure(cfg: &mut web::ServiceConfig) {
    for pattern in PROXIED {
        cfg.service(web::resource(pattern).to(forward));
    }
}

/// Forwards a request to the service that serves its path.
pub async fn forward(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<ProxyState>,
    client: web::Data<awc::Client>,
) -> Result<HttpResponse, GatewayError> {
    // First: the gateway's own documented paths (`/healthz` ...) reach here for methods they
    // do not serve.
    if let Some(allow) = state.methods.refuses(req.path(), req.method()) {
        return Err(GatewayError::MethodNotAllowed {
            method: req.method().to_string(),
            allow,
        });
    }
    let route = routing::route(req.path()).map_err(|e| match e {
        Unroutable::NotFound => GatewayError::NotFound,
        Unroutable::DotSegment => {
            GatewayError::BadRequest("paths with `.` or `..` segments are not accepted".into())
        }
    })?;
    if !route.public {
        authenticate(&req, &state).await?;
    }
    let length = content_length(req.headers())?;
    if length.is_some_and(|len| len > state.max_body_bytes as u64) {
        return Err(GatewayError::PayloadTooLarge {
            limit: state.max_body_bytes,
        });
    }

    let upstream = route.upstream;
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path(), |pq| pq.as_str());
    let url = format!("{}{}", state.upstreams.get(upstream).base(), path_and_query);
    let mut request = client.request(req.method().clone(), url);
    forwarded_headers(&req, &state.trusted_proxies, request.headers_mut());

    let started = Instant::now();
    let sent = match length {
        Some(0) => send_bodiless(request, req.method()).await,
        Some(len) => request.send_body(SizedStream::new(len, payload)).await,
        None => {
            // No length: chunked or no body at all. Read it (bounded) so the limit holds.
            let body = read_limited(payload, state.max_body_bytes).await?;
            if body.is_empty() {
                send_bodiless(request, req.method()).await
            } else {
                request.send_body(body).await
            }
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    state
        .metrics
        .upstream_duration
        .with_label_values(&[upstream.name()])
        .observe(elapsed);

    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            let error = upstream_error(upstream, &e);
            let status = actix_web::ResponseError::status_code(&error);
            state
                .metrics
                .upstream_requests
                .with_label_values(&[upstream.name(), status.as_str()])
                .inc();
            return Err(error);
        }
    };
    let status = response.status();
    state
        .metrics
        .upstream_requests
        .with_label_values(&[upstream.name(), status.as_str()])
        .inc();
    Ok(relay_response(&req, response))
}

/// Sends a request without a body. A safe method is retried once when the connection failed
/// (not on timeouts): a pooled connection the service closed at that very moment must not
/// become a 502.
async fn send_bodiless(
    request: awc::ClientRequest,
    method: &Method,
) -> Result<awc::ClientResponse, SendRequestError> {
    let retry = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !retry {
        return request.send().await;
    }
    let frozen = request.freeze().map_err(SendRequestError::from)?;
    match frozen.send().await {
        Err(SendRequestError::Timeout) => Err(SendRequestError::Timeout),
        Err(first) => {
            tracing::debug!(error = %first, "upstream connection failed; retrying once");
            frozen.send().await
        }
        ok => ok,
    }
}

/// Verifies the bearer token (or finds it verified recently) and checks the deny list; counts
/// refusals by reason.
async fn authenticate(req: &HttpRequest, state: &ProxyState) -> Result<(), GatewayError> {
    let outcome = match bearer_token(req.headers()) {
        None => Err(AuthError::MissingToken),
        Some(token) => state.verifier.verify(token).await.map(|_| ()),
    };
    let metrics = &state.metrics;
    outcome.map_err(|e| {
        let reason = match &e {
            AuthError::MissingToken => "missing",
            AuthError::InvalidToken(_) => "invalid",
            AuthError::Revoked => "revoked",
            AuthError::Suspended => "suspended",
            AuthError::KeysUnavailable(_) => "keys_unavailable",
            AuthError::Forbidden(_) => "forbidden",
        };
        if let AuthError::KeysUnavailable(cause) = &e {
            tracing::warn!(cause = %cause, "token keys unavailable");
        }
        metrics.auth_rejections.with_label_values(&[reason]).inc();
        GatewayError::Auth(e)
    })
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The declared body length; a malformed one is refused rather than guessed.
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, GatewayError> {
    match headers.get(header::CONTENT_LENGTH) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| {
                GatewayError::BadRequest("the Content-Length header is malformed".into())
            }),
    }
}

/// Reads a body of unknown length, refusing it once it passes `limit`.
async fn read_limited(mut payload: web::Payload, limit: usize) -> Result<web::Bytes, GatewayError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            GatewayError::BadRequest(format!("the request body could not be read: {e}"))
        })?;
        if body.len() + chunk.len() > limit {
            return Err(GatewayError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection and are never forwarded.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade"
    ) || name.as_str().starts_with("proxy-")
}

/// Headers named in `Connection` are hop-by-hop too.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The caller's headers minus hop-by-hop ones, plus `X-Forwarded-*` (see [`forwarding`]) and
/// `X-Request-Id`. The caller's own forwarding headers are never passed on as they are.
fn forwarded_headers(req: &HttpRequest, trusted: &TrustedProxies, out: &mut HeaderMap) {
    let listed = connection_listed(req.headers());
    for (name, value) in req.headers().iter() {
        let skip = is_hop_by_hop(name)
            || listed.iter().any(|l| l == name.as_str())
            // Set by the client library from the URL and the body.
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            // The gateway answers `Expect: 100-continue` itself.
            || name == header::EXPECT
            || name == X_FORWARDED_FOR
            || name == X_FORWARDED_PROTO
            || name == X_FORWARDED_HOST
            || name == FORWARDED
            || name == X_REQUEST_ID;
        if !skip {
            out.append(name.clone(), value.clone());
        }
    }

    let headers = req.headers();
    let text = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let forwarded_for: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .filter_map(|v| v.to_str().ok())
        .collect();
    let host = text(&header::HOST).or_else(|| req.uri().authority().map(|a| a.as_str()));
    let decided = forwarding::forwarded(
        &Incoming {
            peer: req.peer_addr().map(|addr| addr.ip()),
            forwarded_for: &forwarded_for,
            forwarded_proto: text(&X_FORWARDED_PROTO),
            forwarded_host: text(&X_FORWARDED_HOST),
            host,
            secure: req.app_config().secure(),
        },
        trusted,
    );
    if let Some(value) = decided
        .forwarded_for
        .and_then(|chain| HeaderValue::from_str(&chain).ok())
    {
        out.insert(X_FORWARDED_FOR, value);
    }
    if let Ok(value) = HeaderValue::from_str(&decided.proto) {
        out.insert(X_FORWARDED_PROTO, value);
    }
    if let Some(value) = decided
        .host
        .and_then(|host| HeaderValue::from_str(&host).ok())
    {
        out.insert(X_FORWARDED_HOST, value);
    }
    if let Some(RequestId(id)) = req.extensions().get::<RequestId>() {
        if let Ok(value) = HeaderValue::from_str(id) {
            out.insert(X_REQUEST_ID, value);
        }
    }
}

/// Maps a failed upstream call to 502 (unreachable, broken) or 504 (no answer in time).
fn upstream_error(upstream: Upstream, error: &SendRequestError) -> GatewayError {
    match error {
        SendRequestError::Timeout => {
            tracing::warn!(upstream = upstream.name(), "upstream timed out");
            GatewayError::GatewayTimeout(upstream)
        }
        other => {
            tracing::warn!(upstream = upstream.name(), error = %other, "upstream request failed");
            GatewayError::BadGateway(upstream)
        }
    }
}

/// The upstream's status, headers (minus hop-by-hop) and body, streamed.
fn relay_response(req: &HttpRequest, response: awc::ClientResponse) -> HttpResponse {
    let status = response.status();
    let mut builder = HttpResponse::build(status);
    let listed = connection_listed(response.headers());
    for (name, value) in response.headers().iter() {
        if !is_hop_by_hop(name)
            && name != header::CONTENT_LENGTH
            && !listed.iter().any(|l| l == name.as_str())
        {
            builder.append_header((name.clone(), value.clone()));
        }
    }
    let bodiless = req.method() == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if bodiless {
        return builder.finish();
    }
    match content_length(response.headers()) {
        Ok(Some(len)) => builder.body(SizedStream::new(len, response)),
        _ => builder.streaming(response),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc.def"),
        );
        assert_eq!(bearer_token(&headers), Some("abc.def"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  abc"),
        );
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic dXNlcjpwdw=="),
        );
        assert_eq!(bearer_token(&headers), None);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer "));
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn hop_by_hop_headers() {
        for name in [
            "connection",
            "keep-alive",
            "proxy-authorization",
            "proxy-connection",
            "te",
            "trailer",
            "transfer-encoding",
            "upgrade",
        ] {
            assert!(is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
        for name in ["authorization", "content-type", "x-request-id", "accept"] {
            assert!(!is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
    }

    #[test]
    fn content_lengths() {
        let mut headers = HeaderMap::new();
        assert!(matches!(content_length(&headers), Ok(None)));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("42"));
        assert!(matches!(content_length(&headers), Ok(Some(42))));
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("-1"));
        assert!(content_length(&headers).is_err());
    }
}
