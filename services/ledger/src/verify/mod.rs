//! `ledger verify`: checks a whole log from what it stores, trusting only the verifier keys
//! given, so anyone holding the keys and a read path can audit it.
//!
//! One pass over a [`Source`] (PostgreSQL in [`postgres`], the HTTP API in [`http`]), walking
//! the signed checkpoints in size order and the leaves in index order together:
//!
//! - every leaf's payload hashes to its leaf hash, and indices are dense from 0;
//! - the leaves are integrated into a [`Frontier`] (O(log n) hashes, never the tree), whose
//!   root must equal each checkpoint's signed root at its size;
//! - every checkpoint carries a valid signature by a trusted key (and a quorum of witness
//!   cosignatures when asked), its sizes only grow; since every checkpoint's root is computed
//!   from the same leaf sequence, each one extends the previous: consistency follows from the
//!   roots. When the source serves consistency proofs (HTTP), they are checked too.
//!
//! The first problem stops the walk and is reported with the first leaf it concerns.

pub mod cli;
mod frontier;
pub mod http;
pub mod postgres;

use std::time::Instant;

use serde::Serialize;

pub use frontier::Frontier;

use crate::{
    cosignature::CosignatureVerifier,
    domain::Checkpoint,
    signing::{split_note, verifier_key_name, verify_note, SigningError},
    tree::{self, Hash, HASH_LEN},
};

/// A leaf as a source serves it.
#[derive(Debug, Clone)]
pub struct SourceLeaf {
    pub index: u64,
    pub payload: String,
    /// As stored; a well-formed one has 32 bytes.
    pub leaf_hash: Vec<u8>,
}

/// A signed checkpoint as a source serves it.
#[derive(Debug, Clone)]
pub struct SourceCheckpoint {
    pub tree_size: u64,
    /// The root kept beside the note, when the source keeps one (it must agree with the note).
    pub root_hash: Option<Vec<u8>>,
    pub note: String,
}

/// The source could not be read (not a finding about the log).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Where a log is read from. Pages are in order; an empty page means nothing more.
#[allow(async_fn_in_trait)] // used generically in this crate, on one task: no Send bound needed
pub trait Source {
    /// What is read, for the report (no credentials).
    fn describe(&self) -> String;
    /// Stored checkpoints with a size above `after` (all when `None`), in size order.
    async fn checkpoints_after(
        &mut self,
        after: Option<u64>,
    ) -> Result<Vec<SourceCheckpoint>, SourceError>;
    /// Leaves from index `start` on, in index order.
    async fn leaves_from(&mut self, start: u64) -> Result<Vec<SourceLeaf>, SourceError>;
    /// The consistency proof between two sizes, when the source serves proofs.
    async fn consistency_proof(
        &mut self,
        first: u64,
        second: u64,
    ) -> Result<Option<Vec<Vec<u8>>>, SourceError>;
}

/// What is trusted: the log's keys (any one may sign a checkpoint, for rotation) and the
/// witnesses, of which `quorum` must cosign every checkpoint.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// C2SP verifier keys of the log (`<name>+<id>+<key>`, type 0x01).
    pub log_keys: Vec<String>,
    /// Where the log keys came from: `true` when taken from the log's own `/ledger/key`.
    pub keys_served_by_log: bool,
    pub witnesses: Vec<CosignatureVerifier>,
    pub quorum: usize,
}

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Problem {
    /// The payload does not hash to the stored leaf hash.
    LeafHashMismatch { index: u64 },
    /// The stored leaf hash is not 32 bytes.
    MalformedLeafHash { index: u64 },
    /// Index `index` is missing; the next stored leaf is `next`.
    Gap { index: u64, next: u64 },
    /// Index `found` came where `index` was expected: a duplicate or reordered leaf.
    OutOfOrder { index: u64, found: u64 },
    /// The checkpoint of `checkpoint` leaves covers leaves from `index` on that are not stored.
    MissingLeaves { index: u64, checkpoint: u64 },
    /// The leaves do not hash to the signed root of `checkpoint`: one of the leaves since the
    /// previous good checkpoint, `[first, checkpoint)`, is not what was signed.
    RootMismatch { checkpoint: u64, first: u64 },
    /// No trusted key validly signed the checkpoint stored at this size.
    BadSignature { checkpoint: u64, reason: String },
    /// The signed note and what is stored beside it disagree.
    CheckpointMismatch { checkpoint: u64, reason: String },
    /// No checkpoint is cosigned by the quorum: `checkpoint` is the newest one, with the
    /// most cosignatures any checkpoint got.
    Quorum {
        checkpoint: u64,
        cosigned: usize,
        quorum: usize,
    },
    /// A cosignature line by a trusted witness on this checkpoint does not verify: the note
    /// was altered after the witness signed it, or the line was forged.
    BadCosignature { checkpoint: u64, witness: String },
    /// Checkpoint sizes did not grow.
    NotGrowing { checkpoint: u64, previous: u64 },
    /// The served consistency proof between two checkpoints does not verify.
    Inconsistent {
        first: u64,
        checkpoint: u64,
        reason: String,
    },
}

impl Problem {
    /// The first leaf the problem concerns: exact for leaf problems, the first leaf of the
    /// range a bad root covers for a root mismatch; none for a checkpoint's own problems.
    pub fn first_bad_leaf(&self) -> Option<u64> {
        match self {
            Problem::LeafHashMismatch { index }
            | Problem::MalformedLeafHash { index }
            | Problem::Gap { index, .. }
            | Problem::OutOfOrder { index, .. }
            | Problem::MissingLeaves { index, .. } => Some(*index),
            Problem::RootMismatch { first, .. } => Some(*first),
            _ => None,
        }
    }

    /// The checkpoint (by size) the problem was found at, if any.
    pub fn checkpoint(&self) -> Option<u64> {
        match self {
            Problem::MissingLeaves { checkpoint, .. }
            | Problem::RootMismatch { checkpoint, .. }
            | Problem::BadSignature { checkpoint, .. }
            | Problem::CheckpointMismatch { checkpoint, .. }
            | Problem::Quorum { checkpoint, .. }
            | Problem::BadCosignature { checkpoint, .. }
            | Problem::NotGrowing { checkpoint, .. }
            | Problem::Inconsistent { checkpoint, .. } => Some(*checkpoint),
            _ => None,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::LeafHashMismatch { index } => write!(
                f,
                "leaf {index}: its payload does not hash to its stored leaf hash"
            ),
            Problem::MalformedLeafHash { index } => {
                write!(f, "leaf {index}: its stored leaf hash is not 32 bytes")
            }
            Problem::Gap { index, next } => write!(
                f,
                "leaf {index} is missing (a gap: the next stored leaf is {next})"
            ),
            Problem::OutOfOrder { index, found } => write!(
                f,
                "leaf {index}: leaf {found} came in its place (a duplicate or reordered leaf)"
            ),
            Problem::MissingLeaves { index, checkpoint } => write!(
                f,
                "leaf {index} is missing: the checkpoint of size {checkpoint} covers it but the log ends before it"
            ),
            Problem::RootMismatch { checkpoint, first } => write!(
                f,
                "the checkpoint of size {checkpoint}: the leaves do not hash to its signed root; \
                 the first bad leaf is in [{first}, {checkpoint}) (leaves before {first} matched the previous checkpoint)"
            ),
            Problem::BadSignature { checkpoint, reason } => write!(
                f,
                "the checkpoint stored at size {checkpoint} has no valid signature by a trusted key: {reason}"
            ),
            Problem::CheckpointMismatch { checkpoint, reason } => {
                write!(f, "the checkpoint stored at size {checkpoint}: {reason}")
            }
            Problem::Quorum {
                checkpoint,
                cosigned,
                quorum,
            } => write!(
                f,
                "no checkpoint up to size {checkpoint} is cosigned by the quorum of {quorum} trusted witnesses (at most {cosigned})"
            ),
            Problem::BadCosignature { checkpoint, witness } => write!(
                f,
                "the checkpoint of size {checkpoint} carries a cosignature by witness {witness} that does not verify"
            ),
            Problem::NotGrowing {
                checkpoint,
                previous,
            } => write!(
                f,
                "the checkpoint of size {checkpoint} follows one of size {previous}: sizes must grow"
            ),
            Problem::Inconsistent {
                first,
                checkpoint,
                reason,
            } => write!(
                f,
                "the consistency proof from size {first} to size {checkpoint} does not verify: {reason}"
            ),
        }
    }
}

/// What a run verified, or the first problem it found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub source: String,
    /// Leaves checked: dense from 0, each payload hashing to its leaf hash.
    pub leaves: u64,
    /// Checkpoints verified (signature, root, growth).
    pub checkpoints: u64,
    /// Size of the latest verified checkpoint.
    pub signed_size: Option<u64>,
    /// Leaves after the latest checkpoint (checked, but covered by no signature yet).
    pub unsigned_leaves: u64,
    /// The trusted log keys (`<name>+<key id>`).
    pub keys: Vec<String>,
    /// The keys were the log's own (`--trust-served-keys`), not given independently.
    pub keys_served_by_log: bool,
    pub witnesses: usize,
    pub quorum: usize,
    /// Size of the newest checkpoint cosigned by the quorum (with a quorum asked).
    pub witnessed_size: Option<u64>,
    /// Checkpoints cosigned by the quorum.
    pub witnessed_checkpoints: u64,
    /// Consistency proofs fetched and verified between consecutive checkpoints.
    pub consistency_proofs: u64,
    pub seconds: f64,
    pub problem: Option<Problem>,
    /// [`Problem::first_bad_leaf`], for machines.
    pub first_bad_leaf: Option<u64>,
    /// [`Problem`]'s text, for people.
    pub message: Option<String>,
}

/// Verifies `source` against `trust`. A problem with the log is an `Ok` report with
/// `ok: false`; an `Err` means the source could not be read, or the trust is unusable.
pub async fn verify<S: Source>(source: &mut S, trust: &Trust) -> Result<Report, SourceError> {
    let started = Instant::now();
    let keys = trust
        .log_keys
        .iter()
        .map(|k| {
            verifier_key_name(k)
                .map(|_| k.clone())
                .map_err(|e| SourceError(format!("log key {k:?}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(SourceError("no trusted log key".into()));
    }
    let mut walk = Walk {
        report: Report {
            ok: true,
            source: source.describe(),
            leaves: 0,
            checkpoints: 0,
            signed_size: None,
            unsigned_leaves: 0,
            keys,
            keys_served_by_log: trust.keys_served_by_log,
            witnesses: trust.witnesses.len(),
            quorum: trust.quorum,
            witnessed_size: None,
            witnessed_checkpoints: 0,
            consistency_proofs: 0,
            seconds: 0.0,
            problem: None,
            first_bad_leaf: None,
            message: None,
        },
        leaves: Leaves::default(),
        previous: None,
        most_cosigned: 0,
    };
    let outcome = walk.run(source, trust).await?;
    let mut report = walk.report;
    report.leaves = walk.leaves.frontier.size();
    report.unsigned_leaves = report
        .leaves
        .saturating_sub(walk.previous.map_or(0, |(size, _)| size));
    if let Err(problem) = outcome {
        report.ok = false;
        report.first_bad_leaf = problem.first_bad_leaf();
        report.message = Some(problem.to_string());
        report.problem = Some(problem);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The leaves read so far: a buffered page and the frontier of those integrated.
#[derive(Default)]
struct Leaves {
    frontier: Frontier,
    page: std::vec::IntoIter<SourceLeaf>,
    exhausted: bool,
}

impl Leaves {
    /// The next leaf in the source, fetching a page when needed; `None` at the end.
    async fn next<S: Source>(&mut self, source: &mut S) -> Result<Option<SourceLeaf>, SourceError> {
        if let Some(leaf) = self.page.next() {
            return Ok(Some(leaf));
        }
        if self.exhausted {
            return Ok(None);
        }
        let page = source.leaves_from(self.frontier.size()).await?;
        if page.is_empty() {
            self.exhausted = true;
            return Ok(None);
        }
        self.page = page.into_iter();
        Ok(self.page.next())
    }

    /// Checks and integrates leaves until `target` are (or, with `None`, until the source
    /// ends). A checkpoint's size beyond the stored leaves is [`Problem::MissingLeaves`].
    async fn advance<S: Source>(
        &mut self,
        source: &mut S,
        target: Option<u64>,
    ) -> Result<Result<(), Problem>, SourceError> {
        while target.is_none_or(|t| self.frontier.size() < t) {
            let expected = self.frontier.size();
            let Some(leaf) = self.next(source).await? else {
                return Ok(match target {
                    Some(checkpoint) => Err(Problem::MissingLeaves {
                        index: expected,
                        checkpoint,
                    }),
                    None => Ok(()),
                });
            };
            if let Err(problem) = check_leaf(&leaf, expected) {
                return Ok(Err(problem));
            }
            // check_leaf proved the length.
            let mut hash: Hash = [0; HASH_LEN];
            hash.copy_from_slice(&leaf.leaf_hash);
            self.frontier.push(hash);
        }
        Ok(Ok(()))
    }
}

fn check_leaf(leaf: &SourceLeaf, expected: u64) -> Result<(), Problem> {
    if leaf.index > expected {
        return Err(Problem::Gap {
            index: expected,
            next: leaf.index,
        });
    }
    if leaf.index < expected {
        return Err(Problem::OutOfOrder {
            index: expected,
            found: leaf.index,
        });
    }
    if leaf.leaf_hash.len() != HASH_LEN {
        return Err(Problem::MalformedLeafHash { index: leaf.index });
    }
    if tree::leaf_hash(leaf.payload.as_bytes()).as_slice() != leaf.leaf_hash.as_slice() {
        return Err(Problem::LeafHashMismatch { index: leaf.index });
    }
    Ok(())
}

/// How many of `witnesses` validly cosigned `note` (the log's signed note with the witnesses'
/// cosignature lines after its signature); `Err(witness)` when a line by a trusted witness
/// (its name and key ID) does not verify.
pub fn cosigners(note: &str, witnesses: &[CosignatureVerifier]) -> Result<usize, String> {
    let Ok((text, lines)) = split_note(note) else {
        return Ok(0);
    };
    let mut valid = 0;
    for witness in witnesses {
        match witness.verify(text, lines) {
            Ok(_) => valid += 1,
            Err(SigningError::NoValidSignature(_)) => {}
            Err(_) => return Err(witness.verifier_key().to_string()),
        }
    }
    Ok(valid)
}

/// Checks the note's signature by any trusted key; returns the signed checkpoint.
fn signed_checkpoint(note: &str, keys: &[String]) -> Result<Checkpoint, String> {
    let mut reasons = Vec::new();
    for key in keys {
        match verify_note(note, key) {
            Ok(checkpoint) => return Ok(checkpoint),
            Err(e) => reasons.push(e.to_string()),
        }
    }
    Err(reasons.join("; "))
}

struct Walk {
    report: Report,
    leaves: Leaves,
    /// The latest verified checkpoint: size and root.
    previous: Option<(u64, Hash)>,
    /// The most cosignatures by trusted witnesses any checkpoint carried.
    most_cosigned: usize,
}

impl Walk {
    async fn run<S: Source>(
        &mut self,
        source: &mut S,
        trust: &Trust,
    ) -> Result<Result<(), Problem>, SourceError> {
        let mut after = None;
        loop {
            let page = source.checkpoints_after(after).await?;
            if page.is_empty() {
                break;
            }
            for stored in page {
                after = Some(stored.tree_size);
                if let Err(problem) = self.checkpoint(source, trust, &stored).await? {
                    return Ok(Err(problem));
                }
            }
        }
        // Leaves after the latest checkpoint: no root to match yet, but hashes and indices.
        if let Err(problem) = self.leaves.advance(source, None).await? {
            return Ok(Err(problem));
        }
        // Checkpoints are signed every second and cosigned when the witnesses answer, so the
        // newest ones may not be cosigned yet; but some checkpoint must be, and since every
        // root was computed from the same leaves, a cosigned one vouches for all before it.
        if trust.quorum > 0 && self.report.witnessed_size.is_none() {
            return Ok(Err(Problem::Quorum {
                checkpoint: self.report.signed_size.unwrap_or(0),
                cosigned: self.most_cosigned,
                quorum: trust.quorum,
            }));
        }
        Ok(Ok(()))
    }

    /// Verifies one stored checkpoint, integrating the leaves it covers first, so a problem
    /// is reported in log order (a bad leaf before the checkpoint that covers it).
    async fn checkpoint<S: Source>(
        &mut self,
        source: &mut S,
        trust: &Trust,
        stored: &SourceCheckpoint,
    ) -> Result<Result<(), Problem>, SourceError> {
        let size = stored.tree_size;
        let previous_size = self.previous.map_or(0, |(s, _)| s);
        if let Some((previous, _)) = self.previous {
            if size <= previous {
                return Ok(Err(Problem::NotGrowing {
                    checkpoint: size,
                    previous,
                }));
            }
        }
        if let Err(problem) = self.leaves.advance(source, Some(size)).await? {
            return Ok(Err(problem));
        }
        let checkpoint = match signed_checkpoint(&stored.note, &trust.log_keys) {
            Ok(c) => c,
            Err(reason) => {
                return Ok(Err(Problem::BadSignature {
                    checkpoint: size,
                    reason,
                }))
            }
        };
        if checkpoint.tree_size != size {
            return Ok(Err(Problem::CheckpointMismatch {
                checkpoint: size,
                reason: format!("its signed note is for size {}", checkpoint.tree_size),
            }));
        }
        if let Some(root) = &stored.root_hash {
            if root.as_slice() != checkpoint.root_hash.as_slice() {
                return Ok(Err(Problem::CheckpointMismatch {
                    checkpoint: size,
                    reason: "the root stored beside the note differs from the signed root".into(),
                }));
            }
        }
        let cosigned = match cosigners(&stored.note, &trust.witnesses) {
            Ok(n) => n,
            Err(witness) => {
                return Ok(Err(Problem::BadCosignature {
                    checkpoint: size,
                    witness,
                }))
            }
        };
        self.most_cosigned = self.most_cosigned.max(cosigned);
        let witnessed = trust.quorum > 0 && cosigned >= trust.quorum;
        if self.leaves.frontier.root() != checkpoint.root_hash {
            return Ok(Err(Problem::RootMismatch {
                checkpoint: size,
                first: previous_size,
            }));
        }
        // The roots already prove the two trees share their first `previous` leaves; a proof
        // served by the log is checked as well, so a client of the API sees it answer true.
        if let Some((previous, previous_root)) = self.previous.filter(|(s, _)| *s > 0) {
            if let Some(proof) = source.consistency_proof(previous, size).await? {
                if let Err(e) = tree::verify_consistency(
                    previous,
                    size,
                    &proof,
                    &previous_root,
                    &checkpoint.root_hash,
                ) {
                    return Ok(Err(Problem::Inconsistent {
                        first: previous,
                        checkpoint: size,
                        reason: e.to_string(),
                    }));
                }
                self.report.consistency_proofs += 1;
            }
        }
        self.previous = Some((size, checkpoint.root_hash));
        self.report.checkpoints += 1;
        self.report.signed_size = Some(size);
        if witnessed {
            self.report.witnessed_size = Some(size);
            self.report.witnessed_checkpoints += 1;
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{generate_private_key, NoteSigner};

    /// A log in memory, to test the walk without a database.
    struct MemorySource {
        leaves: Vec<SourceLeaf>,
        checkpoints: Vec<SourceCheckpoint>,
        page: usize,
    }

    impl Source for MemorySource {
        fn describe(&self) -> String {
            "memory".into()
        }
        async fn checkpoints_after(
            &mut self,
            after: Option<u64>,
        ) -> Result<Vec<SourceCheckpoint>, SourceError> {
            // By position after the checkpoint of size `after`, so a misordered list is served
            // as it is.
            let from = match after {
                None => 0,
                Some(a) => match self.checkpoints.iter().position(|c| c.tree_size == a) {
                    Some(p) => p + 1,
                    None => self.checkpoints.len(),
                },
            };
            Ok(self
                .checkpoints
                .iter()
                .skip(from)
                .take(2)
                .cloned()
                .collect())
        }
        async fn leaves_from(&mut self, start: u64) -> Result<Vec<SourceLeaf>, SourceError> {
            Ok(self
                .leaves
                .iter()
                .filter(|l| l.index >= start)
                .take(self.page)
                .cloned()
                .collect())
        }
        async fn consistency_proof(
            &mut self,
            _: u64,
            _: u64,
        ) -> Result<Option<Vec<Vec<u8>>>, SourceError> {
            Ok(None)
        }
    }

    fn log(n: u64, every: u64) -> (MemorySource, Trust) {
        let signer =
            NoteSigner::from_raw("example.org/log", &generate_private_key().unwrap()).unwrap();
        let mut frontier = Frontier::new();
        let mut leaves = Vec::new();
        let mut checkpoints = Vec::new();
        for i in 0..n {
            let payload = format!("{{\"n\":{i}}}");
            let hash = tree::leaf_hash(payload.as_bytes());
            frontier.push(hash);
            leaves.push(SourceLeaf {
                index: i,
                payload,
                leaf_hash: hash.to_vec(),
            });
            if (i + 1) % every == 0 {
                let c = Checkpoint {
                    origin: "example.org/log".into(),
                    tree_size: i + 1,
                    root_hash: frontier.root(),
                };
                checkpoints.push(SourceCheckpoint {
                    tree_size: i + 1,
                    root_hash: Some(c.root_hash.to_vec()),
                    note: signer.sign_checkpoint(&c).unwrap(),
                });
            }
        }
        let trust = Trust {
            log_keys: vec![signer.verifier_key()],
            ..Trust::default()
        };
        (
            MemorySource {
                leaves,
                checkpoints,
                page: 7,
            },
            trust,
        )
    }

    async fn run(source: &mut MemorySource, trust: &Trust) -> Report {
        verify(source, trust).await.unwrap()
    }

    #[actix_web::test]
    async fn an_intact_log_verifies() {
        let (mut source, trust) = log(50, 10);
        source.leaves.truncate(47);
        source.checkpoints.truncate(4);
        let report = run(&mut source, &trust).await;
        assert!(report.ok, "{:?}", report.problem);
        assert_eq!(report.leaves, 47);
        assert_eq!(report.checkpoints, 4);
        assert_eq!(report.signed_size, Some(40));
        assert_eq!(report.unsigned_leaves, 7);
    }

    #[actix_web::test]
    async fn each_kind_of_damage_names_its_first_leaf() {
        let (mut source, trust) = log(50, 10);
        source.leaves[23].payload.push(' ');
        let report = run(&mut source, &trust).await;
        assert_eq!(
            report.problem,
            Some(Problem::LeafHashMismatch { index: 23 })
        );
        assert_eq!(report.leaves, 23, "stopped at the bad leaf");

        let (mut source, trust) = log(50, 10);
        source.leaves[23].payload.push(' ');
        source.leaves[23].leaf_hash =
            tree::leaf_hash(source.leaves[23].payload.as_bytes()).to_vec();
        let report = run(&mut source, &trust).await;
        assert_eq!(
            report.problem,
            Some(Problem::RootMismatch {
                checkpoint: 30,
                first: 20
            })
        );
        assert_eq!(report.first_bad_leaf, Some(20));

        let (mut source, trust) = log(50, 10);
        source.leaves.remove(12);
        let report = run(&mut source, &trust).await;
        assert_eq!(
            report.problem,
            Some(Problem::Gap {
                index: 12,
                next: 13
            })
        );

        // A source serving leaf 3 twice.
        let (mut source, trust) = log(50, 10);
        source.leaves[4] = source.leaves[3].clone();
        let report = run(&mut source, &trust).await;
        assert_eq!(
            report.problem,
            Some(Problem::OutOfOrder { index: 4, found: 3 })
        );

        let (mut source, trust) = log(50, 10);
        source.leaves.truncate(45);
        let report = run(&mut source, &trust).await;
        assert_eq!(
            report.problem,
            Some(Problem::MissingLeaves {
                index: 45,
                checkpoint: 50
            })
        );

        let (mut source, trust) = log(50, 10);
        source.checkpoints[2].root_hash = Some(vec![0; 32]);
        let report = run(&mut source, &trust).await;
        assert!(matches!(
            report.problem,
            Some(Problem::CheckpointMismatch { checkpoint: 30, .. })
        ));

        let (mut source, trust) = log(50, 10);
        source.checkpoints[1].note = source.checkpoints[1].note.replacen("\n20\n", "\n21\n", 1);
        let report = run(&mut source, &trust).await;
        assert!(matches!(
            report.problem,
            Some(Problem::BadSignature { checkpoint: 20, .. })
        ));

        let (mut source, trust) = log(50, 10);
        source.checkpoints.swap(1, 2);
        let report = run(&mut source, &trust).await;
        assert_eq!(
            report.problem,
            Some(Problem::NotGrowing {
                checkpoint: 20,
                previous: 30
            })
        );
    }

    #[actix_web::test]
    async fn a_quorum_needs_cosignatures_and_keys_are_required() {
        let (mut source, mut trust) = log(10, 5);
        trust.quorum = 1;
        let report = run(&mut source, &trust).await;
        assert!(matches!(
            report.problem,
            Some(Problem::Quorum {
                checkpoint: 10,
                cosigned: 0,
                quorum: 1
            })
        ));
        trust.log_keys.clear();
        assert!(verify(&mut source, &trust).await.is_err());
        let other = NoteSigner::from_raw("example.org/log", &generate_private_key().unwrap())
            .unwrap()
            .verifier_key();
        let (mut source, _) = log(10, 5);
        let report = run(
            &mut source,
            &Trust {
                log_keys: vec![other],
                ..Trust::default()
            },
        )
        .await;
        assert!(matches!(
            report.problem,
            Some(Problem::BadSignature { checkpoint: 5, .. })
        ));
    }

    #[test]
    fn cosigners_are_counted_and_a_bad_cosignature_is_an_error() {
        use crate::cosignature::Cosigner;
        use base64::{engine::general_purpose::STANDARD, Engine as _};
        let (source, _) = log(5, 5);
        let note = source.checkpoints[0].note.clone();
        let (text, _) = split_note(&note).unwrap();
        let cosigner =
            |name: &str| Cosigner::from_raw(name, &generate_private_key().unwrap()).unwrap();
        let (w1, w2, stranger) = (
            cosigner("w1.example"),
            cosigner("w2.example"),
            cosigner("w3.example"),
        );
        let keys: Vec<CosignatureVerifier> = [&w1, &w2]
            .iter()
            .map(|w| CosignatureVerifier::parse(&w.verifier_key()).unwrap())
            .collect();
        let one = format!(
            "{note}{}{}",
            w1.cosign(text, 1_700_000_000).unwrap(),
            stranger.cosign(text, 1_700_000_000).unwrap()
        );
        assert_eq!(cosigners(&one, &keys), Ok(1));
        let both = format!("{one}{}", w2.cosign(text, 5).unwrap());
        assert_eq!(cosigners(&both, &keys), Ok(2));
        // A cosignature of another checkpoint (an altered note) is an error.
        let other = text.replace("\n5\n", "\n6\n");
        let wrong = format!("{note}{}", w2.cosign(&other, 5).unwrap());
        assert!(cosigners(&wrong, &keys).is_err());
        // So is one whose timestamp was changed after signing.
        let line = w2.cosign(text, 5).unwrap();
        let (head, b64) = line.trim_end().rsplit_once(' ').unwrap();
        let mut blob = STANDARD.decode(b64).unwrap();
        blob[11] ^= 1;
        let forged = format!("{note}{head} {}\n", STANDARD.encode(blob));
        assert!(cosigners(&forged, &keys).is_err());
        // Lines by unknown witnesses are ignored.
        assert_eq!(
            cosigners(
                &format!("{note}{}", stranger.cosign(text, 9).unwrap()),
                &keys
            ),
            Ok(0)
        );
    }
}
