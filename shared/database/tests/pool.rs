//! The pool every service uses, on the real PostgreSQL (`DATABASE_SERVER_URL`, default the
//! local server): no JIT, a connection the server
//! dropped while it sat idle never handed out, and statistics kept fresh without autovacuum.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::time::Duration;

use custodian_database::{ensure_database, pool, Pool};
use diesel::{sql_query, sql_types::Text, QueryableByName};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    value: String,
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

fn server() -> String {
    std::env::var("DATABASE_SERVER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

async fn fresh_pool(max_size: usize) -> (Pool, String) {
    let name = format!("custodian_pool_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{}/{name}", server());
    ensure_database(&url).await.unwrap();
    (pool(&url, max_size).unwrap(), name)
}

async fn admin() -> AsyncPgConnection {
    AsyncPgConnection::establish(&format!("{}/postgres", server()))
        .await
        .unwrap()
}

async fn drop_database(name: &str) {
    sql_query(format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin().await)
        .await
        .unwrap();
}

async fn backend_pid(pool: &Pool) -> i32 {
    let mut conn = pool.get().await.unwrap();
    sql_query("SELECT pg_backend_pid() AS pid")
        .get_result::<Pid>(&mut conn)
        .await
        .unwrap()
        .pid
}

#[tokio::test]
async fn statements_run_without_jit() {
    let (pool, name) = fresh_pool(1).await;
    let mut conn = pool.get().await.unwrap();
    for (setting, expected) in [("jit", "off")] {
        let shown = sql_query(format!("SELECT current_setting('{setting}') AS value"))
            .get_result::<Setting>(&mut conn)
            .await
            .unwrap();
        assert_eq!(shown.value, expected, "{setting} on a pooled connection");
    }
    drop(conn);
    drop(pool);
    drop_database(&name).await;
}

#[tokio::test]
async fn a_connection_dropped_by_the_server_while_idle_is_replaced() {
    let (pool, name) = fresh_pool(1).await;
    let first = backend_pid(&pool).await;
    // In steady use the same connection comes back, unchecked.
    assert_eq!(backend_pid(&pool).await, first);

    // The server drops it (a restart, an idle timeout, an operator) while it sits in the pool.
    sql_query(format!("SELECT pg_terminate_backend({first})"))
        .execute(&mut admin().await)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Idle long enough to be checked: the dead one is discarded, a live one handed out.
    let second = backend_pid(&pool).await;
    assert_ne!(second, first, "a new connection replaces the dropped one");
    drop(pool);
    drop_database(&name).await;
}

#[tokio::test]
async fn a_table_whose_statistics_went_stale_is_analyzed_and_then_left_alone() {
    let (pool, name) = fresh_pool(2).await;
    {
        let mut conn = pool.get().await.unwrap();
        sql_query("CREATE TABLE grows (id bigint PRIMARY KEY, v text)")
            .execute(&mut conn)
            .await
            .unwrap();
        sql_query("CREATE TABLE still (id bigint PRIMARY KEY)")
            .execute(&mut conn)
            .await
            .unwrap();
        sql_query("ANALYZE still").execute(&mut conn).await.unwrap();
        sql_query("INSERT INTO grows SELECT g, 'x' FROM generate_series(1, 5000) g")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    // Backends report their counters within a second or so of going idle.
    let mut analyzed = Vec::new();
    for _ in 0..50 {
        analyzed = custodian_database::analyze_stale(&pool, &["grows", "still"])
            .await
            .unwrap();
        if !analyzed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(analyzed, vec!["public.grows".to_string()]);
    // The planner now knows the rows are there.
    #[derive(QueryableByName)]
    struct Tuples {
        #[diesel(sql_type = diesel::sql_types::Float)]
        n: f32,
    }
    let mut conn = pool.get().await.unwrap();
    let tuples: Tuples = sql_query("SELECT reltuples AS n FROM pg_class WHERE relname = 'grows'")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(tuples.n, 5000.0);
    drop(conn);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = custodian_database::analyze_stale(&pool, &["grows", "still"])
        .await
        .unwrap();
    assert!(again.is_empty(), "analyzed again: {again:?}");
    drop(pool);
    drop_database(&name).await;
}
