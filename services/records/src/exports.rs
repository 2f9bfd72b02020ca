//! Bulk Data `$export` jobs and their NDJSON parts in records' database. A part is sealed with
//! the records key like a resource version (its address `export/{job}/{seq}` as associated
//! data), so exported data is never at rest in clear. A finished job expires (its
//! `expires_at`, the retention after it finished): it then answers as unknown, and
//! [`sweep`] deletes it with its files.

use std::time::Duration;

use chrono::{DateTime, Utc};
use custodian_database::Pool;
use diesel::{
    sql_types::{Double, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid},
    OptionalExtension, QueryableByName,
};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{crypto::RecordCipher, error::RecordsError};

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobStatus {
    InProgress,
    Complete,
    Failed,
}

impl JobStatus {
    fn as_str(self) -> &'static str {
        match self {
            JobStatus::InProgress => "in-progress",
            JobStatus::Complete => "complete",
            JobStatus::Failed => "failed",
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            "complete" => JobStatus::Complete,
            "in-progress" => JobStatus::InProgress,
            _ => JobStatus::Failed,
        }
    }
}

#[derive(Debug, Clone, QueryableByName)]
struct JobRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    requester: String,
    #[diesel(sql_type = Text)]
    request_url: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Text)]
    progress: String,
    #[diesel(sql_type = Nullable<Text>)]
    error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    transaction_time: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    expires_at: Option<DateTime<Utc>>,
}

/// One export job.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: Uuid,
    pub requester: String,
    pub request_url: String,
    pub status: JobStatus,
    pub progress: String,
    pub error: Option<String>,
    pub transaction_time: DateTime<Utc>,
    /// When it and its files stop being served (set when it finishes).
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<JobRow> for Job {
    fn from(row: JobRow) -> Self {
        Job {
            id: row.id,
            requester: row.requester,
            request_url: row.request_url,
            status: JobStatus::parse(&row.status),
            progress: row.progress,
            error: row.error,
            transaction_time: row.transaction_time,
            expires_at: row.expires_at,
        }
    }
}

/// Which list of the manifest a part is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartKind {
    /// `output`: exported resources.
    Output,
    /// `error`: OperationOutcomes about the export.
    Error,
}

impl PartKind {
    fn as_str(self) -> &'static str {
        match self {
            PartKind::Output => "output",
            PartKind::Error => "error",
        }
    }
}

/// One NDJSON part of a finished job (without its body).
#[derive(Debug, Clone, QueryableByName)]
pub struct Part {
    #[diesel(sql_type = Integer)]
    pub seq: i32,
    #[diesel(sql_type = Text)]
    pub resource_type: String,
    #[diesel(sql_type = Integer)]
    pub resources: i32,
    #[diesel(sql_type = Text)]
    kind: String,
}

impl Part {
    pub fn kind(&self) -> PartKind {
        if self.kind == "error" {
            PartKind::Error
        } else {
            PartKind::Output
        }
    }
}

#[derive(QueryableByName)]
struct Body {
    #[diesel(sql_type = diesel::sql_types::Bytea)]
    body: Vec<u8>,
}

fn aad(job: Uuid, seq: i32) -> String {
    format!("export/{job}/{seq}")
}

pub async fn create_job(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    requester: &str,
    request_url: &str,
    transaction_time: DateTime<Utc>,
) -> Result<(), RecordsError> {
    diesel::sql_query(
        "INSERT INTO export_jobs (id, requester, request_url, status, transaction_time) \
         VALUES ($1, $2, $3, 'in-progress', $4)",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(requester)
    .bind::<Text, _>(request_url)
    .bind::<Timestamptz, _>(transaction_time)
    .execute(conn)
    .await?;
    Ok(())
}

/// The job `id`, unless it expired (the sweep may not have deleted it yet).
pub async fn find_job(conn: &mut AsyncPgConnection, id: Uuid) -> Result<Option<Job>, RecordsError> {
    let row: Option<JobRow> = diesel::sql_query(
        "SELECT id, requester, request_url, status, progress, error, transaction_time, expires_at \
         FROM export_jobs WHERE id = $1 AND (expires_at IS NULL OR expires_at > now())",
    )
    .bind::<SqlUuid, _>(id)
    .get_result(conn)
    .await
    .optional()?;
    Ok(row.map(Job::from))
}

pub async fn set_progress(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    progress: &str,
) -> Result<(), RecordsError> {
    diesel::sql_query("UPDATE export_jobs SET progress = $2, heartbeat = now() WHERE id = $1")
        .bind::<SqlUuid, _>(id)
        .bind::<Text, _>(progress)
        .execute(conn)
        .await?;
    Ok(())
}

fn seconds(retention: Duration) -> f64 {
    retention.as_secs_f64()
}

/// Ends a job, to expire `retention` from now; `false` when it no longer exists (deleted by
/// its requester meanwhile).
pub async fn finish_job(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    status: JobStatus,
    error: Option<&str>,
    retention: Duration,
) -> Result<bool, RecordsError> {
    let n = diesel::sql_query(
        "UPDATE export_jobs SET status = $2, error = $3, finished_at = now(), \
         expires_at = now() + make_interval(secs => $4) \
         WHERE id = $1 AND status = 'in-progress'",
    )
    .bind::<SqlUuid, _>(id)
    .bind::<Text, _>(status.as_str())
    .bind::<Nullable<Text>, _>(error)
    .bind::<Double, _>(seconds(retention))
    .execute(conn)
    .await?;
    Ok(n == 1)
}

pub async fn delete_job(conn: &mut AsyncPgConnection, id: Uuid) -> Result<bool, RecordsError> {
    let n = diesel::sql_query("DELETE FROM export_jobs WHERE id = $1")
        .bind::<SqlUuid, _>(id)
        .execute(conn)
        .await?;
    Ok(n == 1)
}

/// How long a running job may go without a heartbeat before it counts as interrupted.
pub const STALE_AFTER_SECONDS: i64 = 300;

/// Removes a job's files (it failed after writing some).
pub async fn delete_parts(conn: &mut AsyncPgConnection, job: Uuid) -> Result<(), RecordsError> {
    diesel::sql_query("DELETE FROM export_files WHERE job_id = $1")
        .bind::<SqlUuid, _>(job)
        .execute(conn)
        .await?;
    Ok(())
}

/// Jobs whose runner stopped (a restart, a crash): nobody will finish them, and their data
/// was never handed out, so no access happened.
pub async fn fail_interrupted(
    conn: &mut AsyncPgConnection,
    retention: Duration,
) -> Result<usize, RecordsError> {
    Ok(diesel::sql_query(
        "UPDATE export_jobs SET status = 'failed', finished_at = now(), \
         expires_at = now() + make_interval(secs => $2), \
         error = 'the export was interrupted (its runner stopped); kick it off again' \
         WHERE status = 'in-progress' AND heartbeat < now() - make_interval(secs => $1)",
    )
    .bind::<Double, _>(STALE_AFTER_SECONDS as f64)
    .bind::<Double, _>(seconds(retention))
    .execute(conn)
    .await?)
}

/// Deletes the expired jobs, their files and patients with them (cascade).
pub async fn delete_expired(conn: &mut AsyncPgConnection) -> Result<usize, RecordsError> {
    Ok(
        diesel::sql_query("DELETE FROM export_jobs WHERE expires_at <= now()")
            .execute(conn)
            .await?,
    )
}

/// How often [`sweep`] runs: often enough that an expired job's rows do not outlive it by
/// much, never more than every second.
pub fn sweep_interval(retention: Duration) -> Duration {
    (retention / 2).clamp(Duration::from_secs(1), Duration::from_secs(300))
}

/// The runner's housekeeping until `stop`: fails interrupted jobs and deletes expired ones.
/// Errors are logged and retried at the next round (the database may be away for a while).
pub async fn sweep(pool: Pool, retention: Duration, stop: CancellationToken) {
    let every = sweep_interval(retention);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
        let mut conn = match pool.get().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "export sweep: no database connection");
                continue;
            }
        };
        let swept = async {
            let failed = fail_interrupted(&mut conn, retention).await?;
            let deleted = delete_expired(&mut conn).await?;
            Ok::<_, RecordsError>((failed, deleted))
        }
        .await;
        match swept {
            Ok((0, 0)) => {}
            Ok((failed, deleted)) => {
                tracing::info!(failed, deleted, "export sweep");
            }
            Err(e) => tracing::warn!(error = %e, "export sweep failed"),
        }
    }
}

/// Seals and stores part `seq` of `job`.
#[allow(clippy::too_many_arguments)]
pub async fn add_part(
    conn: &mut AsyncPgConnection,
    cipher: &RecordCipher,
    job: Uuid,
    seq: i32,
    kind: PartKind,
    resource_type: &str,
    resources: i32,
    ndjson: &[u8],
) -> Result<(), RecordsError> {
    let body = cipher.seal(&aad(job, seq), ndjson)?;
    diesel::sql_query(
        "INSERT INTO export_files (job_id, seq, resource_type, resources, body, kind) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind::<SqlUuid, _>(job)
    .bind::<Integer, _>(seq)
    .bind::<Text, _>(resource_type)
    .bind::<Integer, _>(resources)
    .bind::<diesel::sql_types::Bytea, _>(body)
    .bind::<Text, _>(kind.as_str())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn parts(conn: &mut AsyncPgConnection, job: Uuid) -> Result<Vec<Part>, RecordsError> {
    Ok(diesel::sql_query(
        "SELECT seq, resource_type, resources, kind FROM export_files WHERE job_id = $1 ORDER BY seq",
    )
    .bind::<SqlUuid, _>(job)
    .load(conn)
    .await?)
}

pub async fn part_body(
    conn: &mut AsyncPgConnection,
    cipher: &RecordCipher,
    job: Uuid,
    seq: i32,
) -> Result<Option<Vec<u8>>, RecordsError> {
    let row: Option<Body> =
        diesel::sql_query("SELECT body FROM export_files WHERE job_id = $1 AND seq = $2")
            .bind::<SqlUuid, _>(job)
            .bind::<Integer, _>(seq)
            .get_result(conn)
            .await
            .map(Some)
            .or_else(|e| match e {
                diesel::result::Error::NotFound => Ok(None),
                other => Err(other),
            })?;
    row.map(|r| {
        cipher
            .open(&aad(job, seq), &r.body)
            .map_err(RecordsError::from)
    })
    .transpose()
}

#[derive(QueryableByName)]
struct TypeRow {
    #[diesel(sql_type = Text)]
    resource_type: String,
}

/// The types holding current data (in patient compartments only, when `in_compartments`): what
/// an export without `_type` goes through.
pub async fn types_in_use(
    conn: &mut AsyncPgConnection,
    in_compartments: bool,
) -> Result<Vec<String>, RecordsError> {
    let sql = if in_compartments {
        "SELECT DISTINCT resource_type FROM resources WHERE NOT deleted AND patient_ref IS NOT NULL ORDER BY 1"
    } else {
        "SELECT DISTINCT resource_type FROM resources WHERE NOT deleted ORDER BY 1"
    };
    let rows: Vec<TypeRow> = diesel::sql_query(sql).load(conn).await?;
    Ok(rows.into_iter().map(|r| r.resource_type).collect())
}

/// Records whose data a complete job holds.
pub async fn add_job_patients(
    conn: &mut AsyncPgConnection,
    job: Uuid,
    patients: &[String],
) -> Result<(), RecordsError> {
    diesel::sql_query(
        "INSERT INTO export_job_patients (job_id, patient_ref) \
         SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
    )
    .bind::<SqlUuid, _>(job)
    .bind::<diesel::sql_types::Array<Text>, _>(patients)
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::Int8)]
    n: i64,
}

/// Whether any of `patients` had her record erased (a job that read her before the erasure
/// must not complete with her data).
pub async fn any_erased(
    conn: &mut AsyncPgConnection,
    patients: &[String],
) -> Result<bool, RecordsError> {
    let row: Count = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM patient_keys WHERE erased_at IS NOT NULL AND patient_ref = ANY($1)",
    )
    .bind::<diesel::sql_types::Array<Text>, _>(patients)
    .get_result(conn)
    .await?;
    Ok(row.n > 0)
}

/// Removes every export job holding `patient_ref`'s data, files included (her erasure).
pub async fn delete_jobs_holding(
    conn: &mut AsyncPgConnection,
    patient_ref: &str,
) -> Result<usize, RecordsError> {
    Ok(diesel::sql_query(
        "DELETE FROM export_jobs WHERE id IN \
         (SELECT job_id FROM export_job_patients WHERE patient_ref = $1)",
    )
    .bind::<Text, _>(patient_ref)
    .execute(conn)
    .await?)
}
