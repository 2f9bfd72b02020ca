//! `Authenticated` pulls verified claims out of the `Authorization: Bearer` header.

use actix_web::{dev::Payload, web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;

use crate::{AuthError, Claims, TokenVerifier};

#[derive(Debug, Clone)]
pub struct Authenticated(pub Claims);

/// The bearer token of a request, if it has one.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
        Some(token.trim().to_string())
    } else {
        None
    }
}

impl FromRequest for Authenticated {
    type Error = AuthError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let verifier = req.app_data::<web::Data<TokenVerifier>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let token = token.ok_or(AuthError::MissingToken)?;
            let verifier = verifier
                .ok_or_else(|| AuthError::KeysUnavailable("no verifier configured".into()))?;
            verifier.verify(&token).await.map(Authenticated)
        })
    }
}
