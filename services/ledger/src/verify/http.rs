//! The log as its HTTP API serves it (directly or through the gateway): `GET
//! /ledger/checkpoints`, `GET /ledger/entries` (which needs a token that sees every entry) and
//! `GET /ledger/proof/consistency`.

use std::time::Duration;

use base64::{engine::general_purpose::STANDARD, Engine as _};
use serde::{de::DeserializeOwned, Deserialize};

use super::{Source, SourceCheckpoint, SourceError, SourceLeaf};
use crate::routes::{checkpoints::MAX_CHECKPOINTS, entries::MAX_ENTRIES};

/// Largest answer read (a page of 10,000 entries of event JSON is a few MB).
const BODY_LIMIT: usize = 256 * 1024 * 1024;

pub struct HttpSource {
    client: awc::Client,
    base: String,
    token: Option<String>,
}

#[derive(Deserialize)]
struct CheckpointsBody {
    checkpoints: Vec<CheckpointItem>,
}

#[derive(Deserialize)]
struct CheckpointItem {
    tree_size: u64,
    root_hash: String,
    note: String,
}

#[derive(Deserialize)]
struct EntriesBody {
    entries: Vec<EntryItem>,
}

#[derive(Deserialize)]
struct EntryItem {
    index: u64,
    leaf_hash: String,
    payload: String,
}

#[derive(Deserialize)]
struct ConsistencyBody {
    consistency_proof: Vec<String>,
}

#[derive(Deserialize)]
struct KeyBody {
    verifier_key: String,
}

impl HttpSource {
    /// `base` is the API's root (`http://gateway:8080`); `token` a bearer token that sees
    /// every entry (an auditor's or an administrator's).
    pub fn new(base: &str, token: Option<String>) -> Self {
        Self {
            client: awc::Client::builder()
                .timeout(Duration::from_secs(120))
                .finish(),
            base: base.trim_end_matches('/').to_string(),
            token,
        }
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, SourceError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.get(&url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| SourceError(format!("GET {url}: {e}")))?;
        let body = response
            .body()
            .limit(BODY_LIMIT)
            .await
            .map_err(|e| SourceError(format!("GET {url}: {e}")))?;
        if !response.status().is_success() {
            return Err(SourceError(format!(
                "GET {url}: {} {}",
                response.status(),
                String::from_utf8_lossy(&body)
            )));
        }
        serde_json::from_slice(&body)
            .map_err(|e| SourceError(format!("GET {url}: unexpected answer: {e}")))
    }

    /// The log's own verifier key (`GET /ledger/key`): trusting it proves the log agrees with
    /// itself, not that it is the log one meant to trust.
    pub async fn served_key(&self) -> Result<String, SourceError> {
        Ok(self.get::<KeyBody>("/ledger/key").await?.verifier_key)
    }
}

/// Undecodable base64 becomes an empty hash, which the checks report against its index.
fn decode(b64: &str) -> Vec<u8> {
    STANDARD.decode(b64).unwrap_or_default()
}

impl Source for HttpSource {
    fn describe(&self) -> String {
        format!("HTTP ({})", self.base)
    }

    async fn checkpoints_after(
        &mut self,
        after: Option<u64>,
    ) -> Result<Vec<SourceCheckpoint>, SourceError> {
        let path = match after {
            Some(a) => format!("/ledger/checkpoints?after={a}&limit={MAX_CHECKPOINTS}"),
            None => format!("/ledger/checkpoints?limit={MAX_CHECKPOINTS}"),
        };
        let body: CheckpointsBody = self.get(&path).await?;
        Ok(body
            .checkpoints
            .into_iter()
            .map(|c| SourceCheckpoint {
                tree_size: c.tree_size,
                root_hash: Some(decode(&c.root_hash)),
                note: c.note,
            })
            .collect())
    }

    async fn leaves_from(&mut self, start: u64) -> Result<Vec<SourceLeaf>, SourceError> {
        let body: EntriesBody = self
            .get(&format!(
                "/ledger/entries?start={start}&limit={MAX_ENTRIES}"
            ))
            .await?;
        Ok(body
            .entries
            .into_iter()
            .map(|e| SourceLeaf {
                index: e.index,
                leaf_hash: decode(&e.leaf_hash),
                payload: e.payload,
            })
            .collect())
    }

    async fn consistency_proof(
        &mut self,
        first: u64,
        second: u64,
    ) -> Result<Option<Vec<Vec<u8>>>, SourceError> {
        let body: ConsistencyBody = self
            .get(&format!(
                "/ledger/proof/consistency?first={first}&second={second}"
            ))
            .await?;
        Ok(Some(
            body.consistency_proof.iter().map(|h| decode(h)).collect(),
        ))
    }
}
