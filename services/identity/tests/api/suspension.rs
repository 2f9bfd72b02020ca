use std::time::Duration;

use awc::http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{spawn_app, TestApp};

async fn patient(app: &TestApp, admin: &str, username: &str) -> String {
    let created = app
        .create_user(
            admin,
            &json!({ "username": username, "password": "patient-password", "role": "patient" }),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    created.body["id"].as_str().unwrap().to_string()
}

async fn suspended_ids(app: &TestApp) -> Vec<String> {
    // The service credential the app reads (same INTERNAL_TOKEN_FILE, same working directory).
    let credential = custodian_auth::InternalToken::shared().expect("internal token");
    let answer = app
        .get("/internal/suspended", Some(credential.expose()))
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    serde_json::from_value(answer.body["suspended"].clone()).unwrap()
}

fn alert(user_id: &str, suspend: bool) -> Value {
    json!({
        "id": Uuid::new_v4(), "time": chrono::Utc::now(), "user_id": user_id, "event_id": Uuid::new_v4(),
        "score": 0.97, "reason": "burst of reads across many patients", "suspend": suspend,
    })
}

#[actix_web::test]
async fn an_alert_asking_for_suspension_suspends_the_user() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let alice = patient(&app, &admin, "alice").await;
    let bob = patient(&app, &admin, "bob").await;
    assert!(suspended_ids(&app).await.is_empty());
    app.token_for("alice", "patient-password").await;

    let alerts = app.streams.alerts();
    // An alert that does not ask for suspension, one that does (delivered twice), one for an
    // unknown user and one that is not an alert at all.
    app.publish(&alerts, Uuid::new_v4(), &alert(&bob, false))
        .await;
    let suspend = alert(&alice, true);
    app.publish(&alerts, Uuid::new_v4(), &suspend).await;
    app.publish(&alerts, Uuid::new_v4(), &suspend).await;
    app.publish(
        &alerts,
        Uuid::new_v4(),
        &alert(&Uuid::new_v4().to_string(), true),
    )
    .await;
    app.publish(&alerts, Uuid::new_v4(), &json!({ "hello": "world" }))
        .await;

    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = suspended_ids(&app).await;
        if !listed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed, vec![alice.clone()]);

    let refused = app.login("alice", "patient-password").await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.body["error"], "invalid_grant");
    assert_eq!(refused.body["error_description"], "user is suspended");
    assert_eq!(
        app.login("bob", "patient-password").await.status,
        StatusCode::OK
    );

    let event = app
        .wait_for_event(&app.streams.identity(), |e| {
            e["type"] == "user_suspended" && e["user_id"] == alice.as_str()
        })
        .await;
    assert!(event["reason"].as_str().unwrap().contains("burst of reads"));
    // On the ledger: the suspended user as actor, refused from now on.
    let audited = app
        .wait_for_event(&app.streams.access(), |e| {
            e["decision"]["basis"] == "suspended-by-alert"
        })
        .await;
    assert_eq!(audited["actor"]["id"], alice.as_str());
    assert_eq!(audited["outcome"], "deny");
    let user = app
        .get(&format!("/auth/admin/users/{alice}"), Some(&admin))
        .await;
    assert_eq!(user.body["suspended"], true);

    // Every alert is acknowledged, the two bad ones dead-lettered, and the duplicate suspended
    // nobody twice.
    for _ in 0..100 {
        if app.pending(&alerts, "identity").await == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.pending(&alerts, "identity").await, 0);
    let dead = app.events(&format!("{alerts}:dead")).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let suspensions = app
        .events(&app.streams.identity())
        .await
        .into_iter()
        .filter(|e| e["type"] == "user_suspended")
        .count();
    assert_eq!(suspensions, 1);
    let metrics = app
        .get("/metrics", None)
        .await
        .body
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("custodian_users_suspended_total") && l.ends_with(" 1")),
        "{metrics}"
    );
    app.cleanup().await;
}

#[actix_web::test]
async fn administrators_suspend_and_reinstate() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let alice = patient(&app, &admin, "alice").await;

    let no_reason = app
        .post_json(
            &format!("/auth/admin/users/{alice}/suspend"),
            Some(&admin),
            &json!({ "reason": " " }),
        )
        .await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    let suspended = app
        .post_json(
            &format!("/auth/admin/users/{alice}/suspend"),
            Some(&admin),
            &json!({ "reason": "lost device" }),
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.body);
    assert_eq!(suspended.body["suspended"], true);
    assert_eq!(suspended.body["suspended_reason"], "lost device");
    assert_eq!(suspended_ids(&app).await, vec![alice.clone()]);
    assert_eq!(
        app.login("alice", "patient-password").await.body["error_description"],
        "user is suspended"
    );
    app.wait_for_event(&app.streams.identity(), |e| {
        e["type"] == "user_suspended" && e["reason"] == "lost device"
    })
    .await;
    let admin_id = crate::helpers::jwt_claims(&admin)["sub"].clone();
    let audited = app
        .wait_for_event(&app.streams.access(), |e| {
            e["decision"]["basis"] == "suspended-by-admin"
        })
        .await;
    assert_eq!(audited["actor"]["id"], admin_id);

    // Only an administrator lifts a suspension.
    let bob = patient(&app, &admin, "bob").await;
    let bob_token = app.token_for("bob", "patient-password").await;
    let refused = app
        .post_json(
            &format!("/auth/admin/users/{alice}/reinstate"),
            Some(&bob_token),
            &json!({}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(suspended_ids(&app).await, vec![alice.clone()]);
    assert!(!bob.is_empty());

    let reinstated = app
        .post_json(
            &format!("/auth/admin/users/{alice}/reinstate"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(reinstated.status, StatusCode::OK);
    assert_eq!(reinstated.body["suspended"], false);
    assert!(suspended_ids(&app).await.is_empty());
    assert_eq!(
        app.login("alice", "patient-password").await.status,
        StatusCode::OK
    );
    app.wait_for_event(&app.streams.identity(), |e| {
        e["type"] == "user_reinstated" && e["user_id"] == alice.as_str()
    })
    .await;
    // Audited: the administrator who lifted it, on the ledger.
    let audited = app
        .wait_for_event(&app.streams.access(), |e| {
            e["decision"]["basis"] == "reinstated"
        })
        .await;
    assert_eq!(audited["actor"]["id"], admin_id);
    assert_eq!(audited["outcome"], "permit");
    assert_eq!(audited["account"], format!("User/{alice}"));

    let unknown = app
        .post_json(
            &format!("/auth/admin/users/{}/suspend", Uuid::new_v4()),
            Some(&admin),
            &json!({ "reason": "x" }),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    app.cleanup().await;
}
