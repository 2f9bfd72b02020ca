//! Building access events the way the product does: the same fields, the same basis codes, one
//! search event per patient returned, one request id shared by the events of one request.

use chrono::{DateTime, Duration, Utc};
use custodian_events::{AccessAction, AccessEvent, AccessOutcome, Actor, DecisionRecord, Source};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use uuid::Uuid;

use super::world::World;

/// Milliseconds since local midnight of the first simulated day.
pub type Ms = i64;
pub const SEC: Ms = 1_000;
pub const MIN: Ms = 60 * SEC;
pub const HOUR: Ms = 60 * MIN;
pub const DAY: Ms = 24 * HOUR;

/// Who is acting, from where: one login session.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub actor: Actor,
    pub source: Source,
    /// `Patient/<id>` of a patient user (her logins name her compartment).
    pub own_patient: Option<String>,
}

/// What one event touched and how it was decided.
#[derive(Debug, Clone)]
pub struct Access {
    pub action: AccessAction,
    pub resource_type: &'static str,
    /// Index into the world's patients.
    pub patient: Option<usize>,
    pub count: u32,
    pub purpose: &'static str,
    pub outcome: AccessOutcome,
    /// `None` for an access to something that does not exist (nothing was decided).
    pub basis: Option<&'static str>,
    pub consents: Vec<String>,
    pub break_glass: Option<&'static str>,
}

impl Access {
    /// A permitted access of the custodian's staff for treatment.
    pub fn permit(
        action: AccessAction,
        rt: &'static str,
        patient: Option<usize>,
        count: u32,
    ) -> Self {
        Self {
            action,
            resource_type: rt,
            patient,
            count,
            purpose: "TREAT",
            outcome: AccessOutcome::Permit,
            basis: Some("custodian"),
            consents: Vec::new(),
            break_glass: None,
        }
    }

    pub fn purpose(mut self, purpose: &'static str) -> Self {
        self.purpose = purpose;
        self
    }

    pub fn basis(mut self, basis: &'static str) -> Self {
        self.basis = Some(basis);
        self
    }

    pub fn consents(mut self, consents: Vec<String>) -> Self {
        self.consents = consents;
        self
    }

    /// A denial: the product records denials with count 0.
    pub fn deny(mut self, basis: &'static str) -> Self {
        self.outcome = AccessOutcome::Deny;
        self.basis = Some(basis);
        self.count = 0;
        self
    }

    /// A read of something that does not exist: outcome error, no patient, no decision.
    pub fn absent(action: AccessAction, rt: &'static str) -> Self {
        Self {
            action,
            resource_type: rt,
            patient: None,
            count: 0,
            purpose: "TREAT",
            outcome: AccessOutcome::Error,
            basis: None,
            consents: Vec::new(),
            break_glass: None,
        }
    }

    /// A break-the-glass read: the kernel records purpose ETREAT and the reason.
    pub fn break_glass(mut self, reason: &'static str) -> Self {
        self.break_glass = Some(reason);
        self.purpose = "ETREAT";
        self.basis = Some("break-glass");
        self.outcome = AccessOutcome::Permit;
        self
    }
}

/// The events of a run before sorting, with the incident of each attack event.
pub struct Sink {
    pub base: DateTime<Utc>,
    pub events: Vec<(Ms, u64, AccessEvent)>,
    /// (index into `events`, incident index)
    pub labels: Vec<(usize, usize)>,
    seq: u64,
    /// The incident events are currently being labelled for.
    pub incident: Option<usize>,
}

impl Sink {
    pub fn new(base: DateTime<Utc>) -> Self {
        Self {
            base,
            events: Vec::new(),
            labels: Vec::new(),
            seq: 0,
            incident: None,
        }
    }

    fn push(&mut self, t: Ms, event: AccessEvent) -> usize {
        let index = self.events.len();
        self.seq += 1;
        self.events.push((t, self.seq, event));
        if let Some(incident) = self.incident {
            self.labels.push((index, incident));
        }
        index
    }
}

pub fn uuid(rng: &mut ChaCha8Rng) -> Uuid {
    uuid::Builder::from_random_bytes(rng.gen()).into_uuid()
}

pub fn request_id(rng: &mut ChaCha8Rng) -> String {
    uuid(rng).to_string()
}

fn time(base: DateTime<Utc>, t: Ms) -> DateTime<Utc> {
    base + Duration::milliseconds(t)
}

/// One access event, built as `custodian_access::Decision::event` builds it.
pub fn access(
    sink: &mut Sink,
    rng: &mut ChaCha8Rng,
    world: &World,
    t: Ms,
    ctx: &Ctx,
    access: &Access,
    request: &str,
) -> usize {
    let patient = access.patient.map(|p| &world.patients[p]);
    let confidentiality = patient.and_then(|p| p.confidentiality(access.resource_type));
    let event = AccessEvent {
        id: uuid(rng),
        time: time(sink.base, t),
        actor: ctx.actor.clone(),
        patient: patient.map(|p| p.reference.clone()),
        action: access.action,
        resource_type: Some(access.resource_type.to_string()),
        count: access.count,
        purpose: access.purpose.to_string(),
        outcome: access.outcome,
        break_glass: access.break_glass.is_some(),
        confidentiality: confidentiality.map(str::to_string),
        source: ctx.source.clone(),
        decision: access.basis.map(|basis| DecisionRecord {
            basis: basis.to_string(),
            consents: access.consents.clone(),
            break_glass_reason: access.break_glass.map(str::to_string),
        }),
        request_id: Some(request.to_string()),
        account: None,
    };
    sink.push(t, event)
}

/// One login event, built as `custodian_access::login_event` builds it. `actor` None is an
/// unknown username.
pub fn login(
    sink: &mut Sink,
    rng: &mut ChaCha8Rng,
    t: Ms,
    ctx: &Ctx,
    known: bool,
    outcome: AccessOutcome,
    basis: &str,
) -> usize {
    let actor = if known {
        ctx.actor.clone()
    } else {
        Actor {
            id: "unknown".into(),
            role: "patient".into(),
            organization: None,
            department: None,
            practitioner: None,
        }
    };
    let event = AccessEvent {
        id: uuid(rng),
        time: time(sink.base, t),
        actor,
        patient: if known { ctx.own_patient.clone() } else { None },
        action: AccessAction::Login,
        resource_type: None,
        count: 0,
        purpose: "HSYSADMIN".into(),
        outcome,
        break_glass: false,
        confidentiality: None,
        source: ctx.source.clone(),
        decision: Some(DecisionRecord {
            basis: basis.to_string(),
            consents: Vec::new(),
            break_glass_reason: None,
        }),
        request_id: Some(request_id(rng)),
        account: None,
    };
    sink.push(t, event)
}
