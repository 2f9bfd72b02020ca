//! The write interactions on a connection, so the single-resource handlers and transaction
//! Bundles share them. Each decides access, writes the version and enqueues the permit event on
//! `conn` (the caller's transaction); denials and absences return their event instead, so a
//! caller that rolls back can still record it.

use chrono::{DateTime, Utc};
use custodian_events::{AccessEvent, AccessOutcome};
use diesel_async::AsyncPgConnection;

use super::write::{stamp, Prepared};
use crate::{
    access::{Caller, EventDraft, Interaction, Verdict},
    domain::resource::IncomingResource,
    error::RecordsError,
    state::AppState,
    store::{self, NewVersion},
};

/// What a write did.
pub enum Applied {
    /// A new version (None for a deletion).
    Written {
        version: i64,
        created: bool,
        json: Option<String>,
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
        reason: String,
        event: AccessEvent,
    },
    Precondition(String),
}

struct Drafts<'a> {
    caller: &'a Caller,
    resource_type: &'a str,
}

impl Drafts<'_> {
    /// The access decision for one write: `Ok(break_glass)` to go ahead, or the denial with
    /// its event.
    fn permit(
        &self,
        state: &AppState,
        patient: Option<&String>,
        interaction: Interaction,
        confidentiality: Option<&String>,
    ) -> Result<Result<bool, Applied>, RecordsError> {
        Ok(
            match state.access.decide(
                self.caller,
                patient.map(String::as_str),
                self.resource_type,
                interaction,
            )? {
                Verdict::Permit { break_glass } => Ok(break_glass),
                Verdict::Deny(reason) => {
                    let event = self.event(
                        patient.cloned(),
                        interaction,
                        AccessOutcome::Deny,
                        0,
                        false,
                        confidentiality.cloned(),
                    );
                    Err(Applied::Denied { reason, event })
                }
            },
        )
    }

    fn event(
        &self,
        patient: Option<String>,
        interaction: Interaction,
        outcome: AccessOutcome,
        count: u32,
        break_glass: bool,
        confidentiality: Option<String>,
    ) -> AccessEvent {
        EventDraft {
            caller: self.caller,
            patient,
            interaction,
            resource_type: self.resource_type,
            count,
            outcome,
            break_glass,
            confidentiality,
        }
        .build()
    }
}

/// Creates `id` (a new server id: no existing row is expected).
#[allow(clippy::too_many_arguments)]
pub async fn create(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    resource_type: &str,
    id: &str,
    incoming: &IncomingResource,
    prepared: &Prepared,
    now: DateTime<Utc>,
) -> Result<Applied, RecordsError> {
    let drafts = Drafts {
        caller,
        resource_type,
    };
    let break_glass = match drafts.permit(
        state,
        prepared.patient.as_ref(),
        Interaction::Create,
        prepared.confidentiality.as_ref(),
    )? {
        Ok(break_glass) => break_glass,
        Err(denied) => return Ok(denied),
    };
    let json = stamp(incoming, id, 1, now)?;
    store::write_version(
        conn,
        &state.cipher,
        NewVersion {
            resource_type,
            id,
            version: 1,
            json: Some(&json),
            patient_ref: prepared.patient.as_deref(),
            confidentiality: prepared.confidentiality.as_deref(),
            last_updated: now,
            index: &prepared.index,
        },
    )
    .await?;
    let event = drafts.event(
        prepared.patient.clone(),
        Interaction::Create,
        AccessOutcome::Permit,
        1,
        break_glass,
        prepared.confidentiality.clone(),
    );
    state.enqueue_events(conn, &[event]).await?;
    Ok(Applied::Written {
        version: 1,
        created: true,
        json: Some(json),
    })
}

/// Updates `id`, or creates it with that id.
#[allow(clippy::too_many_arguments)]
pub async fn update(
    conn: &mut AsyncPgConnection,
    state: &AppState,
    caller: &Caller,
    resource_type: &str,
    id: &str,
    incoming: &IncomingResource,
    prepared: &Prepared,
    expected: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Applied, RecordsError> {
    let drafts = Drafts {
        caller,
        resource_type,
    };
    let current = store::current(conn, resource_type, id, true).await?;
    if let Some(expected) = expected {
        let actual = current.as_ref().filter(|c| !c.deleted).map(|c| c.version);
        if actual != Some(expected) {
            return Ok(Applied::Precondition(format!(
                "If-Match W/\"{expected}\" does not match the current version{}",
                actual.map(|v| format!(" W/\"{v}\"")).unwrap_or_default()
            )));
        }
    }
    let live = current.as_ref().filter(|c| !c.deleted);
    // Changing an existing record needs `correct` on its patient; placing data in a (new)
    // patient's compartment is a `collect`.
    let mut checks: Vec<(Option<String>, Interaction, Option<String>)> = Vec::new();
    match live {
        Some(c) => {
            checks.push((
                c.patient_ref.clone(),
                Interaction::Update,
                c.confidentiality.clone(),
            ));
            if prepared.patient != c.patient_ref {
                checks.push((
                    prepared.patient.clone(),
                    Interaction::Create,
                    prepared.confidentiality.clone(),
                ));
            }
        }
        None => checks.push((
            prepared.patient.clone(),
            Interaction::Create,
            prepared.confidentiality.clone(),
        )),
    }
    let mut break_glass = false;
    for (patient, interaction, confidentiality) in &checks {
        match drafts.permit(
            state,
            patient.as_ref(),
            *interaction,
            confidentiality.as_ref(),
        )? {
            Ok(bg) => break_glass |= bg,
            Err(denied) => return Ok(denied),
        }
    }
    let version = current.as_ref().map(|c| c.version + 1).unwrap_or(1);
    let json = stamp(incoming, id, version, now)?;
    store::write_version(
        conn,
        &state.cipher,
        NewVersion {
            resource_type,
            id,
            version,
            json: Some(&json),
            patient_ref: prepared.patient.as_deref(),
            confidentiality: prepared.confidentiality.as_deref(),
            last_updated: now,
            index: &prepared.index,
        },
    )
    .await?;
    let interaction = if live.is_some() {
        Interaction::Update
    } else {
        Interaction::Create
    };
    let event = drafts.event(
        prepared.patient.clone(),
        interaction,
        AccessOutcome::Permit,
        1,
        break_glass,
        prepared.confidentiality.clone(),
    );
    state.enqueue_events(conn, &[event]).await?;
    Ok(Applied::Written {
        version,
        created: live.is_none(),
        json: Some(json),
    })
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
    let drafts = Drafts {
        caller,
        resource_type,
    };
    let Some(current) = store::current(conn, resource_type, id, true).await? else {
        let event = drafts.event(
            None,
            Interaction::Delete,
            AccessOutcome::Error,
            0,
            false,
            None,
        );
        return Ok(Applied::Missing { event });
    };
    let break_glass = match drafts.permit(
        state,
        current.patient_ref.as_ref(),
        Interaction::Delete,
        current.confidentiality.as_ref(),
    )? {
        Ok(break_glass) => break_glass,
        Err(denied) => return Ok(denied),
    };
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
    store::write_version(
        conn,
        &state.cipher,
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
    let event = drafts.event(
        current.patient_ref.clone(),
        Interaction::Delete,
        AccessOutcome::Permit,
        1,
        break_glass,
        current.confidentiality.clone(),
    );
    state.enqueue_events(conn, &[event]).await?;
    Ok(Applied::Written {
        version,
        created: false,
        json: None,
    })
}
