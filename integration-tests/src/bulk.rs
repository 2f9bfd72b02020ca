//! Bulk data in and out of a running suite, through the gateway, as a hospital would move it:
//! a synthetic population (Synthea-like: patients with encounters, conditions and
//! observations, deterministic per seed), an importer that loads NDJSON or Bundle files as
//! transaction Bundles, and an exporter that runs a Bulk Data `$export` to NDJSON files. The
//! `custodian-bulk` command wraps them with progress bars; the tests and the load runs call
//! them directly.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use awc::http::Method;
use futures_util::StreamExt;
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};

use crate::api::{ApiError, Gateway};

/// Types loaded before the others: what other resources reference.
const FIRST: &[&str] = &["Organization", "Practitioner", "Patient"];

const CONDITIONS: &[(&str, &str)] = &[
    ("44054006", "Diabetes mellitus type 2"),
    ("38341003", "Hypertensive disorder"),
    ("195967001", "Asthma"),
    ("13645005", "Chronic obstructive lung disease"),
    ("55822004", "Hyperlipidemia"),
];
const OBSERVATIONS: &[(&str, &str, &str, f64, f64)] = &[
    ("8867-4", "Heart rate", "/min", 55.0, 110.0),
    ("29463-7", "Body weight", "kg", 45.0, 120.0),
    ("8310-5", "Body temperature", "Cel", 36.0, 39.5),
    (
        "2339-0",
        "Glucose [Mass/volume] in Blood",
        "mg/dL",
        70.0,
        220.0,
    ),
    (
        "4548-4",
        "Hemoglobin A1c/Hemoglobin.total in Blood",
        "%",
        4.5,
        11.0,
    ),
];
const FAMILIES: &[&str] = &[
    "Smith", "Jones", "Garcia", "Miller", "Davis", "Lopez", "Wilson", "Anderson", "Thomas",
    "Moore", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Clark", "Lewis",
];
const GIVEN: &[&str] = &[
    "Ann", "Bea", "Cal", "Dan", "Eve", "Fay", "Gus", "Hal", "Ida", "Jon", "Kim", "Liv", "Max",
    "Noa", "Oli", "Pam",
];

/// A synthetic population of `patients`, as resources (ids fixed, so it loads by `PUT` and
/// references hold): per patient 1-4 encounters, 0-3 conditions and 4-16 observations, about
/// 14 resources each on average.
pub fn synthesize(seed: u64, patients: usize) -> Vec<Value> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(patients * 14);
    for n in 0..patients {
        let pid = format!("syn-{seed}-{n}");
        let family = FAMILIES[rng.gen_range(0..FAMILIES.len())];
        let given = GIVEN[rng.gen_range(0..GIVEN.len())];
        let year = rng.gen_range(1930..2020);
        out.push(json!({
            "resourceType": "Patient", "id": pid,
            "identifier": [{"system": "urn:custodian:synthetic", "value": pid}],
            "name": [{"family": family, "given": [given]}],
            "gender": if rng.gen_bool(0.5) { "female" } else { "male" },
            "birthDate": format!("{year}-{:02}-{:02}", rng.gen_range(1..13), rng.gen_range(1..29)),
        }));
        let encounters = rng.gen_range(1..5);
        for e in 0..encounters {
            let eid = format!("{pid}-e{e}");
            let day = format!(
                "20{:02}-{:02}-{:02}",
                rng.gen_range(15..27),
                rng.gen_range(1..13),
                rng.gen_range(1..29)
            );
            out.push(json!({
                "resourceType": "Encounter", "id": eid, "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": format!("Patient/{pid}")},
                "period": {"start": format!("{day}T09:00:00Z"), "end": format!("{day}T09:30:00Z")},
            }));
            if e == 0 {
                for c in 0..rng.gen_range(0..4) {
                    let (code, display) = CONDITIONS[rng.gen_range(0..CONDITIONS.len())];
                    out.push(json!({
                        "resourceType": "Condition", "id": format!("{pid}-c{c}"),
                        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
                        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]},
                        "subject": {"reference": format!("Patient/{pid}")},
                        "encounter": {"reference": format!("Encounter/{eid}")},
                        "onsetDateTime": format!("{day}T09:10:00Z"),
                    }));
                }
            }
            for o in 0..rng.gen_range(1..5) {
                let (code, display, unit, low, high) =
                    OBSERVATIONS[rng.gen_range(0..OBSERVATIONS.len())];
                let value = (rng.gen_range(low..high) * 10.0_f64).round() / 10.0;
                out.push(json!({
                    "resourceType": "Observation", "id": format!("{eid}-o{o}"), "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
                    "subject": {"reference": format!("Patient/{pid}")},
                    "encounter": {"reference": format!("Encounter/{eid}")},
                    "effectiveDateTime": format!("{day}T09:{:02}:00Z", rng.gen_range(0..30)),
                    "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
                }));
            }
        }
    }
    out
}

/// Reads resources from NDJSON files (one resource a line) or JSON files (a resource, or a
/// Bundle whose entries are taken).
pub fn read_resources(paths: &[PathBuf]) -> Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let is_ndjson = path.extension().is_some_and(|e| e == "ndjson");
        let values: Vec<Value> = if is_ndjson {
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .enumerate()
                .map(|(n, l)| {
                    serde_json::from_str(l)
                        .map_err(|e| format!("{} line {}: {e}", path.display(), n + 1))
                })
                .collect::<Result<_, _>>()?
        } else {
            vec![serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?]
        };
        for value in values {
            if value["resourceType"] == "Bundle" {
                out.extend(
                    value["entry"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e.get("resource").cloned()),
                );
            } else {
                out.push(value);
            }
        }
    }
    Ok(out)
}

/// Writes resources as NDJSON.
pub fn write_ndjson(path: &Path, resources: &[Value]) -> std::io::Result<()> {
    let mut text = String::new();
    for r in resources {
        text.push_str(&r.to_string());
        text.push('\n');
    }
    std::fs::write(path, text)
}

/// What an import did.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    pub resources: usize,
    pub bundles: usize,
    pub seconds: f64,
}

impl Imported {
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.resources as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Loads `resources` through the gateway as transaction Bundles of `batch` entries (`PUT` by
/// id where the resource has one, else `POST`), `concurrency` at a time, types others refer
/// to first. `progress` is told how many resources each committed Bundle held.
pub async fn import(
    gateway: &Gateway,
    token: &str,
    mut resources: Vec<Value>,
    batch: usize,
    concurrency: usize,
    progress: &dyn Fn(usize),
) -> Result<Imported, ApiError> {
    let rank = |r: &Value| {
        let t = r["resourceType"].as_str().unwrap_or_default();
        FIRST.iter().position(|f| *f == t).unwrap_or(FIRST.len())
    };
    resources.sort_by_key(rank);
    // Phases by rank: everything a phase refers to is committed before it starts.
    let mut phases: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
    for r in resources {
        phases.entry(rank(&r)).or_default().push(r);
    }
    let started = Instant::now();
    let mut done = Imported::default();
    for (_, phase) in phases {
        // `concurrency` Bundles in flight at all times (a new one as soon as one is answered),
        // not waves that each wait for their slowest Bundle.
        let mut sent = futures_util::stream::iter(phase.chunks(batch.max(1)).map(|chunk| {
            let bundle = transaction(chunk);
            async move {
                let answer = gateway
                    .send(Method::POST, "/fhir", Some(token), &[], Some(&bundle))
                    .await;
                (chunk.len(), answer)
            }
        }))
        .buffer_unordered(concurrency.max(1));
        while let Some((n, answer)) = sent.next().await {
            answer?.expect_status(200)?;
            done.resources += n;
            done.bundles += 1;
            progress(n);
        }
    }
    done.seconds = started.elapsed().as_secs_f64();
    Ok(done)
}

fn transaction(resources: &[Value]) -> Value {
    let entry: Vec<Value> = resources
        .iter()
        .map(|r| {
            let t = r["resourceType"].as_str().unwrap_or_default();
            match r["id"].as_str() {
                Some(id) => {
                    json!({"resource": r, "request": {"method": "PUT", "url": format!("{t}/{id}")}})
                }
                None => json!({"resource": r, "request": {"method": "POST", "url": t}}),
            }
        })
        .collect();
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entry})
}

/// One file of a finished export.
#[derive(Debug, Clone)]
pub struct ExportedFile {
    pub resource_type: String,
    pub path: PathBuf,
    pub count: usize,
}

/// Runs `$export` at `kickoff` (e.g. `/fhir/Patient/$export?_type=Observation`), polling every
/// `poll` (telling `progress` the server's `X-Progress`), then downloads every file into `dir`.
pub async fn export(
    gateway: &Gateway,
    token: &str,
    kickoff: &str,
    dir: &Path,
    poll: Duration,
    progress: &dyn Fn(&str),
) -> Result<Vec<ExportedFile>, ApiError> {
    let kicked = gateway
        .send(
            Method::GET,
            kickoff,
            Some(token),
            &[("Prefer", "respond-async")],
            None,
        )
        .await?
        .expect_status(202)?;
    let status = kicked
        .header("content-location")
        .ok_or_else(|| ApiError::Unexpected("no Content-Location".into()))?;
    let status = status
        .strip_prefix(gateway.base())
        .unwrap_or(status)
        .to_string();
    let manifest = loop {
        let polled = gateway.get(&status, Some(token)).await?;
        match polled.status {
            202 => {
                progress(polled.header("x-progress").unwrap_or("in progress"));
                actix_web::rt::time::sleep(poll).await;
            }
            200 => break polled.json(),
            _ => {
                return Err(ApiError::Unexpected(format!(
                    "export status: {}",
                    polled.text
                )))
            }
        }
    };
    std::fs::create_dir_all(dir).map_err(|e| ApiError::Unexpected(e.to_string()))?;
    let mut files = Vec::new();
    for (n, output) in manifest["output"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let url = output["url"].as_str().unwrap_or_default();
        let path = url.strip_prefix(gateway.base()).unwrap_or(url);
        let got = gateway
            .send(
                Method::GET,
                path,
                Some(token),
                &[("Accept", "application/fhir+ndjson")],
                None,
            )
            .await?
            .expect_status(200)?;
        let resource_type = output["type"].as_str().unwrap_or("Resource").to_string();
        let file = dir.join(format!("{resource_type}.{n}.ndjson"));
        std::fs::write(&file, &got.text).map_err(|e| ApiError::Unexpected(e.to_string()))?;
        files.push(ExportedFile {
            count: got.text.lines().count(),
            resource_type,
            path: file,
        });
        progress(&format!("downloaded {} files", files.len()));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_population_is_deterministic_and_refers_within_itself() {
        let a = synthesize(7, 20);
        assert_eq!(a, synthesize(7, 20));
        assert_ne!(a, synthesize(8, 20));
        let ids: std::collections::HashSet<String> = a
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r["resourceType"].as_str().unwrap(),
                    r["id"].as_str().unwrap()
                )
            })
            .collect();
        assert_eq!(ids.len(), a.len(), "ids are unique");
        for r in &a {
            for key in ["subject", "encounter"] {
                if let Some(reference) = r[key]["reference"].as_str() {
                    assert!(ids.contains(reference), "{reference}");
                }
            }
        }
        assert_eq!(
            a.iter().filter(|r| r["resourceType"] == "Patient").count(),
            20
        );
    }
}
