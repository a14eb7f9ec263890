//! Expands the paths a user gives (files, directories) into the alert files to read.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// Files named directly, plus every `.avro` file below each directory, in a stable order.
pub fn alert_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            collect_avro(path, &mut files).with_context(|| format!("reading directory {}", path.display()))?;
            files[before..].sort();
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{} does not exist", path.display());
        }
    }
    Ok(files)
}

fn collect_avro(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_avro(&path, files)?;
        } else if path.extension().is_some_and(|extension| extension == "avro") {
            files.push(path);
        }
    }
    Ok(())
}
