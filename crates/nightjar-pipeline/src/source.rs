//! Sources of alert messages. A source yields micro-batches of raw messages, each with its
//! origin, so that every error and dead letter can name where a message came from.

use std::path::{Path, PathBuf};

use nightjar_core::Origin;
use thiserror::Error;

/// One raw message and where it came from.
#[derive(Debug, Clone)]
pub struct Message {
    pub bytes: Vec<u8>,
    pub origin: Origin,
}

/// Why a source could not produce messages.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error(
        "no alert files match {0} (expected a file, a directory of .avro files, or a glob such as 'alerts/*.avro')"
    )]
    NothingMatches(String),
    #[error("invalid glob {pattern:?}: {reason}")]
    BadGlob { pattern: String, reason: String },
}

/// Anything that yields micro-batches of messages.
pub trait MessageSource: Send + 'static {
    /// The next at most `max` messages, or `None` at the end.
    fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Message>>, SourceError>;
    /// Number of messages in the source, where known (for progress bars).
    fn len_hint(&self) -> Option<u64>;
}

impl MessageSource for FileSource {
    fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Message>>, SourceError> {
        FileSource::next_batch(self, max)
    }

    fn len_hint(&self) -> Option<u64> {
        Some(self.files.len() as u64)
    }
}

/// Alert files: every message is one file (an Avro container with one or many alerts, or a
/// Confluent wire-format message).
#[derive(Debug)]
pub struct FileSource {
    files: Vec<PathBuf>,
    next: usize,
}

impl FileSource {
    /// Files named by `spec`: a file, a directory (every `.avro` file below it, recursively,
    /// in name order), or a glob pattern.
    pub fn open(spec: &str) -> Result<FileSource, SourceError> {
        let path = Path::new(spec);
        let mut files = Vec::new();
        if path.is_dir() {
            files = avro_files_in(path)?;
        } else if path.is_file() {
            files.push(path.to_path_buf());
        } else if spec.contains(['*', '?', '[']) {
            let entries = glob::glob(spec).map_err(|error| SourceError::BadGlob {
                pattern: spec.to_string(),
                reason: error.to_string(),
            })?;
            for entry in entries {
                let entry = entry.map_err(|error| SourceError::File {
                    path: error.path().to_path_buf(),
                    reason: error.error().to_string(),
                })?;
                if entry.is_file() {
                    files.push(entry);
                }
            }
        }
        if files.is_empty() {
            return Err(SourceError::NothingMatches(spec.to_string()));
        }
        Ok(FileSource { files, next: 0 })
    }

    /// Number of files in the source.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The next `max` messages, or `None` when every file has been read.
    pub fn next_batch(&mut self, max: usize) -> Result<Option<Vec<Message>>, SourceError> {
        if self.next >= self.files.len() {
            return Ok(None);
        }
        let end = (self.next + max.max(1)).min(self.files.len());
        let mut batch = Vec::with_capacity(end - self.next);
        for path in &self.files[self.next..end] {
            let bytes = std::fs::read(path).map_err(|error| SourceError::File {
                path: path.clone(),
                reason: error.to_string(),
            })?;
            batch.push(Message {
                bytes,
                origin: Origin::file(path),
            });
        }
        self.next = end;
        Ok(Some(batch))
    }
}

/// Every `.avro` file below `dir`, recursively, in name order.
pub fn avro_files_in(dir: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let mut files = Vec::new();
    collect_avro(dir, &mut files)?;
    files.sort();
    Ok(files)
}

fn collect_avro(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), SourceError> {
    let error = |reason: std::io::Error| SourceError::File {
        path: dir.to_path_buf(),
        reason: reason.to_string(),
    };
    for entry in std::fs::read_dir(dir).map_err(error)? {
        let path = entry.map_err(error)?.path();
        if path.is_dir() {
            collect_avro(&path, files)?;
        } else if path.extension().is_some_and(|extension| extension == "avro") {
            files.push(path);
        }
    }
    Ok(())
}
