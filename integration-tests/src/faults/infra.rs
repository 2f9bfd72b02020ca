//! The fault harness's own PostgreSQL cluster and Redis server, on free ports under a scratch
//! directory, so that it may crash and restart them without touching the machine's.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::suite::free_port;

fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("{what}: could not run: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The directory of `initdb` and `pg_ctl`: on `PATH`, else Debian's newest
/// `/usr/lib/postgresql/<version>/bin`.
fn postgres_bin_dir() -> Result<PathBuf, String> {
    if let Ok(output) = Command::new("sh")
        .args(["-c", "command -v initdb"])
        .output()
    {
        let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if output.status.success() && !path.is_empty() {
            if let Some(dir) = std::fs::canonicalize(&path)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
            {
                return Ok(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "no PostgreSQL server binaries (initdb) found".to_string())?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no PostgreSQL server binaries (initdb) found".into())
}

/// A PostgreSQL cluster of the harness's own, stopped when dropped.
pub struct Postgres {
    control: PostgresControl,
}

impl std::ops::Deref for Postgres {
    type Target = PostgresControl;
    fn deref(&self) -> &PostgresControl {
        &self.control
    }
}

/// Starts and stops the cluster; a clone may do so from another thread (PostgreSQL refuses to
/// run as root: as root, it runs as the `postgres` user).
#[derive(Debug, Clone)]
pub struct PostgresControl {
    root: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    pub fn init(scratch: &Path) -> Result<Self, String> {
        let root = scratch.join("pg");
        std::fs::create_dir_all(&root).map_err(|e| e.to_string())?;
        let pg = PostgresControl {
            bin: postgres_bin_dir()?,
            port: free_port(),
            as_postgres: is_root(),
            root,
        };
        if pg.as_postgres {
            run(
                Command::new("chown")
                    .args(["-R", "postgres:"])
                    .arg(&pg.root),
                "chown of the cluster directory",
            )?;
        }
        let mut initdb = pg.command("initdb");
        initdb.arg("-D").arg(pg.root.join("data")).args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        run(&mut initdb, "initdb")?;
        pg.start()?;
        Ok(Self { control: pg })
    }

    pub fn control(&self) -> PostgresControl {
        self.control.clone()
    }
}

impl PostgresControl {
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// `postgres://postgres@127.0.0.1:<port>`, without a database name.
    pub fn base_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    pub fn start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on",
            self.port,
            self.root.display()
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("-D")
            .arg(self.root.join("data"))
            .arg("-l")
            .arg(self.root.join("postgres.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"])
            .stdout(Stdio::null());
        run(&mut start, "pg_ctl start")
    }

    /// Stops as a crash would (`-m immediate`: no checkpoint; what was committed is in the
    /// WAL), then starts again.
    pub fn crash_and_restart(&self) -> Result<(), String> {
        self.stop("immediate")?;
        self.start()
    }

    fn stop(&self, mode: &str) -> Result<(), String> {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(self.root.join("data"))
            .args(["-m", mode, "-w", "stop"])
            .stdout(Stdio::null());
        run(&mut stop, "pg_ctl stop")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.control.stop("fast");
    }
}

/// A Redis server of the harness's own, persisting like the project's (an append-only file
/// synced on every write).
pub struct Redis {
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Redis {
    pub fn start_new(scratch: &Path) -> Result<Self, String> {
        let dir = scratch.join("redis");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut redis = Self {
            dir,
            port: free_port(),
            child: None,
        };
        redis.start()?;
        Ok(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) -> Result<(), String> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))
            .map_err(|e| e.to_string())?;
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&self.dir)
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--daemonize",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let pong = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "ping"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
                .unwrap_or(false);
            if pong {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err("redis-server did not answer within 20 s".into())
    }

    /// SIGKILL: what was acknowledged is in the append-only file.
    pub fn crash(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts with nothing: the disk was lost too.
    pub fn start_empty(&mut self) -> Result<(), String> {
        let _ = std::fs::remove_dir_all(self.dir.join("appendonlydir"));
        self.start()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.crash();
    }
}
