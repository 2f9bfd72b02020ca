//! The demo data set: Hospital1 and Hospital2, a practitioner at each, an auditor, and two
//! patients with logins, Alice and Bob. Hospital1 registers both (so it holds their records:
//! the custodian rule lets its staff treat them without a consent) and writes their data.
//! Alice's consent admits Hospital2 too, for treatment; Bob has given none, so Hospital2 sees
//! nothing of his (unless it breaks the glass for him).

use serde::Serialize;
use serde_json::{json, Value};

use crate::api::{ApiError, Gateway};

/// SNOMED CT 44054006: diabetes mellitus type 2 (the seeds' disease search).
pub const DIABETES: &str = "http://snomed.info/sct|44054006";

#[derive(Debug, Clone, Serialize)]
pub struct DemoUser {
    pub username: String,
    pub password: String,
    pub role: String,
    pub id: String,
    pub organization: Option<String>,
    pub patient: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Demo {
    pub hospital1: String,
    pub hospital2: String,
    pub h1_practitioner: DemoUser,
    pub h2_practitioner: DemoUser,
    pub alice: DemoUser,
    /// Bob, another patient of Hospital1, who has given no consent.
    pub bob: DemoUser,
    pub auditor: DemoUser,
    /// Ids (without the type) of the resources Hospital1 wrote.
    pub alice_observation: String,
    pub alice_condition: String,
    pub bob_observation: String,
    pub bob_condition: String,
    /// Alice's consent admitting Hospital2.
    pub alice_consent: String,
}

fn random_password() -> String {
    (0..12)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

fn id_of(created: &Value) -> Result<String, ApiError> {
    created["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| ApiError::Unexpected(format!("no id in {created}")))
}

async fn organization(gw: &Gateway, admin: &str, name: &str) -> Result<String, ApiError> {
    let created = gw
        .post(
            "/auth/admin/organizations",
            Some(admin),
            &json!({ "name": name }),
        )
        .await?
        .expect_status(201)?
        .json();
    match created["reference"].as_str() {
        Some(reference) => Ok(reference.to_string()),
        None => Ok(format!("Organization/{}", id_of(&created)?)),
    }
}

async fn user(
    gw: &Gateway,
    admin: &str,
    username: &str,
    role: &str,
    extra: Value,
) -> Result<DemoUser, ApiError> {
    let password = random_password();
    let mut body = json!({ "username": username, "password": password, "role": role });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let created = gw
        .post("/auth/admin/users", Some(admin), &body)
        .await?
        .expect_status(201)?
        .json();
    Ok(DemoUser {
        username: username.to_string(),
        password,
        role: role.to_string(),
        id: id_of(&created)?,
        organization: created["organization"].as_str().map(str::to_string),
        patient: created["patient"].as_str().map(str::to_string),
    })
}

async fn create(gw: &Gateway, token: &str, resource: Value) -> Result<String, ApiError> {
    let kind = resource["resourceType"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let created = gw
        .post(&format!("/fhir/{kind}"), Some(token), &resource)
        .await?
        .expect_status(201)?
        .json();
    id_of(&created)
}

/// The consent Alice gives: `organization` (another hospital than the one holding her record)
/// may access her records for treatment.
pub fn treatment_consent(patient: &str, organization: &str) -> Value {
    json!({
        "resourceType": "Consent",
        "status": "active",
        "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
        "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent" }] }],
        "patient": { "reference": patient },
        "dateTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "policyRule": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN" }] },
        "provision": {
            "type": "permit",
            "period": { "start": "2020-01-01" },
            "actor": [{
                "role": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP" }] },
                "reference": { "reference": organization }
            }],
            "action": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentaction", "code": "access" }] }],
            "purpose": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT" }]
        }
    })
}

fn patient_resource(
    id: Option<&str>,
    family: &str,
    given: &str,
    gender: &str,
    birth: &str,
) -> Value {
    let mut patient = json!({
        "resourceType": "Patient",
        "active": true,
        "name": [{ "use": "official", "family": family, "given": [given] }],
        "gender": gender,
        "birthDate": birth
    });
    if let Some(id) = id {
        patient["id"] = json!(id);
    }
    patient
}

fn condition(patient: &str, encounter: Option<&str>) -> Value {
    let mut c = json!({
        "resourceType": "Condition",
        "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active" }] },
        "verificationStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed" }] },
        "code": { "coding": [{ "system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes mellitus type 2" }] },
        "subject": { "reference": patient },
        "onsetDateTime": "2019-04-02"
    });
    if let Some(encounter) = encounter {
        c["encounter"] = json!({ "reference": encounter });
    }
    c
}

fn observation(
    patient: &str,
    loinc: &str,
    display: &str,
    value: f64,
    unit: &str,
    when: &str,
) -> Value {
    json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory" }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": loinc, "display": display }] },
        "subject": { "reference": patient },
        "effectiveDateTime": when,
        "valueQuantity": { "value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit }
    })
}

/// A practitioner of `organization` (`token`) registers a patient user's Patient resource at
/// the id identity gave the user, and checks that `organization` now holds the record.
/// Returns `Patient/<id>`.
async fn register(
    gw: &Gateway,
    token: &str,
    user: &DemoUser,
    organization: &str,
    (family, given, gender, birth): (&str, &str, &str, &str),
) -> Result<String, ApiError> {
    let reference = user.patient.clone().ok_or_else(|| {
        ApiError::Unexpected(format!("{} has no patient reference", user.username))
    })?;
    let id = reference.trim_start_matches("Patient/");
    let created = gw
        .put(
            &format!("/fhir/Patient/{id}"),
            Some(token),
            &patient_resource(Some(id), family, given, gender, birth),
        )
        .await?
        .expect_status(201)?
        .json();
    let custodian = &created["managingOrganization"]["reference"];
    if custodian != organization {
        return Err(ApiError::Unexpected(format!(
            "{reference} registered by {organization} is held by {custodian}"
        )));
    }
    Ok(reference)
}

/// Loads the demo data set through the gateway, as the administrator and the demo users would.
pub async fn seed(gw: &Gateway, admin_password: &str) -> Result<Demo, ApiError> {
    let admin = gw.login("admin", admin_password).await?;
    let hospital1 = organization(gw, &admin, "Hospital1").await?;
    let hospital2 = organization(gw, &admin, "Hospital2").await?;
    let h1_practitioner = user(
        gw,
        &admin,
        "dr.grey",
        "practitioner",
        json!({ "organization": hospital1, "department": "Cardiology" }),
    )
    .await?;
    let h2_practitioner = user(
        gw,
        &admin,
        "dr.house",
        "practitioner",
        json!({ "organization": hospital2, "department": "Diagnostics" }),
    )
    .await?;
    let alice = user(gw, &admin, "alice", "patient", json!({})).await?;
    let bob = user(gw, &admin, "bob", "patient", json!({})).await?;
    let auditor = user(gw, &admin, "auditor", "auditor", json!({})).await?;

    let h1 = gw
        .login(&h1_practitioner.username, &h1_practitioner.password)
        .await?;
    // Hospital1 registers both patients at the ids identity gave them, so it holds their
    // records (the writer's organisation becomes `managingOrganization`).
    let alice_ref = register(
        gw,
        &h1,
        &alice,
        &hospital1,
        ("Smith", "Alice", "female", "1984-03-12"),
    )
    .await?;
    let bob_ref = register(
        gw,
        &h1,
        &bob,
        &hospital1,
        ("Jones", "Bob", "male", "1971-11-30"),
    )
    .await?;

    let encounter = create(gw, &h1, json!({
        "resourceType": "Encounter",
        "status": "finished",
        "class": { "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory" },
        "subject": { "reference": alice_ref },
        "serviceProvider": { "reference": hospital1 },
        "period": { "start": "2026-11-02T09:00:00Z", "end": "2026-11-02T09:30:00Z" }
    }))
    .await?;
    let alice_condition = create(
        gw,
        &h1,
        condition(&alice_ref, Some(&format!("Encounter/{encounter}"))),
    )
    .await?;
    let alice_observation = create(
        gw,
        &h1,
        observation(
            &alice_ref,
            "2339-0",
            "Glucose [Mass/volume] in Blood",
            142.0,
            "mg/dL",
            "2026-11-02T09:10:00Z",
        ),
    )
    .await?;
    create(
        gw,
        &h1,
        observation(
            &alice_ref,
            "4548-4",
            "Hemoglobin A1c/Hemoglobin.total in Blood",
            7.4,
            "%",
            "2026-11-02T09:10:00Z",
        ),
    )
    .await?;
    let bob_condition = create(gw, &h1, condition(&bob_ref, None)).await?;
    let bob_observation = create(
        gw,
        &h1,
        observation(
            &bob_ref,
            "2339-0",
            "Glucose [Mass/volume] in Blood",
            168.0,
            "mg/dL",
            "2026-11-03T08:05:00Z",
        ),
    )
    .await?;

    let alice_token = gw.login(&alice.username, &alice.password).await?;
    let consent = gw
        .post(
            "/fhir/Consent",
            Some(&alice_token),
            &treatment_consent(&alice_ref, &hospital2),
        )
        .await?
        .expect_status(201)?
        .json();
    let alice_consent = id_of(&consent)?;

    Ok(Demo {
        hospital1,
        hospital2,
        h1_practitioner,
        h2_practitioner,
        alice,
        bob,
        auditor,
        alice_observation,
        alice_condition,
        bob_observation,
        bob_condition,
        alice_consent,
    })
}
