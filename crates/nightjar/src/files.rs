//! Expands the paths a user gives (files, directories) into the alert files to read.

use std::path::PathBuf;

use anyhow::bail;

/// Files named directly, plus every `.avro` file below each directory, in a stable order.
pub fn alert_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            files.extend(nightjar_pipeline::avro_files_in(path)?);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            bail!("{} does not exist", path.display());
        }
    }
    Ok(files)
}
