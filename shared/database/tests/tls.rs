//! TLS to PostgreSQL, against a real server: a throwaway cluster (initdb and pg_ctl from
//! `/usr/lib/postgresql/*/bin`, a free port, a temporary directory) with `ssl = on`, a
//! certificate for `localhost` signed by a CA made here, and a `pg_hba.conf` that admits
//! only `hostssl`. The cluster is stopped when the test ends, also when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use custodian_database::{connect, ensure_database, pool, run_migrations, Connector, SslMode};
use custodian_telemetry::tls::testing::TestCa;
use diesel::{sql_query, QueryableByName};
use diesel_async::RunQueryDsl;

const MIGRATIONS: diesel_migrations::EmbeddedMigrations =
    diesel_migrations::embed_migrations!("tests/migrations");

#[derive(QueryableByName)]
struct Ssl {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    ssl: bool,
}

/// The newest PostgreSQL's binaries on this machine.
fn pg_bin() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's binaries in /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().expect("an initdb under /usr/lib/postgresql")
}

/// Runs a PostgreSQL tool as the `postgres` OS user when this process is root (initdb and
/// the server refuse root).
fn pg_command(tool: &str) -> Command {
    let program = pg_bin().join(tool);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn chown_to_postgres(path: &Path) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "chown {}", path.display());
    }
}

fn free_port() -> u16 {
    custodian_telemetry::tls::testing::free_port().unwrap()
}

/// A running throwaway cluster; stopped and removed on drop.
struct Cluster {
    dir: PathBuf,
    port: u16,
    ca: TestCa,
    other_ca: TestCa,
}

impl Cluster {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("custodian-pg-tls-{}", uuid::Uuid::new_v4()));
        let certs = dir.join("certs");
        std::fs::create_dir_all(&certs).unwrap();
        let ca = TestCa::new(&certs, "ca").unwrap();
        let other_ca = TestCa::new(&certs, "other-ca").unwrap();
        let server = ca.server("server", &["localhost"], &[]).unwrap();
        // The temporary directory is world-traversable; only the data directory is private.
        chown_to_postgres(&dir);
        let data = dir.join("data");
        let out = pg_command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(
            data.join("pg_hba.conf"),
            "# TLS only\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
        )
        .unwrap();
        let port = free_port();
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        use std::io::Write;
        writeln!(
            conf,
            "port = {port}\nlisten_addresses = 'localhost'\nunix_socket_directories = '{}'\n\
             ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nfsync = off\n",
            dir.display(),
            server.cert_file.display(),
            server.key_file.display(),
        )
        .unwrap();
        drop(conf);
        chown_to_postgres(&dir);
        let cluster = Self {
            dir,
            port,
            ca,
            other_ca,
        };
        let out = pg_command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(cluster.dir.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            std::fs::read_to_string(cluster.dir.join("server.log")).unwrap_or_default()
        );
        cluster
    }

    fn url(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/postgres?{query}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = pg_command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn encrypted(url: &str) -> Result<bool, String> {
    let mut conn = connect(url).await.map_err(|e| e.to_string())?;
    let row: Ssl = sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.ssl)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libpq_sslmodes_against_a_tls_only_server() {
    let cluster = Cluster::start();
    let ca = cluster.ca.cert_file().display().to_string();
    let other = cluster.other_ca.cert_file().display().to_string();

    // verify-full with the right CA and the certificate's name: connected, encrypted.
    let good = cluster.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    assert_eq!(encrypted(&good).await, Ok(true));

    // A CA that did not sign the server's certificate: refused by the client.
    let err = encrypted(&cluster.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    ))
    .await
    .unwrap_err();
    assert!(err.contains("certificate verify failed"), "{err}");
    // verify-ca as well, and `require` with a root certificate (libpq: verify-ca).
    for mode in ["verify-ca", "require"] {
        let err =
            encrypted(&cluster.url("localhost", &format!("sslmode={mode}&sslrootcert={other}")))
                .await
                .unwrap_err();
        assert!(err.contains("certificate verify failed"), "{mode}: {err}");
    }

    // The right CA, but a host name the certificate does not name: verify-full refuses,
    // verify-ca (the chain only) accepts.
    let err = encrypted(&cluster.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await
    .unwrap_err();
    assert!(err.contains("certificate verify failed"), "{err}");
    assert_eq!(
        encrypted(&cluster.url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"))).await,
        Ok(true)
    );

    // require without a CA encrypts without verifying (libpq); prefer negotiates TLS.
    assert_eq!(
        encrypted(&cluster.url("127.0.0.1", "sslmode=require")).await,
        Ok(true)
    );
    assert_eq!(encrypted(&cluster.url("127.0.0.1", "")).await, Ok(true));
    assert_eq!(
        Connector::new(&cluster.url("h", "")).unwrap().ssl_mode(),
        SslMode::Prefer
    );

    // Plain text: the server admits only hostssl.
    let err = encrypted(&cluster.url("localhost", "sslmode=disable"))
        .await
        .unwrap_err();
    assert!(
        err.contains("no encryption") || err.contains("pg_hba.conf"),
        "{err}"
    );

    // Every connection the crate makes goes the same way: creation, migrations, the pool.
    let db = cluster
        .url(
            "localhost",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        )
        .replace("/postgres?", "/custodian_tls?");
    ensure_database(&db).await.unwrap();
    run_migrations(&db, MIGRATIONS).await.unwrap();
    let pool = pool(&db, 2).unwrap();
    let mut conn = pool.get().await.unwrap();
    let row: Ssl = sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert!(row.ssl);
    drop(conn);
    let wrong = db.replace(&ca, &other);
    let refused = pool_error(&wrong).await;
    assert!(refused.contains("certificate verify failed"), "{refused}");
    assert!(ensure_database(&wrong).await.is_err());
    assert!(run_migrations(&wrong, MIGRATIONS).await.is_err());
}

async fn pool_error(url: &str) -> String {
    match pool(url, 1).unwrap().get().await {
        Ok(_) => "connected".into(),
        Err(e) => format!("{e:?}"),
    }
}
