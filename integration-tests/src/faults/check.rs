//! What the harness proves once the load has stopped and the pipeline has drained, reading the
//! services' databases and Redis directly (it trusts none of their answers about themselves).

use std::collections::{BTreeMap, BTreeSet};

use diesel::{
    sql_query,
    sql_types::{BigInt, Binary, Text},
    QueryableByName,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use crate::verify::{leaf_hash, node_hash, Hash};

/// The producers, whose outboxes must be empty once everything is delivered.
pub const PRODUCERS: [&str; 4] = ["identity", "consent", "records", "anomaly"];

/// The consumer groups that must have nothing pending: (stream, group).
pub const GROUPS: [(&str, &str); 4] = [
    ("access", "ledger"),
    ("access", "anomaly"),
    ("relationships", "anomaly"),
    ("alerts", "identity"),
];

/// Outbox rows still waiting for something: not yet published, or published on a stream whose
/// consumer groups have not all acknowledged them. (Consent and identity changes, which only
/// replicas' tails read, are kept a few minutes after publication whatever happens.)
const WAITING: &str = "SELECT count(*) AS n FROM event_outbox WHERE published_at IS NULL \
     OR stream LIKE '%:access' OR stream LIKE '%:alerts' OR stream LIKE '%:relationships'";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Leaf {
    #[diesel(sql_type = BigInt)]
    idx: i64,
    #[diesel(sql_type = Text)]
    event_id: String,
    #[diesel(sql_type = Binary)]
    leaf_hash: Vec<u8>,
    #[diesel(sql_type = Text)]
    payload: String,
}

#[derive(QueryableByName)]
struct StoredCheckpoint {
    #[diesel(sql_type = BigInt)]
    tree_size: i64,
    #[diesel(sql_type = Binary)]
    root_hash: Vec<u8>,
}

#[derive(QueryableByName)]
struct EventId {
    #[diesel(sql_type = Text)]
    event_id: String,
}

async fn connect(url: &str) -> Result<AsyncPgConnection, String> {
    AsyncPgConnection::establish(url)
        .await
        .map_err(|e| format!("{url}: {e}"))
}

async fn count(url: &str, query: &str) -> Result<i64, String> {
    let mut conn = connect(url).await?;
    sql_query(query)
        .get_result::<Count>(&mut conn)
        .await
        .map(|c| c.n)
        .map_err(|e| e.to_string())
}

/// Whether the pipeline has drained: every outbox empty, nothing pending or undelivered in any
/// group, and anomaly has scored as many events as the ledger holds.
pub async fn drained(
    database_url: &dyn Fn(&str) -> String,
    redis: &mut redis::aio::ConnectionManager,
    prefix: &str,
) -> Result<bool, String> {
    for producer in PRODUCERS {
        if count(&database_url(producer), WAITING).await? > 0 {
            return Ok(false);
        }
    }
    for (stream, group) in GROUPS {
        let key = format!("{prefix}:{stream}");
        let groups: redis::streams::StreamInfoGroupsReply = match redis.xinfo_groups(&key).await {
            Ok(g) => g,
            Err(_) => continue,
        };
        if let Some(g) = groups.groups.iter().find(|g| g.name == group) {
            if g.pending > 0 || g.lag.unwrap_or(0) > 0 {
                return Ok(false);
            }
        }
    }
    let leaves = count(&database_url("ledger"), "SELECT count(*) AS n FROM leaves").await?;
    let scored = count(
        &database_url("anomaly"),
        "SELECT count(*) AS n FROM scored_events",
    )
    .await?;
    Ok(leaves == scored)
}

/// How far behind the access pipeline is: events not yet published by any producer, and
/// events of the access stream the ledger's and anomaly's groups have not yet acknowledged
/// (delivered and pending, or not yet delivered).
#[derive(Debug, Default, Clone, Copy)]
pub struct Backlog {
    pub unpublished: i64,
    pub ledger: i64,
    pub anomaly: i64,
}

pub async fn backlog(
    database_url: &dyn Fn(&str) -> String,
    redis: &mut redis::aio::ConnectionManager,
    prefix: &str,
) -> Result<Backlog, String> {
    let mut backlog = Backlog::default();
    for producer in PRODUCERS {
        backlog.unpublished += count(
            &database_url(producer),
            "SELECT count(*) AS n FROM event_outbox WHERE published_at IS NULL",
        )
        .await?;
    }
    let key = format!("{prefix}:access");
    let groups: redis::streams::StreamInfoGroupsReply =
        redis.xinfo_groups(&key).await.map_err(|e| e.to_string())?;
    for g in &groups.groups {
        let behind = (g.pending + g.lag.unwrap_or(0)) as i64;
        match g.name.as_str() {
            "ledger" => backlog.ledger = behind,
            "anomaly" => backlog.anomaly = behind,
            _ => {}
        }
    }
    Ok(backlog)
}

/// The ledger as stored, checked leaf by leaf and checkpoint by checkpoint.
#[derive(Debug, Default)]
pub struct LedgerFindings {
    pub leaves: usize,
    pub checkpoints: usize,
    /// Event ids appended more than once, with how many times.
    pub duplicated: BTreeMap<String, usize>,
    /// Request ids of the events in the log.
    pub request_ids: BTreeSet<String>,
    /// Request ids of the events appended more than once.
    pub duplicated_requests: BTreeSet<String>,
    pub event_ids: BTreeSet<String>,
    /// Anything that makes the log unverifiable: a gap in the indexes, a leaf whose hash is not
    /// its payload's, a checkpoint whose root is not the root of the leaves before it.
    pub broken: Vec<String>,
}

/// RFC 9162's Merkle tree hash of the leaves appended so far, kept as the perfect subtrees of a
/// compact range (largest first): appending is amortised O(1), a root O(log n).
#[derive(Default)]
struct CompactRange {
    subtrees: Vec<(u32, Hash)>,
}

impl CompactRange {
    fn append(&mut self, leaf: Hash) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.subtrees.last() {
            if height != node.0 {
                break;
            }
            self.subtrees.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        self.subtrees.push(node);
    }

    fn root(&self) -> Option<Hash> {
        let mut iter = self.subtrees.iter().rev();
        let mut root = iter.next()?.1;
        for (_, left) in iter {
            root = node_hash(left, &root);
        }
        Some(root)
    }
}

pub async fn ledger(url: &str) -> Result<LedgerFindings, String> {
    let mut conn = connect(url).await?;
    let leaves: Vec<Leaf> = sql_query(
        "SELECT idx, event_id::text AS event_id, leaf_hash, payload FROM leaves ORDER BY idx",
    )
    .load(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    let checkpoints: Vec<StoredCheckpoint> =
        sql_query("SELECT tree_size, root_hash FROM checkpoints ORDER BY tree_size")
            .load(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
    let mut findings = LedgerFindings {
        leaves: leaves.len(),
        checkpoints: checkpoints.len(),
        ..Default::default()
    };
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut range = CompactRange::default();
    // The empty tree's root is the hash of nothing (RFC 9162 §2.1.1).
    let mut roots: BTreeMap<i64, Hash> = BTreeMap::from([(0, Sha256::digest([]).into())]);
    let wanted: BTreeSet<i64> = checkpoints.iter().map(|c| c.tree_size).collect();
    for (expected, leaf) in leaves.iter().enumerate() {
        if leaf.idx != expected as i64 {
            findings.broken.push(format!(
                "leaf {expected} missing: the next stored is {}",
                leaf.idx
            ));
            break;
        }
        let hash = leaf_hash(leaf.payload.as_bytes());
        if hash.as_slice() != leaf.leaf_hash.as_slice() {
            findings
                .broken
                .push(format!("leaf {} does not hash to its payload", leaf.idx));
        }
        range.append(hash);
        if wanted.contains(&(leaf.idx + 1)) {
            if let Some(root) = range.root() {
                roots.insert(leaf.idx + 1, root);
            }
        }
        let times = seen.entry(leaf.event_id.clone()).or_default();
        *times += 1;
        let again = *times > 1;
        findings.event_ids.insert(leaf.event_id.clone());
        if let Some(request_id) = serde_json::from_str::<serde_json::Value>(&leaf.payload)
            .ok()
            .and_then(|v| v["request_id"].as_str().map(str::to_string))
        {
            if again {
                findings.duplicated_requests.insert(request_id.clone());
            }
            findings.request_ids.insert(request_id);
        }
    }
    for checkpoint in &checkpoints {
        match roots.get(&checkpoint.tree_size) {
            Some(root) if root.as_slice() == checkpoint.root_hash.as_slice() => {}
            Some(_) => findings.broken.push(format!(
                "checkpoint {} has a root other than its leaves'",
                checkpoint.tree_size
            )),
            None => findings.broken.push(format!(
                "checkpoint {} is larger than the log",
                checkpoint.tree_size
            )),
        }
    }
    findings.duplicated = seen.into_iter().filter(|(_, n)| *n > 1).collect();
    Ok(findings)
}

/// Event ids anomaly scored (its table is keyed by event id: a second scoring would fail or
/// overwrite, so the count per id is checked against the ledger instead).
pub async fn scored(url: &str) -> Result<BTreeSet<String>, String> {
    let mut conn = connect(url).await?;
    let ids: Vec<EventId> = sql_query("SELECT event_id::text AS event_id FROM scored_events")
        .load(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(ids.into_iter().map(|e| e.event_id).collect())
}

/// Messages left pending per group (all should be zero).
pub async fn pending(
    redis: &mut redis::aio::ConnectionManager,
    prefix: &str,
) -> Result<Vec<(String, usize)>, String> {
    let mut left = Vec::new();
    for (stream, group) in GROUPS {
        let key = format!("{prefix}:{stream}");
        let reply: Result<redis::streams::StreamPendingReply, _> =
            redis.xpending(&key, group).await;
        let n = reply.map(|r| r.count()).unwrap_or(0);
        left.push((format!("{stream}/{group}"), n));
    }
    Ok(left)
}

/// Rows left waiting in each producer's outbox (all should be zero).
pub async fn outboxes(database_url: &dyn Fn(&str) -> String) -> Result<Vec<(String, i64)>, String> {
    let mut left = Vec::new();
    for producer in PRODUCERS {
        let n = count(&database_url(producer), WAITING).await?;
        left.push((producer.to_string(), n));
    }
    Ok(left)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compact range agrees with the tree hash computed by recursion (RFC 9162 §2.1.1).
    #[test]
    fn compact_range_roots_are_merkle_tree_hashes() {
        fn mth(leaves: &[Hash]) -> Hash {
            if leaves.len() == 1 {
                return leaves[0];
            }
            let k = leaves.len().next_power_of_two() / 2;
            node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
        let leaves: Vec<Hash> = (0u8..23).map(|i| leaf_hash(&[i])).collect();
        let mut range = CompactRange::default();
        for (n, leaf) in leaves.iter().enumerate() {
            range.append(*leaf);
            assert_eq!(range.root(), Some(mth(&leaves[..=n])), "size {}", n + 1);
        }
    }
}
