//! Consumer groups on the real Redis (`REDIS_URL`, default 127.0.0.1:6379): what a dead member
//! left pending is claimed and handled once, a message that keeps killing its consumers is
//! dead-lettered, retries do not count as deliveries, and a group Redis lost is created again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use custodian_events::{
    consumer::{GroupConsumer, Handler, HandlerError},
    signing::{Authority, Keyring},
    streams::ClaimPolicy,
};
use redis::{
    aio::ConnectionManager,
    streams::{StreamPendingCountReply, StreamRangeReply},
    AsyncCommands,
};
use tokio_util::sync::CancellationToken;

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn redis() -> ConnectionManager {
    custodian_events::streams::connect(&redis_url())
        .await
        .unwrap()
}

/// A stream and group no other test uses.
fn names() -> (String, String) {
    let run = uuid::Uuid::new_v4().simple().to_string();
    (format!("test-{run}:access"), format!("g{}", &run[..12]))
}

const POLICY: ClaimPolicy = ClaimPolicy {
    min_idle: Duration::from_millis(300),
    max_deliveries: 5,
};

/// Records what it handled, under its consumer's name; asks `retries` times for a retry first.
#[derive(Clone)]
struct Recorder {
    name: &'static str,
    seen: Arc<Mutex<Vec<(&'static str, String)>>>,
    attempts: Arc<Mutex<HashMap<String, usize>>>,
    retries: usize,
}

impl Recorder {
    fn new(retries: usize) -> Self {
        Self {
            name: "live",
            seen: Arc::default(),
            attempts: Arc::default(),
            retries,
        }
    }

    fn named(&self, name: &'static str) -> Self {
        Self {
            name,
            ..self.clone()
        }
    }

    fn handled(&self) -> Vec<(&'static str, String)> {
        self.seen.lock().unwrap().clone()
    }
}

impl Handler for Recorder {
    async fn handle(&self, payload: &str) -> Result<(), HandlerError> {
        let attempt = {
            let mut attempts = self.attempts.lock().unwrap();
            let n = attempts.entry(payload.to_string()).or_default();
            *n += 1;
            *n
        };
        if attempt <= self.retries {
            return Err(HandlerError::Retry("database away".into()));
        }
        self.seen
            .lock()
            .unwrap()
            .push((self.name, payload.to_string()));
        Ok(())
    }
}

async fn start(
    stream: &str,
    group: &str,
    name: &str,
    handler: Recorder,
    token: &CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let consumer = GroupConsumer::new(&redis_url(), stream.to_string(), group, name)
        .await
        .unwrap()
        .trusting(Authority::Unsigned, Keyring::new(None))
        .claiming(POLICY);
    tokio::spawn(consumer.run(handler, token.child_token()))
}

async fn publish(redis: &mut ConnectionManager, stream: &str, payloads: &[String]) {
    for p in payloads {
        let _: String = redis
            .xadd(stream, "*", &[("event", p.as_str())])
            .await
            .unwrap();
    }
}

/// What `consumer` takes from the group and never acknowledges (it dies holding them).
async fn read_and_die(redis: &mut ConnectionManager, stream: &str, group: &str, consumer: &str) {
    let options = redis::streams::StreamReadOptions::default()
        .group(group, consumer)
        .count(100);
    let _: redis::streams::StreamReadReply = redis
        .xread_options(&[stream], &[">"], &options)
        .await
        .unwrap();
}

async fn pending(
    redis: &mut ConnectionManager,
    stream: &str,
    group: &str,
) -> StreamPendingCountReply {
    redis
        .xpending_count(stream, group, "-", "+", 100)
        .await
        .unwrap()
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn cleanup(redis: &mut ConnectionManager, stream: &str) {
    let _: () = redis
        .del(&[stream, &format!("{stream}:dead")])
        .await
        .unwrap();
}

#[tokio::test]
async fn what_a_dead_member_left_pending_is_claimed_and_handled_once() {
    let (stream, group) = names();
    let mut redis = redis().await;
    let token = CancellationToken::new();
    let _: () = redis
        .xgroup_create_mkstream(&stream, &group, "0")
        .await
        .unwrap();
    let payloads: Vec<String> = (0..5).map(|i| format!("{{\"n\":{i}}}")).collect();
    publish(&mut redis, &stream, &payloads).await;
    read_and_die(&mut redis, &stream, &group, "ledger-0-4711").await;
    assert_eq!(pending(&mut redis, &stream, &group).await.ids.len(), 5);

    let recorder = Recorder::new(0);
    let task = start(&stream, &group, "ledger-1-815", recorder.clone(), &token).await;
    // And new messages keep flowing beside the claimed ones.
    let later: Vec<String> = (5..8).map(|i| format!("{{\"n\":{i}}}")).collect();
    publish(&mut redis, &stream, &later).await;
    until("all eight are handled", || recorder.handled().len() >= 8).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut handled: Vec<String> = recorder.handled().into_iter().map(|(_, p)| p).collect();
    handled.sort();
    let mut expected: Vec<String> = payloads.iter().chain(&later).cloned().collect();
    expected.sort();
    assert_eq!(handled, expected, "each message handled exactly once");
    assert!(pending(&mut redis, &stream, &group).await.ids.is_empty());
    let metrics = custodian_telemetry::metrics::consumer_groups().unwrap();
    assert_eq!(
        metrics
            .redelivered
            .with_label_values(&["access", group.as_str()])
            .get(),
        5
    );
    until("the pending gauge reads zero", || {
        metrics
            .pending
            .with_label_values(&["access", group.as_str()])
            .get()
            == 0
    })
    .await;
    token.cancel();
    task.await.unwrap();
    cleanup(&mut redis, &stream).await;
}

#[tokio::test]
async fn a_message_that_keeps_killing_its_consumers_is_dead_lettered() {
    let (stream, group) = names();
    let mut redis = redis().await;
    let token = CancellationToken::new();
    let _: () = redis
        .xgroup_create_mkstream(&stream, &group, "0")
        .await
        .unwrap();
    let poison = "{\"poison\":true}".to_string();
    publish(&mut redis, &stream, std::slice::from_ref(&poison)).await;
    // Five members in turn take it and die: four claims after the first delivery.
    read_and_die(&mut redis, &stream, &group, "anomaly-0").await;
    for n in 1..5 {
        let id = pending(&mut redis, &stream, &group).await.ids[0].id.clone();
        let _: redis::streams::StreamClaimReply = redis
            .xclaim(&stream, &group, format!("anomaly-{n}"), 0, &[id])
            .await
            .unwrap();
    }
    assert_eq!(
        pending(&mut redis, &stream, &group).await.ids[0].times_delivered,
        5
    );
    let healthy = "{\"healthy\":true}".to_string();
    publish(&mut redis, &stream, std::slice::from_ref(&healthy)).await;

    let recorder = Recorder::new(0);
    let task = start(&stream, &group, "anomaly-5", recorder.clone(), &token).await;
    until("the healthy message is handled", || {
        !recorder.handled().is_empty()
    })
    .await;
    let mut dead = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while dead.is_empty() && Instant::now() < deadline {
        let range: StreamRangeReply = redis.xrange_all(format!("{stream}:dead")).await.unwrap();
        dead = range.ids;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dead.len(), 1, "the poison message is dead-lettered");
    assert_eq!(dead[0].get::<String>("event"), Some(poison));
    assert_eq!(dead[0].get::<String>("group"), Some(group.clone()));
    assert!(dead[0]
        .get::<String>("reason")
        .is_some_and(|r| r.contains("delivered 5 times")));
    assert_eq!(
        recorder.handled(),
        vec![("live", healthy)],
        "the handler never saw the poison"
    );
    until_empty(&mut redis, &stream, &group).await;
    let metrics = custodian_telemetry::metrics::consumer_groups().unwrap();
    assert_eq!(
        metrics
            .dead_lettered
            .with_label_values(&["access", group.as_str(), "redelivered"])
            .get(),
        1
    );
    token.cancel();
    task.await.unwrap();
    cleanup(&mut redis, &stream).await;
}

async fn until_empty(redis: &mut ConnectionManager, stream: &str, group: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !pending(redis, stream, group).await.ids.is_empty() {
        assert!(Instant::now() < deadline, "messages left pending");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_message_waiting_for_the_database_stays_with_its_consumer_and_is_not_counted() {
    let (stream, group) = names();
    let mut redis = redis().await;
    let token = CancellationToken::new();
    // Three retries pause 0.5 + 1 + 2 s: ten times the claim idle time.
    let recorder = Recorder::new(3);
    let first = start(&stream, &group, "ledger-a", recorder.named("a"), &token).await;
    let message = "{\"n\":1}".to_string();
    publish(&mut redis, &stream, std::slice::from_ref(&message)).await;
    until("the first attempt", || {
        recorder.attempts.lock().unwrap().contains_key(&message)
    })
    .await;
    // A second member that would claim anything idle for 300 ms.
    let second = start(&stream, &group, "ledger-b", recorder.named("b"), &token).await;
    let mut deliveries = Vec::new();
    while recorder.handled().is_empty() {
        if let Some(p) = pending(&mut redis, &stream, &group).await.ids.first() {
            deliveries.push((p.consumer.clone(), p.times_delivered));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(recorder.handled(), vec![("a", message.clone())]);
    assert_eq!(recorder.attempts.lock().unwrap()[&message], 4);
    assert!(
        deliveries.iter().all(|d| d == &("ledger-a".to_string(), 1)),
        "held by its consumer, delivered once: {deliveries:?}"
    );
    until_empty(&mut redis, &stream, &group).await;
    token.cancel();
    first.await.unwrap();
    second.await.unwrap();
    cleanup(&mut redis, &stream).await;
}

#[tokio::test]
async fn a_group_redis_lost_is_created_again_from_the_start() {
    let (stream, group) = names();
    let mut redis = redis().await;
    let token = CancellationToken::new();
    let recorder = Recorder::new(0);
    let task = start(&stream, &group, "identity-0", recorder.clone(), &token).await;
    let before = "{\"before\":true}".to_string();
    publish(&mut redis, &stream, std::slice::from_ref(&before)).await;
    until("the first message is handled", || {
        recorder.handled().len() == 1
    })
    .await;
    // Redis restarted empty: the stream and its group are gone; producers publish again.
    let _: () = redis.del(&stream).await.unwrap();
    let after: Vec<String> = (0..3).map(|i| format!("{{\"after\":{i}}}")).collect();
    publish(&mut redis, &stream, &after).await;
    until("the messages after the loss are handled", || {
        recorder.handled().len() == 4
    })
    .await;
    let handled: Vec<String> = recorder.handled().into_iter().map(|(_, p)| p).collect();
    assert_eq!(handled[1..], after[..]);
    token.cancel();
    task.await.unwrap();
    cleanup(&mut redis, &stream).await;
}

/// A service starting while Redis does not answer for longer than a command may wait (a loaded
/// machine; here `CLIENT PAUSE` on a Redis of the test's own) waits for it: the consumer's
/// connection and the stream's position are tried again instead of failing the start.
#[tokio::test]
async fn a_service_starting_while_redis_does_not_answer_waits_for_it() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server runs");
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let mut admin = loop {
        match custodian_events::streams::connect(&url).await {
            Ok(c) => break c,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    let mut position = custodian_events::streams::connect(&url).await.unwrap();
    let (stream, group) = names();
    let _: String = admin.xadd(&stream, "*", &[("event", "1")]).await.unwrap();
    // Longer than a reply may take (5 s) and than a connection may take (5 s).
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(7000)
        .arg("ALL")
        .query_async(&mut admin)
        .await
        .unwrap();
    let (newest, consumer) = tokio::join!(
        custodian_events::consumer::latest_id(&mut position, &stream),
        GroupConsumer::new(&url, stream.clone(), &group, "starting"),
    );
    server.kill().ok();
    server.wait().ok();
    assert_ne!(newest.expect("read once Redis answered"), "0-0");
    consumer.expect("connected once Redis answered");
}
