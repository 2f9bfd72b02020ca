use diesel_async::{async_connection_wrapper::AsyncConnectionWrapper, AsyncPgConnection};
use diesel_migrations::MigrationHarness;
use records::startup::MIGRATIONS;

#[tokio::test]
async fn down_migrations_undo_the_up_ones() {
    let url = format!(
        "postgres://postgres@127.0.0.1:5432/records_test_{}",
        uuid::Uuid::new_v4().simple()
    );
    custodian_database::ensure_database(&url).await.unwrap();
    let tables = |conn: &mut AsyncConnectionWrapper<AsyncPgConnection>| -> Vec<String> {
        use diesel::{sql_query, sql_types::Text, QueryableByName, RunQueryDsl};
        #[derive(QueryableByName)]
        struct T {
            #[diesel(sql_type = Text)]
            tablename: String,
        }
        sql_query("SELECT tablename::text AS tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            .load::<T>(conn)
            .unwrap()
            .into_iter()
            .map(|t| t.tablename)
            .filter(|t| !t.starts_with("__diesel"))
            .collect()
    };
    let u = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(&u)
                .unwrap();
        let before = tables(&mut conn);
        conn.run_pending_migrations(MIGRATIONS).unwrap();
        let up = tables(&mut conn);
        for t in ["resource_versions", "resources", "search_index"] {
            assert!(up.contains(&t.to_string()), "{t} missing after up");
        }
        conn.revert_all_migrations(MIGRATIONS).unwrap();
        assert_eq!(tables(&mut conn), before);
        conn.run_pending_migrations(MIGRATIONS).unwrap();
        assert_eq!(tables(&mut conn), up);
    })
    .await
    .unwrap();
    let _ = custodian_database::drop_database(&url).await;
}
