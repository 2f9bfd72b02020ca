//! Every RFC 6962 / 9162 proof vector (transparency-dev, Apache-2.0; copied into `tests/data/merkle-vectors`): a file with
//! `wantErr: false` must verify, one with `wantErr: true` must be rejected.
//!
//! - `inclusion/`, `consistency/`: all files, through [`verify_inclusion`] / [`verify_consistency`].
//! - `subtreeinclusion/`: all files. An inclusion proof in the aligned subtree `[start, end)` is
//!   an RFC 9162 inclusion proof of `leafIdx - start` in a tree of `end - start` leaves whose root
//!   is the subtree hash, so the RFC verifier checks it once the subtree is checked to be valid
//!   (`start` a multiple of the smallest power of two >= `end - start`, `start <= leafIdx < end`).
//! - `subtreeconsistency/`: the files with `start == 0 && end > 0`, which are RFC 9162
//!   consistency proofs from size `end` to size `size`. Skipped: `start > 0` (proving a subtree
//!   that is not a prefix against a tree needs the subtree-consistency algorithm of the Merkle
//!   Tree Certificates draft, not RFC 9162's: 16 files) and `start == end == 0` (the draft
//!   accepts the empty subtree in 2 of them, while RFC 9162 semantics, and the `consistency/`
//!   vectors, reject a proof from size 0: 11 files).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::path::{Path, PathBuf};

use base64::{engine::general_purpose::STANDARD, Engine as _};
use ledger::tree::{verify_consistency, verify_inclusion};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/merkle-vectors")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn b64(v: &Value) -> Vec<u8> {
    STANDARD
        .decode(v.as_str().unwrap_or_default())
        .expect("vector hashes are base64")
}

fn proof(v: &Value) -> Vec<Vec<u8>> {
    v["proof"]
        .as_array()
        .map(|a| a.iter().map(b64).collect())
        .unwrap_or_default()
}

fn num(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a number"))
}

#[derive(Default, Debug)]
struct Tally {
    verified: usize,
    rejected: usize,
    skipped: usize,
    wrong: Vec<String>,
}

impl Tally {
    fn record(&mut self, path: &Path, v: &Value, outcome: Result<(), String>) {
        let want_err = v["wantErr"].as_bool().expect("wantErr");
        match (want_err, outcome) {
            (false, Ok(())) => self.verified += 1,
            (true, Err(_)) => self.rejected += 1,
            (false, Err(e)) => self
                .wrong
                .push(format!("{}: should verify, failed: {e}", path.display())),
            (true, Ok(())) => self
                .wrong
                .push(format!("{}: should be rejected, verified", path.display())),
        }
    }

    fn check(&self, name: &str, verified: usize, rejected: usize, skipped: usize) {
        println!(
            "{name}: {} verified, {} rejected, {} skipped",
            self.verified, self.rejected, self.skipped
        );
        assert!(self.wrong.is_empty(), "{name}:\n{}", self.wrong.join("\n"));
        assert_eq!(
            (self.verified, self.rejected, self.skipped),
            (verified, rejected, skipped),
            "{name} counts"
        );
    }
}

fn inclusion(v: &Value) -> Result<(), String> {
    verify_inclusion(
        num(v, "leafIdx"),
        num(v, "treeSize"),
        &b64(&v["leafHash"]),
        &proof(v),
        &b64(&v["root"]),
    )
    .map_err(|e| e.to_string())
}

fn consistency(v: &Value) -> Result<(), String> {
    verify_consistency(
        num(v, "size1"),
        num(v, "size2"),
        &proof(v),
        &b64(&v["root1"]),
        &b64(&v["root2"]),
    )
    .map_err(|e| e.to_string())
}

fn subtree_inclusion(v: &Value) -> Result<(), String> {
    let (start, end, index) = (num(v, "start"), num(v, "end"), num(v, "leafIdx"));
    let width = end.checked_sub(start).ok_or("end before start")?;
    if width == 0
        || width
            .checked_next_power_of_two()
            .is_none_or(|p| start % p != 0)
    {
        return Err(format!("[{start}, {end}) is not a valid subtree"));
    }
    if !(start..end).contains(&index) {
        return Err("leaf outside the subtree".into());
    }
    verify_inclusion(
        index - start,
        width,
        &b64(&v["leafHash"]),
        &proof(v),
        &b64(&v["root"]),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn inclusion_vectors() {
    let mut t = Tally::default();
    for path in files(&vectors_dir().join("inclusion")) {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        t.record(&path, &v, inclusion(&v));
    }
    t.check("inclusion", 6, 92, 0);
}

#[test]
fn consistency_vectors() {
    let mut t = Tally::default();
    for path in files(&vectors_dir().join("consistency")) {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        t.record(&path, &v, consistency(&v));
    }
    t.check("consistency", 6, 92, 0);
}

#[test]
fn subtree_inclusion_vectors() {
    let mut t = Tally::default();
    for path in files(&vectors_dir().join("subtreeinclusion")) {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        t.record(&path, &v, subtree_inclusion(&v));
    }
    t.check("subtreeinclusion", 12, 192, 0);
}

#[test]
fn subtree_consistency_vectors_of_prefixes() {
    let mut t = Tally::default();
    for path in files(&vectors_dir().join("subtreeconsistency")) {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let (start, end) = (num(&v, "start"), num(&v, "end"));
        if start != 0 || end == 0 {
            t.skipped += 1;
            continue;
        }
        let outcome = verify_consistency(
            end,
            num(&v, "size"),
            &proof(&v),
            &b64(&v["root1"]),
            &b64(&v["root2"]),
        )
        .map_err(|e| e.to_string());
        t.record(&path, &v, outcome);
    }
    t.check("subtreeconsistency (start = 0, end > 0)", 6, 85, 27);
}
