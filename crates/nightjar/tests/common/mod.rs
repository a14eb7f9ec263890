//! What the binary's integration tests share: running `nightjar` from the repository root and
//! reading its output.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root, where `tests/data` is.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `nightjar` with `args` in the repository root, with no config file and error logs only.
pub fn nightjar(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args(args)
        .current_dir(repo())
        .env_remove("NIGHTJAR_CONFIG")
        .env("RUST_LOG", "error")
        .output()
        .expect("running nightjar")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Source ids of the alerts in `paths`, as `nightjar inspect` decodes them.
pub fn source_ids_of(paths: &[&str]) -> BTreeSet<i64> {
    let mut args = vec!["inspect"];
    args.extend(paths);
    let output = nightjar(&args);
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
        .lines()
        .map(|line| {
            let json: serde_json::Value = serde_json::from_str(line).expect("inspect prints JSON lines");
            json["source_id"].as_i64().expect("a source id")
        })
        .collect()
}

/// One HTTP/1.1 GET to `address` (`HOST:PORT`); the status code and the body.
pub fn http_get(address: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).expect("connecting to the server");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .expect("talking to the server");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("talking to the server");
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A `nightjar` process serving the API (`serve`, or `run --serve`) on a free port.
pub struct Server {
    child: std::process::Child,
    /// `HOST:PORT` it listens on, from its banner.
    pub address: String,
    /// The rest of its standard error, line by line.
    pub lines: std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
}

impl Server {
    /// Starts `nightjar ARGS` with `NIGHTJAR__SERVE__LISTEN=127.0.0.1:0` and reads the address
    /// from its banner ("serving STORE on http://ADDRESS: ...").
    pub fn start(args: &[&str]) -> Server {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_nightjar"))
            .args(args)
            .current_dir(repo())
            .env_remove("NIGHTJAR_CONFIG")
            .env("RUST_LOG", "error")
            .env("NIGHTJAR__SERVE__LISTEN", "127.0.0.1:0")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting nightjar");
        let mut lines = std::io::BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let banner = lines.next().and_then(Result::ok).unwrap_or_default();
        let Some(address) = banner
            .split_once("http://")
            .and_then(|(_, rest)| rest.split_once(": "))
            .map(|(address, _)| address.to_string())
        else {
            let _ = child.kill();
            panic!("no address in the banner {banner:?}");
        };
        Server { child, address, lines }
    }

    /// The base URL, `http://HOST:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Stops the server with SIGTERM; true if it exited cleanly.
    pub fn stop(mut self) -> bool {
        let killed = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        killed.success() && self.child.wait().expect("the server exits").success()
    }
}

impl Drop for Server {
    /// A server left running by a failed test is killed.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
