//! Confluent schema-registry client: fetches writer schemas by id (`GET /schemas/ids/{id}`) for
//! Rubin wire-format messages whose schema nightjar does not bundle, and caches them.
//!
//! Invariant: the only crate that talks HTTP to a schema registry.

use std::collections::HashMap;
use std::time::Duration;

use nightjar_core::{Alert, DecodeError, DecodeErrorKind, Origin};
use nightjar_decode::Decoder;
use serde::Deserialize;
use thiserror::Error;

/// Why a schema could not be fetched.
#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("schema registry {url}: schema id {id} not found (HTTP 404)")]
    NotFound { url: String, id: u32 },
    #[error("schema registry {url}: HTTP {status} for schema id {id}")]
    Status { url: String, id: u32, status: u16 },
    #[error("schema registry {url} unreachable for schema id {id}: {reason}")]
    Unreachable { url: String, id: u32, reason: String },
    #[error("schema registry {url}: schema id {id} is not a usable Avro schema: {reason}")]
    InvalidSchema { url: String, id: u32, reason: String },
    #[error("invalid schema registry URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
}

#[derive(Deserialize)]
struct SchemaResponse {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
}

/// A client for one schema registry.
#[derive(Debug)]
pub struct SchemaRegistry {
    base_url: String,
    agent: ureq::Agent,
    fetched: HashMap<u32, String>,
}

impl SchemaRegistry {
    /// A client for the registry at `url` (such as `http://localhost:8081`).
    pub fn new(url: &str, timeout: Duration) -> Result<SchemaRegistry, RegistryError> {
        let base_url = url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(RegistryError::InvalidUrl {
                url: url.to_string(),
                reason: "expected an http:// or https:// URL".to_string(),
            });
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Ok(SchemaRegistry {
            base_url,
            agent,
            fetched: HashMap::new(),
        })
    }

    /// The registry's base URL.
    pub fn url(&self) -> &str {
        &self.base_url
    }

    /// The schema JSON for an id, fetched once and then served from the cache.
    pub fn schema(&mut self, id: u32) -> Result<&str, RegistryError> {
        if !self.fetched.contains_key(&id) {
            let schema = self.fetch(id)?;
            self.fetched.insert(id, schema);
        }
        Ok(self.fetched.get(&id).map(String::as_str).unwrap_or_default())
    }

    fn fetch(&self, id: u32) -> Result<String, RegistryError> {
        let url = format!("{}/schemas/ids/{id}", self.base_url);
        tracing::info!(schema_id = id, url = %url, "fetching schema from the registry");
        let unreachable = |reason: String| RegistryError::Unreachable {
            url: self.base_url.clone(),
            id,
            reason,
        };
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|error| unreachable(error.to_string()))?;
        match response.status().as_u16() {
            200 => {}
            404 => {
                return Err(RegistryError::NotFound {
                    url: self.base_url.clone(),
                    id,
                });
            }
            status => {
                return Err(RegistryError::Status {
                    url: self.base_url.clone(),
                    id,
                    status,
                });
            }
        }
        let body: SchemaResponse = response
            .body_mut()
            .read_json()
            .map_err(|error| RegistryError::InvalidSchema {
                url: self.base_url.clone(),
                id,
                reason: error.to_string(),
            })?;
        if let Some(kind) = body.schema_type.filter(|kind| kind != "AVRO") {
            return Err(RegistryError::InvalidSchema {
                url: self.base_url.clone(),
                id,
                reason: format!("schema type {kind}, expected AVRO"),
            });
        }
        Ok(body.schema)
    }
}

/// Decodes a message; when its schema id is unknown, fetches the schema from the registry,
/// hands it to the decoder and decodes again. Registry failures become the decode error, so
/// the message goes to the dead letters with the reason.
pub fn decode_with_registry(
    decoder: &mut Decoder,
    registry: Option<&mut SchemaRegistry>,
    bytes: &[u8],
    origin: &Origin,
) -> Vec<Result<Alert, DecodeError>> {
    let results = decoder.decode(bytes, origin);
    let Some(registry) = registry else { return results };
    let unknown_id = match results.as_slice() {
        [
            Err(DecodeError {
                kind: DecodeErrorKind::UnknownSchemaId { id, .. },
                ..
            }),
        ] => *id,
        _ => return results,
    };
    let added = registry
        .schema(unknown_id)
        .map_err(|error| error.to_string())
        .and_then(|json| decoder.add_rubin_schema(unknown_id, json));
    match added {
        Ok(()) => decoder.decode(bytes, origin),
        Err(reason) => vec![Err(DecodeError::new(origin, DecodeErrorKind::Schema(reason)))],
    }
}
