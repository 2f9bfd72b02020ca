//! Replicas starting together migrate one database once, on the real PostgreSQL
//! (`DATABASE_SERVER_URL`, default the local server).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use custodian_database::{ensure_database, run_migrations};
use diesel::sql_query;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

const SLOW: EmbeddedMigrations = embed_migrations!("tests/migrations");

#[tokio::test]
async fn replicas_starting_together_migrate_once() {
    let server = std::env::var("DATABASE_SERVER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let name = format!("custodian_lock_{}", uuid::Uuid::new_v4().simple());
    let url = format!("{server}/{name}");
    ensure_database(&url).await.unwrap();
    let replicas: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { run_migrations(&url, SLOW).await })
        })
        .collect();
    for replica in replicas {
        replica
            .await
            .unwrap()
            .expect("every replica starts: the others' migration is waited for, not repeated");
    }
    let mut admin = AsyncPgConnection::establish(&format!("{server}/postgres"))
        .await
        .unwrap();
    sql_query(format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
}
