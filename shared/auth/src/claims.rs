use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the installation: registers organisations, users, clients. Reads no PHI by role.
    Admin,
    /// Acts for an organisation; reads what patients' consents allow.
    Practitioner,
    /// Reads their own record, records consents, sees who accessed their data.
    Patient,
    /// Security team: reads the ledger and alerts, no PHI.
    Auditor,
    /// Another system acting through an OAuth2 client (client_credentials).
    Service,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Practitioner => "practitioner",
            Role::Patient => "patient",
            Role::Auditor => "auditor",
            Role::Service => "service",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "practitioner" => Ok(Role::Practitioner),
            "patient" => Ok(Role::Patient),
            "auditor" => Ok(Role::Auditor),
            "service" => Ok(Role::Service),
            other => Err(format!("unknown role {other:?}")),
        }
    }
}

/// The claims of a Custodian access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The user's (or client's) id in identity.
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    /// Unique token id, for revocation.
    pub jti: String,
    pub role: Role,
    /// `Organization/<id>` the user acts for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// `Practitioner/<id>` for practitioners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practitioner: Option<String>,
    /// `Patient/<id>` for patients (SMART's `patient` launch context carries the bare id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// Space-separated SMART scopes, e.g. `user/*.read patient/*.read`.
    #[serde(default)]
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

impl Claims {
    pub fn has_role(&self, roles: &[Role]) -> bool {
        roles.contains(&self.role)
    }
}
