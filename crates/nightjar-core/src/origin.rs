//! Where a message came from, so that every error and dead letter can name its input.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The place a message was read from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Origin {
    /// A file; `message` counts messages in files that hold several (0 for a one-message file).
    File { path: PathBuf, message: u64 },
    /// A Kafka record.
    Kafka { topic: String, partition: i32, offset: i64 },
    /// Bytes handed over directly (tests, benchmarks, the API).
    Memory { label: String },
}

impl Origin {
    /// A file holding one message.
    pub fn file(path: impl Into<PathBuf>) -> Origin {
        Origin::File {
            path: path.into(),
            message: 0,
        }
    }

    /// Bytes in memory with a label that says what they are.
    pub fn memory(label: impl Into<String>) -> Origin {
        Origin::Memory { label: label.into() }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, message: 0 } => write!(f, "{}", path.display()),
            Origin::File { path, message } => write!(f, "{} message {}", path.display(), message),
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => {
                write!(f, "topic {topic} partition {partition} offset {offset}")
            }
            Origin::Memory { label } => f.write_str(label),
        }
    }
}
