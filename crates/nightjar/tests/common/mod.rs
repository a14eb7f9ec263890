//! What the binary's integration tests share: running `nightjar` from the repository root and
//! reading its output.

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
