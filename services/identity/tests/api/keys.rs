use awc::http::StatusCode;
use custodian_auth::{DenyList, TokenVerifier};
use serde_json::json;

use crate::helpers::{jwt_header, spawn_app};

fn kids(jwks: &serde_json::Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn rotation_keeps_old_tokens_verifiable_and_signs_with_the_new_key() {
    let app = spawn_app().await;
    let before = app.admin_token().await;
    let old_kid = jwt_header(&before)["kid"].as_str().unwrap().to_string();
    let jwks = app.get("/.well-known/jwks.json", None).await.body;
    assert_eq!(kids(&jwks), vec![old_kid.clone()]);
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");
    assert_eq!(key["alg"], "ES256");
    assert!(key.get("d").is_none(), "the private key is never published");

    let rotated = app
        .post_json("/auth/admin/keys/rotate", Some(&before), &json!({}))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    let new_kid = rotated.body["kid"].as_str().unwrap().to_string();
    assert_ne!(new_kid, old_kid);
    assert_eq!(rotated.body["retired"], json!([old_kid.clone()]));

    let after = app.admin_token().await;
    assert_eq!(jwt_header(&after)["kid"], new_kid.as_str());
    let jwks = app.get("/.well-known/jwks.json", None).await.body;
    let published = kids(&jwks);
    assert!(
        published.contains(&old_kid) && published.contains(&new_kid),
        "{published:?}"
    );

    // A verifier that never saw the old key accepts both tokens.
    let verifier = TokenVerifier::remote(
        app.url("/.well-known/jwks.json"),
        app.issuer.clone(),
        DenyList::new(),
    );
    verifier
        .verify(&before)
        .await
        .expect("a token from before the rotation verifies");
    verifier
        .verify(&after)
        .await
        .expect("a token from after the rotation verifies");
    // Identity itself still accepts the old token on its admin API.
    assert_eq!(
        app.get("/auth/admin/organizations", Some(&before))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/auth/admin/organizations", Some(&after))
            .await
            .status,
        StatusCode::OK
    );
    app.cleanup().await;
}
