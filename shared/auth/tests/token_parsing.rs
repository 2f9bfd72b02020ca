//! No token a client sends makes verification panic: garbage, truncated JWTs, forged headers,
//! other algorithms, tampered claims. Each is an error (401), never a 500.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use base64::Engine as _;
use custodian_auth::{testing::TestIssuer, AuthError, DenyList, Role, TokenVerifier};
use proptest::prelude::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn runtime() -> actix_web::rt::Runtime {
    actix_web::rt::Runtime::new().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_tokens_are_errors(raw in "\\PC{0,300}") {
        let verifier = TokenVerifier::local("http://issuer", DenyList::new());
        let result = runtime().block_on(verifier.verify(&raw));
        prop_assert!(result.is_err());
    }

    #[test]
    fn jwt_shaped_garbage_is_an_error(header in "\\PC{0,60}", claims in "\\PC{0,120}", sig in "[A-Za-z0-9_-]{0,90}") {
        let verifier = TokenVerifier::local("http://issuer", DenyList::new());
        let token = format!("{}.{}.{}", b64(&header), b64(&claims), sig);
        let result = runtime().block_on(verifier.verify(&token));
        prop_assert!(result.is_err());
    }
}

#[actix_web::test]
async fn forged_and_tampered_tokens_are_refused() {
    let issuer = TestIssuer::start().await;
    let verifier = TokenVerifier::remote(&issuer.jwks_url, &issuer.issuer, DenyList::new());
    let (_, good) = issuer.practitioner("Organization/h1");
    assert!(verifier.verify(&good).await.is_ok());
    let parts: Vec<&str> = good.split('.').collect();
    // alg none, HS256 with the public key's kid, a claim changed under the same signature.
    for header in [
        r#"{"alg":"none","typ":"JWT"}"#.to_string(),
        r#"{"alg":"HS256","kid":"x"}"#.to_string(),
    ] {
        let forged = format!("{}.{}.", b64(&header), parts[1]);
        assert!(matches!(
            verifier.verify(&forged).await,
            Err(AuthError::InvalidToken(_))
        ));
    }
    let mut claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["role"] = serde_json::json!(Role::Admin.as_str());
    let tampered = format!("{}.{}.{}", parts[0], b64(&claims.to_string()), parts[2]);
    assert!(verifier.verify(&tampered).await.is_err());
    // An unknown kid is looked up, not trusted.
    let header = format!(
        r#"{{"alg":"ES256","kid":"unknown-{}"}}"#,
        uuid::Uuid::new_v4()
    );
    let unknown = format!("{}.{}.{}", b64(&header), parts[1], parts[2]);
    assert!(verifier.verify(&unknown).await.is_err());
}
