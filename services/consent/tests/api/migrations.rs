//! Every `down.sql` undoes its `up.sql`.

use consent::startup::MIGRATIONS;
use diesel::{sql_query, sql_types::Text, QueryableByName, RunQueryDsl};
use diesel_async::{async_connection_wrapper::AsyncConnectionWrapper, AsyncPgConnection};
use diesel_migrations::MigrationHarness;

#[derive(QueryableByName)]
struct Table {
    #[diesel(sql_type = Text)]
    name: String,
}

fn tables(conn: &mut AsyncConnectionWrapper<AsyncPgConnection>) -> Vec<String> {
    let mut names: Vec<String> =
        sql_query("SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'")
            .load::<Table>(conn)
            .expect("tables")
            .into_iter()
            .map(|t| t.name)
            .filter(|n| !n.starts_with("__diesel"))
            .collect();
    names.sort();
    names
}

#[actix_web::test]
async fn down_migrations_undo_the_up_migrations() {
    let url = format!(
        "postgres://postgres@127.0.0.1:5432/consent_test_{}",
        uuid::Uuid::new_v4().simple()
    );
    custodian_database::ensure_database(&url)
        .await
        .expect("database");
    let check_url = url.clone();
    tokio::task::spawn_blocking(move || {
        let mut conn =
            <AsyncConnectionWrapper<AsyncPgConnection> as diesel::Connection>::establish(
                &check_url,
            )
            .expect("connect");
        let before = tables(&mut conn);
        conn.run_pending_migrations(MIGRATIONS).expect("up");
        let after_up = tables(&mut conn);
        assert!(
            after_up.contains(&"consents".to_string())
                && after_up.contains(&"consent_history".to_string()),
            "{after_up:?}"
        );
        conn.revert_all_migrations(MIGRATIONS).expect("down");
        assert_eq!(tables(&mut conn), before, "down left tables behind");
        conn.run_pending_migrations(MIGRATIONS).expect("up again");
        assert_eq!(tables(&mut conn), after_up);
    })
    .await
    .expect("the migration check ran");
    custodian_database::drop_database(&url).await.expect("drop");
}
