//! Maps PostgreSQL errors onto [`StoreError`]: a full disk and a refused connection are told
//! apart, everything else keeps the server's message and code and says what nightjar was doing.
//! The store is named by its URL without the password.

use nightjar_store::StoreError;
use tokio_postgres::error::SqlState;

/// A PostgreSQL error met while doing `context`, before it is turned into a [`StoreError`]
/// (the write path looks at the code to retry deadlocks and serialization failures).
#[derive(Debug)]
pub(crate) struct Failed {
    pub(crate) context: String,
    pub(crate) error: tokio_postgres::Error,
}

impl Failed {
    /// True for a failure that a new attempt of the whole transaction can cure.
    pub(crate) fn is_retryable(&self) -> bool {
        self.error.code().is_some_and(|code| {
            *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
        })
    }

    /// The [`StoreError`] for the store at `url` (already without its password).
    pub(crate) fn into_store_error(self, url: &str) -> StoreError {
        map_postgres(&self.error, url, &self.context)
    }
}

/// Wraps a PostgreSQL error with what was being done.
pub(crate) fn failed(context: &str) -> impl Fn(tokio_postgres::Error) -> Failed + '_ {
    move |error| Failed {
        context: context.to_string(),
        error,
    }
}

/// Converts a PostgreSQL error met while doing `context` on the store at `url`.
pub(crate) fn map_postgres(error: &tokio_postgres::Error, url: &str, context: &str) -> StoreError {
    let reason = describe(error);
    if error.code() == Some(&SqlState::DISK_FULL) {
        return StoreError::DiskFull {
            path: url.to_string(),
            reason: format!("{context}: {reason}"),
        };
    }
    StoreError::Backend {
        context: format!("{context} ({url})"),
        reason,
    }
}

/// The server's message with its SQLSTATE, detail and hint; or the client's error with its cause.
fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" (detail: {detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!(" (hint: {hint})"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    text
}

/// The store's address for messages: `postgres://user@host:port/db`, never the password.
pub(crate) fn display_url(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or("");
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let name = match host {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            };
            match config.get_ports().get(index).or_else(|| config.get_ports().first()) {
                Some(port) => format!("{name}:{port}"),
                None => name,
            }
        })
        .collect();
    let database = config.get_dbname().unwrap_or(user);
    let at = if user.is_empty() { "" } else { "@" };
    format!("postgres://{user}{at}{}/{database}", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_password() {
        let config: tokio_postgres::Config = "postgres://alice:s3cret@db.example:5433/alerts"
            .parse()
            .unwrap_or_else(|error| panic!("a valid url: {error}"));
        let shown = display_url(&config);
        assert_eq!(shown, "postgres://alice@db.example:5433/alerts");
        assert!(!shown.contains("s3cret"));
    }
}
