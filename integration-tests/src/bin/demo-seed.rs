//! Loads the demo data set into a running suite (used by `make run`).
//!
//! `demo-seed --gateway http://127.0.0.1:8080 --admin-password <pw> [--state var/demo.json]`
//! Idempotent: when the state file exists and its users can still log in, it only prints them.

use std::path::PathBuf;

use integration_tests::{api::Gateway, demo};

struct Args {
    gateway: String,
    admin_password: String,
    state: PathBuf,
}

fn parse_args() -> Result<Args, String> {
    let mut gateway =
        std::env::var("GATEWAY_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let mut admin_password = std::env::var("ADMIN_PASSWORD").unwrap_or_default();
    let mut state = PathBuf::from("var/demo.json");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        match arg.as_str() {
            "--gateway" => gateway = value,
            "--admin-password" => admin_password = value,
            "--state" => state = PathBuf::from(value),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if admin_password.is_empty() {
        return Err(
            "the administrator password is required (--admin-password or ADMIN_PASSWORD)".into(),
        );
    }
    Ok(Args {
        gateway,
        admin_password,
        state,
    })
}

fn print(demo: &serde_json::Value) {
    println!("Demo users (username / password):");
    for key in [
        "h1_practitioner",
        "h2_practitioner",
        "alice",
        "bob",
        "auditor",
    ] {
        let user = &demo[key];
        println!(
            "  {:<10} {:<12} / {}   {}",
            user["role"].as_str().unwrap_or_default(),
            user["username"].as_str().unwrap_or_default(),
            user["password"].as_str().unwrap_or_default(),
            user["organization"]
                .as_str()
                .or(user["patient"].as_str())
                .unwrap_or_default()
        );
    }
    println!(
        "Alice's Observation: /fhir/Observation/{}",
        demo["alice_observation"].as_str().unwrap_or_default()
    );
    println!(
        "Bob's Observation:   /fhir/Observation/{}",
        demo["bob_observation"].as_str().unwrap_or_default()
    );
    println!(
        "Alice's consent:     /fhir/Consent/{} (admits Hospital2)",
        demo["alice_consent"].as_str().unwrap_or_default()
    );
}

#[actix_web::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("demo-seed: {e}");
            std::process::exit(2);
        }
    };
    let gw = Gateway::new(&args.gateway);
    if let Ok(text) = std::fs::read_to_string(&args.state) {
        if let Ok(existing) = serde_json::from_str::<serde_json::Value>(&text) {
            let alice = &existing["alice"];
            let (user, password) = (
                alice["username"].as_str().unwrap_or_default(),
                alice["password"].as_str().unwrap_or_default(),
            );
            if gw.login(user, password).await.is_ok() {
                println!("Demo data already loaded ({}).", args.state.display());
                if existing["bob_observation"].is_null() {
                    // Before the custodian rule: Alice's consent admitted Hospital1, Bob had no login.
                    println!(
                        "(It is an earlier demo data set; `make clean-data` loads the current one.)"
                    );
                }
                print(&existing);
                return;
            }
        }
    }
    match demo::seed(&gw, &args.admin_password).await {
        Ok(demo) => {
            let value = serde_json::to_value(&demo).unwrap_or_default();
            if let Some(dir) = args.state.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Err(e) = std::fs::write(
                &args.state,
                serde_json::to_string_pretty(&value).unwrap_or_default(),
            ) {
                eprintln!("demo-seed: could not save {}: {e}", args.state.display());
            }
            println!("Demo data loaded.");
            print(&value);
        }
        Err(e) => {
            eprintln!("demo-seed: {e}");
            eprintln!("If the demo users exist from an earlier run whose {} is gone, run `make clean-data`.", args.state.display());
            std::process::exit(1);
        }
    }
}
