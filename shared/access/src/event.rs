//! The access event is a consequence of a decision: one builder, one set of field rules, and
//! one typed way to write events ([`AccessLog`]). No handler builds an event literal.

use chrono::Utc;
use custodian_events::{
    group_commit::{GroupCommit, OutboxRow},
    outbox::Relay,
    AccessEvent, AccessOutcome, Actor, DecisionRecord, EventError, Streams,
};
use diesel_async::{AnsiTransactionManager, AsyncPgConnection, TransactionManager};

use crate::{
    caller::{Caller, BREAK_GLASS_PURPOSE},
    decision::{Decision, Effect},
    interaction::Interaction,
    reference::PatientRef,
};

/// What an access touched, for its event.
#[derive(Debug, Clone, Copy)]
pub struct Touched<'a> {
    pub resource_type: &'a str,
    pub patient: Option<&'a PatientRef>,
    /// Resources returned or written.
    pub count: u32,
    /// The most restrictive confidentiality code among them (N, R, V ...).
    pub confidentiality: Option<&'a str>,
}

impl<'a> Touched<'a> {
    pub fn new(resource_type: &'a str, patient: Option<&'a PatientRef>) -> Self {
        Self {
            resource_type,
            patient,
            count: 0,
            confidentiality: None,
        }
    }

    pub fn count(mut self, count: u32) -> Self {
        self.count = count;
        self
    }

    pub fn confidentiality(mut self, confidentiality: Option<&'a str>) -> Self {
        self.confidentiality = confidentiality;
        self
    }
}

fn build(
    caller: &Caller,
    interaction: Interaction,
    touched: Touched<'_>,
    outcome: AccessOutcome,
    decision: Option<&Decision>,
) -> AccessEvent {
    let claims = &caller.claims;
    let break_glass = decision.is_some_and(Decision::is_break_glass);
    AccessEvent {
        id: uuid::Uuid::new_v4(),
        time: Utc::now(),
        actor: Actor {
            id: claims.sub.clone(),
            role: claims.role.as_str().to_string(),
            organization: caller.organization().map(|o| o.as_str().to_string()),
            department: claims.department.clone(),
            practitioner: caller.practitioner().map(|p| p.as_str().to_string()),
        },
        patient: touched.patient.map(|p| p.as_str().to_string()),
        action: interaction.event_action(),
        resource_type: Some(touched.resource_type.to_string()),
        count: touched.count,
        purpose: if break_glass {
            BREAK_GLASS_PURPOSE.to_string()
        } else {
            caller.purpose.as_str().to_string()
        },
        outcome,
        break_glass,
        confidentiality: touched.confidentiality.map(str::to_string),
        source: caller.source.clone(),
        decision: decision.map(|d| DecisionRecord {
            basis: d.basis.code().to_string(),
            consents: d.consents.clone(),
            break_glass_reason: d.break_glass.as_ref().map(|r| r.as_str().to_string()),
        }),
        request_id: caller.request_id.clone(),
        account: None,
    }
}

impl Decision {
    /// The event of this decision: a permit that returned or wrote `touched.count` resources,
    /// or a denial (count 0).
    pub fn event(
        &self,
        caller: &Caller,
        interaction: Interaction,
        touched: Touched<'_>,
    ) -> AccessEvent {
        let (outcome, touched) = match self.effect {
            Effect::Permit => (AccessOutcome::Permit, touched),
            Effect::Deny => (AccessOutcome::Deny, touched.count(0)),
        };
        build(caller, interaction, touched, outcome, Some(self))
    }

    /// The event of a permitted access that then failed (a row that does not decrypt, a
    /// version that does not exist).
    pub fn failed_event(
        &self,
        caller: &Caller,
        interaction: Interaction,
        touched: Touched<'_>,
    ) -> AccessEvent {
        build(
            caller,
            interaction,
            touched.count(0),
            AccessOutcome::Error,
            Some(self),
        )
    }
}

/// The event of an access to something that does not exist: nothing was decided, nobody's
/// data was touched, and the attempt is still on the record.
pub fn absent_event(caller: &Caller, interaction: Interaction, resource_type: &str) -> AccessEvent {
    build(
        caller,
        interaction,
        Touched::new(resource_type, None),
        AccessOutcome::Error,
        None,
    )
}

/// Who tried to log in, as far as identity knows.
#[derive(Debug, Clone)]
pub struct LoginAttempt<'a> {
    /// The user, when the username is known; None for an unknown username.
    pub actor: Option<Actor>,
    /// A patient user's own compartment (her logins are shown to her).
    pub patient: Option<&'a PatientRef>,
    pub source: custodian_events::Source,
    pub request_id: Option<String>,
    /// The account an administrator acted on (`User/<id>`, `Client/<id>`), for an unlock,
    /// suspension or reinstatement; None for a login, whose account is its actor.
    pub account: Option<String>,
}

/// The actor id of a login whose username does not exist (one for every such name).
pub const UNKNOWN_LOGIN_ACTOR: &str = "unknown";
/// The basis of a login refused because its account is locked (and of setting the lockout).
pub const LOCKED_OUT_BASIS: &str = "locked-out";

/// The event of a login: permitted, or denied with `basis` (`bad-credentials`, `locked-out`,
/// `throttled`, `suspended`). An unknown username is recorded with actor id
/// [`UNKNOWN_LOGIN_ACTOR`].
pub fn login_event(attempt: LoginAttempt<'_>, outcome: AccessOutcome, basis: &str) -> AccessEvent {
    AccessEvent {
        id: uuid::Uuid::new_v4(),
        time: Utc::now(),
        actor: attempt.actor.unwrap_or_else(|| Actor {
            id: UNKNOWN_LOGIN_ACTOR.into(),
            role: "patient".into(),
            organization: None,
            department: None,
            practitioner: None,
        }),
        patient: attempt.patient.map(|p| p.as_str().to_string()),
        action: custodian_events::AccessAction::Login,
        resource_type: None,
        count: 0,
        purpose: "HSYSADMIN".into(),
        outcome,
        break_glass: false,
        confidentiality: None,
        source: attempt.source,
        decision: Some(DecisionRecord {
            basis: basis.to_string(),
            consents: vec![],
            break_glass_reason: None,
        }),
        request_id: attempt.request_id,
        account: attempt.account,
    }
}

/// Writes access events to the outbox and wakes the relay: the one way events leave a service.
#[derive(Clone)]
pub struct AccessLog {
    stream: String,
    relay: Relay,
    /// Events recorded outside a transaction are committed together with those of concurrent
    /// requests.
    group: GroupCommit,
}

impl AccessLog {
    /// Starts the group-commit writers on the current Tokio runtime, with `writers`, a pool
    /// of their own (see [`custodian_events::group_commit`]).
    pub fn new(streams: &Streams, relay: Relay, writers: custodian_database::Pool) -> Self {
        Self {
            stream: streams.access(),
            group: GroupCommit::start(writers, relay.clone()),
            relay,
        }
    }

    fn rows(&self, events: &[AccessEvent]) -> Result<Vec<OutboxRow>, EventError> {
        events
            .iter()
            .map(|e| {
                serde_json::to_value(e)
                    .map(|json| (self.stream.clone(), e.id, json))
                    .map_err(|e| EventError::Malformed(e.to_string()))
            })
            .collect()
    }

    /// Enqueues `events` on `conn`, inside the caller's transaction if it has one; call
    /// [`AccessLog::wake`] after the commit.
    pub async fn enqueue(
        &self,
        conn: &mut AsyncPgConnection,
        events: &[AccessEvent],
    ) -> Result<(), EventError> {
        let rows = self.rows(events)?;
        custodian_events::outbox::enqueue_many(conn, &rows)
            .await
            .map_err(EventError::from)
    }

    /// Tells the relay there is something to publish.
    pub fn wake(&self) {
        self.relay.wake();
    }

    /// Records `events` durably before returning: inside `conn`'s transaction when it has one
    /// (they commit or roll back with it), otherwise by group commit with the events of
    /// concurrent requests (committed before this returns). Wakes the relay.
    pub async fn record(
        &self,
        conn: &mut AsyncPgConnection,
        events: &[AccessEvent],
    ) -> Result<(), EventError> {
        let outside_transaction = matches!(
            AnsiTransactionManager::transaction_manager_status_mut(conn).transaction_depth(),
            Ok(None)
        );
        if outside_transaction {
            return self.group.write(self.rows(events)?).await;
        }
        self.enqueue(conn, events).await?;
        self.wake();
        Ok(())
    }
}
