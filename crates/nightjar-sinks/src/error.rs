//! [`SinkError`]: everything that can go wrong when writing a sink file or queueing a webhook post.

use std::path::PathBuf;

/// An error of a file sink or of the webhook outbox. Messages name the file, the filter or the
/// field at fault and say what is accepted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// A [`Delivery`](crate::Delivery) field that cannot name a file or an outbox entry.
    #[error("invalid delivery {field} {value:?}: {expected}")]
    InvalidDelivery {
        field: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A row of a delivery that is not a JSON object.
    #[error("filter {filter}: row {row_idx} is not a JSON object (found {found})")]
    RowNotAnObject {
        filter: String,
        row_idx: usize,
        found: &'static str,
    },
    /// A file format other than `jsonl` or `parquet`.
    #[error("unknown file sink format {0:?}: expected \"jsonl\" or \"parquet\"")]
    UnknownFormat(String),
    /// A webhook URL that is not an absolute http(s) URL.
    #[error("invalid webhook url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    /// Another outbox (in this or another process) holds the directory.
    #[error("outbox {} is in use by another process or another Outbox (lock file {})", directory.display(), lock_path.display())]
    OutboxLocked { directory: PathBuf, lock_path: PathBuf },
    /// The rows could not be turned into a Parquet file (types that cannot be reconciled).
    #[error("filter {filter}: rows for {} cannot be written as parquet: {message}", path.display())]
    Parquet {
        filter: String,
        path: PathBuf,
        message: String,
    },
    /// A file or directory operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Outbox file work that ended abnormally (a panic in a blocking task: a bug).
    #[error("{0}")]
    Internal(String),
}

impl From<String> for SinkError {
    fn from(message: String) -> SinkError {
        SinkError::Internal(message)
    }
}

impl SinkError {
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> SinkError {
        let path = path.into();
        move |source| SinkError::Io { action, path, source }
    }
}
