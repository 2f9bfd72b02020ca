use awc::http::StatusCode;
use custodian_auth::{DenyList, Role, TokenVerifier, AUDIENCE};
use serde_json::json;

use crate::helpers::{
    default_scope, jwt_claims, jwt_header, spawn_app, ADMIN_PASSWORD, ADMIN_USERNAME,
};

#[actix_web::test]
async fn password_grant_issues_a_token_the_jwks_verifies() {
    let app = spawn_app().await;
    let answer = app.login(ADMIN_USERNAME, ADMIN_PASSWORD).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], 900);
    assert_eq!(answer.body["scope"], default_scope(Role::Admin));
    assert!(answer.body.get("patient").is_none());
    let token = answer.body["access_token"].as_str().unwrap();
    assert_eq!(jwt_header(token)["alg"], "ES256");

    let verifier = TokenVerifier::remote(
        app.url("/.well-known/jwks.json"),
        app.issuer.clone(),
        DenyList::new(),
    );
    let claims = verifier
        .verify(token)
        .await
        .expect("the token verifies against identity's JWKS");
    assert_eq!(claims.role, Role::Admin);
    assert_eq!(claims.aud, AUDIENCE);
    assert_eq!(claims.iss, "http://identity.test");
    assert!((claims.exp - claims.iat - 900).abs() <= 1);
    assert!(!claims.jti.is_empty());

    // A verifier expecting another issuer refuses it.
    let other = TokenVerifier::remote(
        app.url("/.well-known/jwks.json"),
        "http://elsewhere",
        DenyList::new(),
    );
    assert!(other.verify(token).await.is_err());

    // A tampered token does not verify.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let mut forged = jwt_claims(token);
    forged["role"] = json!("admin");
    forged["sub"] = json!("someone-else");
    use base64::Engine as _;
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged.to_string());
    assert!(verifier.verify(&parts.join(".")).await.is_err());
    app.cleanup().await;
}

#[actix_web::test]
async fn wrong_passwords_and_unknown_users_are_refused_and_recorded() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let admin_id = jwt_claims(&admin)["sub"].as_str().unwrap().to_string();

    let wrong = app.login(ADMIN_USERNAME, "not-the-password").await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.body["error"], "invalid_grant");
    assert!(wrong.body["error_description"]
        .as_str()
        .unwrap()
        .contains("invalid username or password"));
    assert!(wrong.body.get("access_token").is_none());

    let unknown = app.login("nobody-here", "whatever-password").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["error"], "invalid_grant");
    // The same answer: it does not say which of the two was wrong.
    assert_eq!(unknown.body, wrong.body);

    let access = app.streams.access();
    let denied = app
        .wait_for_event(&access, |e| {
            e["outcome"] == "deny" && e["actor"]["id"] == admin_id.as_str()
        })
        .await;
    assert_eq!(denied["action"], "login");
    assert_eq!(denied["actor"]["role"], "admin");
    assert_eq!(denied["purpose"], "HSYSADMIN");
    assert_eq!(denied["count"], 0);
    assert_eq!(denied["break_glass"], false);
    assert!(denied["patient"].is_null());
    assert!(denied["resource_type"].is_null());
    assert_eq!(denied["source"]["ip"], "127.0.0.1");
    let unknown_event = app
        .wait_for_event(&access, |e| e["actor"]["id"] == "unknown")
        .await;
    assert_eq!(unknown_event["outcome"], "deny");
    // Every event is a valid access event.
    for event in app.events(&access).await {
        custodian_events::AccessEvent::parse(&event.to_string())
            .expect("a well-formed access event");
    }
    let permitted = app
        .wait_for_event(&access, |e| e["outcome"] == "permit")
        .await;
    assert_eq!(permitted["actor"]["id"], admin_id.as_str());

    let metrics = app.get("/metrics", None).await;
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("custodian_token_failures_total")
                && l.contains("reason=\"invalid_credentials\"")
                && l.ends_with(" 2")),
        "{text}"
    );
    assert!(text
        .lines()
        .any(|l| l.starts_with("custodian_tokens_issued_total")
            && l.contains("grant_type=\"password\"")
            && l.ends_with(" 1")));
    app.cleanup().await;
}

#[actix_web::test]
async fn forwarded_for_and_user_agent_are_recorded() {
    let app = spawn_app().await;
    let answer = app
        .client
        .post(app.url("/auth/token"))
        // The gateway (a trusted proxy on loopback) appended the client's address.
        .insert_header(("X-Forwarded-For", "203.0.113.7"))
        .insert_header(("User-Agent", "identity-tests/1"))
        .send_form(&[
            ("grant_type", "password"),
            ("username", ADMIN_USERNAME),
            ("password", "nope-nope-nope"),
        ])
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let event = app
        .wait_for_event(&app.streams.access(), |e| {
            e["source"]["ip"] == "203.0.113.7"
        })
        .await;
    assert_eq!(event["source"]["user_agent"], "identity-tests/1");
    app.cleanup().await;
}

#[actix_web::test]
async fn malformed_token_requests_get_rfc_6749_errors() {
    let app = spawn_app().await;
    let missing = app
        .token_request(&[("grant_type", "password"), ("username", ADMIN_USERNAME)])
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.body["error"], "invalid_request");

    let unsupported = app
        .token_request(&[("grant_type", "authorization_code"), ("code", "x")])
        .await;
    assert_eq!(unsupported.status, StatusCode::BAD_REQUEST);
    assert_eq!(unsupported.body["error"], "unsupported_grant_type");

    let no_grant = app.token_request(&[("username", "a")]).await;
    assert_eq!(no_grant.body["error"], "invalid_request");

    let json_body = app
        .post_raw(
            "/auth/token",
            None,
            "application/json",
            r#"{"grant_type":"password"}"#,
        )
        .await;
    assert_eq!(json_body.status, StatusCode::BAD_REQUEST);
    assert_eq!(json_body.body["error"], "invalid_request");

    let scope = app
        .token_request(&[
            ("grant_type", "password"),
            ("username", ADMIN_USERNAME),
            ("password", ADMIN_PASSWORD),
            ("scope", "patient/*.read"),
        ])
        .await;
    assert_eq!(scope.status, StatusCode::BAD_REQUEST);
    assert_eq!(scope.body["error"], "invalid_scope");
    app.cleanup().await;
}

#[actix_web::test]
async fn client_credentials_grant_with_post_and_basic() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let org = app.create_organization(&admin, "Lab Systems").await;
    let registered = app
        .post_json(
            "/auth/admin/clients",
            Some(&admin),
            &json!({ "name": "lab importer", "role": "service", "organization": org["reference"] }),
        )
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.body
    );
    let client_id = registered.body["client_id"].as_str().unwrap().to_string();
    let secret = registered.body["client_secret"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(secret.len() >= 40);

    let posted = app
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(posted.status, StatusCode::OK, "{}", posted.body);
    let claims = jwt_claims(posted.body["access_token"].as_str().unwrap());
    assert_eq!(claims["role"], "service");
    assert_eq!(claims["sub"], client_id.as_str());
    assert_eq!(claims["client_id"], client_id.as_str());
    assert_eq!(claims["organization"], org["reference"]);
    assert_eq!(posted.body["scope"], default_scope(Role::Service));

    let basic = app
        .token_request_basic(&client_id, &secret, &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(basic.status, StatusCode::OK, "{}", basic.body);
    let verifier = TokenVerifier::remote(
        app.url("/.well-known/jwks.json"),
        app.issuer.clone(),
        DenyList::new(),
    );
    assert_eq!(
        verifier
            .verify(basic.body["access_token"].as_str().unwrap())
            .await
            .unwrap()
            .role,
        Role::Service
    );

    let wrong = app
        .token_request_basic(
            &client_id,
            "wrong-secret",
            &[("grant_type", "client_credentials")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body["error"], "invalid_client");
    assert!(wrong
        .headers
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("Basic"));

    let unknown = app
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", "client-nope"),
            ("client_secret", &secret),
        ])
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.body["error"], "invalid_client");

    let both = app
        .token_request_basic(
            &client_id,
            &secret,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client_id),
            ],
        )
        .await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert_eq!(both.body["error"], "invalid_request");

    let bad_role = app
        .post_json(
            "/auth/admin/clients",
            Some(&admin),
            &json!({ "name": "x", "role": "admin" }),
        )
        .await;
    assert_eq!(bad_role.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.cleanup().await;
}
