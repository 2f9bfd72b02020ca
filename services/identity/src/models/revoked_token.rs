use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::revoked_tokens;

/// Records a revoked token; `false` when it was already revoked.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    jti: &str,
    expires_at: DateTime<Utc>,
) -> QueryResult<bool> {
    diesel::insert_into(revoked_tokens::table)
        .values((
            revoked_tokens::jti.eq(jti),
            revoked_tokens::expires_at.eq(expires_at),
        ))
        .on_conflict(revoked_tokens::jti)
        .do_nothing()
        .execute(conn)
        .await
        .map(|n| n == 1)
}

/// Forgets revocations of tokens that have expired anyway.
pub async fn purge_expired(conn: &mut AsyncPgConnection) -> QueryResult<usize> {
    diesel::delete(revoked_tokens::table.filter(revoked_tokens::expires_at.lt(Utc::now())))
        .execute(conn)
        .await
}

/// Revocations still in force, for the deny list at start.
pub async fn active(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(String, DateTime<Utc>)>> {
    revoked_tokens::table
        .filter(revoked_tokens::expires_at.gt(Utc::now()))
        .select((revoked_tokens::jti, revoked_tokens::expires_at))
        .load(conn)
        .await
}
