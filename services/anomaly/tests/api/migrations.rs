//! Each migration's `down.sql` undoes its `up.sql`.

use anomaly::startup::MIGRATIONS;
use diesel::Connection;
use diesel_async::{async_connection_wrapper::AsyncConnectionWrapper, AsyncPgConnection};
use diesel_migrations::MigrationHarness;
use uuid::Uuid;

#[actix_web::test]
async fn migrations_go_down_and_up_again() {
    let url = format!(
        "postgres://postgres@127.0.0.1:5432/anomaly_test_{}",
        Uuid::new_v4().simple()
    );
    custodian_database::ensure_database(&url)
        .await
        .expect("database");
    let checked = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            AsyncConnectionWrapper::<AsyncPgConnection>::establish(&checked).expect("connection");
        let applied = conn.run_pending_migrations(MIGRATIONS).expect("up").len();
        assert!(applied >= 1);
        let reverted = conn.revert_all_migrations(MIGRATIONS).expect("down").len();
        assert_eq!(reverted, applied);
        assert_eq!(
            conn.run_pending_migrations(MIGRATIONS)
                .expect("up again")
                .len(),
            applied
        );
    })
    .await
    .expect("migration task");
    custodian_database::drop_database(&url).await.expect("drop");
}
