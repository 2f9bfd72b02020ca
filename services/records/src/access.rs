//! Records' side of the access kernel (`custodian_access`): what records knows about the data
//! an access is to (its compartment, the patient's custodian, the facts consents can name) and
//! how a denial is answered. Every decision is the kernel's; nothing here permits.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use custodian_access::{
    Coding, CompartmentTarget, Decision, OrganizationRef, PatientRef, Referrers, ResourceFacts,
    Target, Touched,
};
use custodian_fhir::FhirError;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use custodian_fhir_search::registry::{IndexRow, Registry};

use crate::{error::RecordsError, schema::compartments, state::AppState};

/// What records knows of the data one access is to.
#[derive(Debug, Clone)]
pub struct Subject {
    pub resource_type: String,
    pub id: Option<String>,
    /// The compartment; None for a resource in no patient's compartment.
    pub patient: Option<PatientRef>,
    /// The patient's custodian (`Patient.managingOrganization` as recorded here).
    pub custodian: Option<OrganizationRef>,
    pub confidentiality: Option<String>,
    /// Instance facts; None for a type-level question (a search).
    pub instance: Option<InstanceFacts>,
}

/// What a consent can name about one resource.
#[derive(Debug, Clone, Default)]
pub struct InstanceFacts {
    pub security_labels: Vec<Coding>,
    pub codes: Vec<Coding>,
    pub data_time: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Its literal references, normalised ([`crate::facts::references_of`]).
    pub references: Vec<String>,
    /// Which resources' current versions refer to it, as far as asked
    /// ([`Subject::with_referrers`]): None until asked (unknown).
    pub referrers: Option<AskedReferrers>,
}

/// The answer to "which of these resources' current versions refer to this one?".
#[derive(Debug, Clone, Default)]
pub struct AskedReferrers {
    /// The resources asked about, whose answer is known (`Type/id`).
    pub asked: Vec<String>,
    /// Those of `asked` that refer to it.
    pub referring: Vec<String>,
}

#[derive(QueryableByName)]
struct ReferrerRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    source: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    known: bool,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    refers: bool,
}

impl InstanceFacts {
    /// From the resource JSON: `meta.security`, the type's `code` parameter, its `date`
    /// parameter as the time the data is about, and its references (`base`: this server's
    /// public URL, whose absolute references are its own).
    pub fn of(registry: &Registry, base: &str, resource_type: &str, resource: &Value) -> Self {
        let security_labels = resource
            .pointer("/meta/security")
            .and_then(Value::as_array)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|c| {
                        Some(Coding {
                            system: c.get("system").and_then(Value::as_str).map(str::to_string),
                            code: c.get("code").and_then(Value::as_str)?.to_string(),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let codes = registry
            .extract_param(resource_type, "code", resource)
            .into_iter()
            .filter_map(|row| {
                Some(Coding {
                    system: row.system,
                    code: row.value?,
                })
            })
            .collect();
        let dates: Vec<IndexRow> = registry.extract_param(resource_type, "date", resource);
        let data_time = dates
            .iter()
            .filter_map(|r| Some((r.start?, r.end?)))
            .reduce(|(s1, e1), (s2, e2)| (s1.min(s2), e1.max(e2)));
        Self {
            security_labels,
            codes,
            data_time,
            references: crate::facts::references_of(base, resource),
            referrers: None,
        }
    }
}

impl Subject {
    /// A type-level subject in `patient`'s compartment (searches).
    pub fn of_type(
        resource_type: &str,
        patient: Option<PatientRef>,
        custodian: Option<OrganizationRef>,
    ) -> Self {
        Self {
            resource_type: resource_type.to_string(),
            id: None,
            patient,
            custodian,
            confidentiality: None,
            instance: None,
        }
    }

    /// The kernel's view of it.
    pub fn target(&self) -> Target<'_> {
        match &self.patient {
            None => Target::Unowned {
                resource_type: &self.resource_type,
            },
            Some(patient) => Target::Compartment(CompartmentTarget {
                patient,
                custodian: self.custodian.as_ref(),
                facts: ResourceFacts {
                    resource_type: &self.resource_type,
                    id: self.id.as_deref(),
                    security_labels: self.instance.as_ref().map(|f| f.security_labels.as_slice()),
                    data_time: self.instance.as_ref().and_then(|f| f.data_time),
                    codes: self.instance.as_ref().map(|f| f.codes.as_slice()),
                    references: self.instance.as_ref().map(|f| f.references.as_slice()),
                    referrers: self
                        .instance
                        .as_ref()
                        .and_then(|f| f.referrers.as_ref())
                        .map(|r| Referrers {
                            asked: &r.asked,
                            referring: &r.referring,
                        }),
                },
            }),
        }
    }

    /// Asks which of the resources the patient's consents name under `data.meaning = related`
    /// refer to this one in their current version (from `access_references`), so a decision
    /// about it can apply them. Only those are asked: usually none, and then no query runs. A
    /// named resource whose current references are not recorded (an unreadable body) stays
    /// unasked, so its condition is unknown (fails closed).
    pub async fn with_referrers(
        mut self,
        conn: &mut AsyncPgConnection,
        state: &AppState,
    ) -> Result<Self, RecordsError> {
        let named = self.related_named(state);
        let (Some(_), Some(id), Some(instance)) = (&self.patient, &self.id, self.instance.as_mut())
        else {
            return Ok(self);
        };
        if named.is_empty() {
            instance.referrers = Some(AskedReferrers::default());
            return Ok(self);
        }
        let (types, ids): (Vec<String>, Vec<String>) = named
            .iter()
            .filter_map(|n| n.split_once('/'))
            .map(|(t, i)| (t.to_string(), i.to_string()))
            .unzip();
        // A resource that does not exist or is deleted refers to nothing (known); one whose
        // current version has no recorded references is unknown.
        let rows: Vec<ReferrerRow> = diesel::sql_query(
            "SELECT n.t || '/' || n.i AS source, \
             (x.resource_id IS NULL OR x.deleted OR s.version IS NOT NULL) AS known, \
             (x.resource_id IS NOT NULL AND NOT x.deleted AND EXISTS (SELECT 1 FROM access_references a \
               WHERE a.resource_type = n.t AND a.resource_id = n.i AND a.version = x.version \
               AND a.target = $1)) AS refers \
             FROM unnest($2::text[], $3::text[]) AS n(t, i) \
             LEFT JOIN resources x ON x.resource_type = n.t AND x.resource_id = n.i \
             LEFT JOIN access_reference_sets s ON s.resource_type = n.t AND s.resource_id = n.i \
               AND s.version = x.version",
        )
        .bind::<diesel::sql_types::Text, _>(format!("{}/{id}", self.resource_type))
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(types)
        .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(ids)
        .load(conn)
        .await?;
        let mut answer = AskedReferrers::default();
        for row in rows.into_iter().filter(|r| r.known) {
            if row.refers {
                answer.referring.push(row.source.clone());
            }
            answer.asked.push(row.source);
        }
        instance.referrers = Some(answer);
        Ok(self)
    }

    /// The resources [`Subject::with_referrers`] asks about (those its patient's consents name
    /// under `data.meaning = related`): when there are some, it reads what other resources
    /// refer to, so writes held back must be made first.
    pub fn related_named(&self, state: &AppState) -> Vec<String> {
        let (Some(patient), Some(_), Some(_)) = (&self.patient, &self.id, &self.instance) else {
            return Vec::new();
        };
        let mut named: Vec<String> = Vec::new();
        for consent in state.kernel.consents().consents_of(patient.as_str()) {
            for r in consent.related_data() {
                if !named.iter().any(|n| n == r) {
                    named.push(r.to_string());
                }
            }
        }
        named
    }

    /// What the access touched, for its event.
    pub fn touched(&self, count: u32) -> Touched<'_> {
        Touched::new(&self.resource_type, self.patient.as_ref())
            .count(count)
            .confidentiality(self.confidentiality.as_deref())
    }
}

/// Parses a stored compartment reference. A malformed one (never written by this code) fails
/// closed: it names a patient no consent or custodian covers.
pub fn stored_patient(raw: Option<&str>) -> Option<PatientRef> {
    raw.map(|r| {
        PatientRef::parse(r).unwrap_or_else(|_| {
            tracing::error!("a stored compartment reference does not parse; access is denied");
            unknowable_patient()
        })
    })
}

fn unknowable_patient() -> PatientRef {
    // A valid id that no resource can have: server ids are UUIDs, client ids never contain "..".
    PatientRef::parse("Patient/..invalid..").unwrap_or_else(|_| std::process::abort())
}

/// The custodian of `patient` as recorded here.
pub async fn custodian_of(
    conn: &mut AsyncPgConnection,
    patient: &PatientRef,
) -> Result<Option<OrganizationRef>, RecordsError> {
    let found: Option<Option<String>> = compartments::table
        .filter(compartments::patient_ref.eq(patient.as_str()))
        .select(compartments::custodian)
        .first(conn)
        .await
        .optional()?;
    Ok(found
        .flatten()
        .and_then(|c| OrganizationRef::parse(&c).ok()))
}

/// Custodians of several patients (for search pages and includes).
pub async fn custodians_of(
    conn: &mut AsyncPgConnection,
    patients: &[&PatientRef],
) -> Result<HashMap<PatientRef, OrganizationRef>, RecordsError> {
    if patients.is_empty() {
        return Ok(HashMap::new());
    }
    let refs: Vec<&str> = patients.iter().map(|p| p.as_str()).collect();
    let rows: Vec<(String, Option<String>)> = compartments::table
        .filter(compartments::patient_ref.eq_any(&refs))
        .select((compartments::patient_ref, compartments::custodian))
        .load(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(p, c)| {
            Some((
                PatientRef::parse(&p).ok()?,
                OrganizationRef::parse(&c?).ok()?,
            ))
        })
        .collect())
}

/// Records (or changes) the custodian of a patient: written with the Patient itself.
pub async fn set_custodian(
    conn: &mut AsyncPgConnection,
    patient: &PatientRef,
    custodian: Option<&OrganizationRef>,
) -> Result<(), RecordsError> {
    diesel::insert_into(compartments::table)
        .values((
            compartments::patient_ref.eq(patient.as_str()),
            compartments::custodian.eq(custodian.map(OrganizationRef::as_str)),
        ))
        .on_conflict(compartments::patient_ref)
        .do_update()
        .set(compartments::custodian.eq(custodian.map(OrganizationRef::as_str)))
        .execute(conn)
        .await?;
    Ok(())
}

/// The answer to a denied read: the same 404 an unknown id gets, unless the deployment
/// explains denials (403 naming what is missing, never the patient).
pub fn hidden(state: &AppState, decision: &Decision, resource_type: &str, id: &str) -> FhirError {
    if state.kernel.settings().explain_denials {
        FhirError::Forbidden(decision.explanation.clone())
    } else {
        not_known(resource_type, id)
    }
}

/// The 404 for an id that does not exist (and for one the caller may not see).
pub fn not_known(resource_type: &str, id: &str) -> FhirError {
    FhirError::NotFound(format!("{resource_type}/{id} is not known"))
}

/// The answer to a denied write or search: 403, explained only when the deployment says so.
pub fn refused(state: &AppState, decision: &Decision) -> FhirError {
    if state.kernel.settings().explain_denials {
        FhirError::Forbidden(decision.explanation.clone())
    } else {
        FhirError::Forbidden("this access is not permitted".into())
    }
}

/// The most restrictive of two confidentiality codes (U < L < M < N < R < V).
pub fn most_restrictive(a: Option<String>, b: Option<&str>) -> Option<String> {
    let rank = |c: &str| "ULMNRV".find(c).unwrap_or(0);
    match (a, b) {
        (Some(a), Some(b)) => Some(if rank(b) > rank(&a) { b.to_string() } else { a }),
        (a, b) => a.or_else(|| b.map(str::to_string)),
    }
}

/// Records the custodian of every Patient stored before custodians were kept (read from her
/// `managingOrganization`). Runs once at start; a no-op when every Patient has a row.
pub async fn backfill_custodians(
    pool: &custodian_database::Pool,
    cipher: &crate::crypto::RecordCipher,
) -> Result<(), crate::startup::StartupError> {
    use crate::schema::resources;
    let unexpected = |e: RecordsError| crate::startup::StartupError::Backfill(e.to_string());
    let mut conn = pool
        .get()
        .await
        .map_err(|e| unexpected(crate::error::pool_error(e)))?;
    let missing: Vec<(String, i64, bool)> = resources::table
        .filter(resources::resource_type.eq("Patient"))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            compartments::table.filter(compartments::patient_ref.eq(diesel::dsl::sql::<
                diesel::sql_types::Text,
            >(
                "'Patient/' || resources.resource_id",
            ))),
        )))
        .select((
            resources::resource_id,
            resources::version,
            resources::deleted,
        ))
        .load(&mut conn)
        .await
        .map_err(|e| unexpected(e.into()))?;
    for (id, version, deleted) in missing {
        let Ok(patient) = PatientRef::parse(&format!("Patient/{id}")) else {
            continue;
        };
        let custodian = if deleted {
            None
        } else {
            crate::store::version(&mut conn, cipher, "Patient", &id, version)
                .await
                .map_err(unexpected)?
                .and_then(|v| v.json)
                .and_then(|json| serde_json::from_str::<Value>(&json).ok())
                .and_then(|v| {
                    v.pointer("/managingOrganization/reference")
                        .and_then(Value::as_str)
                        .and_then(|r| OrganizationRef::parse(r).ok())
                })
        };
        set_custodian(&mut conn, &patient, custodian.as_ref())
            .await
            .map_err(unexpected)?;
    }
    Ok(())
}
