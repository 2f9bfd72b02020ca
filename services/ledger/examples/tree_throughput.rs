//! Appends per second of the in-memory tree, and the cost of proofs at the end.
//! `cargo run -p ledger --example tree_throughput [--release] -- [leaves]`

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code (example, not shipped)

use std::time::Instant;

use ledger::tree::{verify_inclusion, Tree};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let payload = vec![b'x'; 400]; // about the size of an access event's JSON
    let started = Instant::now();
    let mut tree = Tree::new();
    for i in 0..n {
        let mut data = payload.clone();
        data[..8].copy_from_slice(&i.to_be_bytes());
        tree.append(&data);
    }
    let appended = started.elapsed();
    let started = Instant::now();
    let root = tree.root();
    let root_time = started.elapsed();
    let proofs = 10_000u64;
    let started = Instant::now();
    for k in 0..proofs {
        let index = (k * 7919) % n;
        let proof = tree.inclusion_proof(index, n).expect("in range");
        verify_inclusion(index, n, &tree.leaf(index).expect("leaf"), &proof, &root)
            .expect("verifies");
    }
    let proof_time = started.elapsed();
    let started = Instant::now();
    for k in 1..=proofs {
        let first = 1 + (k * 104_729) % n;
        tree.consistency_proof(first, n).expect("in range");
    }
    let consistency_time = started.elapsed();
    println!(
        "{n} appends of 400-byte leaves in {:.2?} ({:.0}/s); root {:.1?}; inclusion proof + verify {:.1?} each; consistency proof {:.1?} each",
        appended,
        n as f64 / appended.as_secs_f64(),
        root_time,
        proof_time / proofs as u32,
        consistency_time / proofs as u32,
    );
}
