//! `patient_labels`: who each patient is, as records published it (her Patient resource's
//! `meta.security` ActCode codes: `EMP` a member of staff, `CEL` a celebrity), the newest
//! version kept so that a restart teaches them again ([`replay`]).

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::{
    consumer::{lock, SharedDetector},
    schema::patient_labels,
};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = patient_labels)]
pub struct PatientLabelsRow {
    pub patient_ref: String,
    pub version: i64,
    pub labels: Vec<String>,
}

/// Stores `labels` as the patient's, unless a newer version of her labels is stored already
/// (messages may arrive twice or out of order). Returns whether they were stored.
pub async fn replace(
    conn: &mut AsyncPgConnection,
    patient: &str,
    version: i64,
    labels: &[String],
) -> QueryResult<bool> {
    use diesel::sql_types::{Array, BigInt, Text};
    let stored = diesel::sql_query(
        "INSERT INTO patient_labels (patient_ref, version, labels) VALUES ($1, $2, $3) \
         ON CONFLICT (patient_ref) DO UPDATE \
         SET version = EXCLUDED.version, labels = EXCLUDED.labels, updated_at = now() \
         WHERE patient_labels.version <= EXCLUDED.version",
    )
    .bind::<Text, _>(patient)
    .bind::<BigInt, _>(version)
    .bind::<Array<Text>, _>(labels)
    .execute(conn)
    .await?;
    Ok(stored > 0)
}

/// Every stored patient's labels.
pub async fn all(conn: &mut AsyncPgConnection) -> QueryResult<Vec<PatientLabelsRow>> {
    patient_labels::table
        .select(PatientLabelsRow::as_select())
        .load(conn)
        .await
}

/// Teaches the detector every stored patient's labels (at start, before the consumers run).
pub async fn replay(conn: &mut AsyncPgConnection, detector: &SharedDetector) -> QueryResult<usize> {
    let rows = all(conn).await?;
    let mut detector = lock(detector);
    for row in &rows {
        detector.learn_patient_labels(&row.patient_ref, &row.labels);
    }
    Ok(rows.len())
}
