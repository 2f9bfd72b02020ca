//! `ConsentStore::evaluate` with 100,000 consents loaded (50,000 patients, two consents each,
//! with nested provisions, labels and periods). Prints p50/p99/p999 of single evaluations
//! measured one by one, then runs criterion. Goal: p99 < 50 µs.
//!
//! `cargo bench -p custodian-policy --bench decide`

use std::{hint::black_box, time::Instant};

use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use custodian_policy::{
    Coding, Consent, ConsentAction, ConsentChange, ConsentRequest, ConsentStore, KnownMembership,
    ResourceFacts, ScopeRequest,
};
use serde_json::json;

const PATIENTS: usize = 50_000;
const CONSENTS_PER_PATIENT: usize = 2;

fn actor(reference: &str) -> serde_json::Value {
    json!({"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": reference}})
}

fn load() -> ConsentStore {
    let store = ConsentStore::new();
    for p in 0..PATIENTS {
        let patient = format!("Patient/p{p}");
        let org = format!("Organization/h{}", p % 100);
        let consents = [
            json!({"resourceType": "Consent", "status": "active",
            "scope": {"coding": [{"code": "patient-privacy"}]},
            "patient": {"reference": patient},
            "provision": {"type": "permit", "period": {"start": "2020-01-01", "end": "2099-12-31"},
                "actor": [actor(&org), actor(&format!("Practitioner/d{}", p % 1000))],
                "action": [{"coding": [{"code": "access"}]}],
                "purpose": [{"code": "TREAT"}, {"code": "ETREAT"}],
                "provision": [
                    {"type": "deny", "class": [{"code": "Observation"}], "purpose": [{"code": "HRESCH"}]},
                    {"type": "deny", "securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "V"}],
                     "provision": [{"type": "permit", "actor": [actor(&format!("Practitioner/d{}", p % 1000))]}]}
                ]}}),
            json!({"resourceType": "Consent", "status": "active",
                "scope": {"coding": [{"code": "patient-privacy"}]},
                "patient": {"reference": patient},
                "provision": {"type": "deny", "actor": [actor("Organization/blocked")],
                    "dataPeriod": {"start": "2015", "end": "2016"}}}),
        ];
        for (i, consent) in consents.iter().enumerate().take(CONSENTS_PER_PATIENT) {
            let Ok(parsed) = Consent::parse(consent) else {
                panic!("the benchmark's consent parses");
            };
            store.apply(ConsentChange {
                consent: format!("Consent/p{p}-{i}"),
                patient: patient.clone(),
                version: 1,
                consent_policy: Some(parsed),
            });
        }
    }
    assert_eq!(store.len(), PATIENTS * CONSENTS_PER_PATIENT);
    store
}

fn decide(c: &mut Criterion) {
    let store = load();
    let actors: Vec<String> = vec!["Organization/h7".into(), "Practitioner/d7".into()];
    let patients: Vec<String> = (0..PATIENTS).map(|p| format!("Patient/p{p}")).collect();
    let labels = [Coding::new(
        Some("http://terminology.hl7.org/CodeSystem/v3-Confidentiality"),
        "N",
    )];
    let codes = [Coding::new(Some("http://loinc.org"), "29463-7")];
    let at = Utc::now();
    let data_time = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).single();
    let ask = |i: usize| {
        let patient = &patients[(i * 7919) % PATIENTS];
        store.evaluate(&ConsentRequest {
            patient,
            actors: &actors,
            membership: &KnownMembership,
            purpose: "TREAT",
            action: ConsentAction::Access,
            resource: ResourceFacts {
                resource_type: "Observation",
                id: Some("o1"),
                security_labels: Some(&labels),
                data_time: data_time.map(|t| (t, t)),
                codes: Some(&codes),
                references: Some(&[]),
                referrers: None,
            },
            at,
        })
    };

    // One by one, for the tail.
    let mut samples: Vec<u128> = Vec::with_capacity(200_000);
    for i in 0..200_000 {
        let started = Instant::now();
        black_box(ask(i));
        samples.push(started.elapsed().as_nanos());
    }
    samples.sort_unstable();
    let pct = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
    println!(
        "ConsentStore::evaluate, {} consents: p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.2} µs",
        store.len(),
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );

    let mut i = 0usize;
    c.bench_function("ConsentStore::evaluate (100k consents)", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            black_box(ask(i))
        })
    });
    c.bench_function(
        "ConsentStore::scope (100k consents, one organisation)",
        |b| {
            b.iter(|| {
                black_box(store.scope(&ScopeRequest {
                    actors: &actors,
                    membership: &KnownMembership,
                    purpose: "TREAT",
                    action: ConsentAction::Access,
                    resource_type: "Condition",
                    at,
                }))
            })
        },
    );
}

criterion_group!(benches, decide);
criterion_main!(benches);
