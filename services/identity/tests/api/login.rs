//! Logins under attack (issue 5): lockouts in PostgreSQL, per-address throttling, bounded
//! hashing, and an access event for every attempt.

use std::time::{Duration, Instant};

use awc::http::StatusCode;
use custodian_access::TrustedProxies;
use futures_util::{stream, StreamExt};
use serde_json::{json, Value};

use crate::helpers::{
    jwt_claims, spawn_app, spawn_app_on, spawn_app_with, Answer, TestApp, ADMIN_PASSWORD,
    ADMIN_USERNAME,
};

const PASSWORD: &str = "carol-password-1";

fn assert_locked(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(answer.body["error"], "invalid_grant");
    assert!(
        answer.body["error_description"]
            .as_str()
            .unwrap_or_default()
            .contains("locked"),
        "{}",
        answer.body
    );
    assert!(answer.body.get("access_token").is_none());
}

fn assert_bad_credentials(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{}", answer.body);
    assert_eq!(
        answer.body["error_description"],
        "invalid username or password"
    );
}

/// Five wrong passwords for `username` (the default `LOGIN_MAX_FAILURES`).
async fn lock_out(app: &TestApp, username: &str) {
    for i in 0..5 {
        assert_bad_credentials(&app.login(username, &format!("wrong-password-{i}")).await);
    }
}

/// The VmRSS of this test process (the apps run in it), in MiB.
fn rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb / 1024)
        .unwrap_or(0)
}

#[actix_web::test]
async fn lockout_after_repeated_failures_refuses_even_the_right_password() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let carol = app
        .user_with_role(&admin, "carol", PASSWORD, "auditor")
        .await;

    lock_out(&app, "carol").await;
    assert_locked(&app.login("carol", PASSWORD).await);
    // From another address too: the lockout is the account's.
    assert_locked(&app.login_from("198.51.100.7", "carol", PASSWORD).await);

    let read = app
        .get(&format!("/auth/admin/users/{carol}"), Some(&admin))
        .await;
    assert!(read.body["locked_until"].is_string(), "{}", read.body);

    // The ledger sees it all: five bad credentials, the lockout, the refused logins.
    let bad = app.login_events("bad-credentials").await;
    assert_eq!(
        bad.iter()
            .filter(|e| e["actor"]["id"] == carol.as_str())
            .count(),
        5
    );
    let locked = app.login_events("locked-out").await;
    assert_eq!(locked.len(), 3, "the lockout and two refusals: {locked:?}");
    assert!(locked
        .iter()
        .all(|e| e["outcome"] == "deny" && e["actor"]["id"] == carol.as_str()));
    assert!(app
        .login_events("password")
        .await
        .iter()
        .all(|e| e["actor"]["id"] != carol.as_str()));

    let metrics = app.get("/metrics", None).await.body;
    let text = metrics.as_str().unwrap_or_default();
    assert!(
        text.lines()
            .any(|l| l.starts_with("custodian_login_lockouts_total") && l.ends_with(" 1")),
        "{text}"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn a_successful_login_forgives_earlier_failures() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.user_with_role(&admin, "carol", PASSWORD, "auditor")
        .await;
    for _ in 0..2 {
        for i in 0..4 {
            assert_bad_credentials(&app.login("carol", &format!("wrong-{i}")).await);
        }
        assert_eq!(app.login("carol", PASSWORD).await.status, StatusCode::OK);
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn an_administrator_unlock_restores_the_account_and_is_audited() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let admin_id = jwt_claims(&admin)["sub"].as_str().unwrap().to_string();
    let carol = app
        .user_with_role(&admin, "carol", PASSWORD, "auditor")
        .await;
    lock_out(&app, "carol").await;
    assert_locked(&app.login("carol", PASSWORD).await);

    let path = format!("/auth/admin/users/{carol}/unlock");
    app.user_with_role(&admin, "dave", "dave-password-1", "auditor")
        .await;
    let dave = app.token_for("dave", "dave-password-1").await;
    let refused = app.post_json(&path, Some(&dave), &json!({})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let missing = app
        .post_json(
            &format!("/auth/admin/users/{}/unlock", uuid::Uuid::new_v4()),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let unlocked = app.post_json(&path, Some(&admin), &json!({})).await;
    assert_eq!(unlocked.status, StatusCode::OK, "{}", unlocked.body);
    assert_eq!(unlocked.body["was_locked"], true);
    assert_eq!(app.login("carol", PASSWORD).await.status, StatusCode::OK);
    let read = app
        .get(&format!("/auth/admin/users/{carol}"), Some(&admin))
        .await;
    assert!(read.body.get("locked_until").is_none(), "{}", read.body);

    let event = app
        .wait_for_event(&app.streams.access(), |e| {
            e["decision"]["basis"] == "unlocked"
        })
        .await;
    assert_eq!(event["actor"]["id"], admin_id.as_str());
    assert_eq!(event["actor"]["role"], "admin");
    assert_eq!(event["outcome"], "permit");
    assert_eq!(event["action"], "login");
    // The ledger says whose lockout was lifted, not only who lifted it.
    assert_eq!(event["account"], format!("User/{carol}"));
    app.cleanup().await;
}

#[actix_web::test]
async fn a_lockout_survives_a_restart_and_holds_on_another_replica() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.user_with_role(&admin, "carol", PASSWORD, "auditor")
        .await;
    lock_out(&app, "carol").await;

    // A second identity on the same database: a restarted or another replica.
    let restarted = spawn_app_on(&app.database_url, &app.prefix, ADMIN_PASSWORD).await;
    assert_locked(&restarted.login("carol", PASSWORD).await);
    assert_locked(&app.login("carol", PASSWORD).await);
    // Failures on either replica add up: two here and three there lock dave.
    app.user_with_role(&admin, "dave", "dave-password-1", "auditor")
        .await;
    for i in 0..2 {
        assert_bad_credentials(&app.login("dave", &format!("wrong-{i}")).await);
    }
    for i in 0..3 {
        assert_bad_credentials(&restarted.login("dave", &format!("wrong-{i}")).await);
    }
    assert_locked(&app.login("dave", "dave-password-1").await);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_lockout_lifts_after_its_delay_and_that_is_audited() {
    let app = spawn_app_with(|s| s.login.lockout = Duration::from_secs(2)).await;
    let admin = app.admin_token().await;
    let carol = app
        .user_with_role(&admin, "carol", PASSWORD, "auditor")
        .await;
    lock_out(&app, "carol").await;
    assert_locked(&app.login("carol", PASSWORD).await);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.login("carol", PASSWORD).await.status, StatusCode::OK);
    let event = app
        .wait_for_event(&app.streams.access(), |e| {
            e["decision"]["basis"] == "unlocked"
        })
        .await;
    assert_eq!(event["actor"]["id"], carol.as_str());
    assert!(
        event["source"]["ip"].is_null(),
        "nobody unlocked it: {event}"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn unknown_usernames_answer_as_locked_accounts_do() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    app.user_with_role(&admin, "carol", PASSWORD, "auditor")
        .await;
    lock_out(&app, "carol").await;
    lock_out(&app, "nobody-at-all").await;
    let real = app.login("carol", "another-guess").await;
    let fake = app.login("nobody-at-all", "another-guess").await;
    assert_locked(&fake);
    assert_eq!(real.status, fake.status);
    assert_eq!(real.body, fake.body, "guessing does not tell who exists");
    app.cleanup().await;
}

#[actix_web::test]
async fn too_many_failures_from_one_address_answer_429_with_retry_after() {
    let app = spawn_app_with(|s| s.login.address_max_failures = 3).await;
    let attacker = "203.0.113.66";
    for i in 0..3 {
        assert_bad_credentials(
            &app.login_from(attacker, &format!("user{i}"), "some-guess")
                .await,
        );
    }
    // Even the right password is refused from there, before any work.
    let throttled = app
        .login_from(attacker, ADMIN_USERNAME, ADMIN_PASSWORD)
        .await;
    assert_eq!(
        throttled.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        throttled.body
    );
    assert_eq!(throttled.body["error"], "temporarily_unavailable");
    let retry: u64 = throttled
        .headers
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "retry after {retry}");
    // Another address is not affected.
    assert_eq!(
        app.login_from("198.51.100.1", ADMIN_USERNAME, ADMIN_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    let events = app.login_events("throttled").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["source"]["ip"], attacker);
    assert_eq!(events[0]["outcome"], "deny");
    app.cleanup().await;
}

#[actix_web::test]
async fn a_client_written_forwarded_for_is_not_believed() {
    // Nobody is a trusted proxy: the peer (loopback) is the source, whatever the header says,
    // and rotating the header does not escape the address throttle.
    let app = spawn_app_with(|s| {
        s.access.trusted_proxies = TrustedProxies::none();
        s.login.address_max_failures = 3;
    })
    .await;
    for i in 0..3 {
        assert_bad_credentials(
            &app.login_from(&format!("6.6.6.{i}"), "nobody", "guess")
                .await,
        );
    }
    let throttled = app.login_from("6.6.6.9", "nobody", "guess").await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
    for event in app.access_events().await {
        assert_eq!(event["source"]["ip"], "127.0.0.1", "{event}");
    }
    app.cleanup().await;
}

#[actix_web::test]
async fn client_secrets_are_throttled_per_client() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let registered = app
        .post_json(
            "/auth/admin/clients",
            Some(&admin),
            &json!({ "name": "lab importer", "role": "service" }),
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
    let grant = [("grant_type", "client_credentials")];

    for _ in 0..5 {
        let wrong = app
            .token_request_basic(&client_id, "wrong-secret", &grant)
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.body["error"], "invalid_client");
    }
    let locked = app.token_request_basic(&client_id, &secret, &grant).await;
    assert_eq!(locked.status, StatusCode::UNAUTHORIZED, "{}", locked.body);
    assert_eq!(locked.body["error"], "invalid_client");
    assert!(locked.body["error_description"]
        .as_str()
        .unwrap()
        .contains("locked"));
    assert!(locked.headers.contains_key("www-authenticate"));

    let unlocked = app
        .post_json(
            &format!("/auth/admin/clients/{client_id}/unlock"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(unlocked.status, StatusCode::OK, "{}", unlocked.body);
    let ok = app.token_request_basic(&client_id, &secret, &grant).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);

    // Client logins are access events too.
    let success = app.login_events("client-credentials").await;
    assert_eq!(success.len(), 1);
    assert_eq!(success[0]["actor"]["id"], client_id.as_str());
    assert_eq!(success[0]["actor"]["role"], "service");
    assert_eq!(
        app.login_events("bad-credentials")
            .await
            .iter()
            .filter(|e| e["actor"]["id"] == client_id.as_str())
            .count(),
        5
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn every_login_attempt_is_an_access_event() {
    let app = spawn_app_with(|s| s.login.address_max_failures = 8).await;
    let admin = app.admin_token().await;
    let carol = app
        .user_with_role(&admin, "carol", PASSWORD, "auditor")
        .await;
    let suspended = app
        .user_with_role(&admin, "mallory", "mallory-password", "auditor")
        .await;
    let answer = app
        .post_json(
            &format!("/auth/admin/users/{suspended}/suspend"),
            Some(&admin),
            &json!({ "reason": "investigation" }),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);

    let from = "192.0.2.10";
    app.login_from(from, "nobody", "guess").await; // unknown user
    lock_out(&app, "carol").await; // five bad credentials and a lockout, from 127.0.0.1
    app.login_from(from, "carol", PASSWORD).await; // locked out
    let suspended_answer = app.login_from(from, "mallory", "mallory-password").await;
    assert_eq!(
        suspended_answer.body["error_description"],
        "user is suspended"
    );
    for i in 0..6 {
        app.login_from(from, &format!("nobody-{i}"), "guess").await;
    }
    let throttled = app.login_from(from, "nobody", "guess").await;
    assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);

    let events = app.access_events().await;
    for event in &events {
        custodian_events::AccessEvent::parse(&event.to_string())
            .expect("a well-formed access event");
        assert_eq!(event["action"], "login");
        assert!(event["source"]["ip"].is_string());
    }
    let by = |basis: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["decision"]["basis"] == basis)
            .collect()
    };
    assert!(by("bad-credentials")
        .iter()
        .any(|e| e["actor"]["id"] == "unknown" && e["source"]["ip"] == from));
    assert!(by("locked-out")
        .iter()
        .any(|e| e["actor"]["id"] == carol.as_str() && e["source"]["ip"] == from));
    assert_eq!(by("suspended")[0]["actor"]["id"], suspended.as_str());
    assert_eq!(by("throttled")[0]["source"]["ip"], from);
    assert!(by("password").iter().all(|e| e["outcome"] == "permit"));
    for basis in ["bad-credentials", "locked-out", "suspended", "throttled"] {
        assert!(by(basis).iter().all(|e| e["outcome"] == "deny"), "{basis}");
    }
    // 1 + 5 + 6 failures, one refused lockout, one suspended, one throttled: each one event.
    assert_eq!(by("bad-credentials").len(), 12);
    app.cleanup().await;
}

#[actix_web::test]
async fn a_flood_of_wrong_logins_keeps_memory_bounded_and_the_service_answering() {
    // Every guess a distinct unknown username from a distinct address (a botnet behind the
    // gateway): none is throttled by address or lockout, so every one asks for a hash.
    let app = spawn_app_with(|s| s.login.hash_queue = 8).await;
    let before = rss_mib();
    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(before));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let peak = peak.clone();
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak.fetch_max(rss_mib(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let started = Instant::now();
    let statuses: Vec<(StatusCode, bool)> = stream::iter(0..200u32)
        .map(|i| {
            let app = &app;
            async move {
                let answer = app
                    .login_from(
                        &format!("10.9.{}.{}", i / 250, i % 250 + 1),
                        &format!("guess-user-{i}"),
                        "wrong-password",
                    )
                    .await;
                (answer.status, answer.headers.contains_key("retry-after"))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let elapsed = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let _ = sampler.join();
    let growth = peak
        .load(std::sync::atomic::Ordering::Relaxed)
        .saturating_sub(before);

    assert_eq!(statuses.len(), 200);
    for (status, retry_after) in &statuses {
        match *status {
            StatusCode::BAD_REQUEST => {}
            StatusCode::SERVICE_UNAVAILABLE => assert!(retry_after, "503 without Retry-After"),
            other => panic!("unexpected {other}"),
        }
    }
    let busy = statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    assert!(
        growth < 300,
        "RSS grew by {growth} MiB during the flood ({busy} busy answers in {elapsed:?})"
    );
    // The service still answers an honest login promptly.
    let honest = Instant::now();
    let answer = app
        .login_from("198.51.100.99", ADMIN_USERNAME, ADMIN_PASSWORD)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert!(honest.elapsed() < Duration::from_secs(5));
    println!(
        "flood: 200 logins over 32 connections in {elapsed:?}, {busy} answered 503, RSS +{growth} MiB"
    );
    app.cleanup().await;
}
