//! `Detector::score` on a simulated hospital's stream (`anomaly simulate`, 14 days, 120 staff,
//! 3,000 patients). Prints the throughput of a whole replay from an empty model, the latency
//! of single events on a model that has seen the stream (p50/p99/p99.9, the live path's
//! cost inside the consumer's lock), the memory held with 100,000 actors, and what saving and
//! loading each model's state costs (the live consumer's snapshot: a clone under the lock,
//! then encoding off it); then runs criterion. Goals (issue 6): replay ≥ 100,000 events/s, live p99 ≤ 5 ms.
//!
//! `cargo bench -p anomaly --bench score`

use std::{hint::black_box, time::Instant};

use anomaly::{
    model::Detector,
    simulate::{simulate, Params},
};
use chrono::Duration;
use criterion::{criterion_group, criterion_main, Criterion};
use custodian_events::AccessEvent;
use uuid::Uuid;

fn stream() -> Vec<AccessEvent> {
    simulate(&Params::standard(1)).events
}

/// Resident memory of this process in KiB (Linux), 0 elsewhere.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn report(events: &[AccessEvent]) -> Detector {
    let mut detector = Detector::default();
    let start = Instant::now();
    for event in events {
        black_box(detector.score(event));
    }
    let elapsed = start.elapsed();
    println!(
        "replay: {} events in {:.2} s: {:.0} events/s",
        events.len(),
        elapsed.as_secs_f64(),
        events.len() as f64 / elapsed.as_secs_f64()
    );

    // Single events on the trained model, each a fresh id a day later (live scoring).
    let mut latencies: Vec<u128> = events
        .iter()
        .take(50_000)
        .map(|event| {
            let mut e = event.clone();
            e.id = Uuid::new_v4();
            e.time += Duration::days(15);
            let start = Instant::now();
            black_box(detector.score(&e));
            start.elapsed().as_nanos()
        })
        .collect();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
    println!(
        "single event: p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs",
        at(0.5),
        at(0.99),
        at(0.999),
        at(1.0)
    );
    detector
}

/// 100,000 actors, each with a week of a day worker's events (10 a day, 5 patients, one
/// address and agent): the memory the model then holds.
fn memory(template: &AccessEvent) -> Detector {
    let before = rss_kib();
    let mut detector = Detector::default();
    let mut e = template.clone();
    for day in 0..7 {
        for actor in 0..100_000u32 {
            for k in 0..10 {
                e.id = Uuid::from_u128(u128::from(actor) << 32 | (day * 10 + k) as u128);
                e.actor.id = format!("actor-{actor}");
                e.actor.department = Some(format!("dept-{}", actor % 200));
                e.patient = Some(format!("Patient/{}", (actor * 7 + k % 5) % 500_000));
                e.time = template.time
                    + Duration::days(i64::from(day))
                    + Duration::minutes(i64::from(k) * 20);
                black_box(detector.score(&e));
            }
        }
    }
    let after = rss_kib();
    println!(
        "memory: {} actors, {} relationship entries: {} MiB resident for the model",
        detector.actors(),
        detector.relations(),
        (after.saturating_sub(before)) / 1024
    );
    detector
}

/// The snapshot of `detector`: clone (under the consumer's lock), encode, size, decode.
fn snapshot(what: &str, detector: &Detector) {
    let start = Instant::now();
    let copy = detector.clone();
    let cloned = start.elapsed();
    let start = Instant::now();
    let Ok(bytes) = copy.encode_snapshot() else {
        println!("snapshot of {what}: not encoded");
        return;
    };
    let encoded = start.elapsed();
    let start = Instant::now();
    let decoded = Detector::decode_snapshot(&bytes, detector.threshold(), *detector.config());
    let elapsed = start.elapsed();
    println!(
        "snapshot of {what}: {:.1} MiB; clone {:.0} ms, encode {:.0} ms, decode {:.0} ms{}",
        bytes.len() as f64 / (1024.0 * 1024.0),
        cloned.as_secs_f64() * 1000.0,
        encoded.as_secs_f64() * 1000.0,
        elapsed.as_secs_f64() * 1000.0,
        if decoded.is_ok() {
            ""
        } else {
            " (did not decode)"
        }
    );
}

fn bench(c: &mut Criterion) {
    let events = stream();
    let mut detector = report(&events);
    snapshot("the simulated hospital", &detector);
    let large = memory(&events[events.len() / 2]);
    snapshot("100,000 actors", &large);
    drop(large);
    let mut i = 0usize;
    c.bench_function("score one event (trained model)", |b| {
        b.iter(|| {
            let mut e = events[i % events.len()].clone();
            e.id = Uuid::from_u128(i as u128);
            e.time += Duration::days(16);
            i += 1;
            black_box(detector.score(&e))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
