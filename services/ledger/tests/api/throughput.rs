use std::time::{Duration, Instant};

use crate::helpers::{event, spawn_app};

/// End-to-end appends per second through Redis and PostgreSQL. Not a pass/fail test:
/// `cargo test -p ledger --test api throughput -- --ignored --nocapture`.
#[actix_web::test]
#[ignore]
async fn stream_to_ledger_throughput() {
    let mut app = spawn_app().await;
    let n = 5000u64;
    let payloads: Vec<_> = (0..n)
        .map(|i| event(Some(&format!("Patient/p{}", i % 50)), "u1"))
        .collect();
    let started = Instant::now();
    // One pipeline, so the publisher is not what is measured.
    let mut pipe = redis::pipe();
    for e in &payloads {
        let json = serde_json::to_string(e).expect("json");
        let stream = format!("{}:access", app.prefix);
        let command = pipe.cmd("XADD").arg(&stream).arg("*");
        for (name, value) in
            custodian_events::signing::test_fields(&stream, &e.id.to_string(), &json)
        {
            command.arg(name).arg(value);
        }
        command.ignore();
    }
    let _: () = pipe
        .query_async(&mut app.redis)
        .await
        .expect("XADD pipeline");
    let published = started.elapsed();
    loop {
        if app.metric("ledger_appends_total").await.unwrap_or(0.0) >= n as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    println!(
        "{n} events: published in {published:.2?}, appended in {elapsed:.2?} ({:.0} appends/s)",
        n as f64 / elapsed.as_secs_f64()
    );
    app.wait_for_checkpoint(n).await;
    app.finish().await;
}
