//! A stand-in upstream and token issuer for measuring the gateway's own overhead:
//!
//! ```sh
//! cargo run --release -p gateway --example bench_upstream   # prints the settings and a token
//! # start the gateway with the printed variables, then e.g.
//! wrk -t2 -c64 -d10s http://127.0.0.1:8080/fhir/metadata
//! wrk -t2 -c64 -d10s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8080/fhir/Patient/1
//! ```

use actix_web::{web, App, HttpResponse, HttpServer};
use custodian_auth::testing::TestIssuer;

const BODY: &str =
    r#"{"resourceType":"Patient","id":"1","name":[{"family":"Example","given":["Bench"]}]}"#;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let issuer = TestIssuer::start().await;
    let (_, token) = issuer.practitioner("Organization/1");
    let server = HttpServer::new(|| {
        App::new().default_service(web::to(|| async {
            HttpResponse::Ok()
                .content_type("application/fhir+json")
                .body(BODY)
        }))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))?;
    let port = server.addrs()[0].port();
    println!(
        "RECORDS_URL=http://127.0.0.1:{port} JWKS_URL={} TOKEN_ISSUER={}",
        issuer.jwks_url, issuer.issuer
    );
    println!("TOKEN={token}");
    server.run().await
}
