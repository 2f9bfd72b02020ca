use diesel::{sql_query, QueryableByName};
use diesel_async::{async_connection_wrapper::AsyncConnectionWrapper, AsyncPgConnection};
use diesel_migrations::MigrationHarness;
use uuid::Uuid;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn ledger_tables(conn: &mut AsyncConnectionWrapper<AsyncPgConnection>) -> i64 {
    use diesel::RunQueryDsl;
    let rows: Vec<Count> = sql_query(
        "SELECT count(*) AS n FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name IN ('leaves', 'checkpoints', 'signing_key', 'tiles')",
    )
    .load(conn)
    .expect("count tables");
    rows[0].n
}

#[actix_web::test]
async fn every_down_migration_undoes_its_up() {
    let url = format!(
        "postgres://postgres@127.0.0.1:5432/ledger_test_{}",
        Uuid::new_v4().simple()
    );
    custodian_database::ensure_database(&url)
        .await
        .expect("database created");
    let check = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&check)
                .expect("connect");
        conn.run_pending_migrations(ledger::startup::MIGRATIONS)
            .expect("up");
        assert_eq!(ledger_tables(&mut conn), 4);
        conn.revert_all_migrations(ledger::startup::MIGRATIONS)
            .expect("down");
        assert_eq!(ledger_tables(&mut conn), 0);
        conn.run_pending_migrations(ledger::startup::MIGRATIONS)
            .expect("up again");
        assert_eq!(ledger_tables(&mut conn), 4);
    })
    .await
    .expect("migration checks");
    custodian_database::drop_database(&url)
        .await
        .expect("dropped");
}
