//! Forwarding: headers, bodies and their limit, upstream failures.

use std::time::Duration;

use futures_util::stream;
use gateway::routing::Upstream;

use crate::helpers::{spawn_app, spawn_app_with, Options};

#[actix_web::test]
async fn hop_by_hop_headers_are_dropped_both_ways() {
    let app = spawn_app().await;
    let request = app
        .client
        .get(app.url("/fhir/Patient"))
        .bearer_auth(app.token())
        .insert_header(("Proxy-Authorization", "Basic eDp5"))
        .insert_header(("TE", "trailers"))
        .insert_header(("Keep-Alive", "timeout=5"))
        .insert_header(("X-Custom", "kept"))
        .insert_header(("Accept", "application/fhir+json"));
    let answer = app.send(request).await;
    assert_eq!(answer.status, 201);
    let echo = answer.json();
    let headers = echo["headers"].as_object().unwrap();
    for dropped in ["proxy-authorization", "te", "keep-alive"] {
        assert!(
            !headers.contains_key(dropped),
            "{dropped} was forwarded: {headers:?}"
        );
    }
    assert_eq!(headers["x-custom"][0], "kept");
    assert_eq!(headers["accept"][0], "application/fhir+json");
    // The upstream's own headers come back, its hop-by-hop ones do not.
    assert_eq!(answer.header("x-upstream").as_deref(), Some("records"));
    assert_eq!(answer.header("keep-alive"), None);
    assert_eq!(answer.header("proxy-authenticate"), None);
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/json")
    );
}

#[actix_web::test]
async fn bodiless_answers_keep_their_status() {
    let app = spawn_app().await;
    let answer = app.get("/ledger/empty", Some(&app.token())).await;
    assert_eq!(answer.status, 204);
    assert!(answer.body.is_empty());
    assert_eq!(answer.header("x-upstream").as_deref(), Some("ledger"));
}

#[actix_web::test]
async fn an_unreachable_upstream_is_a_502_operation_outcome() {
    let app = spawn_app_with(Options {
        down: Some(Upstream::Records),
        ..Options::default()
    })
    .await;
    let token = app.token();
    let outcome = app
        .get("/fhir/Patient", Some(&token))
        .await
        .assert_outcome(502);
    assert_eq!(outcome["issue"][0]["code"], "transient");
    assert!(outcome["issue"][0]["diagnostics"]
        .as_str()
        .unwrap()
        .contains("records"));
    // With a body too.
    let request = app
        .client
        .post(app.url("/fhir/Patient"))
        .bearer_auth(&token)
        .content_type("application/fhir+json");
    app.send_body(request, r#"{"resourceType":"Patient"}"#)
        .await
        .assert_outcome(502);
    // Other services are unaffected.
    assert_eq!(app.get("/ledger/entries", Some(&token)).await.status, 201);

    let metrics = String::from_utf8(app.get("/metrics", None).await.body).unwrap();
    assert!(
        metrics.contains("gateway_upstream_requests_total"),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("gateway_upstream_requests_total")
                && l.contains(r#"upstream="records""#)
                && l.contains(r#"status="502""#)),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.contains("gateway_upstream_requests_total")
                && l.contains(r#"upstream="ledger""#)
                && l.contains(r#"status="201""#)),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_upstream_duration_seconds"),
        "{metrics}"
    );

    // Readiness reports the missing service.
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 503);
    assert!(ready.json()["checks"]["records"]
        .as_str()
        .unwrap()
        .starts_with("failing"));
}

#[actix_web::test]
async fn a_slow_upstream_is_a_504_operation_outcome() {
    let app = spawn_app_with(Options {
        upstream_timeout: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let started = std::time::Instant::now();
    let outcome = app
        .get("/ledger/slow", Some(&app.token()))
        .await
        .assert_outcome(504);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(outcome["issue"][0]["code"], "timeout");
}

#[actix_web::test]
async fn oversized_bodies_are_refused_with_413() {
    let app = spawn_app_with(Options {
        max_body_bytes: 1024,
        ..Options::default()
    })
    .await;
    let token = app.token();
    let request = app
        .client
        .post(app.url("/fhir/Patient"))
        .bearer_auth(&token);
    app.send_body(request, vec![b'x'; 1025])
        .await
        .assert_outcome(413);

    // Without a declared length (chunked) the limit holds as well.
    let chunks: Vec<Result<actix_web::web::Bytes, std::io::Error>> = (0..4)
        .map(|_| Ok(actix_web::web::Bytes::from(vec![b'y'; 400])))
        .collect();
    let request = app
        .client
        .post(app.url("/fhir/Patient"))
        .bearer_auth(&token);
    let response = request
        .send_stream(stream::iter(chunks))
        .await
        .expect("gateway answers");
    assert_eq!(response.status().as_u16(), 413);
    assert_eq!(app.hits("records"), 0);

    // At the limit, and chunked under it, bodies arrive intact.
    let request = app
        .client
        .post(app.url("/fhir/Patient"))
        .bearer_auth(&token);
    let echo = app.send_body(request, vec![b'z'; 1024]).await.json();
    assert_eq!(echo["body"].as_str().unwrap().len(), 1024);
    let chunks: Vec<Result<actix_web::web::Bytes, std::io::Error>> = (0..3)
        .map(|i| Ok(actix_web::web::Bytes::from(format!("part{i};"))))
        .collect();
    let mut response = app
        .client
        .post(app.url("/fhir/Patient"))
        .bearer_auth(&token)
        .send_stream(stream::iter(chunks))
        .await
        .unwrap();
    let echo: serde_json::Value = response.json().await.unwrap();
    assert_eq!(echo["body"], "part0;part1;part2;");
}

#[actix_web::test]
async fn large_bodies_stream_through() {
    let app = spawn_app_with(Options {
        max_body_bytes: 8 << 20,
        ..Options::default()
    })
    .await;
    let body: Vec<u8> = (0..(4 << 20)).map(|i| b'a' + (i % 26) as u8).collect();
    let request = app
        .client
        .put(app.url("/fhir/Binary/1"))
        .bearer_auth(app.token());
    let echo = app.send_body(request, body.clone()).await.json();
    assert_eq!(echo["body"].as_str().unwrap().as_bytes(), &body[..]);
}
