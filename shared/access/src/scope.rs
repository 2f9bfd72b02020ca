//! SMART on FHIR scopes, v2 (`patient/Observation.rs`) and v1 (`user/*.read`), parsed into
//! what they permit. A token carries the scopes granted at the token endpoint; the kernel checks
//! them at every interaction. Scopes only ever narrow: consent and the custodian rule still
//! decide what the scope allows.
//!
//! Grammar (SMART App Launch 2.0, section "Scopes for requesting clinical data"):
//! `( patient | user | system ) / ( <ResourceType> | * ) . ( <cruds in that order> | read | write | * )`.
//! Granular v2 scopes with a query (`?category=...`) are refused: they cannot be enforced
//! exactly here, and a scope we cannot enforce must not be granted. Non-resource scopes
//! (`openid`, `fhirUser`, `launch`, `launch/patient`, `offline_access`, `online_access`) are
//! accepted and grant no data.

use std::fmt;

use custodian_auth::Role;

/// One SMART permission letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Create,
    Read,
    Update,
    Delete,
    Search,
}

impl Permission {
    const ALL: [Permission; 5] = [
        Permission::Create,
        Permission::Read,
        Permission::Update,
        Permission::Delete,
        Permission::Search,
    ];

    fn bit(self) -> u8 {
        match self {
            Permission::Create => 1,
            Permission::Read => 2,
            Permission::Update => 4,
            Permission::Delete => 8,
            Permission::Search => 16,
        }
    }

    fn letter(self) -> char {
        match self {
            Permission::Create => 'c',
            Permission::Read => 'r',
            Permission::Update => 'u',
            Permission::Delete => 'd',
            Permission::Search => 's',
        }
    }
}

/// Whose data a scope is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// The patient in the token's launch context only.
    Patient,
    /// Whatever the user may see.
    User,
    /// Whatever the client (a backend service) may see.
    System,
}

impl Context {
    fn as_str(self) -> &'static str {
        match self {
            Context::Patient => "patient",
            Context::User => "user",
            Context::System => "system",
        }
    }
}

/// One clinical-data scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceScope {
    pub context: Context,
    /// None: every resource type (`*`).
    pub resource_type: Option<String>,
    permissions: u8,
}

impl ResourceScope {
    pub fn allows(&self, permission: Permission) -> bool {
        self.permissions & permission.bit() != 0
    }

    fn covers_type(&self, resource_type: &str) -> bool {
        self.resource_type
            .as_deref()
            .is_none_or(|t| t == resource_type)
    }

    /// Whether everything `other` grants, this grants too.
    pub fn contains(&self, other: &ResourceScope) -> bool {
        self.context == other.context
            && (self.resource_type.is_none() || self.resource_type == other.resource_type)
            && other.permissions & !self.permissions == 0
    }
}

impl fmt::Display for ResourceScope {
    /// The v2 spelling.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let letters: String = Permission::ALL
            .iter()
            .filter(|p| self.allows(**p))
            .map(|p| p.letter())
            .collect();
        write!(
            f,
            "{}/{}.{}",
            self.context.as_str(),
            self.resource_type.as_deref().unwrap_or("*"),
            letters
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope {0:?} is not a SMART scope")]
    Malformed(String),
    #[error("scope {0:?} has a query; granular scopes are not supported")]
    Granular(String),
    #[error("scope {0:?} names an unknown resource type")]
    UnknownType(String),
}

/// Scopes that grant no clinical data but that SMART clients send.
const NON_RESOURCE: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "launch/encounter",
    "offline_access",
    "online_access",
];

/// One scope of a request or a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    Resource(ResourceScope),
    /// `openid`, `launch/patient`, ...
    Other(String),
}

impl Scope {
    /// Parses one scope. `is_type` says whether a name is a FHIR resource type.
    pub fn parse(raw: &str, is_type: impl Fn(&str) -> bool) -> Result<Scope, ScopeError> {
        if NON_RESOURCE.contains(&raw) {
            return Ok(Scope::Other(raw.to_string()));
        }
        let malformed = || ScopeError::Malformed(raw.chars().take(100).collect());
        if raw.contains('?') {
            return Err(ScopeError::Granular(raw.chars().take(100).collect()));
        }
        let (context, rest) = raw.split_once('/').ok_or_else(malformed)?;
        let context = match context {
            "patient" => Context::Patient,
            "user" => Context::User,
            "system" => Context::System,
            _ => return Err(malformed()),
        };
        let (resource_type, access) = rest.split_once('.').ok_or_else(malformed)?;
        let resource_type = match resource_type {
            "*" => None,
            t if is_type(t) => Some(t.to_string()),
            _ => return Err(ScopeError::UnknownType(raw.chars().take(100).collect())),
        };
        let permissions = match access {
            // v1 forms.
            "read" => Permission::Read.bit() | Permission::Search.bit(),
            "write" => {
                Permission::Create.bit() | Permission::Update.bit() | Permission::Delete.bit()
            }
            "*" => Permission::ALL.iter().fold(0, |acc, p| acc | p.bit()),
            letters => {
                // v2: a non-empty subsequence of "cruds", in that order.
                let mut bits = 0u8;
                let mut next = 0usize;
                for c in letters.chars() {
                    let at = Permission::ALL[next..]
                        .iter()
                        .position(|p| p.letter() == c)
                        .ok_or_else(malformed)?;
                    bits |= Permission::ALL[next + at].bit();
                    next += at + 1;
                }
                if bits == 0 {
                    return Err(malformed());
                }
                bits
            }
        };
        Ok(Scope::Resource(ResourceScope {
            context,
            resource_type,
            permissions,
        }))
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Resource(r) => r.fmt(f),
            Scope::Other(s) => f.write_str(s),
        }
    }
}

/// The scopes of a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet {
    scopes: Vec<ResourceScope>,
    others: Vec<String>,
}

impl ScopeSet {
    /// Parses a space-separated scope string, keeping only what parses: a token's scopes were
    /// checked when they were granted, and what does not parse grants nothing.
    pub fn from_token(raw: &str) -> Self {
        let mut set = ScopeSet::default();
        for piece in raw.split_whitespace() {
            match Scope::parse(piece, custodian_policy::resource_types::is_resource_type) {
                Ok(Scope::Resource(r)) => set.scopes.push(r),
                Ok(Scope::Other(o)) => set.others.push(o),
                Err(_) => {}
            }
        }
        set
    }

    /// Parses a requested scope string strictly.
    pub fn parse_request(raw: &str) -> Result<Self, ScopeError> {
        let mut set = ScopeSet::default();
        for piece in raw.split_whitespace() {
            match Scope::parse(piece, custodian_policy::resource_types::is_resource_type)? {
                Scope::Resource(r) => {
                    if !set.scopes.contains(&r) {
                        set.scopes.push(r)
                    }
                }
                Scope::Other(o) => {
                    if !set.others.contains(&o) {
                        set.others.push(o)
                    }
                }
            }
        }
        Ok(set)
    }

    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.others.is_empty()
    }

    pub fn resource_scopes(&self) -> &[ResourceScope] {
        &self.scopes
    }

    /// Whether some scope of `context` permits `permission` on `resource_type`.
    pub fn allows(&self, context: Context, resource_type: &str, permission: Permission) -> bool {
        self.scopes
            .iter()
            .any(|s| s.context == context && s.covers_type(resource_type) && s.allows(permission))
    }

    /// Whether every resource scope here is contained in one of `allowed`'s.
    pub fn within(&self, allowed: &ScopeSet) -> Result<(), String> {
        for s in &self.scopes {
            if !allowed.scopes.iter().any(|a| a.contains(s)) {
                return Err(s.to_string());
            }
        }
        Ok(())
    }

    /// The scope string a token carries (v2 spelling, request order).
    pub fn to_scope_string(&self) -> String {
        self.scopes
            .iter()
            .map(ToString::to_string)
            .chain(self.others.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The scopes a role may be granted, and is granted when it asks for none.
pub fn role_scopes(role: Role) -> &'static str {
    match role {
        Role::Practitioner => "user/*.cruds",
        // A patient reads her record and manages her own consents.
        Role::Patient => "patient/*.rs patient/Consent.cruds",
        // A backend system of an organisation: its data rights come from the custodian rule
        // and consents, like its staff's.
        Role::Service => "system/*.cruds",
        // Administrators register organisations and other shared resources; no PHI by role.
        Role::Admin => "system/*.cruds",
        // Auditors read the ledger and alerts, and who the actors in it are; no clinical data.
        Role::Auditor => {
            "user/AuditEvent.rs user/DetectedIssue.rus user/Organization.rs user/Practitioner.rs"
        }
    }
}

/// The scopes a role may ask for: its default ones ([`role_scopes`]) and those it gets only by
/// asking. A patient's `patient/Patient.d` lets a token erase her record (`$erase`): never in
/// a default grant, so an app she let read her data cannot erase it.
pub fn grantable_scopes(role: Role) -> &'static str {
    match role {
        Role::Patient => "patient/*.rs patient/Consent.cruds patient/Patient.d",
        _ => role_scopes(role),
    }
}

/// Grants a requested scope string for `role`: the role's default scopes when nothing is
/// requested, else the request if every scope in it is within what the role may ask for
/// (RFC 6749 `invalid_scope` otherwise: no silent widening or narrowing).
pub fn grant(role: Role, requested: Option<&str>) -> Result<ScopeSet, String> {
    let requested = requested.map(str::trim).filter(|r| !r.is_empty());
    let Some(requested) = requested else {
        return ScopeSet::parse_request(role_scopes(role)).map_err(|e| e.to_string());
    };
    let allowed = ScopeSet::parse_request(grantable_scopes(role)).map_err(|e| e.to_string())?;
    let set = ScopeSet::parse_request(requested).map_err(|e| e.to_string())?;
    set.within(&allowed).map_err(|scope| {
        format!(
            "scope {scope:?} is not available to {} users",
            role.as_str()
        )
    })?;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn erasure_is_granted_only_when_asked_for() {
        let default = grant(Role::Patient, None).unwrap().to_scope_string();
        assert!(!default.contains("Patient.d"), "{default}");
        assert!(grant(Role::Patient, Some("patient/*.rs patient/Patient.d")).is_ok());
        assert!(grant(Role::Patient, Some("patient/Observation.d")).is_err());
        assert!(grant(Role::Practitioner, Some("patient/Patient.d")).is_err());
    }

    fn parse(raw: &str) -> Result<Scope, ScopeError> {
        Scope::parse(raw, custodian_policy::resource_types::is_resource_type)
    }

    fn resource(raw: &str) -> ResourceScope {
        match parse(raw).unwrap() {
            Scope::Resource(r) => r,
            Scope::Other(o) => panic!("{o} is not a resource scope"),
        }
    }

    #[test]
    fn v2_letters_in_order() {
        let s = resource("user/Observation.rs");
        assert!(s.allows(Permission::Read) && s.allows(Permission::Search));
        assert!(!s.allows(Permission::Create) && !s.allows(Permission::Update));
        assert_eq!(s.to_string(), "user/Observation.rs");
        assert!(parse("user/Observation.sr").is_err(), "order matters");
        assert!(parse("user/Observation.rr").is_err());
        assert!(parse("user/Observation.").is_err());
        assert!(parse("user/Observation.x").is_err());
        assert_eq!(resource("patient/*.cruds").to_string(), "patient/*.cruds");
    }

    #[test]
    fn v1_forms() {
        assert_eq!(resource("user/*.read").to_string(), "user/*.rs");
        assert_eq!(resource("user/*.write").to_string(), "user/*.cud");
        assert_eq!(
            resource("system/Patient.*").to_string(),
            "system/Patient.cruds"
        );
    }

    #[test]
    fn refuses_what_cannot_be_enforced() {
        assert!(matches!(
            parse("patient/Observation.rs?category=laboratory"),
            Err(ScopeError::Granular(_))
        ));
        assert!(matches!(
            parse("user/Nothing.rs"),
            Err(ScopeError::UnknownType(_))
        ));
        assert!(parse("admin/*.rs").is_err());
        assert!(parse("user*.rs").is_err());
        assert!(matches!(parse("launch/patient"), Ok(Scope::Other(_))));
    }

    #[test]
    fn grants_subsets_of_the_role() {
        let g = grant(Role::Practitioner, Some("user/Observation.rs openid")).unwrap();
        assert!(g.allows(Context::User, "Observation", Permission::Read));
        assert!(!g.allows(Context::User, "Patient", Permission::Read));
        assert!(!g.allows(Context::User, "Observation", Permission::Create));
        assert_eq!(g.to_scope_string(), "user/Observation.rs openid");
        assert!(grant(Role::Practitioner, Some("system/*.rs")).is_err());
        assert!(grant(Role::Patient, Some("patient/Observation.c")).is_err());
        assert!(grant(Role::Patient, Some("patient/Consent.c")).is_ok());
        let all = grant(Role::Patient, None).unwrap();
        assert!(all.allows(Context::Patient, "Observation", Permission::Search));
        assert!(!all.allows(Context::User, "Observation", Permission::Search));
    }

    #[test]
    fn the_test_issuer_grants_what_identity_grants() {
        for role in [
            Role::Practitioner,
            Role::Patient,
            Role::Service,
            Role::Admin,
            Role::Auditor,
        ] {
            assert_eq!(
                custodian_auth::testing::default_scope(role),
                role_scopes(role)
            );
        }
    }

    #[test]
    fn token_scopes_ignore_garbage() {
        let s = ScopeSet::from_token("user/Observation.rs nonsense user/Foo.r");
        assert!(s.allows(Context::User, "Observation", Permission::Read));
        assert_eq!(s.resource_scopes().len(), 1);
    }

    proptest! {
        #[test]
        fn parsing_never_panics(raw in "\\PC{0,40}") {
            let _ = parse(&raw);
            let _ = ScopeSet::from_token(&raw);
        }

        #[test]
        fn parsed_scopes_round_trip(ctx in prop::sample::select(vec!["patient", "user", "system"]),
                                    ty in prop::sample::select(vec!["*", "Observation", "Patient"]),
                                    bits in 1u8..32) {
            let letters: String = Permission::ALL.iter().filter(|p| bits & p.bit() != 0).map(|p| p.letter()).collect();
            let raw = format!("{ctx}/{ty}.{letters}");
            let parsed = resource(&raw);
            prop_assert_eq!(parsed.to_string(), raw);
        }
    }
}
