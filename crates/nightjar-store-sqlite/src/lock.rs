//! The writer lock: an exclusive lock on `<data_dir>/writer.lock`, held for the writer's
//! lifetime, so that two `nightjar run` on one data directory cannot both write.
//!
//! The lock is an OS file lock (`flock` on Unix), released by the OS when the process ends, so a
//! crashed writer never leaves a stale lock. The file names its holder (pid and start time) for
//! the error message a second writer gets.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use nightjar_store::StoreError;

use crate::error::backend;

/// File name of the lock inside the data directory.
pub const LOCK_FILE_NAME: &str = "writer.lock";

/// A held writer lock; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct WriterLock {
    /// Kept open: closing the file releases the lock.
    _file: File,
    path: PathBuf,
}

impl WriterLock {
    /// Takes the lock of `data_dir`, or says who holds it.
    pub(crate) fn acquire(data_dir: &Path) -> Result<WriterLock, StoreError> {
        let path = data_dir.join(LOCK_FILE_NAME);
        let shown = path.display().to_string();
        // Not truncated on open: the holder's name must survive a failed attempt.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| backend(&format!("opening the writer lock {shown}"), error))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                // The holder's note is best effort: a failed read still reports the lock.
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(StoreError::Locked {
                    path: shown,
                    holder: if holder.is_empty() {
                        "holder unknown".to_string()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(TryLockError::Error(error)) => {
                return Err(backend(&format!("locking {shown}"), error));
            }
        }
        let note = format!("pid {} started at unix time {}", std::process::id(), crate::unix_now());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(note.as_bytes()))
            .and_then(|()| file.flush())
            .map_err(|error| backend(&format!("writing the writer lock {shown}"), error))?;
        Ok(WriterLock { _file: file, path })
    }

    /// The lock file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
