//! The access stream is verified: an event nobody trusted signed (unsigned, as anyone who can
//! reach Redis could write it, or signed with a stranger's key) never reaches the ledger; it is
//! dead-lettered. A producer's signed event is appended.

use std::time::Duration;

use custodian_events::signing::StreamSigner;

use crate::helpers::{event, spawn_app};

#[actix_web::test]
async fn forged_access_events_never_reach_the_ledger() {
    let mut app = spawn_app().await;
    let stream = format!("{}:access", app.prefix);

    let unsigned = event(Some("Patient/alice"), "forger");
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("id")
        .arg(unsigned.id.to_string())
        .arg("event")
        .arg(serde_json::to_string(&unsigned).unwrap())
        .query_async(&mut app.redis)
        .await
        .unwrap();
    let stranger = StreamSigner::generate("records").unwrap();
    let foreign = event(Some("Patient/alice"), "forger");
    let fields = stranger
        .fields(
            &stream,
            &foreign.id.to_string(),
            &serde_json::to_string(&foreign).unwrap(),
        )
        .unwrap();
    let mut command = redis::cmd("XADD");
    command.arg(&stream).arg("*");
    for (name, value) in fields {
        command.arg(name).arg(value);
    }
    let _: String = command.query_async(&mut app.redis).await.unwrap();

    let genuine = event(Some("Patient/alice"), "u1");
    app.publish(&genuine).await;
    app.wait_for_metric("ledger_appends_total", 1.0).await;
    // The forgeries were read before the genuine one: by now they are dead-lettered.
    let mut dead = 0;
    for _ in 0..100 {
        dead = redis::cmd("XLEN")
            .arg(format!("{stream}:dead"))
            .query_async::<i64>(&mut app.redis)
            .await
            .unwrap();
        if dead >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead, 2, "both forgeries dead-lettered");
    assert_eq!(app.metric("ledger_appends_total").await, Some(1.0));
    app.finish().await;
}
