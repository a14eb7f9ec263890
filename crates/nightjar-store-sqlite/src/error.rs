//! Maps SQLite errors onto [`StoreError`]: a full disk is told apart, everything else keeps
//! SQLite's message and says what nightjar was doing.

use rusqlite::ErrorCode;
use rusqlite::ffi;

use nightjar_store::StoreError;

/// Converts a SQLite error met while doing `context` on the store at `path`.
///
/// `SQLITE_FULL` (the disk or `max_page_count` is exhausted) and the I/O errors of writing and
/// syncing (what a full disk gives on some file systems) become [`StoreError::DiskFull`].
pub(crate) fn map_sqlite(error: rusqlite::Error, path: &str, context: &str) -> StoreError {
    if let Some(failure) = error.sqlite_error() {
        let disk_full = failure.code == ErrorCode::DiskFull
            || matches!(
                failure.extended_code,
                ffi::SQLITE_IOERR_WRITE
                    | ffi::SQLITE_IOERR_FSYNC
                    | ffi::SQLITE_IOERR_SHMSIZE
                    | ffi::SQLITE_IOERR_TRUNCATE
            );
        if disk_full {
            return StoreError::DiskFull {
                path: path.to_string(),
                reason: format!("{context}: {error}"),
            };
        }
    }
    StoreError::Backend {
        context: format!("{context} ({path})"),
        reason: error.to_string(),
    }
}

/// Any other failure while doing `context`.
pub(crate) fn backend(context: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        context: context.to_string(),
        reason: error.to_string(),
    }
}
