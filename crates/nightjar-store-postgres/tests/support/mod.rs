//! A throwaway PostgreSQL 15 cluster for the tests: one per test binary, started on first use
//! in a temporary directory on a free port, one fresh database per test, stopped and removed when
//! the test process ends.
//!
//! The server binaries come from `/usr/lib/postgresql/15/bin` (Debian's `postgresql-15`), or
//! the directory in `NIGHTJAR_PG_BIN`. As root, the cluster runs as the `postgres` system user
//! (created if missing), since PostgreSQL refuses to run as root.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// Where Debian's `postgresql-15` puts the server binaries.
const DEFAULT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// The running cluster of this test binary.
#[derive(Debug)]
pub struct Cluster {
    port: u16,
    /// A shell that waits for its standard input to close (the test process ending, or
    /// [`Drop`]), then stops the server and removes the directory.
    guard: Mutex<Option<Child>>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

/// The cluster, started on first use.
///
/// # Panics
/// If the PostgreSQL 15 server binaries are missing (with how to install them) or the cluster
/// does not start (with its log).
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(Cluster::start)
}

/// The URL of a new, empty database on the cluster, unique to the caller.
pub async fn fresh_database() -> String {
    let cluster = cluster();
    let name = format!(
        "nightjar_test_{}_{}",
        std::process::id(),
        NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
    );
    let (client, connection) = tokio_postgres::connect(&cluster.url("postgres"), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| panic!("connecting to the test cluster on port {}: {error}", cluster.port));
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|error| panic!("creating the test database {name}: {error:?}"));
    drop(client);
    let _ = connection.await;
    cluster.url(&name)
}

/// Runs a command, panicking with its output if it fails.
fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("{what}: could not run {command:?}: {error}"));
    assert!(
        output.status.success(),
        "{what}: {command:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// True when the tests run as root.
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// A free TCP port on the loopback interface.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .unwrap_or_else(|error| panic!("finding a free port: {error}"))
}

/// Quotes a path for `sh`.
fn quoted(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

impl Cluster {
    fn start() -> Cluster {
        let bin_dir = PathBuf::from(std::env::var("NIGHTJAR_PG_BIN").unwrap_or_else(|_| DEFAULT_BIN_DIR.to_string()));
        let (initdb, pg_ctl) = (bin_dir.join("initdb"), bin_dir.join("pg_ctl"));
        assert!(
            initdb.is_file() && pg_ctl.is_file(),
            "the PostgreSQL 15 server binaries are not in {}: install them (`apt-get install postgresql-15` on \
             Debian/Ubuntu) or set NIGHTJAR_PG_BIN to the directory holding initdb and pg_ctl",
            bin_dir.display()
        );

        // As root, run the server as `postgres` (created if needed).
        let run_as: Vec<String> = if running_as_root() {
            let exists = Command::new("id")
                .arg("postgres")
                .output()
                .is_ok_and(|output| output.status.success());
            if !exists {
                run(
                    Command::new("useradd").args(["--system", "--no-create-home", "postgres"]),
                    "creating the postgres user",
                );
            }
            ["runuser", "-u", "postgres", "--"].map(String::from).to_vec()
        } else {
            Vec::new()
        };
        let command = |program: &Path| {
            let mut command = match run_as.split_first() {
                Some((first, rest)) => {
                    let mut command = Command::new(first);
                    command.args(rest).arg(program);
                    command
                }
                None => Command::new(program),
            };
            command.stdin(Stdio::null());
            command
        };

        let dir = tempfile::Builder::new()
            .prefix("nightjar-pg-")
            .tempdir()
            .unwrap_or_else(|error| panic!("creating a directory for the test cluster: {error}"))
            .keep();
        let (data, sockets, log) = (dir.join("data"), dir.join("sockets"), dir.join("server.log"));
        std::fs::create_dir(&sockets).unwrap_or_else(|error| panic!("creating {}: {error}", sockets.display()));
        if !run_as.is_empty() {
            run(
                Command::new("chown").arg("-R").arg("postgres:").arg(&dir),
                "handing the cluster directory to postgres",
            );
        }
        run(
            command(&initdb).arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]),
            "initdb of the test cluster",
        );
        let port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=200",
            sockets.display()
        );
        let started = command(&pg_ctl)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(&options)
            .args(["-w", "-t", "60", "start"])
            .output()
            .unwrap_or_else(|error| panic!("running pg_ctl start: {error}"));
        if !started.status.success() {
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "starting the test cluster on port {port} failed ({}):\n{}{}\nserver log:\n{server_log}",
                started.status,
                String::from_utf8_lossy(&started.stdout),
                String::from_utf8_lossy(&started.stderr)
            );
        }

        // The guard stops the server once its standard input closes: when the test process ends,
        // however it ends, or when the cluster is dropped.
        let prefix = run_as.join(" ");
        let script = format!(
            "cat >/dev/null; {prefix} {} -D {} -m fast -w stop >/dev/null 2>&1; rm -rf {}",
            quoted(&pg_ctl),
            quoted(&data),
            quoted(&dir)
        );
        let guard = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("starting the test cluster's guard: {error}"));
        Cluster {
            port,
            guard: Mutex::new(Some(guard)),
        }
    }

    /// The URL of a database on the cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let guard = self
            .guard
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(mut guard) = guard {
            // Closing its standard input makes the guard stop the server; wait for it.
            if let Some(mut stdin) = guard.stdin.take() {
                let _ = stdin.flush();
            }
            let _ = guard.wait();
        }
    }
}
