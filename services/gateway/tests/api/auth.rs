//! Tokens are checked at the edge, before anything is forwarded.

use std::time::{Duration, Instant};

use custodian_auth::{testing::TestIssuer, Role};
use custodian_events::IdentityEvent;

use crate::helpers::{spawn_app, spawn_app_with, Options};

#[actix_web::test]
async fn requests_without_a_token_are_refused_with_401() {
    let app = spawn_app().await;
    for path in [
        "/fhir/Patient",
        "/fhir/Consent",
        "/auth/admin/organizations",
        "/ledger/entries",
        "/anomaly/alerts",
        "/consent/x",
    ] {
        let answer = app.get(path, None).await;
        let outcome = answer.assert_outcome(401);
        assert_eq!(outcome["issue"][0]["code"], "login");
        assert!(
            answer
                .header("www-authenticate")
                .unwrap()
                .starts_with("Bearer"),
            "{path}"
        );
    }
    assert_eq!(
        app.hits("records") + app.hits("consent") + app.hits("ledger") + app.hits("anomaly"),
        0
    );
}

#[actix_web::test]
async fn bad_tokens_are_refused_with_401() {
    let app = spawn_app().await;
    let other = TestIssuer::start().await;
    let (_, foreign) = other.practitioner("Organization/1");
    let mut expired = app.issuer.claims(Role::Practitioner);
    expired.exp = chrono::Utc::now().timestamp() - 3600;
    let expired = app.issuer.token(&expired);
    let mut wrong_audience = app.issuer.claims(Role::Practitioner);
    wrong_audience.aud = "someone-else".into();
    let wrong_audience = app.issuer.token(&wrong_audience);
    let valid = app.token();
    let tampered = format!("{}x", &valid[..valid.len() - 1]);
    for token in [
        "garbage",
        "a.b.c",
        foreign.as_str(),
        expired.as_str(),
        wrong_audience.as_str(),
        tampered.as_str(),
    ] {
        let answer = app.get("/fhir/Patient", Some(token)).await;
        answer.assert_outcome(401);
        assert!(answer.header("www-authenticate").is_some());
    }
    // Not a bearer scheme.
    let basic = app
        .send(
            app.client
                .get(app.url("/fhir/Patient"))
                .insert_header(("Authorization", "Basic dTpw")),
        )
        .await;
    basic.assert_outcome(401);
    assert_eq!(app.hits("records"), 0);

    let metrics = String::from_utf8(app.get("/metrics", None).await.body).unwrap();
    let rejections = |reason: &str| -> u64 {
        metrics
            .lines()
            .find(|l| {
                l.contains("gateway_auth_rejections_total")
                    && l.contains(&format!(r#"reason="{reason}""#))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(rejections("invalid"), 6, "{metrics}");
    assert_eq!(rejections("missing"), 1, "{metrics}");
}

#[actix_web::test]
async fn a_valid_token_is_forwarded_with_request_id_and_forwarded_for() {
    let app = spawn_app().await;
    let token = app.token();
    let answer = app.get("/fhir/Patient", Some(&token)).await;
    assert_eq!(answer.status, 201);
    let echo = answer.json();
    let headers = &echo["headers"];
    assert_eq!(headers["authorization"][0], format!("Bearer {token}"));
    let request_id = headers["x-request-id"][0].as_str().unwrap();
    assert!(!request_id.is_empty());
    // The id the service saw is the one the caller gets back.
    assert_eq!(answer.header("x-request-id").as_deref(), Some(request_id));
    assert_eq!(headers["x-forwarded-for"][0], "127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"][0], "http");
    assert_eq!(
        headers["x-forwarded-host"][0],
        app.address.trim_start_matches("http://")
    );

    // A caller's request id is kept; its forwarding headers are not (see `forwarding.rs`).
    let request = app
        .client
        .get(app.url("/fhir/Patient"))
        .bearer_auth(&token)
        .insert_header(("X-Request-Id", "caller-id-42"))
        .insert_header(("X-Forwarded-For", "203.0.113.9"));
    let echo = app.send(request).await.json();
    assert_eq!(echo["headers"]["x-request-id"][0], "caller-id-42");
    assert_eq!(echo["headers"]["x-request-id"].as_array().unwrap().len(), 1);
    assert_eq!(echo["headers"]["x-forwarded-for"][0], "127.0.0.1");
}

#[actix_web::test]
async fn public_paths_need_no_token() {
    let app = spawn_app().await;
    for (path, upstream) in [
        ("/.well-known/jwks.json", "identity"),
        ("/.well-known/openid-configuration", "identity"),
        ("/fhir/.well-known/smart-configuration", "identity"),
        ("/fhir/metadata", "records"),
        ("/ledger/checkpoint", "ledger"),
        ("/ledger/key", "ledger"),
    ] {
        let answer = app.get(path, None).await;
        assert_eq!(answer.status, 201, "{path}");
        assert_eq!(answer.upstream(), upstream, "{path}");
    }
    for path in ["/auth/token", "/auth/revoke"] {
        let request = app
            .client
            .post(app.url(path))
            .content_type("application/x-www-form-urlencoded");
        let answer = app
            .send_body(request, "grant_type=password&username=a&password=b")
            .await;
        assert_eq!(answer.status, 201, "{path}");
        let echo = answer.json();
        assert_eq!(echo["upstream"], "identity");
        assert_eq!(echo["body"], "grant_type=password&username=a&password=b");
    }
    for path in ["/healthz", "/openapi.json", "/metrics"] {
        assert_eq!(app.get(path, None).await.status, 200, "{path}");
    }
    // Neighbours of public paths are not public.
    for path in ["/fhir/metadata/x", "/ledger/checkpoints", "/auth/tokens"] {
        app.get(path, None).await.assert_outcome(401);
    }
}

/// Polls until the answer has `status`, for at most `within`.
async fn wait_for_status(
    app: &crate::helpers::TestApp,
    token: &str,
    status: u16,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        let answer = app.get("/fhir/Patient", Some(token)).await;
        if answer.status == status {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "still {} after {within:?}",
            answer.status
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_suspension_on_the_identity_stream_is_enforced_within_a_second() {
    let app = spawn_app().await;
    let (claims, token) = app.issuer.practitioner("Organization/1");
    let (_, bystander) = app.issuer.practitioner("Organization/1");
    assert_eq!(app.get("/fhir/Patient", Some(&token)).await.status, 201);

    app.publish(&IdentityEvent::UserSuspended {
        user_id: claims.sub.clone(),
        reason: "burst".into(),
        time: chrono::Utc::now(),
    })
    .await;
    wait_for_status(&app, &token, 403, Duration::from_secs(1)).await;
    let answer = app.get("/fhir/Patient", Some(&token)).await;
    assert_eq!(answer.assert_outcome(403)["issue"][0]["code"], "forbidden");
    assert_eq!(app.get("/fhir/Patient", Some(&bystander)).await.status, 201);

    app.publish(&IdentityEvent::UserReinstated {
        user_id: claims.sub,
        time: chrono::Utc::now(),
    })
    .await;
    wait_for_status(&app, &token, 201, Duration::from_secs(1)).await;
}

#[actix_web::test]
async fn a_revoked_token_is_refused_within_a_second() {
    let app = spawn_app().await;
    let (claims, token) = app.issuer.practitioner("Organization/1");
    let (_, same_user_other_token) = {
        let mut c = claims.clone();
        c.jti = uuid::Uuid::new_v4().to_string();
        (c.clone(), app.issuer.token(&c))
    };
    assert_eq!(app.get("/fhir/Patient", Some(&token)).await.status, 201);
    app.publish(&IdentityEvent::TokenRevoked {
        jti: claims.jti.clone(),
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
    })
    .await;
    wait_for_status(&app, &token, 401, Duration::from_secs(1)).await;
    assert_eq!(
        app.get("/fhir/Patient", Some(&same_user_other_token))
            .await
            .status,
        201
    );
}

#[actix_web::test]
async fn users_suspended_before_start_are_refused() {
    let issuer_user = uuid::Uuid::new_v4().to_string();
    let app = spawn_app_with(Options {
        suspended: vec![issuer_user.clone()],
        ..Options::default()
    })
    .await;
    let mut claims = app.issuer.claims(Role::Patient);
    claims.sub = issuer_user;
    let token = app.issuer.token(&claims);
    app.get("/fhir/Patient", Some(&token))
        .await
        .assert_outcome(403);
    assert_eq!(
        app.get("/fhir/Patient", Some(&app.token())).await.status,
        201
    );
}

#[actix_web::test]
async fn while_identity_is_down_tokens_are_refused_rather_than_guessed() {
    use gateway::routing::Upstream;
    let app = spawn_app_with(Options {
        down: Some(Upstream::Identity),
        ..Options::default()
    })
    .await;
    // The gateway starts, but without identity's list of suspended users it cannot tell
    // whether a token's user is suspended: 503, never a guess either way.
    let (_, token) = app.issuer.practitioner("Organization/1");
    let refused = app.get("/fhir/Patient", Some(&token)).await;
    refused.assert_outcome(503);
    assert_eq!(
        app.get("/readyz", None).await.status,
        503,
        "not ready until the deny list is loaded"
    );
}
