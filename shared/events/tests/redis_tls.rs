//! `rediss://` against a real Redis: `redis-server` on a free TLS port (no plain port) with a
//! certificate for `localhost` signed by a CA made here, requiring client certificates.
//! The settings come from the environment exactly as a service reads them (`REDIS_CA_FILE`,
//! `REDIS_CLIENT_CERT_FILE`, `REDIS_CLIENT_KEY_FILE`), so this binary holds one test: the
//! environment is the process's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use custodian_events::{
    consumer::{blocking_connection, GroupConsumer, Handler, HandlerError},
    signing::{Authority, Keyring},
    streams::{connect, connect_with, RedisTls},
};
use custodian_telemetry::tls::testing::TestCa;
use tokio_util::sync::CancellationToken;

/// A TLS-only redis-server; killed and its directory removed on drop.
struct TlsRedis {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    custodian_telemetry::tls::testing::free_port().unwrap()
}

/// Forwards each payload it is given.
struct Forward(tokio::sync::mpsc::UnboundedSender<String>);

impl Handler for Forward {
    async fn handle(&self, payload: &str) -> Result<(), HandlerError> {
        let _ = self.0.send(payload.to_string());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_custom_ca_and_client_certificate() {
    let dir = std::env::temp_dir().join(format!("custodian-redis-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = TestCa::new(&dir, "ca").unwrap();
    let other_ca = TestCa::new(&dir, "other-ca").unwrap();
    let server = ca.server("server", &["localhost"], &[]).unwrap();
    let client = ca.client("records").unwrap();
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .arg("--tls-cert-file")
        .arg(&server.cert_file)
        .arg("--tls-key-file")
        .arg(&server.key_file)
        .arg("--tls-ca-cert-file")
        .arg(ca.cert_file())
        .args([
            "--tls-auth-clients",
            "yes",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server on the PATH");
    let redis = TlsRedis { child, dir, port };
    let url = format!("rediss://localhost:{}", redis.port);

    // Wait until it accepts TLS connections (bounded: a server that never comes up fails).
    let good = RedisTls::from_files(
        Some(ca.cert_file()),
        Some((&client.cert_file, &client.key_file)),
    )
    .unwrap();
    let mut up = false;
    for _ in 0..100 {
        if let Ok(client) = custodian_events::streams::client_with(&url, &good) {
            if client.get_multiplexed_async_connection().await.is_ok() {
                up = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "redis-server did not accept TLS connections");

    // The services' path: settings from the environment, `connect` and the consumer group.
    std::env::set_var("REDIS_CA_FILE", ca.cert_file());
    std::env::set_var("REDIS_CLIENT_CERT_FILE", &client.cert_file);
    std::env::set_var("REDIS_CLIENT_KEY_FILE", &client.key_file);
    let stream = format!("tls-{}:access", uuid::Uuid::new_v4().simple());
    let mut conn = connect(&url).await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg(&stream)
        .arg("*")
        .arg("event")
        .arg("over TLS")
        .query_async(&mut conn)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let consumer = GroupConsumer::new(&url, stream.clone(), "tls", "tls-1")
        .await
        .unwrap()
        .trusting(Authority::Unsigned, Keyring::shared().clone());
    let token = CancellationToken::new();
    let running = tokio::spawn(consumer.run(Forward(tx), token.clone()));
    assert_eq!(rx.recv().await.as_deref(), Some("over TLS"));
    token.cancel();
    running.await.unwrap();
    let mut blocking = blocking_connection(&url).await.unwrap();
    let pong: String = redis::cmd("PING").query_async(&mut blocking).await.unwrap();
    assert_eq!(pong, "PONG");

    // Refusals (run together: the connection manager retries a failed first connection for
    // about ten seconds before it gives up).
    // A CA that did not sign the server's certificate, explicitly and from the environment.
    let wrong = RedisTls::from_files(
        Some(other_ca.cert_file()),
        Some((&client.cert_file, &client.key_file)),
    )
    .unwrap();
    // The right CA but no client certificate: Redis requires one.
    let anonymous = RedisTls::from_files(Some(ca.cert_file()), None).unwrap();
    std::env::set_var("REDIS_CA_FILE", other_ca.cert_file());
    let (wrong_ca, wrong_ca_from_env, no_client_cert) = tokio::join!(
        connect_with(&url, &wrong),
        blocking_connection(&url),
        // One attempt: Redis closes the connection after the handshake, which `connect`
        // would take for a Redis not up yet and retry.
        async {
            let mut conn = custodian_events::streams::client_with(&url, &anonymous)
                .unwrap()
                .get_multiplexed_async_connection()
                .await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        },
    );
    let Err(err) = wrong_ca else {
        panic!("a wrong CA is refused")
    };
    assert!(
        err.to_string().contains("certificate verify failed"),
        "{err}"
    );
    let Err(err) = wrong_ca_from_env else {
        panic!("a wrong CA is refused")
    };
    assert!(
        err.to_string().contains("certificate verify failed"),
        "{err}"
    );
    assert!(
        no_client_cert.is_err(),
        "Redis requires a client certificate"
    );
}
