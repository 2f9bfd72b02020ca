//! `make faults`: the fault harness over the built services (see `integration_tests::faults`).
//!
//! `faults [--short] [--markdown FILE]`: runs the full plan (every service killed, Redis down
//! 30 s, Redis empty, PostgreSQL crashed) or the short one `make test` runs, prints the table,
//! writes it to FILE too when asked, and exits 1 when anything acknowledged was lost.
//! The service binaries are taken from `CUSTODIAN_BIN_DIR`, else beside this binary.

use std::process::ExitCode;

use integration_tests::faults::{self, Plan};

fn main() -> ExitCode {
    let mut plan = Plan::full();
    let mut markdown = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--short" => plan = Plan::short(),
            "--markdown" => markdown = args.next(),
            other => {
                eprintln!("unknown argument {other}\nusage: faults [--short] [--markdown FILE]");
                return ExitCode::from(64);
            }
        }
    }
    let report = actix_web::rt::System::new().block_on(faults::run(&plan));
    match report {
        Ok(report) => {
            let table = report.table();
            print!("{table}");
            if let Some(path) = markdown {
                if let Err(e) = std::fs::write(&path, &table) {
                    eprintln!("could not write {path}: {e}");
                }
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("the harness could not run: {e}");
            ExitCode::from(2)
        }
    }
}
