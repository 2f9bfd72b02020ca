use actix_web::{web, HttpRequest, HttpResponse};
use custodian_access::Caller;
use custodian_database::Pool;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::{fhir, render_all};
use crate::{
    domain::{
        alerts::{self, AlertStatus, Filter},
        detected_issue::bundle,
        kind::{AlertKind, KIND_SYSTEM},
    },
    error::ApiError,
    routes::alerts::{
        list::{DEFAULT_LIMIT, MAX_LIMIT},
        require_reader,
    },
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// `preliminary` (open), `final` (acknowledged) or `cancelled` (dismissed).
    pub status: Option<String>,
    /// The kind of alert: `snooping`, `enumeration`, `exfiltration`, `break-glass`,
    /// `stolen-credentials`, `role-misuse`, `denied-access`, `record-tampering`, `other` (optionally
    /// `<system>|<code>`).
    pub code: Option<String>,
    /// Only the alerts of this incident.
    pub incident: Option<Uuid>,
    /// Only alerts about this user (token `sub`).
    pub user: Option<String>,
    /// At most this many (default 100, at most 1000).
    #[serde(rename = "_count")]
    #[param(rename = "_count")]
    pub count: Option<i64>,
}

fn status(fhir: &str) -> Result<AlertStatus, ApiError> {
    match fhir {
        "preliminary" => Ok(AlertStatus::Open),
        "final" => Ok(AlertStatus::Acknowledged),
        "cancelled" => Ok(AlertStatus::Dismissed),
        _ => Err(ApiError::invalid(
            "status must be preliminary, final or cancelled",
        )),
    }
}

fn kind(token: &str) -> Result<AlertKind, ApiError> {
    let code = match token.split_once('|') {
        Some((system, code)) if system.is_empty() || system == KIND_SYSTEM => code,
        Some(_) => return Err(ApiError::invalid("code: unknown system")),
        None => token,
    };
    AlertKind::ALL
        .into_iter()
        .find(|k| k.code() == code)
        .ok_or_else(|| ApiError::invalid("code: unknown kind of alert"))
}

/// Alerts as a `searchset` Bundle of `DetectedIssue`s, newest first.
#[utoipa::path(
    get,
    path = "/anomaly/DetectedIssue",
    tag = "DetectedIssue",
    params(SearchQuery),
    responses(
        (status = 200, description = "A searchset Bundle (application/fhir+json)", body = Object),
        (status = 400, description = "Bad search parameter"),
        (status = 401, description = "No valid token"),
        (status = 403, description = "Not security staff, or no scope for it"),
    ),
    security(("smart" = []))
)]
pub async fn search_issues(
    req: HttpRequest,
    caller: Caller,
    query: web::Query<SearchQuery>,
    pool: web::Data<Pool>,
) -> Result<HttpResponse, ApiError> {
    require_reader(&caller)?;
    let limit = query.count.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "_count must be within 1..={MAX_LIMIT}"
        )));
    }
    let status = query.status.as_deref().map(status).transpose()?;
    let kind = query.code.as_deref().map(kind).transpose()?;
    let filter = Filter {
        user: query.user.as_deref(),
        status,
        incident: query.incident,
        kind: kind.map(AlertKind::code),
    };
    let mut conn = pool.get().await?;
    let found = alerts::search(&mut conn, filter, limit).await?;
    let issues = render_all(&mut conn, &found).await?;
    Ok(fhir(&bundle(issues, &req.uri().to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_tokens() {
        assert_eq!(status("final").ok(), Some(AlertStatus::Acknowledged));
        assert!(status("open").is_err());
        assert_eq!(kind("snooping").ok(), Some(AlertKind::Snooping));
        assert_eq!(
            kind(&format!("{KIND_SYSTEM}|exfiltration")).ok(),
            Some(AlertKind::Exfiltration)
        );
        assert!(kind("http://other|snooping").is_err());
        assert!(kind("gossip").is_err());
    }
}
