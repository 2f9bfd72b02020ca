//! `prepared` statements are parsed once per connection and reused; `sql_query` ones are not.
//! On the real PostgreSQL (`DATABASE_SERVER_URL`, default the local server).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use custodian_database::prepared;
use diesel::{
    sql_query,
    sql_types::{Array, BigInt, Integer, Nullable, Text},
    QueryableByName,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

#[derive(QueryableByName, Debug, PartialEq)]
struct Sum {
    #[diesel(sql_type = Integer)]
    n: i32,
    #[diesel(sql_type = Nullable<Text>)]
    label: Option<String>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

fn server() -> String {
    std::env::var("DATABASE_SERVER_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// How many statements prepared on this connection have exactly this text.
async fn prepared_with_text(conn: &mut AsyncPgConnection, text: &str) -> i64 {
    sql_query("SELECT count(*) AS count FROM pg_prepared_statements WHERE statement = $1")
        .bind::<Text, _>(text)
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .count
}

const ADD: &str = "SELECT $1::int4 + array_length($2::int4[], 1) AS n, $3::text AS label";

#[tokio::test]
async fn a_prepared_statement_is_parsed_once_and_binds_every_parameter() {
    let mut conn = AsyncPgConnection::establish(&format!("{}/postgres", server()))
        .await
        .unwrap();
    for (i, label) in [(1, Some("a")), (2, None), (3, Some("c"))] {
        let row: Sum = prepared(ADD)
            .bind::<Integer, _>(i)
            .bind::<Array<Integer>, _>(vec![7, 8])
            .bind::<Nullable<Text>, _>(label)
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            row,
            Sum {
                n: i + 2,
                label: label.map(str::to_string)
            }
        );
    }
    assert_eq!(
        prepared_with_text(&mut conn, ADD).await,
        1,
        "three executions share one prepared statement"
    );

    // The same text through diesel's `sql_query` is sent unnamed every time: never kept.
    const OTHER: &str = "SELECT $1::int4 + 40 AS n, NULL::text AS label";
    for _ in 0..3 {
        let row: Sum = sql_query(OTHER)
            .bind::<Integer, _>(2)
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(row.n, 42);
    }
    assert_eq!(prepared_with_text(&mut conn, OTHER).await, 0);
}

#[tokio::test]
async fn errors_of_a_prepared_statement_reach_the_caller() {
    let mut conn = AsyncPgConnection::establish(&format!("{}/postgres", server()))
        .await
        .unwrap();
    let err = prepared("SELECT 1 / $1::int4 AS n, NULL::text AS label")
        .bind::<Integer, _>(0)
        .get_result::<Sum>(&mut conn)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("division by zero"), "{err}");
    // The connection is still usable and the statement too.
    let row: Sum = prepared("SELECT 1 / $1::int4 AS n, NULL::text AS label")
        .bind::<Integer, _>(1)
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(row.n, 1);
}
