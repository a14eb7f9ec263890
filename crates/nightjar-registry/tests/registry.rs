//! The registry client against a local HTTP endpoint that speaks the Confluent registry's
//! `GET /schemas/ids/{id}` API, serving the bundled Rubin schema files.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nightjar_core::{DecodeErrorKind, Origin};
use nightjar_decode::Decoder;
use nightjar_registry::{RegistryError, SchemaRegistry, decode_with_registry};

/// Serves `schema_json` for `schema_id` and 404 for every other id; counts requests.
fn serve_registry(schema_id: u32, schema_json: String) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("setting up the test registry");
    let url = format!(
        "http://{}",
        listener.local_addr().expect("setting up the test registry")
    );
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut request_line = String::new();
            let mut reader = BufReader::new(stream.try_clone().expect("setting up the test registry"));
            reader
                .read_line(&mut request_line)
                .expect("setting up the test registry");
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).expect("setting up the test registry") == 0 || header == "\r\n" {
                    break;
                }
            }
            let wanted = format!("GET /schemas/ids/{schema_id} ");
            let (status, body) = if request_line.starts_with(&wanted) {
                ("200 OK", serde_json::json!({ "schema": schema_json }).to_string())
            } else {
                (
                    "404 Not Found",
                    r#"{"error_code":40403,"message":"Schema not found"}"#.to_string(),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/vnd.schemaregistry.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream
                .write_all(response.as_bytes())
                .expect("setting up the test registry");
        }
    });
    (url, requests)
}

fn rubin_message_with_id(new_id: u32) -> Vec<u8> {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/lsst/wire/pittgoogle-client/lsst.v11_0.avro");
    let bytes = std::fs::read(path).expect("setting up the test registry");
    let mut message = vec![0];
    message.extend_from_slice(&new_id.to_be_bytes());
    message.extend_from_slice(&bytes[5..]);
    message
}

#[test]
fn unknown_schema_id_is_fetched_once_and_then_decodes() {
    let schema = nightjar_rubin::bundled_schema_json(1100).unwrap();
    let (url, requests) = serve_registry(9999, schema);
    let message = rubin_message_with_id(9999);
    let origin = Origin::memory("id 9999");

    let mut decoder = Decoder::new();
    let without = decoder.decode(&message, &origin);
    assert!(matches!(
        without.as_slice(),
        [Err(error)] if matches!(error.kind, DecodeErrorKind::UnknownSchemaId { id: 9999, .. })
    ));

    let mut registry = SchemaRegistry::new(&url, Duration::from_secs(5)).unwrap();
    let with = decode_with_registry(&mut decoder, Some(&mut registry), &message, &origin);
    assert_eq!(with.len(), 1);
    let alert = with.into_iter().next().unwrap().unwrap();
    assert!(alert.source_id() > 0);
    // Known from now on: decoding again needs no request.
    let again = decode_with_registry(&mut decoder, Some(&mut registry), &message, &origin);
    assert!(again[0].is_ok());
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[test]
fn missing_schema_is_a_named_error() {
    let (url, _) = serve_registry(1, "{}".to_string());
    let mut registry = SchemaRegistry::new(&url, Duration::from_secs(5)).unwrap();
    let error = registry.schema(4242).unwrap_err();
    assert!(matches!(error, RegistryError::NotFound { id: 4242, .. }), "{error}");

    let message = rubin_message_with_id(4242);
    let results = decode_with_registry(&mut Decoder::new(), Some(&mut registry), &message, &Origin::memory("m"));
    let error = results[0].as_ref().unwrap_err();
    assert!(error.to_string().contains("4242"), "{error}");
}

#[test]
fn unreachable_registry_is_a_clear_error() {
    // Bind then drop a listener to get a port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut registry = SchemaRegistry::new(&format!("http://127.0.0.1:{port}"), Duration::from_secs(2)).unwrap();
    let error = registry.schema(900).unwrap_err();
    assert!(matches!(error, RegistryError::Unreachable { .. }), "{error}");
    assert!(SchemaRegistry::new("localhost:8081", Duration::from_secs(1)).is_err());
}
