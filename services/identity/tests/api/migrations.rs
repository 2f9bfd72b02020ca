use diesel::{sql_query, QueryableByName};
use diesel_async::{
    async_connection_wrapper::AsyncConnectionWrapper, AsyncPgConnection, RunQueryDsl,
};
use diesel_migrations::MigrationHarness;
use identity::startup::MIGRATIONS;

#[derive(QueryableByName)]
struct Tables {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

async fn identity_tables(url: &str) -> i64 {
    use diesel_async::AsyncConnection;
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let found: Vec<Tables> = sql_query(
        "SELECT count(*) AS count FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_name IN ('organizations', 'users', 'oauth_clients', 'signing_keys', 'revoked_tokens', 'login_lockouts')",
    )
    .load(&mut conn)
    .await
    .unwrap();
    found[0].count
}

#[actix_web::test]
async fn every_down_migration_undoes_its_up() {
    let url = format!(
        "postgres://postgres@127.0.0.1:5432/identity_test_{}",
        uuid::Uuid::new_v4().simple()
    );
    custodian_database::ensure_database(&url).await.unwrap();
    custodian_database::run_migrations(&url, MIGRATIONS)
        .await
        .unwrap();
    assert_eq!(identity_tables(&url).await, 6);

    let revert_url = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(
                &revert_url,
            )
            .unwrap();
        conn.revert_all_migrations(MIGRATIONS).unwrap();
    })
    .await
    .unwrap();
    assert_eq!(identity_tables(&url).await, 0);

    // And up again works on the reverted database.
    custodian_database::run_migrations(&url, MIGRATIONS)
        .await
        .unwrap();
    assert_eq!(identity_tables(&url).await, 6);
    custodian_database::drop_database(&url).await.unwrap();
}
