//! `nightjar serve`: the REST API (Fink-compatible routes, SkyPortal's broker routes, health,
//! OpenAPI) over the science database.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use std::sync::Arc;

use nightjar_api::{ApiConfig, router_in_worker};
use nightjar_store::Store;

use crate::config::Config;
use crate::run::open_reader;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address and port to listen on (overrides serve.listen).
    #[arg(long, value_name = "ADDRESS:PORT")]
    listen: Option<String>,
    /// Data directory of the embedded store (overrides store.path).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Resolves when the process is asked to stop (Ctrl-C, or SIGTERM on Unix).
pub(crate) async fn stop_requested() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// Binds `listen` and serves the API over `store` on a task until Ctrl-C or SIGTERM.
pub async fn start(
    config: &Config,
    listen: &str,
    store_label: &str,
    store: Arc<dyn Store>,
    pipeline: Option<Arc<nightjar_metrics::PipelineMetrics>>,
) -> anyhow::Result<tokio::task::JoinHandle<std::io::Result<()>>> {
    let api_config = ApiConfig {
        bearer_token: config.serve.bearer_token.clone(),
        max_results: config.serve.max_results,
    };
    api_config
        .validate()
        .map_err(|reason| anyhow::anyhow!("invalid serve configuration: {reason}"))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen} (is another server using that port?)"))?;
    let address = listener.local_addr()?;
    eprintln!(
        "serving {store_label} on http://{address}: Fink API at /api/v1/, SkyPortal at /alerts, OpenAPI at /api/v1/openapi.json; Ctrl-C stops"
    );
    Ok(tokio::spawn(nightjar_api::serve(
        listener,
        router_in_worker(store, api_config, pipeline),
        async {
            stop_requested().await;
            tracing::info!("stopping the API server");
        },
    )))
}

pub async fn serve(config: &Config, args: ServeArgs) -> anyhow::Result<ExitCode> {
    let listen = args.listen.unwrap_or_else(|| config.serve.listen.clone());
    let (store_label, store) = open_reader(config, args.data_dir.as_deref()).await?;
    start(config, &listen, &store_label, store, None).await?.await??;
    Ok(ExitCode::SUCCESS)
}
