//! Raw SQL that PostgreSQL parses and plans once per connection, not on every execution.
//!
//! diesel marks every `sql_query` unsafe to cache (its text may be built at run time), so
//! diesel-async sends it as an unnamed statement: parsed, analysed and planned each time. In the
//! profile of the create benchmark, parsing and planning were a fifth of all CPU on the machine,
//! most of it for the few fixed statements every write runs (index rows, access facts, outbox).
//! A [`Prepared`] statement's text is a `&'static str`, so diesel-async's per-connection cache
//! (keyed by text and bind types) holds at most one entry per statement in the source, and
//! PostgreSQL may settle on a generic plan after a few executions.
//!
//! Queries whose text is assembled at run time (FHIR searches) stay unprepared: their shapes are
//! unbounded and a generic plan would ignore the selectivity of their values.

use std::marker::PhantomData;

use diesel::{
    pg::Pg,
    query_builder::{AstPass, Query, QueryFragment, QueryId, SqlQuery},
    serialize::ToSql,
    sql_types::HasSqlType,
    QueryResult,
};

/// A raw statement with fixed text, cached as a prepared statement on each connection.
/// Build it with [`prepared`] and bind values as with `diesel::sql_query`.
#[derive(Debug, Clone)]
#[must_use = "queries are only executed when run"]
pub struct Prepared<Q>(Q);

/// `diesel::sql_query(sql)`, prepared once per connection.
pub fn prepared(sql: &'static str) -> Prepared<SqlQuery> {
    Prepared(diesel::sql_query(sql))
}

impl<Q> Prepared<Q> {
    /// Binds the next `$n` parameter, as `SqlQuery::bind`.
    pub fn bind<ST, V>(self, value: V) -> Prepared<Bound<Q, V, ST>> {
        Prepared(Bound {
            query: self.0,
            value,
            sql_type: PhantomData,
        })
    }
}

/// A statement and the value of its next parameter (diesel's own `UncheckedBind` cannot be
/// named outside diesel).
#[derive(Debug, Clone)]
pub struct Bound<Q, V, ST> {
    query: Q,
    value: V,
    sql_type: PhantomData<ST>,
}

impl<Q, V, ST> QueryFragment<Pg> for Bound<Q, V, ST>
where
    Q: QueryFragment<Pg>,
    Pg: HasSqlType<ST>,
    V: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.query.walk_ast(pass.reborrow())?;
        // The `$n` is in the statement's text already.
        pass.push_bind_param_value_only(&self.value)
    }
}

impl<Q, V, ST> Query for Bound<Q, V, ST> {
    type SqlType = diesel::sql_types::Untyped;
}

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    // The one difference from `sql_query`: the text is static, so caching is bounded.
    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    type QueryId = ();
    // Cached by its text, not by a Rust type (which binds would not distinguish).
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}
