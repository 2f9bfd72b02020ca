//! Memberships and care facts (see [`crate::domain::relationships`]) kept and published.
//!
//! - Every write of a CareTeam, Group, PractitionerRole (and of an Encounter, Patient or
//!   EpisodeOfCare for care facts) calls [`record`] on the write's transaction: the container's
//!   member rows are replaced and the change is enqueued on the outbox for the
//!   `relationships` stream (signed by records). Nothing is published if the write rolls back.
//! - After the commit the handler applies the membership changes to this instance's replica
//!   (the kernel's [`MembershipStore`]) at once, so the writer's next request sees them; other
//!   records instances and the consent service follow the stream.
//! - At start the replica is loaded from the tables ([`snapshot`], also served to the consent
//!   service as `GET /internal/memberships`); the stream tail starts at the stream's newest id
//!   read before, so nothing committed in between is missed (changes are versioned per
//!   container, so applying one twice is harmless).

use custodian_access::MembershipStore;
use custodian_events::{outbox, MembershipChange, RelationshipEvent};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use crate::{
    domain::relationships::{carries_relationships, extract},
    error::RecordsError,
    schema::{membership_containers, memberships},
};

/// Where relationship changes go, and this instance's replica of memberships.
#[derive(Clone)]
pub struct Relationships {
    /// `<prefix>:relationships`.
    pub stream: String,
    pub store: MembershipStore,
}

impl Relationships {
    /// Applies committed changes to this instance's replica.
    pub fn committed(&self, changes: &[MembershipChange]) {
        for change in changes {
            self.store.apply(change.clone());
        }
    }
}

/// Records the relationships of version `version` of `resource_type/id` (`json` None for a
/// deletion) on `conn`, inside the write's transaction. Returns the membership changes to apply
/// to the replica once the transaction has committed.
pub async fn record(
    conn: &mut AsyncPgConnection,
    relationships: &Relationships,
    resource_type: &str,
    id: &str,
    version: i64,
    json: Option<&str>,
) -> Result<Vec<MembershipChange>, RecordsError> {
    let mut rows = Vec::new();
    let changes = record_held(
        conn,
        relationships,
        resource_type,
        id,
        version,
        json,
        &mut rows,
    )
    .await?;
    outbox::enqueue_many(conn, &rows).await?;
    Ok(changes)
}

/// As [`record`], but the outbox rows are added to `rows` for the caller to enqueue, in the
/// same transaction (a [`crate::batch::Batch`] writes them with the others).
pub async fn record_held(
    conn: &mut AsyncPgConnection,
    relationships: &Relationships,
    resource_type: &str,
    id: &str,
    version: i64,
    json: Option<&str>,
    rows: &mut Vec<(String, uuid::Uuid, Value)>,
) -> Result<Vec<MembershipChange>, RecordsError> {
    if !carries_relationships(resource_type) {
        return Ok(Vec::new());
    }
    let value: Option<Value> = json
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| RecordsError::Internal(format!("stored JSON: {e}")))?;
    let extracted = extract(resource_type, id, version, value.as_ref());
    let mut events = Vec::new();
    let mut changes = Vec::new();
    if let Some(change) = extracted.membership {
        store(
            conn,
            &change,
            &format!("{resource_type}/{id}/_history/{version}"),
        )
        .await?;
        events.push(RelationshipEvent::Membership(change.clone()));
        changes.push(change);
    }
    if let Some(care) = extracted.care {
        events.push(RelationshipEvent::Care(care));
    }
    if let Some(labels) = extracted.labels {
        events.push(RelationshipEvent::Labels(labels));
    }
    for e in &events {
        let payload = serde_json::to_value(e).map_err(|e| RecordsError::Internal(e.to_string()))?;
        rows.push((relationships.stream.clone(), uuid::Uuid::new_v4(), payload));
    }
    Ok(changes)
}

/// Replaces a container's rows with `change` (writes of one resource are serialised by its
/// version, so the newest write is the last one).
async fn store(
    conn: &mut AsyncPgConnection,
    change: &MembershipChange,
    source: &str,
) -> Result<(), RecordsError> {
    diesel::insert_into(membership_containers::table)
        .values((
            membership_containers::container_ref.eq(&change.container),
            membership_containers::version.eq(change.version),
            membership_containers::known.eq(change.known),
        ))
        .on_conflict(membership_containers::container_ref)
        .do_update()
        .set((
            membership_containers::version.eq(change.version),
            membership_containers::known.eq(change.known),
        ))
        .execute(conn)
        .await?;
    diesel::delete(memberships::table.filter(memberships::container_ref.eq(&change.container)))
        .execute(conn)
        .await?;
    let rows: Vec<_> = change
        .members
        .iter()
        .map(|m| {
            (
                memberships::container_ref.eq(&change.container),
                memberships::member_ref.eq(&m.member),
                memberships::period_start.eq(m.start),
                memberships::period_end.eq(m.end),
                memberships::organization_ref.eq(m.organization.as_deref()),
                memberships::source.eq(source),
            )
        })
        .collect();
    if !rows.is_empty() {
        diesel::insert_into(memberships::table)
            .values(rows)
            .execute(conn)
            .await?;
    }
    Ok(())
}

type MemberRow = (
    String,
    String,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
    Option<String>,
);

/// Every container's current membership.
pub async fn snapshot(conn: &mut AsyncPgConnection) -> Result<Vec<MembershipChange>, RecordsError> {
    let containers: Vec<(String, i64, bool)> = membership_containers::table
        .select((
            membership_containers::container_ref,
            membership_containers::version,
            membership_containers::known,
        ))
        .order(membership_containers::container_ref)
        .load(conn)
        .await?;
    let rows: Vec<MemberRow> = memberships::table
        .select((
            memberships::container_ref,
            memberships::member_ref,
            memberships::period_start,
            memberships::period_end,
            memberships::organization_ref,
        ))
        .load(conn)
        .await?;
    let mut by_container: std::collections::HashMap<String, Vec<custodian_events::Member>> =
        std::collections::HashMap::new();
    for (container, member, start, end, organization) in rows {
        by_container
            .entry(container)
            .or_default()
            .push(custodian_events::Member {
                member,
                start,
                end,
                organization,
            });
    }
    Ok(containers
        .into_iter()
        .map(|(container, version, known)| MembershipChange {
            members: by_container.remove(&container).unwrap_or_default(),
            container,
            version,
            known,
        })
        .collect())
}

/// Reads the memberships of every CareTeam, Group and PractitionerRole stored before
/// memberships were kept. Runs once at start; a no-op when every one has its row.
pub async fn backfill(
    pool: &custodian_database::Pool,
    cipher: &crate::crypto::RecordCipher,
    stream: &str,
) -> Result<(), RecordsError> {
    use crate::schema::resources;
    let mut conn = pool.get().await.map_err(crate::error::pool_error)?;
    let seen: std::collections::HashSet<String> = membership_containers::table
        .select(membership_containers::container_ref)
        .load::<String>(&mut conn)
        .await?
        .into_iter()
        .collect();
    let stored: Vec<(String, String, i64, bool)> = resources::table
        .filter(resources::resource_type.eq_any(["CareTeam", "Group", "PractitionerRole"]))
        .select((
            resources::resource_type,
            resources::resource_id,
            resources::version,
            resources::deleted,
        ))
        .load(&mut conn)
        .await?;
    let missing = stored
        .into_iter()
        .filter(|(kind, id, _, _)| !seen.contains(&format!("{kind}/{id}")));
    let relationships = Relationships {
        stream: stream.to_string(),
        store: MembershipStore::new(),
    };
    for (resource_type, id, version, deleted) in missing {
        let json = if deleted {
            None
        } else {
            crate::store::version(&mut conn, cipher, &resource_type, &id, version)
                .await?
                .and_then(|v| v.json)
        };
        // The rows and their event together, as for a write.
        let (relationships, resource_type, id) = (&relationships, &resource_type, &id);
        conn.transaction::<_, RecordsError, _>(async move |conn| {
            record(
                conn,
                relationships,
                resource_type,
                id,
                version,
                json.as_deref(),
            )
            .await
        })
        .await?;
    }
    Ok(())
}
