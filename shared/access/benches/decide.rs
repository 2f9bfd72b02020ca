//! `Kernel::decide` for one Observation read, with 100,000 consents loaded (100,000 patients,
//! one consent each with a nested exception), by a practitioner the consent names, by the
//! custodian, and by a stranger. Prints p50/p99/p99.9 of single decisions measured one by one,
//! then runs criterion. Goal (issue 5): p99 under 50 µs.
//!
//! `cargo bench -p custodian-access --bench decide`

use std::{hint::black_box, time::Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use custodian_access::{
    AccessSettings, Caller, Coding, CompartmentTarget, Interaction, Kernel, OrganizationRef,
    PatientRef, ResourceFacts, Target,
};
use custodian_auth::{Claims, Role};
use custodian_policy::{parse::Consent, ConsentChange, ConsentStore};
use serde_json::json;

const PATIENTS: usize = 100_000;

fn load() -> Kernel {
    let store = ConsentStore::new();
    for p in 0..PATIENTS {
        let consent = json!({"resourceType": "Consent", "id": format!("c{p}"), "status": "active",
            "scope": {"coding": [{"code": "patient-privacy"}]},
            "patient": {"reference": format!("Patient/p{p}")},
            "provision": {"type": "permit",
                "actor": [{"role": {"coding": [{"code": "IRCP"}]}, "reference": {"reference": format!("Organization/h{}", p % 100)}}],
                "purpose": [{"code": "TREAT"}],
                "provision": [{"type": "deny", "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}]}]}});
        let Ok(parsed) = Consent::parse(&consent) else {
            panic!("the benchmark's consent parses");
        };
        store.apply(ConsentChange {
            consent: format!("Consent/c{p}"),
            patient: format!("Patient/p{p}"),
            version: 1,
            consent_policy: Some(parsed),
        });
    }
    let kernel = Kernel::new(AccessSettings::default(), store);
    kernel.mark_consents_loaded();
    kernel.memberships().mark_loaded();
    kernel
}

fn practitioner(org: &str) -> Caller {
    Caller::from_claims(Claims {
        iss: "i".into(),
        sub: "u".into(),
        aud: "custodian".into(),
        exp: 0,
        iat: 0,
        jti: "j".into(),
        role: Role::Practitioner,
        organization: Some(org.into()),
        department: None,
        practitioner: Some("Practitioner/d1".into()),
        patient: None,
        scope: "user/*.cruds".into(),
        client_id: None,
    })
}

fn decide(c: &mut Criterion) {
    let kernel = load();
    let patients: Vec<PatientRef> = (0..PATIENTS)
        .map(|p| PatientRef::parse(&format!("Patient/p{p}")).unwrap_or_else(|_| panic!("id")))
        .collect();
    let custodian = OrganizationRef::parse("Organization/h7").unwrap_or_else(|_| panic!("org"));
    let labels = [Coding::new(
        Some("http://terminology.hl7.org/CodeSystem/v3-Confidentiality"),
        "N",
    )];
    let callers = [
        ("named by the consent", practitioner("Organization/h7")),
        ("stranger", practitioner("Organization/elsewhere")),
    ];
    for (who, caller) in &callers {
        let ask = |i: usize| {
            let target = Target::Compartment(CompartmentTarget {
                patient: &patients[(i * 7919) % PATIENTS],
                custodian: Some(&custodian),
                facts: ResourceFacts {
                    resource_type: "Observation",
                    id: Some("o1"),
                    security_labels: Some(&labels),
                    data_time: None,
                    codes: None,
                    references: None,
                    referrers: None,
                },
            });
            kernel.decide(caller, Interaction::Read, &target)
        };
        let mut samples: Vec<u128> = Vec::with_capacity(200_000);
        for i in 0..200_000 {
            let started = Instant::now();
            let _ = black_box(ask(i));
            samples.push(started.elapsed().as_nanos());
        }
        samples.sort_unstable();
        let pct = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
        println!(
            "Kernel::decide ({who}), {PATIENTS} consents: p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs",
            pct(0.50),
            pct(0.99),
            pct(0.999)
        );
        let mut i = 0usize;
        c.bench_function(&format!("Kernel::decide ({who})"), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                black_box(ask(i))
            })
        });
    }
}

criterion_group!(benches, decide);
criterion_main!(benches);
