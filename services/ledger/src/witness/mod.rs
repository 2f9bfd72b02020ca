//! `ledger witness`: the log binary run as a C2SP `tlog-witness`, as a peer hospital would run
//! it, so that no single party can rewrite the log's history unnoticed.
//!
//! For each log it is configured with (its verifier keys), the witness keeps the latest
//! checkpoint it cosigned, in its own database. `POST /add-checkpoint` brings a new checkpoint
//! with a consistency proof from that one; the witness checks the log's signature and the
//! proof, advances its record by compare-and-swap, and answers its `cosignature/v1`
//! ([`crate::cosignature`]). A split view (same size, other root) or a rewritten history
//! (a proof that does not verify) is refused with 422; a stale old size with 409 and the
//! size it holds.
//!
//! - [`configuration`]: settings; [`storage`] and [`schema`]: its database;
//! - [`routes`]: the HTTP API; [`startup`]: wiring.

pub mod configuration;
pub mod routes;
pub mod schema;
pub mod startup;
pub mod storage;

use std::collections::HashMap;

use actix_web::{http::StatusCode, HttpResponse, ResponseError};
use base64::{engine::general_purpose::STANDARD, Engine as _};
use custodian_database::Pool;
use prometheus::{IntCounterVec, Opts};
use sha2::{Digest, Sha256};

use crate::{
    cosignature::Cosigner,
    domain::Checkpoint,
    signing::{self, SigningError},
    tree::{self, Hash},
};
use storage::Witnessed;

/// At most this many consistency proof lines (the spec's limit).
const MAX_PROOF_LINES: usize = 63;

/// Why a checkpoint was not cosigned, each with the status the spec gives it.
#[derive(Debug, thiserror::Error)]
pub enum AddCheckpointError {
    /// 400: the request is malformed (or its old size exceeds the checkpoint's size).
    #[error("{0}")]
    Malformed(String),
    /// 404: the checkpoint's origin is not a log this witness witnesses.
    #[error("unknown log")]
    UnknownLog,
    /// 403: no valid signature by a key trusted for the origin, or a failing one.
    #[error("{0}")]
    Forbidden(String),
    /// 409: the old size is not the size this witness last cosigned (given).
    #[error("the witness holds size {0}")]
    Conflict(u64),
    /// 422: the proof does not verify, the roots of equal sizes differ, or an empty tree has
    /// another root.
    #[error("{0}")]
    Inconsistent(String),
    #[error("unexpected: {0}")]
    Unexpected(String),
}

impl AddCheckpointError {
    /// The reason label of `witness_refusals_total` (a fixed set).
    pub fn label(&self) -> &'static str {
        match self {
            AddCheckpointError::Malformed(_) => "malformed",
            AddCheckpointError::UnknownLog => "unknown_log",
            AddCheckpointError::Forbidden(_) => "forbidden",
            AddCheckpointError::Conflict(_) => "conflict",
            AddCheckpointError::Inconsistent(_) => "inconsistent",
            AddCheckpointError::Unexpected(_) => "internal",
        }
    }
}

impl From<diesel::result::Error> for AddCheckpointError {
    fn from(e: diesel::result::Error) -> Self {
        AddCheckpointError::Unexpected(format!("database: {e}"))
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for AddCheckpointError {
    fn from(e: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        AddCheckpointError::Unexpected(format!("database pool: {e}"))
    }
}

impl ResponseError for AddCheckpointError {
    fn status_code(&self) -> StatusCode {
        match self {
            AddCheckpointError::Malformed(_) => StatusCode::BAD_REQUEST,
            AddCheckpointError::UnknownLog => StatusCode::NOT_FOUND,
            AddCheckpointError::Forbidden(_) => StatusCode::FORBIDDEN,
            AddCheckpointError::Conflict(_) => StatusCode::CONFLICT,
            AddCheckpointError::Inconsistent(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AddCheckpointError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            // The spec's answer: the size held, in decimal, then a newline.
            AddCheckpointError::Conflict(size) => HttpResponse::Conflict()
                .content_type("text/x.tlog.size")
                .body(format!("{size}\n")),
            AddCheckpointError::Unexpected(cause) => {
                tracing::error!(error = %cause, "add-checkpoint failed");
                HttpResponse::InternalServerError()
                    .content_type("text/plain; charset=utf-8")
                    .body("internal error\n")
            }
            other => HttpResponse::build(self.status_code())
                .content_type("text/plain; charset=utf-8")
                .body(format!("{other}\n")),
        }
    }
}

/// A parsed add-checkpoint request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpointRequest {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub note: String,
}

fn canonical_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

impl AddCheckpointRequest {
    /// `old <size>\n`, up to 63 base64 hash lines, an empty line, the checkpoint note.
    pub fn parse(body: &str) -> Result<Self, AddCheckpointError> {
        let malformed = |m: &str| AddCheckpointError::Malformed(m.to_string());
        let split = body
            .find("\n\n")
            .ok_or_else(|| malformed("no empty line before the checkpoint"))?;
        let (head, note) = (&body[..split], &body[split + 2..]);
        let mut lines = head.split('\n');
        let old_size = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .and_then(canonical_decimal)
            .ok_or_else(|| malformed("the first line must be `old <size>`"))?;
        let proof = lines
            .map(|l| {
                STANDARD
                    .decode(l)
                    .ok()
                    .and_then(|b| Hash::try_from(b.as_slice()).ok())
                    .ok_or_else(|| malformed("a proof line is not a base64 hash"))
            })
            .collect::<Result<Vec<Hash>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(malformed("more than 63 proof lines"));
        }
        Ok(Self {
            old_size,
            proof,
            note: note.to_string(),
        })
    }
}

/// The witness's refusals and cosignatures; label values are fixed reasons and configured
/// origins, never request data.
#[derive(Clone)]
pub struct WitnessMetrics {
    pub cosigned: IntCounterVec,
    pub refusals: IntCounterVec,
}

impl WitnessMetrics {
    pub fn register(metrics: &custodian_telemetry::Metrics) -> Result<Self, prometheus::Error> {
        let m = Self {
            cosigned: IntCounterVec::new(
                Opts::new("witness_cosignatures_total", "Checkpoints cosigned, by log"),
                &["origin"],
            )?,
            refusals: IntCounterVec::new(
                Opts::new(
                    "witness_refusals_total",
                    "add-checkpoint requests refused, by reason",
                ),
                &["reason"],
            )?,
        };
        metrics.register(Box::new(m.cosigned.clone()));
        metrics.register(Box::new(m.refusals.clone()));
        Ok(m)
    }
}

/// The witness: its key, the logs it trusts, its database.
pub struct Witness {
    pool: Pool,
    cosigner: Cosigner,
    /// Origin -> the verifier keys trusted for it.
    logs: HashMap<String, Vec<String>>,
    metrics: WitnessMetrics,
}

impl Witness {
    pub fn new(
        pool: Pool,
        cosigner: Cosigner,
        log_keys: &[String],
        metrics: WitnessMetrics,
    ) -> Result<Self, SigningError> {
        let mut logs: HashMap<String, Vec<String>> = HashMap::new();
        for key in log_keys {
            let origin = signing::verifier_key_name(key)?;
            metrics.cosigned.with_label_values(&[origin.as_str()]);
            logs.entry(origin).or_default().push(key.clone());
        }
        for reason in [
            "malformed",
            "unknown_log",
            "forbidden",
            "conflict",
            "inconsistent",
            "internal",
        ] {
            metrics.refusals.with_label_values(&[reason]);
        }
        if logs.is_empty() {
            tracing::warn!("WITNESS_LOGS is empty: every checkpoint will be refused (404)");
        }
        Ok(Self {
            pool,
            cosigner,
            logs,
            metrics,
        })
    }

    pub fn cosigner(&self) -> &Cosigner {
        &self.cosigner
    }

    /// The origin whose SHA-256 is `hash` (lowercase hex), if witnessed.
    pub fn origin_by_hash(&self, hash: &str) -> Option<&str> {
        self.logs
            .keys()
            .find(|o| hex::encode(Sha256::digest(o.as_bytes())) == hash)
            .map(String::as_str)
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Handles one add-checkpoint request; answers the cosignature line.
    pub async fn add_checkpoint(&self, body: &str) -> Result<String, AddCheckpointError> {
        let outcome = self.try_add_checkpoint(body).await;
        match &outcome {
            Ok(_) => {}
            Err(e) => {
                self.metrics.refusals.with_label_values(&[e.label()]).inc();
                if matches!(e, AddCheckpointError::Inconsistent(_)) {
                    // A validly signed checkpoint that contradicts what was cosigned: evidence
                    // of a forked or rewritten log.
                    tracing::error!(reason = e.label(), detail = %e, "checkpoint not cosigned");
                } else {
                    tracing::warn!(reason = e.label(), detail = %e, "checkpoint not cosigned");
                }
            }
        }
        outcome
    }

    async fn try_add_checkpoint(&self, body: &str) -> Result<String, AddCheckpointError> {
        let request = AddCheckpointRequest::parse(body)?;
        let (text, _) = signing::split_note(&request.note)
            .map_err(|e| AddCheckpointError::Malformed(e.to_string()))?;
        let origin = text.split('\n').next().unwrap_or_default();
        let keys = self
            .logs
            .get(origin)
            .ok_or(AddCheckpointError::UnknownLog)?;
        self.verify_log_signature(&request.note, keys)?;
        let checkpoint =
            Checkpoint::parse(text).map_err(|e| AddCheckpointError::Malformed(e.to_string()))?;
        let (old, size) = (request.old_size, checkpoint.tree_size);
        if old > size {
            return Err(AddCheckpointError::Malformed(format!(
                "old size {old} is larger than the checkpoint's {size}"
            )));
        }
        if size == 0 && checkpoint.root_hash != tree::empty_root() {
            return Err(AddCheckpointError::Inconsistent(
                "an empty tree with another root than the empty hash".into(),
            ));
        }
        let to_i64 = |n: u64| {
            i64::try_from(n).map_err(|_| AddCheckpointError::Malformed("size too large".into()))
        };
        let mut conn = self.pool.get().await?;
        let held = storage::witnessed(&mut conn, origin).await?;
        let held_size = held
            .as_ref()
            .map_or(0, |h| u64::try_from(h.tree_size).unwrap_or(0));
        if old != held_size {
            return Err(AddCheckpointError::Conflict(held_size));
        }
        match &held {
            Some(h) if old > 0 => {
                tree::verify_consistency(
                    old,
                    size,
                    &request.proof,
                    &h.root_hash,
                    &checkpoint.root_hash,
                )
                .map_err(|e| {
                    AddCheckpointError::Inconsistent(format!(
                        "not consistent with the checkpoint of size {old}: {e}"
                    ))
                })?;
            }
            // From the empty tree: nothing to prove; a proof is an error.
            _ => {
                if !request.proof.is_empty() {
                    return Err(AddCheckpointError::Inconsistent(
                        "a proof from size 0 must be empty".into(),
                    ));
                }
                if let Some(h) = &held {
                    // Held size 0: both must be the empty tree.
                    if size == 0 && h.root_hash != checkpoint.root_hash {
                        return Err(AddCheckpointError::Inconsistent(
                            "the empty tree's root differs".into(),
                        ));
                    }
                }
            }
        }
        let timestamp = u64::try_from(chrono::Utc::now().timestamp())
            .map_err(|e| AddCheckpointError::Unexpected(e.to_string()))?;
        let line = self
            .cosigner
            .cosign(text, timestamp)
            .map_err(|e| AddCheckpointError::Unexpected(e.to_string()))?;
        let to = Witnessed {
            tree_size: to_i64(size)?,
            root_hash: checkpoint.root_hash.to_vec(),
        };
        let note = format!("{}{line}", request.note);
        if !storage::advance(&mut conn, origin, held.as_ref(), &to, &note).await? {
            // Another request advanced it first.
            let now = storage::witnessed(&mut conn, origin).await?;
            return Err(AddCheckpointError::Conflict(
                now.map_or(0, |h| u64::try_from(h.tree_size).unwrap_or(0)),
            ));
        }
        self.metrics.cosigned.with_label_values(&[origin]).inc();
        tracing::info!(origin, tree_size = size, "checkpoint cosigned");
        Ok(line)
    }

    /// Some trusted key signed the note, and no signature by a trusted key fails.
    fn verify_log_signature(&self, note: &str, keys: &[String]) -> Result<(), AddCheckpointError> {
        let mut verified = false;
        for key in keys {
            match signing::verify_note_text(note, key) {
                Ok(_) => verified = true,
                Err(SigningError::NoValidSignature(_)) => {}
                Err(SigningError::MalformedNote(m)) => {
                    return Err(AddCheckpointError::Malformed(m))
                }
                Err(e) => return Err(AddCheckpointError::Forbidden(e.to_string())),
            }
        }
        if verified {
            Ok(())
        } else {
            Err(AddCheckpointError::Forbidden(
                "no valid signature by a key trusted for this log".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        let h = STANDARD.encode([7u8; 32]);
        let note = "log\n5\nroot\n\n\u{2014} log sig\n";
        let r = AddCheckpointRequest::parse(&format!("old 3\n{h}\n{h}\n\n{note}")).unwrap();
        assert_eq!(r.old_size, 3);
        assert_eq!(r.proof, vec![[7u8; 32], [7u8; 32]]);
        assert_eq!(r.note, note);
        let r = AddCheckpointRequest::parse(&format!("old 0\n\n{note}")).unwrap();
        assert_eq!((r.old_size, r.proof.len()), (0, 0));
    }

    #[test]
    fn malformed_requests_are_refused() {
        let h = STANDARD.encode([7u8; 32]);
        let note = "log\n5\nroot\n\n\u{2014} log sig\n";
        let many = vec![h.clone(); 64].join("\n");
        for bad in [
            format!("old 03\n\n{note}"),
            format!("old -1\n\n{note}"),
            format!("new 3\n\n{note}"),
            format!("old 3\nAAAA\n\n{note}"),
            format!("old 3\n{many}\n\n{note}"),
            format!("old 3\n{h}\n{note}"),
            "old 3".to_string(),
        ] {
            assert!(
                matches!(
                    AddCheckpointRequest::parse(&bad),
                    Err(AddCheckpointError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn conflicts_answer_the_size_as_the_spec_says() {
        let response = AddCheckpointError::Conflict(42).error_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "text/x.tlog.size"
        );
    }
}
