//! Atomic file replacement: a temporary file in the target's directory, written, synced and
//! renamed over the target, then the directory synced, so a reader (or a restart after a
//! crash) sees either the old file or the new one, never a part.

use std::io::Write;
use std::path::Path;

use crate::error::SinkError;

/// Prefix of temporary files; leftovers of a crash are removed by [`remove_temporary_files`].
pub(crate) const TEMP_PREFIX: &str = ".nightjar-tmp-";

/// Replaces `path` with `bytes` atomically and durably (file and directory synced).
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let directory = path.parent().unwrap_or(Path::new("."));
    let mut temporary = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(directory)
        .map_err(SinkError::io("create a temporary file in", directory))?;
    temporary
        .write_all(bytes)
        .map_err(SinkError::io("write", temporary.path()))?;
    temporary
        .as_file()
        .sync_all()
        .map_err(SinkError::io("sync", temporary.path()))?;
    temporary
        .persist(path)
        .map_err(|error| SinkError::io("rename a temporary file to", path)(error.error))?;
    sync_directory(directory)
}

/// Makes a rename or a removal in `directory` durable.
pub(crate) fn sync_directory(directory: &Path) -> Result<(), SinkError> {
    let handle = std::fs::File::open(directory).map_err(SinkError::io("open directory", directory))?;
    handle.sync_all().map_err(SinkError::io("sync directory", directory))
}

/// Creates `directory` and its parents.
pub(crate) fn create_directory(directory: &Path) -> Result<(), SinkError> {
    std::fs::create_dir_all(directory).map_err(SinkError::io("create directory", directory))
}

/// Removes the temporary files a crash left in `directory` (never the finished files).
pub(crate) fn remove_temporary_files(directory: &Path) -> Result<usize, SinkError> {
    let mut n_removed = 0;
    let entries = std::fs::read_dir(directory).map_err(SinkError::io("list", directory))?;
    for entry in entries {
        let entry = entry.map_err(SinkError::io("list", directory))?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(SinkError::io("remove", &path))?;
            n_removed += 1;
        }
    }
    Ok(n_removed)
}
