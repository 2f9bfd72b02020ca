//! PostgreSQL for every service: a pool of async diesel connections, the service's database
//! created when missing (developer machines and tests), and embedded migrations run at start.
//! Every connection honours libpq's TLS parameters in the URL ([`tls`]).

pub mod tls;

use custodian_telemetry::{
    config::Secret,
    health::{ProbeFuture, ReadinessProbe},
    ConfigError, Env,
};
use diesel::{sql_query, QueryableByName};
use diesel_async::{
    async_connection_wrapper::AsyncConnectionWrapper,
    pooled_connection::{
        deadpool::{Hook, HookError, Pool as DeadPool},
        AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
    },
    AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
};
use std::sync::Arc;

use diesel_migrations::{EmbeddedMigrations, MigrationHarness};
pub use tls::{Connector, SslMode};

pub use diesel_async::pooled_connection::deadpool::Object as PooledConnection;
pub use prepared::{prepared, Prepared};

mod prepared;

/// The connection pool every service shares between its handlers and background tasks.
pub type Pool = DeadPool<AsyncPgConnection>;

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("database url is malformed: {0}")]
    BadUrl(String),
    #[error("could not connect to PostgreSQL: {0}")]
    Connect(String),
    #[error("could not create database {name}: {reason}")]
    Create { name: String, reason: String },
    #[error("migrations failed: {0}")]
    Migrate(String),
    #[error("pool could not be built: {0}")]
    Pool(String),
}

/// `DATABASE_URL` (or `DATABASE_URL_FILE`, a mounted secret), `DATABASE_AUTO_CREATE` and
/// `DATABASE_POOL_SIZE`, read the same way by every service. The URL's `sslmode`,
/// `sslrootcert`, `sslcert` and `sslkey` are libpq's ([`tls`]).
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// May carry a password, hence a secret.
    pub url: Secret,
    /// Create the database when missing (developer machines, tests).
    pub auto_create: bool,
    pub pool_size: usize,
}

impl DatabaseSettings {
    /// `default_name` is the service's database on the local server (`custodian_<service>`).
    pub fn from_env(env: &Env, default_name: &str) -> Result<Self, ConfigError> {
        let pool_size: usize = env.parse("DATABASE_POOL_SIZE", 16)?;
        if pool_size == 0 {
            return Err(ConfigError::Invalid {
                name: "DATABASE_POOL_SIZE".into(),
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            url: env
                .secret("DATABASE_URL", "DATABASE_URL_FILE")?
                .unwrap_or_else(|| {
                    Secret::new(format!("postgres://postgres@127.0.0.1:5432/{default_name}"))
                }),
            auto_create: env.flag("DATABASE_AUTO_CREATE", true),
            pool_size,
        })
    }
}

/// Splits `postgres://host/db?x` into the server part and the database name.
fn split_url(url: &str) -> Result<(String, String), DatabaseError> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let slash = base
        .rfind('/')
        .ok_or_else(|| DatabaseError::BadUrl("no database name".into()))?;
    let name = &base[slash + 1..];
    if name.is_empty() || !base[..slash].contains("://") || base[..slash].ends_with('/') {
        return Err(DatabaseError::BadUrl("no database name".into()));
    }
    let server = match query {
        Some(q) => format!("{}/postgres?{q}", &base[..slash]),
        None => format!("{}/postgres", &base[..slash]),
    };
    Ok((server, name.to_string()))
}

#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    #[allow(dead_code)]
    one: i32,
}

/// Creates the database named in `url` if it does not exist (connecting to `postgres`).
pub async fn ensure_database(url: &str) -> Result<(), DatabaseError> {
    let (server, name) = split_url(url)?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(DatabaseError::BadUrl(format!(
            "database name {name:?} must be [A-Za-z0-9_]"
        )));
    }
    let mut conn = connect(&server).await?;
    let exists: Vec<Found> = sql_query("SELECT 1 AS one FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(&name)
        .load(&mut conn)
        .await
        .map_err(|e| DatabaseError::Create {
            name: name.clone(),
            reason: e.to_string(),
        })?;
    if exists.is_empty() {
        // The name was checked above: CREATE DATABASE takes no bind parameters.
        match sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .await
        {
            Ok(_) => tracing::info!(database = %name, "database created"),
            // Another service or test created it first.
            Err(e) if e.to_string().contains("already exists") => {}
            Err(e) => {
                return Err(DatabaseError::Create {
                    name,
                    reason: e.to_string(),
                })
            }
        }
    }
    Ok(())
}

/// The advisory lock every replica takes before migrating (advisory locks are per database):
/// replicas starting together migrate one after the other, and all but the first find nothing
/// left to do.
const MIGRATION_LOCK: i64 = 0x6375_7374_6f64_6961; // "custodia"

/// Runs the embedded migrations not yet applied, under [`MIGRATION_LOCK`]. Several sets (a
/// service's own and a shared crate's, like the outbox) may run against one database; their
/// version names differ.
pub async fn run_migrations(
    url: &str,
    migrations: EmbeddedMigrations,
) -> Result<(), DatabaseError> {
    // Opened here, over TLS as the URL says; diesel's migration harness is synchronous, so it
    // runs on a blocking thread through the wrapper.
    let conn = connect(url).await?;
    tokio::task::spawn_blocking(move || {
        let mut conn = AsyncConnectionWrapper::<AsyncPgConnection>::from(conn);
        // Session-level: released below, or by PostgreSQL when this connection ends however
        // the process does.
        diesel::RunQueryDsl::execute(
            sql_query("SELECT pg_advisory_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK),
            &mut conn,
        )
        .map_err(|e| DatabaseError::Migrate(format!("migration lock: {e}")))?;
        let migrated = conn
            .run_pending_migrations(migrations)
            .map(|_| ())
            .map_err(|e| DatabaseError::Migrate(e.to_string()));
        let _ = diesel::RunQueryDsl::execute(
            sql_query("SELECT pg_advisory_unlock($1)")
                .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK),
            &mut conn,
        );
        migrated
    })
    .await
    .map_err(|e| DatabaseError::Migrate(e.to_string()))?
}

/// A pooled connection not handed out for this long is asked `SELECT 1` before it is handed out
/// again (PostgreSQL may have restarted or dropped it meanwhile); one in steady use is not.
const VERIFY_AFTER_IDLE: std::time::Duration = std::time::Duration::from_secs(2);

/// Builds the pool. Connections are opened lazily; [`check`] proves the server answers.
///
/// deadpool's default check sends `SELECT 1` on every checkout: a round trip (~0.4 ms here) on
/// every request, to guard against a server that went away. Only a connection that sat idle can
/// have been dropped unnoticed, so only such a one is checked; a broken connection is never
/// reused either way.
pub fn pool(url: &str, max_size: usize) -> Result<Pool, DatabaseError> {
    let connector: tls::SharedConnector = Arc::new(Connector::new(url)?);
    let mut config = ManagerConfig::default();
    config.custom_setup = Box::new(move |_url| {
        let connector = connector.clone();
        Box::pin(async move { setup(&connector).await })
    });
    config.recycling_method = RecyclingMethod::Fast;
    let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(url, config);
    DeadPool::builder(manager)
        .max_size(max_size)
        .pre_recycle(Hook::async_fn(|conn: &mut AsyncPgConnection, metrics| {
            Box::pin(async move {
                if metrics.last_used() < VERIFY_AFTER_IDLE {
                    return Ok(());
                }
                conn.batch_execute("SELECT 1")
                    .await
                    .map_err(|e| HookError::Message(e.to_string().into()))
            })
        }))
        .build()
        .inspect(observe)
        .map_err(|e| DatabaseError::Pool(e.to_string()))
}

/// Counts the pool in the service's `db_pool_*` gauges until it is dropped (a weak reference:
/// the gauges never keep a pool, or its connections, alive).
fn observe(pool: &Pool) {
    let weak = pool.weak();
    custodian_telemetry::metrics::observe_pool(Box::new(move || {
        let status = weak.upgrade()?.status();
        Some(custodian_telemetry::metrics::PoolStatus {
            max_size: status.max_size,
            size: status.size,
            available: status.available,
            waiting: status.waiting,
        })
    }));
}

/// A pooled connection, with JIT compilation off.
///
/// - JIT: PostgreSQL compiles any query its planner costs above `jit_above_cost`, which a
///   broad search over a large table is, and spent 41 ms compiling a count that ran in 200
///   (measured at 750,000 resources). Short queries are all this suite runs.
/// - Plans: diesel prepares its statements once per connection, and after five executions
///   PostgreSQL may switch a prepared statement to a generic plan, which it keeps until the
///   table's statistics change. A plan made while a table was nearly empty (a fresh
///   deployment, the first minute of a bulk load) is a sequential scan: measured during a
///   150,000-resource load, the ledger's "which of these event ids are known" and anomaly's
///   "which are scored" ran as ~300 sequential scans each over 100,000 rows until autovacuum
///   analysed them. Planning every execution instead (`plan_cache_mode = force_custom_plan`)
///   cost 15 % of all CPU in a read benchmark. So plans stay PostgreSQL's choice, and every
///   service keeps its growing tables' statistics fresh itself ([`keep_statistics`]): an
///   `ANALYZE` invalidates the plans made on the old statistics.
async fn setup(connector: &Connector) -> diesel::ConnectionResult<AsyncPgConnection> {
    let mut conn = connector.connect().await?;
    conn.batch_execute("SET jit = off")
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    Ok(conn)
}

/// One connection to `url`, outside any pool (database creation, migrations, tools), over
/// TLS as the URL's `sslmode` says.
pub async fn connect(url: &str) -> Result<AsyncPgConnection, DatabaseError> {
    Connector::new(url)?
        .connect()
        .await
        .map_err(|e| DatabaseError::Connect(e.to_string()))
}

/// `SELECT 1` on a pooled connection.
pub async fn check(pool: &Pool) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    sql_query("SELECT 1")
        .execute(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Drops the database named in `url` (tests clean up after themselves).
pub async fn drop_database(url: &str) -> Result<(), DatabaseError> {
    let (server, name) = split_url(url)?;
    let mut conn = connect(&server).await?;
    sql_query(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .map_err(|e| DatabaseError::Create {
            name,
            reason: e.to_string(),
        })?;
    Ok(())
}

/// A readiness probe for `/readyz`.
pub struct PostgresProbe(pub Pool);

impl ReadinessProbe for PostgresProbe {
    fn name(&self) -> &'static str {
        "postgres"
    }
    fn check(&self) -> ProbeFuture {
        let pool = self.0.clone();
        Box::pin(async move { check(&pool).await })
    }
}

#[cfg(test)]
mod tests {
    use super::split_url;

    #[test]
    fn splits_database_urls() {
        let (server, name) = split_url("postgres://u@127.0.0.1:5432/custodian_records").unwrap();
        assert_eq!(server, "postgres://u@127.0.0.1:5432/postgres");
        assert_eq!(name, "custodian_records");
        let (server, _) = split_url("postgres://h/db?sslmode=disable").unwrap();
        assert_eq!(server, "postgres://h/postgres?sslmode=disable");
        assert!(split_url("postgres://h/").is_err());
    }
}

/// How often [`keep_statistics`] looks for tables whose statistics went stale.
pub const STATISTICS_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// The tables autovacuum would analyze now (its default thresholds: 50 rows plus 10% of the
/// table changed since the last analyze), whether or not autovacuum runs.
const STALE_TABLES: &str = "SELECT format('%I.%I', schemaname, relname) AS name \
     FROM pg_stat_user_tables \
     WHERE relname = ANY($1) AND n_mod_since_analyze > 50 + 0.1 * n_live_tup";

#[derive(QueryableByName)]
struct StaleTable {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// Analyzes those of `tables` whose statistics are stale, once.
pub async fn analyze_stale(pool: &Pool, tables: &[&str]) -> Result<Vec<String>, String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let stale: Vec<StaleTable> = sql_query(STALE_TABLES)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(tables)
        .load(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    let mut analyzed = Vec::with_capacity(stale.len());
    for table in stale {
        conn.batch_execute(&format!("ANALYZE {}", table.name))
            .await
            .map_err(|e| e.to_string())?;
        analyzed.push(table.name);
    }
    Ok(analyzed)
}

/// Keeps the statistics of a service's fast-growing tables fresh until `stop` resolves.
/// Plans follow statistics: a search planned on the statistics of a table that was nearly empty
/// (a fresh deployment, the first minutes of a load, a server whose autovacuum is off or behind)
/// walks every row of a parameter for every candidate, measured at 11.5 s instead of 50 ms
/// for one patient's 6,000 Observations. Autovacuum looks once a minute by default, and not
/// at all where it is off; this looks every [`STATISTICS_CHECK_EVERY`], with its thresholds.
pub async fn keep_statistics(
    pool: Pool,
    tables: &'static [&'static str],
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(STATISTICS_CHECK_EVERY) => {}
        }
        match analyze_stale(&pool, tables).await {
            Ok(analyzed) if !analyzed.is_empty() => {
                tracing::debug!(tables = ?analyzed, "analyzed tables whose statistics were stale");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not check table statistics"),
        }
    }
}
