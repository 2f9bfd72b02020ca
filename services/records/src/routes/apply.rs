//! The write interactions on a connection, so the single-resource handlers and transaction
//! Bundles share them. Each asks the kernel, writes the version and enqueues the permit event on
//! `conn` (the caller's transaction); denials and absences return their event instead, so a
//! caller that rolls back can still record it.
//!
//! The rules records adds to the kernel's decisions:
//! - An id is bound to its compartment forever: an update (or the re-creation of a deleted id)
//!   is decided on the compartment the id had, and content for another compartment is a 409.
//! - Both the data being replaced and the new content must be permitted (their facts differ).
//! - A Patient's custodian is her `managingOrganization`, set to the writer's organisation when
//!   absent; changing it is the current custodian's decision alone.
//! - Preconditions (`If-Match`) are evaluated only after access is decided: a caller who may
//!   not write learns nothing from them.
//!
//! Writes go through a [`Batch`]: `create`, `update` and `delete` make theirs at once; a
//! transaction Bundle runs its entries with `create_in`, `update_in` and `delete_in` on one
//! batch and makes all their writes together.

use chrono::{DateTime, Utc};
use custodian_access::{
    absent_event, Basis, Caller, Decision, Interaction, OrganizationRef, PatientRef,
};
use custodian_auth::Role;
use custodian_events::{AccessEvent, MembershipChange};
use custodian_fhir::FhirError;
use diesel_async::AsyncPgConnection;
use serde_json::{json, Value};

use super::{
    read::version_subject,
    write::{prepare, stamp, Prepared},
};
use crate::{
    access::{stored_patient, Subject},
    batch::Batch,
    domain::{
        relationships::{is_container_type, managers},
        resource::IncomingResource,
        ResourceType,
    },
    error::RecordsError,
    relationships,
    state::AppState,
    store::{self, Current, NewVersion},
};

/// `subject` with its referrers (see [`Subject::with_referrers`]), which reads what other
/// resources refer to: the batch's writes are made first when it asks.
async fn with_referrers(
    conn: &mut AsyncPgConnection,
    batch: &mut Batch<'_>,
    subject: Subject,
) -> Result<Subject, RecordsError> {
    let state = batch.state();
    if !subject.related_named(state).is_empty() {
        batch.flush(conn).await?;
    }
    subject.with_referrers(conn, state).await
}

/// What a write did.
pub enum Applied {
    /// A new version (None for a deletion).
    Written {
        version: i64,
        created: bool,
        json: Option<String>,
        /// Membership changes the write made, for the replica once it has committed.
        memberships: Vec<MembershipChange>,
    },
    /// Deleting what was already deleted.
    AlreadyDeleted {
        version: i64,
    },
    /// Deleting what does not exist.
    Missing {
        event: AccessEvent,
    },
    Denied {
        decision: Decision,
        event: AccessEvent,
        /// The caller may not even read what it tried to change: answer as for an unknown id.
        hidden: bool,
    },
    Precondition(String),
    /// Content for another compartment than the one the id is bound to.
    Conflict(String),
}

impl Applied {
    /// The membership changes a committed write made (none for anything else).
    pub fn memberships(&self) -> &[MembershipChange] {
        match self {
            Applied::Written { memberships, .. } => memberships,
            _ => &[],
        }
    }
}

/// The organisation a Patient's body names as holding her record; Err when it names something
/// that is not an Organization reference (fail closed: no one is her custodian then).
fn managing_organization(incoming: &IncomingResource) -> Option<Result<OrganizationRef, ()>> {
    incoming.value_of("managingOrganization").map(|v| {
        v.get("reference")
            .and_then(Value::as_str)
            .and_then(|r| OrganizationRef::parse(r).ok())
            .ok_or(())
    })
}

/// A Patient's body with `managingOrganization` set (the server's default custodian).
type Patched = Option<(IncomingResource, Prepared)>;

/// For a Patient, the body with `managingOrganization` set to `default` when it names none,
/// and the custodian it names. Other types pass through.
fn with_custodian(
    state: &AppState,
    resource_type: &str,
    id: &str,
    incoming: &IncomingResource,
    default: Option<&OrganizationRef>,
    now: DateTime<Utc>,
) -> Result<(Patched, Option<OrganizationRef>), RecordsError> {
    if resource_type != "Patient" {
        return Ok((None, None));
    }
    match managing_organization(incoming) {
        Some(Ok(org)) => Ok((None, Some(org))),
        Some(Err(())) => Err(FhirError::Unprocessable(vec![(
            "Patient.managingOrganization".into(),
            "must be a literal reference to an Organization (Organization/<id>): it names the \
             organisation that holds her record"
                .into(),
        )])
        .into()),
        None => match default {
            None => Ok((None, None)),
            Some(org) => {
                let patched = incoming
                    .with_field(
                        "managingOrganization",
                        &json!({ "reference": org.as_str() }),
                    )
                    .map_err(|e| FhirError::BadRequest(e.to_string()))?;
                let rt = ResourceType::parse(resource_type)
                    .map_err(|e| FhirError::BadRequest(e.to_string()))?;
                let prepared = prepare(state, &patched, &rt, id, now)?;
                Ok((Some((patched, prepared)), Some(org.clone())))
            }
        },
    }
}

/// The subject of new content: its compartment, that patient's custodian (for a Patient, the
/// one her body names), and its facts.
async fn content_subject(
    conn: &mut AsyncPgConnection,
    batch: &mut Batch<'_>,
    resource_type: &str,
    id: &str,
    prepared: &Prepared,
    patient_custodian: Option<OrganizationRef>,
) -> Result<Subject, RecordsError> {
    let patient = stored_patient(prepared.patient.as_deref());
    let custodian = match (&patient, resource_type) {
        (Some(_), "Patient") => patient_custodian,
        (Some(p), _) => batch.custodian_of(conn, p).await?,
        (None, _) => None,
    };
    let subject = Subject {
        resource_type: resource_type.to_string(),
        id: Some(id.to_string()),
        patient,
        custodian,
        confidentiality: prepared.confidentiality.clone(),
        instance: Some(prepared.facts.clone()),
    };
    with_referrers(conn, batch, subject).await
}

/// A denied write. For existing data, whether the caller may read it decides how the denial
/// is answered (403, or the 404 of an unknown id).
/// The first of the resource's further compartments the caller may not write into, with its
/// denial (None: it may write into all of them).
async fn denied_elsewhere(
    conn: &mut AsyncPgConnection,
    batch: &mut Batch<'_>,
    caller: &Caller,
    interaction: Interaction,
    resource_type: &str,
    id: &str,
    prepared: &Prepared,
) -> Result<Option<(Subject, Decision)>, RecordsError> {
    for other in &prepared.other_patients {
        let patient = stored_patient(Some(other));
        let custodian = match &patient {
            Some(p) => batch.custodian_of(conn, p).await?,
            None => None,
        };
        let subject = Subject {
            resource_type: resource_type.to_string(),
            id: Some(id.to_string()),
            patient,
            custodian,
            confidentiality: prepared.confidentiality.clone(),
            instance: Some(prepared.facts.clone()),
        };
        let subject = with_referrers(conn, batch, subject).await?;
        let decision = batch
            .state()
            .kernel
            .decide(caller, interaction, &subject.target())?;
        if !decision.permitted() {
            return Ok(Some((subject, decision)));
        }
    }
    Ok(None)
}

/// For a CareTeam, Group or PractitionerRole in no patient's compartment: a denial when the
/// caller does not act for an organisation that manages it, before or after the write (see
/// `domain::relationships::managers`); otherwise anyone who may write shared resources could
/// join a team a consent admits, or leave one it denies. In a compartment (a CareTeam's
/// `subject`) the kernel already decides who writes: her custodian, or whom she permits. A
/// container naming no manager is an administrator's to write: were it open to every writer,
/// anyone could join a team a consent names (or create one it names before it exists).
#[allow(clippy::too_many_arguments)]
pub(super) async fn unmanaged(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    subject: &Subject,
    resource_type: &str,
    id: &str,
    current: Option<&Current>,
    incoming: Option<&IncomingResource>,
) -> Result<Option<Decision>, RecordsError> {
    if !is_container_type(resource_type)
        || subject.patient.is_some()
        || caller.role() == Role::Admin
    {
        return Ok(None);
    }
    let mut named = Vec::new();
    if let Some(current) = current.filter(|c| !c.deleted) {
        let stored = store::version(conn, &state.cipher, resource_type, id, current.version)
            .await?
            .and_then(|v| v.json);
        if let Some(json) = stored {
            let value: Value = serde_json::from_str(&json)
                .map_err(|e| RecordsError::Internal(format!("stored JSON: {e}")))?;
            named.push(managers(resource_type, |f| value.get(f).cloned()));
        }
    }
    if let Some(incoming) = incoming {
        named.push(managers(resource_type, |f| incoming.value_of(f)));
    }
    let own = caller.organization().map(OrganizationRef::as_str);
    let manages = named
        .iter()
        .all(|m| own.is_some_and(|o| m.iter().any(|x| x == o)));
    Ok((!manages).then(|| {
        Decision::deny(
            Basis::Custody,
            vec![],
            format!(
                "only staff of the organisation that manages {resource_type}/{id} (its managingOrganization, managingEntity or organization, which must name the writer's) may change who is in it; one naming none is an administrator's"
            ),
        )
    }))
}

/// A denial as an [`Applied`], with its event (and whether the caller may even see it).
pub(super) fn denied(
    state: &AppState,
    caller: &Caller,
    interaction: Interaction,
    subject: &Subject,
    decision: Decision,
    existing: bool,
) -> Result<Applied, RecordsError> {
    let event = decision.event(caller, interaction, subject.touched(0));
    // On the caller's own rights: break-glass opens reads, and must not tell a writer that a
    // resource it may not see exists.
    let hidden = existing
        && !state
            .kernel
            .decide(
                &caller.without_break_glass(),
                Interaction::Read,
                &subject.target(),
            )?
            .permitted();
    Ok(Applied::Denied {
        decision,
        event,
        hidden,
    })
}

/// Writes a version in the compartment `patient_ref` and enqueues its event (on `batch`).
#[allow(clippy::too_many_arguments)]
async fn write(
    conn: &mut AsyncPgConnection,
    batch: &mut Batch<'_>,
    caller: &Caller,
    interaction: Interaction,
    subject: &Subject,
    decision: &Decision,
    incoming: &IncomingResource,
    prepared: &Prepared,
    version: i64,
    now: DateTime<Utc>,
) -> Result<(String, Vec<MembershipChange>), RecordsError> {
    let id = subject.id.as_deref().unwrap_or_default();
    let json = stamp(incoming, id, version, now)?;
    batch
        .write_version(
            conn,
            NewVersion {
                resource_type: &subject.resource_type,
                id,
                version,
                json: Some(&json),
                patient_ref: subject.patient.as_ref().map(PatientRef::as_str),
                confidentiality: prepared.confidentiality.as_deref(),
                last_updated: now,
                index: &prepared.index,
            },
        )
        .await?;
    if subject.patient.is_some() {
        batch.write_facts(&subject.resource_type, id, version, &prepared.facts);
    }
    batch.write_references(
        &subject.resource_type,
        id,
        version,
        &prepared.facts.references,
    );
    if subject.resource_type == "Patient" {
        if let Some(patient) = &subject.patient {
            batch.set_custodian(patient, subject.custodian.as_ref());
        }
    }
    let mut rows = Vec::new();
    let memberships = relationships::record_held(
        conn,
        &batch.state().relationships,
        &subject.resource_type,
        id,
        version,
        Some(&json),
        &mut rows,
    )
    .await?;
    batch.enqueue(rows);
    let event = decision.event(caller, interaction, subject.touched(1));
    batch.enqueue_events(&[event]);
    Ok((json, memberships))
}

/// One create or update: who writes what, under which precondition, when. What an interaction
/// hands to [`create`]/[`update`] (a batch of its own) or [`create_in`]/[`update_in`] (a
/// Bundle's batch).
#[derive(Clone, Copy)]
pub struct WriteRequest<'a> {
    pub caller: &'a Caller,
    pub resource_type: &'a str,
    pub id: &'a str,
    pub incoming: &'a IncomingResource,
    pub prepared: &'a Prepared,
    /// `If-Match`: the version that must be current.
    pub expected: Option<i64>,
    pub now: DateTime<Utc>,
}

/// Creates `id` (a new id: no existing row is expected).
pub async fn create(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    request: WriteRequest<'_>,
) -> Result<Applied, RecordsError> {
    let mut batch = Batch::new(state);
    let applied = create_in(conn, &mut batch, request).await?;
    batch.flush(conn).await?;
    Ok(applied)
}

/// [`create`] on `batch`, which makes its writes later.
pub async fn create_in(
    conn: &mut AsyncPgConnection,
    batch: &mut Batch<'_>,
    request: WriteRequest<'_>,
) -> Result<Applied, RecordsError> {
    let WriteRequest {
        caller,
        resource_type,
        id,
        incoming,
        prepared,
        expected,
        now,
    } = request;
    let state = batch.state();
    let (patched, custodian) = with_custodian(
        state,
        resource_type,
        id,
        incoming,
        caller.organization(),
        now,
    )?;
    let (incoming, prepared) = match &patched {
        Some((i, p)) => (i, p),
        None => (incoming, prepared),
    };
    let subject = content_subject(conn, batch, resource_type, id, prepared, custodian).await?;
    let decision = state
        .kernel
        .decide(caller, Interaction::Create, &subject.target())?;
    if !decision.permitted() {
        return denied(
            state,
            caller,
            Interaction::Create,
            &subject,
            decision,
            false,
        );
    }
    if let Some(decision) = unmanaged(
        conn,
        state,
        caller,
        &subject,
        resource_type,
        id,
        None,
        Some(incoming),
    )
    .await?
    {
        return denied(
            state,
            caller,
            Interaction::Create,
            &subject,
            decision,
            false,
        );
    }
    if let Some((other, decision)) = denied_elsewhere(
        conn,
        batch,
        caller,
        Interaction::Create,
        resource_type,
        id,
        prepared,
    )
    .await?
    {
        return denied(state, caller, Interaction::Create, &other, decision, false);
    }
    if let Some(expected) = expected {
        return Ok(Applied::Precondition(format!(
            "If-Match W/\"{expected}\" names a version of a resource that does not exist"
        )));
    }
    let (json, memberships) = write(
        conn,
        batch,
        caller,
        Interaction::Create,
        &subject,
        &decision,
        incoming,
        prepared,
        1,
        now,
    )
    .await?;
    Ok(Applied::Written {
        version: 1,
        created: true,
        json: Some(json),
        memberships,
    })
}

/// Updates `id`, or creates it with that id.
pub async fn update(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    request: WriteRequest<'_>,
) -> Result<Applied, RecordsError> {
    let mut batch = Batch::new(state);
    let applied = update_in(conn, &mut batch, request).await?;
    batch.flush(conn).await?;
    Ok(applied)
}

/// [`update`] on `batch`, which makes its writes later.
pub async fn update_in(
    conn: &mut AsyncPgConnection,
    batch: &mut Batch<'_>,
    request: WriteRequest<'_>,
) -> Result<Applied, RecordsError> {
    let WriteRequest {
        caller,
        resource_type,
        id,
        incoming,
        prepared,
        expected,
        now,
    } = request;
    let state = batch.state();
    let Some(current) = batch.current(conn, resource_type, id).await? else {
        return create_in(conn, batch, request).await;
    };
    // The data being replaced, in the compartment the id is bound to (a deleted id too): read
    // from the database, with what the batch holds written first.
    batch.flush(conn).await?;
    let existing = existing_subject(conn, state, resource_type, id, &current).await?;
    let decision = state
        .kernel
        .decide(caller, Interaction::Update, &existing.target())?;
    if !decision.permitted() {
        return denied(
            state,
            caller,
            Interaction::Update,
            &existing,
            decision,
            true,
        );
    }
    if let Some(decision) = unmanaged(
        conn,
        state,
        caller,
        &existing,
        resource_type,
        id,
        Some(&current),
        Some(incoming),
    )
    .await?
    {
        return denied(
            state,
            caller,
            Interaction::Update,
            &existing,
            decision,
            true,
        );
    }
    let (patched, custodian) = with_custodian(
        state,
        resource_type,
        id,
        incoming,
        existing.custodian.as_ref().or(caller.organization()),
        now,
    )?;
    let (incoming, prepared) = match &patched {
        Some((i, p)) => (i, p),
        None => (incoming, prepared),
    };
    if prepared.patient != current.patient_ref {
        return Ok(Applied::Conflict(format!(
            "{resource_type}/{id} belongs to another compartment than this content: an id stays \
             in the patient record it was created in"
        )));
    }
    if resource_type == "Patient" && custodian != existing.custodian {
        let change = state.kernel.decide_custody_change(
            caller,
            existing.custodian.as_ref(),
            custodian.as_ref(),
        );
        if !change.permitted() {
            return denied(state, caller, Interaction::Update, &existing, change, true);
        }
    }
    let subject = content_subject(conn, batch, resource_type, id, prepared, custodian).await?;
    let decision = state
        .kernel
        .decide(caller, Interaction::Update, &subject.target())?;
    if !decision.permitted() {
        return denied(state, caller, Interaction::Update, &subject, decision, true);
    }
    // New links to further patients are new data in their records.
    if let Some((other, decision)) = denied_elsewhere(
        conn,
        batch,
        caller,
        Interaction::Create,
        resource_type,
        id,
        prepared,
    )
    .await?
    {
        return denied(state, caller, Interaction::Create, &other, decision, false);
    }
    if let Some(expected) = expected {
        if current.deleted || current.version != expected {
            return Ok(Applied::Precondition(format!(
                "If-Match W/\"{expected}\" does not match the current version"
            )));
        }
    }
    let version = current.version + 1;
    let interaction = if current.deleted {
        Interaction::Create
    } else {
        Interaction::Update
    };
    let (json, memberships) = write(
        conn,
        batch,
        caller,
        interaction,
        &subject,
        &decision,
        incoming,
        prepared,
        version,
        now,
    )
    .await?;
    Ok(Applied::Written {
        version,
        created: current.deleted,
        json: Some(json),
        memberships,
    })
}

/// The subject of the current version of an existing id (decrypted for its facts when live).
pub(super) async fn existing_subject(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    resource_type: &str,
    id: &str,
    current: &Current,
) -> Result<Subject, RecordsError> {
    let stored = store::version(conn, &state.cipher, resource_type, id, current.version).await?;
    match stored {
        Some(version) => {
            version_subject(state, conn, resource_type, id, current, &version, None).await
        }
        None => Err(RecordsError::Internal(format!(
            "{resource_type}/{id} has no row for its current version"
        ))),
    }
}

/// Deletes `id` (a deletion version).
pub async fn delete(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    resource_type: &str,
    id: &str,
    expected: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Applied, RecordsError> {
    let mut batch = Batch::new(state);
    let applied = delete_in(conn, &mut batch, caller, resource_type, id, expected, now).await?;
    batch.flush(conn).await?;
    Ok(applied)
}

/// [`delete`] on `batch`, which makes its writes later.
pub async fn delete_in(
    conn: &mut AsyncPgConnection,
    batch: &mut Batch<'_>,
    caller: &Caller,
    resource_type: &str,
    id: &str,
    expected: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Applied, RecordsError> {
    let state = batch.state();
    let Some(current) = batch.current(conn, resource_type, id).await? else {
        return Ok(Applied::Missing {
            event: absent_event(caller, Interaction::Delete, resource_type),
        });
    };
    // Read from the database, with what the batch holds written first.
    batch.flush(conn).await?;
    let subject = existing_subject(conn, state, resource_type, id, &current).await?;
    let decision = state
        .kernel
        .decide(caller, Interaction::Delete, &subject.target())?;
    if !decision.permitted() {
        return denied(state, caller, Interaction::Delete, &subject, decision, true);
    }
    if let Some(decision) = unmanaged(
        conn,
        state,
        caller,
        &subject,
        resource_type,
        id,
        Some(&current),
        None,
    )
    .await?
    {
        return denied(state, caller, Interaction::Delete, &subject, decision, true);
    }
    if let Some(expected) = expected {
        if current.deleted || current.version != expected {
            return Ok(Applied::Precondition(format!(
                "If-Match W/\"{expected}\" does not match the current version"
            )));
        }
    }
    if current.deleted {
        return Ok(Applied::AlreadyDeleted {
            version: current.version,
        });
    }
    let version = current.version + 1;
    batch
        .write_version(
            conn,
            NewVersion {
                resource_type,
                id,
                version,
                json: None,
                patient_ref: current.patient_ref.as_deref(),
                confidentiality: current.confidentiality.as_deref(),
                last_updated: now,
                index: &[],
            },
        )
        .await?;
    let mut rows = Vec::new();
    let memberships = relationships::record_held(
        conn,
        &state.relationships,
        resource_type,
        id,
        version,
        None,
        &mut rows,
    )
    .await?;
    batch.enqueue(rows);
    let event = decision.event(caller, Interaction::Delete, subject.touched(1));
    batch.enqueue_events(&[event]);
    Ok(Applied::Written {
        version,
        created: false,
        json: None,
        memberships,
    })
}
