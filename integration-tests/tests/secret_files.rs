//! Secrets from mounted files, end to end: the real identity binary started with
//! `DATABASE_URL_FILE`, `REDIS_URL_FILE` and `ADMIN_PASSWORD_FILE` (as Kubernetes mounts a
//! Secret) and none of the plain variables becomes ready and lets the administrator log in
//! with the password from the file; started with both `DATABASE_URL` and `DATABASE_URL_FILE`
//! it refuses to start, naming the variables and never the secret. Its PostgreSQL
//! connections follow `sslmode=prefer`: encrypted exactly when the server has TLS on.
//!
//! Needs the binaries (`cargo build --bins`; `make test` builds them first).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use diesel::{sql_query, QueryableByName};
use diesel_async::RunQueryDsl;
use integration_tests::suite::{binary_dir, free_port};

struct Cleanup {
    dir: PathBuf,
    child: Option<Child>,
    database_url: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let url = self.database_url.clone();
        // A runtime of its own: drop may run while the test's is unwinding.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(custodian_database::drop_database(&url)))
        })
        .join();
    }
}

#[derive(QueryableByName)]
struct Flag {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    on: bool,
}

fn write_secret(dir: &Path, name: &str, value: &str) -> PathBuf {
    let path = dir.join(name);
    // A trailing newline, as `kubectl create secret --from-file` of an edited file has.
    std::fs::write(&path, format!("{value}\n")).unwrap();
    path
}

fn identity(dir: &Path, port: u16, env: &[(&str, &Path)], plain: &[(&str, &str)]) -> Command {
    let mut command = Command::new(binary_dir().join("identity"));
    command
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .env_remove("ADMIN_PASSWORD")
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("REDIS_STREAM_PREFIX", format!("secretfiles-{port}"))
        .env("INTERNAL_TOKEN_FILE", dir.join("internal.token"))
        .env("STREAM_SIGNING_KEY_FILE", dir.join("identity-stream.pem"))
        .env("STREAM_TRUSTED_KEYS_DIR", dir)
        .env("DATABASE_POOL_SIZE", "2")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null());
    for (name, path) in env {
        command.env(name, path);
    }
    for (name, value) in plain {
        command.env(name, value);
    }
    command
}

#[actix_web::test]
async fn identity_starts_with_its_secrets_in_files() {
    let binary = binary_dir().join("identity");
    assert!(
        binary.exists(),
        "{} is missing: `cargo build --bins` first",
        binary.display()
    );
    let dir = std::env::temp_dir().join(format!("custodian-secret-files-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let base = std::env::var("E2E_DATABASE_BASE")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    let database_url = format!("{base}/e2e_secret_files_{}", uuid::Uuid::new_v4().simple());
    let redis_url = std::env::var("E2E_REDIS_URL_IDENTITY")
        .or_else(|_| std::env::var("E2E_REDIS_URL"))
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let password = format!("pw-{}", uuid::Uuid::new_v4().simple());
    let mut cleanup = Cleanup {
        dir: dir.clone(),
        child: None,
        database_url: database_url.clone(),
    };
    let secrets = dir.join("secrets");
    std::fs::create_dir_all(&secrets).unwrap();
    let db_file = write_secret(&secrets, "database-url", &database_url);
    let redis_file = write_secret(&secrets, "redis-url", &redis_url);
    let password_file = write_secret(&secrets, "admin-password", &password);

    // Both the variable and its file: refused at start, neither value shown.
    let out = identity(
        &dir,
        free_port(),
        &[("DATABASE_URL_FILE", &db_file)],
        &[("DATABASE_URL", "postgres://shown@nowhere/never")],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("DATABASE_URL_FILE"), "{said}");
    assert!(
        !said.contains("shown@nowhere") && !said.contains(&database_url),
        "{said}"
    );

    // Files only.
    let port = free_port();
    let log = std::fs::File::create(dir.join("identity.log")).unwrap();
    cleanup.child = Some(
        identity(
            &dir,
            port,
            &[
                ("DATABASE_URL_FILE", &db_file),
                ("REDIS_URL_FILE", &redis_file),
                ("ADMIN_PASSWORD_FILE", &password_file),
            ],
            &[],
        )
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap(),
    );
    let base_url = format!("http://127.0.0.1:{port}");
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = client.get(format!("{base_url}/readyz")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        if let Ok(Some(status)) = cleanup.child.as_mut().unwrap().try_wait() {
            panic!(
                "identity exited with {status}:\n{}",
                std::fs::read_to_string(dir.join("identity.log")).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "identity not ready within 90 s:\n{}",
            std::fs::read_to_string(dir.join("identity.log")).unwrap_or_default()
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }

    // The administrator's password is the file's content, without its newline.
    let response = client
        .post(format!("{base_url}/auth/token"))
        .send_form(&[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", password.as_str()),
        ])
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);

    // sslmode=prefer (the default): identity's connections are encrypted exactly when the
    // server offers TLS (Debian's PostgreSQL does, with its snakeoil certificate).
    let (server, name) = database_url.rsplit_once('/').unwrap();
    let mut admin = custodian_database::connect(&format!("{server}/postgres?sslmode=disable"))
        .await
        .unwrap();
    let ssl_on: Flag = sql_query("SELECT current_setting('ssl') = 'on' AS on")
        .get_result(&mut admin)
        .await
        .unwrap();
    let encrypted: Flag = sql_query(
        "SELECT coalesce(bool_and(s.ssl), false) AS on FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1",
    )
    .bind::<diesel::sql_types::Text, _>(name)
    .get_result(&mut admin)
    .await
    .unwrap();
    assert_eq!(encrypted.on, ssl_on.on);
    let log = std::fs::read_to_string(dir.join("identity.log")).unwrap_or_default();
    assert!(!log.contains(&password), "the password reached the log");
}
