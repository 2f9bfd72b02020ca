//! `login_lockouts`: failed logins per account or client, and lockouts. Every change is one
//! statement, so concurrent logins on several replicas count every failure and exactly one of
//! them sets a lockout.

use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::{
    prelude::*,
    sql_query,
    sql_types::{Bool, Double, Integer, Nullable, Text, Timestamptz},
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::schema::login_lockouts;

/// Whose logins a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    Client,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Client => "client",
        }
    }

    /// `User/<id>` or `Client/<id>`, as access events name the account acted on.
    pub fn account_reference(self, id: &str) -> String {
        match self {
            PrincipalKind::User => format!("User/{id}"),
            PrincipalKind::Client => format!("Client/{id}"),
        }
    }

    fn parse(raw: &str) -> Option<Self> {
        match raw {
            "user" => Some(PrincipalKind::User),
            "client" => Some(PrincipalKind::Client),
            _ => None,
        }
    }
}

/// What recording a failure did.
#[derive(Debug, Clone, QueryableByName)]
pub struct Failure {
    /// Failures counted in the current window (0 right after a lockout).
    #[diesel(sql_type = Integer)]
    pub failures: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub locked_until: Option<DateTime<Utc>>,
    /// This failure set the lockout (exactly one concurrent failure does).
    #[diesel(sql_type = Bool)]
    pub newly_locked: bool,
}

/// Seconds as PostgreSQL's `make_interval(secs => ...)` takes them.
fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Counts a failed login of `kind`/`id`; the `max_failures`-th within `window` locks it out for
/// `lockout` (and starts the count again).
pub async fn record_failure(
    conn: &mut AsyncPgConnection,
    kind: PrincipalKind,
    id: &str,
    max_failures: u32,
    window: Duration,
    lockout: Duration,
) -> QueryResult<Failure> {
    let max = i32::try_from(max_failures).unwrap_or(i32::MAX);
    sql_query(
        "INSERT INTO login_lockouts AS l
             (principal_kind, principal_id, failures, window_started_at, locked_until, locked_at)
         VALUES ($1, $2,
             CASE WHEN 1 >= $3 THEN 0 ELSE 1 END,
             now(),
             CASE WHEN 1 >= $3 THEN now() + make_interval(secs => $5) END,
             CASE WHEN 1 >= $3 THEN now() END)
         ON CONFLICT (principal_kind, principal_id) DO UPDATE SET
             failures = CASE
                 WHEN (l.locked_until IS NULL OR l.locked_until <= now())
                  AND (CASE WHEN l.window_started_at <= now() - make_interval(secs => $4)
                            THEN 1 ELSE l.failures + 1 END) >= $3
                 THEN 0
                 WHEN l.window_started_at <= now() - make_interval(secs => $4) THEN 1
                 ELSE l.failures + 1 END,
             window_started_at = CASE
                 WHEN l.window_started_at <= now() - make_interval(secs => $4)
                   OR ((l.locked_until IS NULL OR l.locked_until <= now()) AND l.failures + 1 >= $3)
                 THEN now()
                 ELSE l.window_started_at END,
             locked_until = CASE
                 WHEN (l.locked_until IS NULL OR l.locked_until <= now())
                  AND (CASE WHEN l.window_started_at <= now() - make_interval(secs => $4)
                            THEN 1 ELSE l.failures + 1 END) >= $3
                 THEN now() + make_interval(secs => $5)
                 ELSE l.locked_until END,
             locked_at = CASE
                 WHEN (l.locked_until IS NULL OR l.locked_until <= now())
                  AND (CASE WHEN l.window_started_at <= now() - make_interval(secs => $4)
                            THEN 1 ELSE l.failures + 1 END) >= $3
                 THEN now()
                 ELSE l.locked_at END
         RETURNING failures, locked_until,
             (locked_at IS NOT DISTINCT FROM now() AND locked_until > now()) AS newly_locked",
    )
    .bind::<Text, _>(kind.as_str())
    .bind::<Text, _>(id)
    .bind::<Integer, _>(max)
    .bind::<Double, _>(secs(window))
    .bind::<Double, _>(secs(lockout))
    .get_result(conn)
    .await
}

/// When `kind`/`id` is locked out now, until when.
pub async fn locked_until(
    conn: &mut AsyncPgConnection,
    kind: PrincipalKind,
    id: &str,
) -> QueryResult<Option<DateTime<Utc>>> {
    login_lockouts::table
        .filter(login_lockouts::principal_kind.eq(kind.as_str()))
        .filter(login_lockouts::principal_id.eq(id))
        .filter(login_lockouts::locked_until.gt(diesel::dsl::now))
        .select(login_lockouts::locked_until)
        .first::<Option<DateTime<Utc>>>(conn)
        .await
        .optional()
        .map(Option::flatten)
}

/// After a successful login: the failures so far are forgiven (a lockout is not touched).
pub async fn forgive(
    conn: &mut AsyncPgConnection,
    kind: PrincipalKind,
    id: &str,
) -> QueryResult<()> {
    diesel::update(
        login_lockouts::table
            .filter(login_lockouts::principal_kind.eq(kind.as_str()))
            .filter(login_lockouts::principal_id.eq(id))
            .filter(login_lockouts::failures.gt(0)),
    )
    .set((
        login_lockouts::failures.eq(0),
        login_lockouts::window_started_at.eq(diesel::dsl::now),
    ))
    .execute(conn)
    .await
    .map(|_| ())
}

/// An administrator lifts a lockout and forgives the failures. Returns whether a lockout was
/// in force.
pub async fn unlock(
    conn: &mut AsyncPgConnection,
    kind: PrincipalKind,
    id: &str,
) -> QueryResult<bool> {
    let deleted: Vec<Option<DateTime<Utc>>> = diesel::delete(
        login_lockouts::table
            .filter(login_lockouts::principal_kind.eq(kind.as_str()))
            .filter(login_lockouts::principal_id.eq(id)),
    )
    .returning(login_lockouts::locked_until)
    .get_results(conn)
    .await?;
    let now = Utc::now();
    Ok(deleted.into_iter().flatten().any(|until| until > now))
}

/// Lockouts whose time has passed are lifted; returns whose. Each is returned by exactly one
/// replica (the update takes the row).
pub async fn expire(conn: &mut AsyncPgConnection) -> QueryResult<Vec<(PrincipalKind, String)>> {
    let lifted: Vec<(String, String)> = diesel::update(
        login_lockouts::table.filter(login_lockouts::locked_until.le(diesel::dsl::now)),
    )
    .set((
        login_lockouts::locked_until.eq(None::<DateTime<Utc>>),
        login_lockouts::locked_at.eq(None::<DateTime<Utc>>),
    ))
    .returning((login_lockouts::principal_kind, login_lockouts::principal_id))
    .get_results(conn)
    .await?;
    Ok(lifted
        .into_iter()
        .filter_map(|(kind, id)| PrincipalKind::parse(&kind).map(|k| (k, id)))
        .collect())
}

/// Forgets rows with no lockout whose window has passed.
pub async fn purge(conn: &mut AsyncPgConnection, window: Duration) -> QueryResult<usize> {
    sql_query(
        "DELETE FROM login_lockouts
         WHERE locked_until IS NULL AND window_started_at <= now() - make_interval(secs => $1)",
    )
    .bind::<Double, _>(secs(window))
    .execute(conn)
    .await
}
