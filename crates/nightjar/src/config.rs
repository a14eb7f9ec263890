//! nightjar's configuration: one TOML file, overridden by `NIGHTJAR__SECTION__KEY` environment
//! variables, then by command-line flags. The doc comments here are the user documentation.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use nightjar_core::Survey;
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Logging.
    pub log: LogConfig,
    /// How alert messages are decoded.
    pub decode: DecodeConfig,
    /// A Confluent schema registry, for Rubin schema ids that nightjar does not bundle.
    pub schema_registry: SchemaRegistryConfig,
    /// Where nightjar keeps its data.
    pub store: StoreConfig,
    /// Micro-batching.
    pub pipeline: PipelineConfig,
    /// The API server.
    pub serve: ServeConfig,
    /// Science modules (enrichment and classification).
    pub modules: nightjar_modules::ModulesConfig,
    /// Kafka: brokers, credentials, the input stream and the output topic.
    pub kafka: nightjar_kafka::KafkaConfig,
    /// Filters: SQL over each micro-batch, and where what they pass goes.
    pub filters: nightjar_filter::FiltersConfig,
    /// The Prometheus metrics of `nightjar run`.
    pub metrics: MetricsConfig,
}

/// Where `nightjar run` serves its Prometheus metrics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address and port of a `/metrics` endpoint (e.g. `127.0.0.1:9464`); none: no endpoint
    /// (with `--serve`, the API's `/metrics` serves them too).
    pub listen: Option<String>,
}

/// Micro-batching of the ingestion pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Messages per micro-batch: the unit that is decoded, stored and committed together.
    pub batch_size: usize,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig { batch_size: 500 }
    }
}

/// Log output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Level or filter: `error`, `warn`, `info`, `debug`, `trace`, or per-module directives such
    /// as `info,nightjar_decode=debug`. `RUST_LOG` overrides it.
    pub level: String,
    /// `text` for people, `json` for log collectors.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Decoding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DecodeConfig {
    /// Accept only alerts of this survey (`ztf` or `rubin`); others are rejected as
    /// `wrong_survey`. Unset: accept both.
    pub survey: Option<Survey>,
}

/// Schema registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaRegistryConfig {
    /// Base URL, such as `http://localhost:8081`. Unset: only the bundled Rubin schemas
    /// (7.0 to 11.0) are known.
    pub url: Option<String>,
    /// Timeout of one request, milliseconds.
    pub timeout_ms: u64,
}

impl Default for SchemaRegistryConfig {
    fn default() -> Self {
        SchemaRegistryConfig {
            url: None,
            timeout_ms: 5_000,
        }
    }
}

/// The science database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Data directory of the embedded store.
    pub path: PathBuf,
    /// Largest size of each of the store's two files (tables, cutouts), bytes. A batch that
    /// would pass it stops the run as a full disk would, storing nothing of that batch.
    /// Unset: no limit but the disk's. Embedded store only.
    pub max_bytes: Option<u64>,
    /// A PostgreSQL store shared by many workers, `postgres://user:password@host:port/database`;
    /// when set it replaces the embedded store. Unset: the embedded store at `path`.
    pub url: Option<String>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("nightjar-data"),
            max_bytes: None,
            url: None,
        }
    }
}

/// The API server of `nightjar serve`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address and port to listen on.
    pub listen: String,
    /// When set, data routes require `Authorization: Bearer <token>`. Prefer the environment
    /// variable NIGHTJAR__SERVE__BEARER_TOKEN to writing it in a file.
    pub bearer_token: Option<String>,
    /// Most rows one request returns.
    pub max_results: usize,
}

impl std::fmt::Debug for ServeConfig {
    /// The token is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("listen", &self.listen)
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| "<set>"))
            .field("max_results", &self.max_results)
            .finish()
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: "127.0.0.1:8080".to_string(),
            bearer_token: None,
            max_results: 10_000,
        }
    }
}

impl Config {
    /// Loads the defaults, then `file` (when given), then `NIGHTJAR__*` environment variables.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        Config::load_from(file, Env::prefixed("NIGHTJAR__").split("__"))
    }

    fn load_from(file: Option<&Path>, env: Env) -> anyhow::Result<Config> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.is_file() {
                bail!("config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        let config: Config = figment.merge(env).extract().map_err(|error| {
            let messages: Vec<String> = error.into_iter().map(|error| error.to_string()).collect();
            anyhow::anyhow!("invalid configuration: {}", messages.join("; "))
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks what serde cannot: values that parse but make no sense.
    pub fn validate(&self) -> anyhow::Result<()> {
        tracing_subscriber::EnvFilter::try_new(&self.log.level).with_context(|| {
            format!(
                "invalid log.level {:?}: expected error, warn, info, debug, trace or directives such as info,nightjar_decode=debug",
                self.log.level
            )
        })?;
        if let Some(url) = &self.schema_registry.url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("invalid schema_registry.url {url:?}: expected an http:// or https:// URL");
        }
        if self.schema_registry.timeout_ms == 0 {
            bail!("invalid schema_registry.timeout_ms 0: expected a positive number of milliseconds");
        }
        if self.pipeline.batch_size == 0 || self.pipeline.batch_size > 100_000 {
            bail!(
                "invalid pipeline.batch_size {}: expected 1 to 100000 messages",
                self.pipeline.batch_size
            );
        }
        if let Some(url) = &self.store.url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                bail!(
                    "invalid store.url: expected postgres://user@host:port/database (or leave it unset for the embedded store)"
                );
            }
            if self.store.max_bytes.is_some() {
                bail!("store.max_bytes applies to the embedded store only; unset it or store.url");
            }
        }
        if self.serve.listen.parse::<std::net::SocketAddr>().is_err() {
            bail!(
                "invalid serve.listen {:?}: expected an address and port such as 127.0.0.1:8080",
                self.serve.listen
            );
        }
        if self.serve.max_results == 0 {
            bail!("invalid serve.max_results 0: expected a positive number of rows");
        }
        if let Some(listen) = &self.metrics.listen
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            bail!("invalid metrics.listen {listen:?}: expected an address and port such as 127.0.0.1:9464");
        }
        self.filters
            .validate()
            .map_err(|reason| anyhow::anyhow!("invalid filters configuration: {reason}"))?;
        self.modules
            .validate()
            .map_err(|error| anyhow::anyhow!("invalid modules configuration: {error}"))?;
        self.kafka.validate()?;
        if self.store.path.as_os_str().is_empty() {
            bail!("invalid store.path: empty; expected a directory path");
        }
        Ok(())
    }

    /// The configuration as TOML, secrets hidden (the bearer token, a store URL's password).
    pub fn to_toml(&self) -> anyhow::Result<String> {
        let mut shown = self.clone();
        if shown.serve.bearer_token.is_some() {
            shown.serve.bearer_token = Some("<set>".to_string());
        }
        shown.store.url = shown.store.url.as_deref().map(without_password);
        if let Some(sasl) = &mut shown.kafka.sasl {
            sasl.password = "<set>".to_string();
        }
        toml::to_string_pretty(&shown).context("serialising the configuration")
    }
}

/// A database URL with its password removed, for logs and messages.
pub fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.split_once('@') {
        Some((credentials, host)) => {
            let user = credentials.split_once(':').map_or(credentials, |(user, _)| user);
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    /// Loads `text` as the config file with `env` set, inside figment's jail (a temporary
    /// directory and environment, restored afterwards).
    #[allow(
        clippy::result_large_err,
        reason = "figment's jail closure returns figment's error type"
    )]
    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config, String> {
        let mut result = Err(String::new());
        Jail::expect_with(|jail| {
            jail.create_file("nightjar.toml", text)?;
            for (key, value) in env {
                jail.set_env(key, value);
            }
            result = Config::load(Some(Path::new("nightjar.toml"))).map_err(|error| format!("{error:#}"));
            Ok(())
        });
        result
    }

    #[test]
    fn example_file_is_the_defaults() {
        let example = include_str!("../../../nightjar.example.toml");
        assert_eq!(load_text(example, &[]).unwrap(), Config::default());
    }

    #[test]
    fn file_values_are_read() {
        let config = load_text("[store]\npath = \"/data/nj\"\n[decode]\nsurvey = \"rubin\"\n", &[]).unwrap();
        assert_eq!(config.store.path, PathBuf::from("/data/nj"));
        assert_eq!(config.decode.survey, Some(Survey::Rubin));
    }

    #[test]
    fn environment_overrides_the_file() {
        let config = load_text(
            "[store]\npath = \"/data/nj\"\n",
            &[
                ("NIGHTJAR__STORE__PATH", "/override"),
                ("NIGHTJAR__SCHEMA_REGISTRY__TIMEOUT_MS", "250"),
            ],
        )
        .unwrap();
        assert_eq!(config.store.path, PathBuf::from("/override"));
        assert_eq!(config.schema_registry.timeout_ms, 250);
    }

    #[test]
    fn unknown_key_is_named_with_what_is_accepted() {
        let error = load_text("[store]\npth = \"x\"\n", &[]).unwrap_err();
        assert!(error.contains("pth") && error.contains("`path`"), "{error}");
        let error = load_text("", &[("NIGHTJAR__STORE__PTH", "x")]).unwrap_err();
        assert!(error.contains("pth"), "{error}");
    }

    #[test]
    fn wrong_value_is_named() {
        let error = load_text("[decode]\nsurvey = \"hubble\"\n", &[]).unwrap_err();
        assert!(error.contains("hubble") && error.contains("ztf"), "{error}");
        let error = load_text("[schema_registry]\nurl = \"localhost:8081\"\n", &[]).unwrap_err();
        assert!(error.contains("schema_registry.url"), "{error}");
        let error = load_text("[log]\nlevel = \"info,nightjar=loudest\"\n", &[]).unwrap_err();
        assert!(error.contains("log.level"), "{error}");
    }

    #[test]
    fn secrets_are_not_printed() {
        let config = load_text(
            "[store]\nurl = \"postgres://nightjar:hunter2@db:5432/nj\"\n",
            &[("NIGHTJAR__SERVE__BEARER_TOKEN", "s3cret")],
        )
        .unwrap();
        let printed = config.to_toml().unwrap();
        assert!(!printed.contains("hunter2") && !printed.contains("s3cret"), "{printed}");
        assert!(printed.contains("postgres://nightjar@db:5432/nj"), "{printed}");
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn missing_file_is_an_error() {
        let error = Config::load(Some(Path::new("/nonexistent/nightjar.toml")))
            .unwrap_err()
            .to_string();
        assert!(error.contains("/nonexistent/nightjar.toml"), "{error}");
    }
}
