//! The harness's clients: practitioners who sign in, write Observations and read back what was
//! acknowledged, through the gateway, each request with its own `X-Request-Id`. Every request
//! and its outcome is recorded, so that afterwards the ledger and the store can be held to it.

use std::{
    cell::RefCell,
    rc::Rc,
    time::{Duration, Instant},
};

use rand::Rng;
use serde_json::json;

use crate::{api::Gateway, demo::DemoUser};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Login,
    Create,
    Read,
}

#[derive(Debug, Clone)]
pub struct Request {
    /// Since the harness started.
    pub at: Duration,
    pub op: Op,
    pub request_id: String,
    /// The status, or `None` when no answer came (connection refused or cut).
    pub status: Option<u16>,
    /// For an acknowledged create: the Observation's id and the value it holds.
    pub written: Option<(String, f64)>,
}

impl Request {
    /// Served as asked: an access the ledger must hold.
    pub fn succeeded(&self) -> bool {
        matches!(self.status, Some(200 | 201))
    }

    /// What a client counts as an outage: no answer, or a server error.
    pub fn failed(&self) -> bool {
        self.status.is_none_or(|s| s >= 500)
    }
}

/// Every request of every client, in the order they finished.
#[derive(Default, Clone)]
pub struct Journal(Rc<RefCell<Vec<Request>>>);

impl Journal {
    fn push(&self, request: Request) {
        self.0.borrow_mut().push(request);
    }

    pub fn requests(&self) -> Vec<Request> {
        self.0.borrow().clone()
    }

    /// Acknowledged writes so far (reads pick from them).
    fn written(&self) -> Vec<(String, f64)> {
        self.0
            .borrow()
            .iter()
            .filter_map(|r| r.written.clone())
            .collect()
    }
}

/// One client: signs in, then loops over writes (35%), reads of acknowledged writes (50%) and
/// fresh sign-ins (15%) until `stop` is set.
pub async fn client(
    gateway: Gateway,
    user: DemoUser,
    patients: Vec<String>,
    journal: Journal,
    started: Instant,
    stop: Rc<RefCell<bool>>,
) {
    let mut token: Option<String> = None;
    while !*stop.borrow() {
        let op = match (token.is_some(), rand::thread_rng().gen_range(0..100)) {
            (false, _) | (true, 0..15) => Op::Login,
            (true, 15..50) => Op::Create,
            _ => Op::Read,
        };
        let request_id = uuid::Uuid::new_v4().to_string();
        let headers = [("X-Request-Id", request_id.as_str())];
        let (status, written) = match op {
            Op::Login => {
                let answer = gateway
                    .token_with(
                        &[
                            ("grant_type", "password"),
                            ("username", &user.username),
                            ("password", &user.password),
                        ],
                        &headers,
                    )
                    .await;
                match answer {
                    Ok(r) => {
                        if r.status == 200 {
                            token = r.json()["access_token"].as_str().map(str::to_string);
                        }
                        (Some(r.status), None)
                    }
                    Err(_) => (None, None),
                }
            }
            Op::Create => {
                let value: f64 = (rand::thread_rng().gen_range(400..1200) as f64) / 10.0;
                let patient = &patients[rand::thread_rng().gen_range(0..patients.len())];
                let observation = json!({
                    "resourceType": "Observation",
                    "status": "final",
                    "code": { "coding": [{ "system": "http://loinc.org", "code": "8867-4", "display": "Heart rate" }] },
                    "subject": { "reference": patient },
                    "effectiveDateTime": chrono::Utc::now().to_rfc3339(),
                    "valueQuantity": { "value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min" }
                });
                let answer = gateway
                    .send(
                        awc::http::Method::POST,
                        "/fhir/Observation",
                        token.as_deref(),
                        &headers,
                        Some(&observation),
                    )
                    .await;
                match answer {
                    Ok(r) => {
                        let written = (r.status == 201)
                            .then(|| r.json()["id"].as_str().map(|id| (id.to_string(), value)))
                            .flatten();
                        (Some(r.status), written)
                    }
                    Err(_) => (None, None),
                }
            }
            Op::Read => {
                let written = journal.written();
                if written.is_empty() {
                    continue;
                }
                let (id, _) = &written[rand::thread_rng().gen_range(0..written.len())];
                let answer = gateway
                    .send(
                        awc::http::Method::GET,
                        &format!("/fhir/Observation/{id}"),
                        token.as_deref(),
                        &headers,
                        None,
                    )
                    .await;
                match answer {
                    Ok(r) => (Some(r.status), None),
                    Err(_) => (None, None),
                }
            }
        };
        if status == Some(401) {
            token = None;
        }
        let request = Request {
            at: started.elapsed(),
            op,
            request_id,
            status,
            written,
        };
        let failed = request.failed();
        journal.push(request);
        if failed {
            // A client backs off a little when the server is away, as real ones do.
            actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
