//! The short fault run (`make faults` runs the full one): services killed, Redis lost twice,
//! PostgreSQL crashed under load, and nothing acknowledged lost.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use integration_tests::faults::{self, Plan};

#[actix_web::test]
async fn nothing_acknowledged_is_lost_when_parts_die() {
    let report = faults::run(&Plan::short()).await.expect("the harness runs");
    println!("{}", report.table());
    assert!(report.passed(), "{}", report.table());
    // The faults were felt: a run in which no client noticed anything proves little.
    assert!(
        report.rows.iter().any(|r| r.errors > 0),
        "no fault was noticed by any client:\n{}",
        report.table()
    );
}
