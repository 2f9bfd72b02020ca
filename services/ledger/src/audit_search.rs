//! The `AuditEvent` search in PostgreSQL: one statement over `leaves`, built from the parsed
//! [`AuditSearch`] with bound parameters only, paged by keyset (the previous page's last leaf),
//! never by offset, so a page costs the same at any depth and appends never shift pages.
//!
//! Each filter has an index that keeps index order (`(patient_ref, idx)`, `(actor_id, idx)`,
//! `(action, idx)`, `(outcome, idx)`, `(actor_practitioner, idx)`; `(time, idx)` for dates).

use chrono::{DateTime, Utc};
use diesel::{
    pg::Pg,
    prelude::*,
    query_builder::{BoxedSqlQuery, SqlQuery},
    serialize::ToSql,
    sql_query,
    sql_types::{Array, BigInt, Bytea, HasSqlType, Text, Timestamptz},
    QueryResult, QueryableByName,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{
    domain::{
        audit_search::{AgentRef, AuditSearch, Cursor, Sort, TimeFilter},
        Viewer,
    },
    schema::leaves,
    storage::LeafRow,
};

/// What a search returns of a leaf.
#[derive(Debug, Clone, QueryableByName)]
pub struct AuditRow {
    #[diesel(sql_type = BigInt)]
    pub idx: i64,
    #[diesel(sql_type = Bytea)]
    pub leaf_hash: Vec<u8>,
    #[diesel(sql_type = Text)]
    pub payload: String,
    #[diesel(sql_type = Timestamptz)]
    pub time: DateTime<Utc>,
}

/// SQL text with `$n` placeholders numbered as values are bound.
struct Statement<'a> {
    query: BoxedSqlQuery<'a, Pg, SqlQuery>,
    binds: usize,
}

impl<'a> Statement<'a> {
    fn new(sql: &str) -> Self {
        Self {
            query: sql_query(sql).into_boxed(),
            binds: 0,
        }
    }

    fn sql(mut self, sql: &str) -> Self {
        self.query = self.query.sql(sql);
        self
    }

    fn bind<T, V>(mut self, value: V) -> Self
    where
        Pg: HasSqlType<T>,
        V: ToSql<T, Pg> + Send + 'a,
        T: Send + 'a,
    {
        self.binds += 1;
        self.query = self
            .query
            .sql(format!("${}", self.binds))
            .bind::<T, V>(value);
        self
    }

    /// `AND column = $n`, or `= ANY($n)` for several values (one value keeps the plain
    /// equality, which the planner matches with the index's order).
    fn any_of(self, column: &str, values: Vec<String>) -> Self {
        if values.len() == 1 {
            let value = values.into_iter().next().unwrap_or_default();
            self.sql(&format!(" AND {column} = "))
                .bind::<Text, _>(value)
        } else {
            self.sql(&format!(" AND {column} = ANY("))
                .bind::<Array<Text>, _>(values)
                .sql(")")
        }
    }
}

/// Up to `search.count + 1` matching leaves in the search's order (one more than a page says
/// whether there is a next).
pub async fn search(
    conn: &mut AsyncPgConnection,
    viewer: &Viewer,
    search: &AuditSearch,
) -> QueryResult<Vec<AuditRow>> {
    let mut st = Statement::new("SELECT idx, leaf_hash, payload, time FROM leaves WHERE TRUE");
    st = match viewer {
        Viewer::Everything => st,
        Viewer::Patient(p) => st.any_of("patient_ref", vec![p.as_str().to_string()]),
        Viewer::Actor(a) => st.any_of("actor_id", vec![a.clone()]),
    };
    for patients in &search.patients {
        st = st.any_of(
            "patient_ref",
            patients.iter().map(|p| p.as_str().to_string()).collect(),
        );
    }
    for agents in &search.agents {
        let mut users = Vec::new();
        let mut practitioners = Vec::new();
        for agent in agents {
            match agent {
                AgentRef::User(id) => users.push(id.clone()),
                AgentRef::Practitioner(p) => practitioners.push(p.as_str().to_string()),
            }
        }
        st = st
            .sql(" AND (actor_id = ANY(")
            .bind::<Array<Text>, _>(users)
            .sql(") OR actor_practitioner = ANY(")
            .bind::<Array<Text>, _>(practitioners)
            .sql("))");
    }
    for time in &search.times {
        st = match *time {
            TimeFilter::Within { from, before } => {
                if let Some(from) = from {
                    st = st.sql(" AND time >= ").bind::<Timestamptz, _>(from);
                }
                if let Some(before) = before {
                    st = st.sql(" AND time < ").bind::<Timestamptz, _>(before);
                }
                st
            }
            TimeFilter::Outside { from, before } => st
                .sql(" AND (time < ")
                .bind::<Timestamptz, _>(from)
                .sql(" OR time >= ")
                .bind::<Timestamptz, _>(before)
                .sql(")"),
        };
    }
    for actions in &search.actions {
        st = st.any_of(
            "action",
            actions.iter().map(|a| a.as_str().to_string()).collect(),
        );
    }
    for outcomes in &search.outcomes {
        st = st.any_of(
            "outcome",
            outcomes.iter().map(|o| o.as_str().to_string()).collect(),
        );
    }
    // The keyset: strictly after the previous page's last leaf in this order.
    // The keyset: strictly after the previous page's last leaf in this order.
    st = match (search.cursor, search.sort) {
        (None, _) => st,
        (Some(Cursor::Index(index)), _) => st.sql(" AND idx < ").bind::<BigInt, _>(index),
        (Some(Cursor::Date { time, index }), Sort::DateAscending) => st
            .sql(" AND (time, idx) > (")
            .bind::<Timestamptz, _>(time)
            .sql(", ")
            .bind::<BigInt, _>(index)
            .sql(")"),
        (Some(Cursor::Date { time, index }), _) => st
            .sql(" AND (time, idx) < (")
            .bind::<Timestamptz, _>(time)
            .sql(", ")
            .bind::<BigInt, _>(index)
            .sql(")"),
    };
    st = st.sql(match search.sort {
        Sort::IndexDescending => " ORDER BY idx DESC",
        Sort::DateDescending => " ORDER BY time DESC, idx DESC",
        Sort::DateAscending => " ORDER BY time ASC, idx ASC",
    });
    st = st.sql(" LIMIT ").bind::<BigInt, _>(search.count + 1);
    st.query.load(conn).await
}

/// The leaf of an event (`event_id` is unique: an event is appended once).
pub async fn by_event_id(
    conn: &mut AsyncPgConnection,
    event_id: Uuid,
) -> QueryResult<Option<LeafRow>> {
    leaves::table
        .filter(leaves::event_id.eq(event_id))
        .select(LeafRow::as_select())
        .first(conn)
        .await
        .optional()
}
