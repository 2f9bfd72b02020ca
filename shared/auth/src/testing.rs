//! Test support (feature `testing`): a token issuer that serves its JWKS on a local port, so a
//! service's own tests can mint tokens its real verifier accepts. The end-to-end suite uses the
//! real identity service instead.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code (feature `testing`)

use base64::Engine as _;
use chrono::Utc;
use jsonwebtoken::{jwk::JwkSet, Algorithm, EncodingKey, Header};
use openssl::{
    bn::BigNumContext,
    ec::{EcGroup, EcKey},
    nid::Nid,
};

use crate::{Claims, Role, AUDIENCE};

pub struct TestIssuer {
    pub issuer: String,
    pub jwks_url: String,
    kid: String,
    key: EncodingKey,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TestIssuer {
    /// Generates a P-256 key and serves its JWKS at `http://127.0.0.1:<port>/.well-known/jwks.json`.
    pub async fn start() -> Self {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
        let ec = EcKey::generate(&group).expect("key generation");
        let mut ctx = BigNumContext::new().expect("bn ctx");
        let mut x = openssl::bn::BigNum::new().expect("bn");
        let mut y = openssl::bn::BigNum::new().expect("bn");
        ec.public_key()
            .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
            .expect("coordinates");
        let kid = uuid::Uuid::new_v4().to_string();
        let jwks: JwkSet = serde_json::from_value(serde_json::json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(&x.to_vec_padded(32).expect("pad")), "y": b64(&y.to_vec_padded(32).expect("pad")),
        }]}))
        .expect("jwks");
        let pem = openssl::pkey::PKey::from_ec_key(ec)
            .expect("pkey")
            .private_key_to_pem_pkcs8()
            .expect("pem");
        let key = EncodingKey::from_ec_pem(&pem).expect("encoding key");
        let body = serde_json::to_string(&jwks).expect("jwks json");
        let server = actix_web::HttpServer::new(move || {
            let body = body.clone();
            actix_web::App::new().route(
                "/.well-known/jwks.json",
                actix_web::web::get().to(move || {
                    let body = body.clone();
                    async move {
                        actix_web::HttpResponse::Ok()
                            .content_type("application/json")
                            .body(body)
                    }
                }),
            )
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("bind");
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        Self {
            issuer: "http://test-issuer".into(),
            jwks_url: format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
            kid,
            key,
        }
    }

    /// Claims for a role, valid for 15 minutes, with a fresh `sub` and `jti`, and the scopes
    /// identity grants the role by default.
    pub fn claims(&self, role: Role) -> Claims {
        let now = Utc::now().timestamp();
        Claims {
            iss: self.issuer.clone(),
            sub: uuid::Uuid::new_v4().to_string(),
            aud: AUDIENCE.into(),
            exp: now + 900,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            role,
            organization: None,
            department: None,
            practitioner: None,
            patient: None,
            scope: default_scope(role).to_string(),
            client_id: None,
        }
    }

    pub fn token(&self, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).expect("signing")
    }

    pub fn practitioner(&self, organization: &str) -> (Claims, String) {
        let mut c = self.claims(Role::Practitioner);
        c.organization = Some(organization.to_string());
        c.practitioner = Some(format!("Practitioner/{}", uuid::Uuid::new_v4()));
        let t = self.token(&c);
        (c, t)
    }

    pub fn patient(&self, patient: &str) -> (Claims, String) {
        let mut c = self.claims(Role::Patient);
        c.patient = Some(patient.to_string());
        let t = self.token(&c);
        (c, t)
    }
}

/// The scopes identity grants each role when none are requested (the access kernel's
/// `scope::role_scopes`; a test there keeps the two equal).
pub fn default_scope(role: Role) -> &'static str {
    match role {
        Role::Practitioner => "user/*.cruds",
        Role::Patient => "patient/*.rs patient/Consent.cruds",
        Role::Service | Role::Admin => "system/*.cruds",
        Role::Auditor => {
            "user/AuditEvent.rs user/DetectedIssue.rus user/Organization.rs user/Practitioner.rs"
        }
    }
}

/// A stand-in for identity's `GET /internal/suspended`: answers the snapshot it holds to callers
/// presenting its service credential, 401 to others.
pub struct TestIdentity {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub credential: crate::InternalToken,
    snapshot: std::sync::Arc<std::sync::Mutex<crate::DenySnapshot>>,
}

impl TestIdentity {
    pub async fn start(snapshot: crate::DenySnapshot) -> Self {
        // The process's own token when it has one, so services built in this test process
        // (which present it) are let in.
        let credential = crate::InternalToken::shared()
            .cloned()
            .unwrap_or_else(crate::InternalToken::generate);
        let shared = std::sync::Arc::new(std::sync::Mutex::new(snapshot));
        let (state, token) = (shared.clone(), credential.clone());
        let server = actix_web::HttpServer::new(move || {
            let state = state.clone();
            actix_web::App::new()
                .app_data(actix_web::web::Data::new(token.clone()))
                .route(
                    "/internal/suspended",
                    actix_web::web::get().to(move |_: crate::InternalCaller| {
                        let body = state.lock().expect("snapshot").clone();
                        async move { actix_web::HttpResponse::Ok().json(body) }
                    }),
                )
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .expect("bind");
        let port = server.addrs()[0].port();
        actix_web::rt::spawn(server.run());
        Self {
            url: format!("http://127.0.0.1:{port}"),
            credential,
            snapshot: shared,
        }
    }

    /// Changes what later snapshots answer.
    pub fn set(&self, snapshot: crate::DenySnapshot) {
        *self.snapshot.lock().expect("snapshot") = snapshot;
    }
}
