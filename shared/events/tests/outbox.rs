//! The outbox on the real PostgreSQL and Redis: a published event is kept until every group of
//! its stream acknowledged it, and what Redis lost is published again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use custodian_events::{group_commit::GroupCommit, outbox, outbox::Relay, OUTBOX_MIGRATIONS};
use diesel::{sql_query, sql_types::BigInt, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use redis::{
    aio::ConnectionManager,
    streams::{StreamRangeReply, StreamReadOptions, StreamReadReply},
    AsyncCommands,
};
use uuid::Uuid;

struct Fixture {
    url: String,
    name: String,
    server: String,
    relay: Relay,
    redis: ConnectionManager,
    stream: String,
}

async fn fixture() -> Fixture {
    let server = std::env::var("DATABASE_SERVER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("custodian_outbox_{}", Uuid::new_v4().simple());
    let url = format!("{server}/{name}");
    custodian_database::ensure_database(&url).await.unwrap();
    custodian_database::run_migrations(&url, OUTBOX_MIGRATIONS)
        .await
        .unwrap();
    let pool = custodian_database::pool(&url, 2).unwrap();
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let redis = custodian_events::streams::connect(&redis_url)
        .await
        .unwrap();
    Fixture {
        relay: Relay::new(pool, redis.clone()),
        redis,
        stream: format!("test-{}:access", Uuid::new_v4().simple()),
        url,
        name,
        server,
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

impl Fixture {
    async fn enqueue(&self, n: usize) -> Vec<Uuid> {
        let mut conn = AsyncPgConnection::establish(&self.url).await.unwrap();
        let mut ids = Vec::new();
        for i in 0..n {
            let id = Uuid::new_v4();
            outbox::enqueue(&mut conn, &self.stream, id, &serde_json::json!({ "n": i }))
                .await
                .unwrap();
            ids.push(id);
        }
        ids
    }

    /// Rows still in the outbox, published or not.
    async fn rows(&self) -> i64 {
        let mut conn = AsyncPgConnection::establish(&self.url).await.unwrap();
        sql_query("SELECT count(*) AS n FROM event_outbox")
            .get_result::<Count>(&mut conn)
            .await
            .unwrap()
            .n
    }

    /// The event ids in the stream, in stream order.
    async fn in_redis(&mut self) -> Vec<Uuid> {
        let range: StreamRangeReply = self.redis.xrange_all(&self.stream).await.unwrap();
        range
            .ids
            .iter()
            .map(|e| e.get::<String>("id").unwrap().parse().unwrap())
            .collect()
    }

    /// `group` reads up to `count` messages and acknowledges the first `ack` of them.
    async fn consume(&mut self, group: &str, count: usize, ack: usize) {
        let _: Result<(), _> = self
            .redis
            .xgroup_create_mkstream(&self.stream, group, "0")
            .await;
        let options = StreamReadOptions::default().group(group, "c").count(count);
        let read: StreamReadReply = self
            .redis
            .xread_options(&[&self.stream], &[">"], &options)
            .await
            .unwrap();
        let ids: Vec<String> = read
            .keys
            .into_iter()
            .flat_map(|k| k.ids)
            .take(ack)
            .map(|e| e.id)
            .collect();
        if !ids.is_empty() {
            let _: i64 = self.redis.xack(&self.stream, group, &ids).await.unwrap();
        }
    }

    async fn cleanup(mut self) {
        let _: () = self.redis.del(&self.stream).await.unwrap();
        drop(self.relay);
        let mut admin = AsyncPgConnection::establish(&format!("{}/postgres", self.server))
            .await
            .unwrap();
        sql_query(format!("DROP DATABASE \"{}\" WITH (FORCE)", self.name))
            .execute(&mut admin)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_published_event_is_kept_until_every_group_of_its_stream_acknowledged_it() {
    let mut f = fixture().await;
    let ids = f.enqueue(3).await;
    assert_eq!(f.relay.publish_batch().await.unwrap(), 3);
    assert_eq!(f.in_redis().await, ids);
    assert_eq!(f.relay.publish_batch().await.unwrap(), 0, "published once");

    // Neither the ledger nor anomaly has a group yet: nothing may be forgotten.
    f.relay.keep().await.unwrap();
    assert_eq!(f.rows().await, 3);
    // The ledger has all three; anomaly acknowledged one and holds the second pending.
    f.consume("ledger", 3, 3).await;
    f.consume("anomaly", 2, 1).await;
    f.relay.keep().await.unwrap();
    assert_eq!(
        f.rows().await,
        2,
        "only what both acknowledged is forgotten"
    );
    let pending: Vec<String> = {
        let p: redis::streams::StreamPendingCountReply = f
            .redis
            .xpending_count(&f.stream, "anomaly", "-", "+", 10)
            .await
            .unwrap();
        p.ids.into_iter().map(|p| p.id).collect()
    };
    let _: i64 = f.redis.xack(&f.stream, "anomaly", &pending).await.unwrap();
    f.consume("anomaly", 1, 1).await;
    f.relay.keep().await.unwrap();
    assert_eq!(f.rows().await, 0);
    f.cleanup().await;
}

#[tokio::test]
async fn events_redis_lost_are_published_again() {
    let mut f = fixture().await;
    let ids = f.enqueue(4).await;
    assert_eq!(f.relay.publish_batch().await.unwrap(), 4);
    f.consume("ledger", 4, 4).await;
    f.consume("anomaly", 4, 4).await;
    f.relay.keep().await.unwrap();
    assert_eq!(f.rows().await, 0, "acknowledged by both groups");

    let lost = f.enqueue(2).await;
    assert_eq!(f.relay.publish_batch().await.unwrap(), 2);
    // Redis restarts empty: the stream and its groups are gone.
    let _: () = f.redis.del(&f.stream).await.unwrap();
    f.relay.keep().await.unwrap();
    assert_eq!(f.relay.publish_batch().await.unwrap(), 2);
    assert_eq!(
        f.in_redis().await,
        lost,
        "the two kept are given again, in order"
    );
    // Events already acknowledged before the loss are not repeated.
    assert!(ids.iter().all(|id| !lost.contains(id)));

    // Redis comes back empty and an event is published to it before the relay checks: the
    // newest kept event is there, the older ones are not.
    f.consume("ledger", 10, 10).await;
    f.consume("anomaly", 10, 10).await;
    f.relay.keep().await.unwrap();
    let before = f.enqueue(2).await;
    assert_eq!(f.relay.publish_batch().await.unwrap(), 2);
    let _: () = f.redis.del(&f.stream).await.unwrap();
    let after = f.enqueue(1).await;
    assert_eq!(f.relay.publish_batch().await.unwrap(), 1);
    f.relay.keep().await.unwrap();
    assert_eq!(
        f.relay.publish_batch().await.unwrap(),
        3,
        "the lost two are given again"
    );
    let given = f.in_redis().await;
    assert_eq!(given, [after.clone(), before, after].concat());
    f.consume("ledger", 10, 10).await;
    f.consume("anomaly", 10, 10).await;
    f.relay.keep().await.unwrap();

    // Redis lost only its last write (a crash before the append-only file was synced): the
    // stream is there, without the newest event.
    let last = f.enqueue(1).await;
    assert_eq!(f.relay.publish_batch().await.unwrap(), 1);
    let newest: StreamRangeReply = f
        .redis
        .xrevrange_count(&f.stream, "+", "-", 1)
        .await
        .unwrap();
    let _: i64 = f.redis.xdel(&f.stream, &[&newest.ids[0].id]).await.unwrap();
    f.relay.keep().await.unwrap();
    assert_eq!(
        f.relay.publish_batch().await.unwrap(),
        1,
        "the one kept is given again"
    );
    let given = f.in_redis().await;
    assert_eq!(given[given.len() - 1..], last[..]);
    f.cleanup().await;
}

/// Rows the relay's group commits wrote, and in how many commits.
fn group_commits(relay: &Relay) -> (f64, u64) {
    relay
        .collectors()
        .iter()
        .flat_map(|c| c.collect())
        .filter(|family| family.name() == "outbox_group_commit_rows")
        .flat_map(|family| family.get_metric().to_vec())
        .map(|m| {
            let h = m.get_histogram();
            (h.get_sample_sum(), h.get_sample_count())
        })
        .next()
        .unwrap_or((0.0, 0))
}

#[tokio::test]
async fn events_of_concurrent_requests_are_committed_together_before_each_answer() {
    let mut f = fixture().await;
    let writers = custodian_database::pool(&f.url, 2).unwrap();
    let group = GroupCommit::start(writers, f.relay.clone());
    let ids: Vec<Uuid> = (0..200).map(|_| Uuid::new_v4()).collect();
    let writes = ids.iter().map(|&id| {
        let group = group.clone();
        let row = (f.stream.clone(), id, serde_json::json!({ "id": id }));
        tokio::spawn(async move { group.write(vec![row]).await })
    });
    for done in futures_util::future::join_all(writes).await {
        done.unwrap().unwrap();
    }
    // Every caller had its answer: every row is there (none waits for a later commit).
    assert_eq!(f.rows().await, 200);
    let (rows, commits) = group_commits(&f.relay);
    assert_eq!(rows, 200.0);
    assert!(commits < 200, "200 concurrent writes in {commits} commits");

    // The same event again is no error and no second row (consumers dedupe by id anyway).
    let again = (
        f.stream.clone(),
        ids[0],
        serde_json::json!({ "id": ids[0] }),
    );
    group.write(vec![again]).await.unwrap();
    assert_eq!(f.rows().await, 200);
    assert_eq!(f.relay.publish_batch().await.unwrap(), 200);
    let mut published = f.in_redis().await;
    published.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(published, expected);
    f.cleanup().await;
}

#[tokio::test]
async fn a_group_commit_that_fails_fails_every_request_in_it() {
    let f = fixture().await;
    // A database without the outbox table: the insert fails, and no caller is told otherwise.
    let bare = format!("{}/custodian_bare_{}", f.server, Uuid::new_v4().simple());
    custodian_database::ensure_database(&bare).await.unwrap();
    let writers = custodian_database::pool(&bare, 2).unwrap();
    let group = GroupCommit::start(writers, f.relay.clone());
    let writes = (0..20).map(|i| {
        let group = group.clone();
        let row = (
            f.stream.clone(),
            Uuid::new_v4(),
            serde_json::json!({ "n": i }),
        );
        tokio::spawn(async move { group.write(vec![row]).await })
    });
    for done in futures_util::future::join_all(writes).await {
        assert!(done.unwrap().is_err(), "a failed commit answered Ok");
    }
    let mut admin = AsyncPgConnection::establish(&format!("{}/postgres", f.server))
        .await
        .unwrap();
    let name = bare.rsplit('/').next().unwrap().to_string();
    sql_query(format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    f.cleanup().await;
}
