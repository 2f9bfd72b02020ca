//! The access event every password login (permitted or denied) leaves on the access stream.

use actix_web::HttpRequest;
use chrono::Utc;
use custodian_events::{outbox, AccessAction, AccessEvent, AccessOutcome, Actor, Source};
use uuid::Uuid;

use crate::{error::Unexpected, models::User, state::AppState};

/// Where the request came from: the first `X-Forwarded-For` hop (set by the gateway) or the
/// peer address.
pub fn source_of(req: &HttpRequest) -> Source {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(64).collect::<String>());
    let ip = forwarded.or_else(|| req.peer_addr().map(|a| a.ip().to_string()));
    let user_agent = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(512).collect::<String>());
    Source { ip, user_agent }
}

/// The actor of a login: the user when known. An unknown username has no user: its id is
/// `unknown` and, the event schema requiring a role, the least privileged human role.
fn actor_of(user: Option<&User>) -> (Actor, Option<String>) {
    match user {
        Some(user) => {
            let patient = user.patient_ref.clone().filter(|_| user.role == "patient");
            (
                Actor {
                    id: user.id.to_string(),
                    role: user.role.clone(),
                    organization: user.organization_ref(),
                    department: user.department.clone(),
                },
                patient,
            )
        }
        None => (
            Actor {
                id: "unknown".into(),
                role: "patient".into(),
                organization: None,
                department: None,
            },
            None,
        ),
    }
}

/// Enqueues the login event; it is durable once this returns.
pub async fn record(
    state: &AppState,
    source: Source,
    user: Option<&User>,
    outcome: AccessOutcome,
) -> Result<(), Unexpected> {
    let (actor, patient) = actor_of(user);
    let event = AccessEvent {
        id: Uuid::new_v4(),
        time: Utc::now(),
        actor,
        patient,
        action: AccessAction::Login,
        resource_type: None,
        count: 0,
        purpose: "HSYSADMIN".into(),
        outcome,
        break_glass: false,
        confidentiality: None,
        source,
    };
    let payload =
        serde_json::to_value(&event).map_err(|e| Unexpected(format!("event encoding: {e}")))?;
    let mut conn = state.pool.get().await?;
    outbox::enqueue(&mut conn, &state.streams.access(), event.id, &payload).await?;
    state.relay.wake();
    Ok(())
}
