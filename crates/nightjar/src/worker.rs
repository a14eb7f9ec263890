//! What both run loops (files and Kafka) share: the Prometheus metrics and their endpoint, the
//! science modules, the filters with their webhook and file sinks, the webhook delivery task,
//! and filter reloads on SIGHUP.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use nightjar_filter::SinkConfig;
use nightjar_metrics::PipelineMetrics;
use nightjar_modules::ModuleRunner;
use nightjar_pipeline::{FilterSinks, FilterStage};
use nightjar_sinks::{DeliveryOptions, DeliveryStats, Outbox};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::run::RunArgs;

/// The parts a run loop takes, and the services running beside it.
#[allow(missing_debug_implementations)]
pub struct Worker {
    pub metrics: Arc<PipelineMetrics>,
    pub modules: ModuleRunner,
    pub filters: FilterStage,
    pub sinks: FilterSinks,
    pub services: Services,
}

/// The tasks beside a run loop: the metrics endpoint, the webhook delivery, SIGHUP.
#[allow(missing_debug_implementations)]
pub struct Services {
    metrics: Arc<PipelineMetrics>,
    metrics_server: Option<JoinHandle<std::io::Result<()>>>,
    delivery: Option<(watch::Sender<bool>, JoinHandle<DeliveryStats>, Outbox)>,
    hangup: Option<JoinHandle<()>>,
}

impl Worker {
    /// Builds the modules and the filters, opens the webhook outbox and starts the services.
    pub async fn start(config: &Config, args: &RunArgs) -> anyhow::Result<Worker> {
        let metrics = Arc::new(PipelineMetrics::new());
        let modules = crate::run::module_runner(config)?;
        let filters =
            FilterStage::load(&config.filters, &modules, Arc::clone(&metrics)).context("loading the filters")?;
        let mut services = Services {
            metrics: Arc::clone(&metrics),
            metrics_server: None,
            delivery: None,
            hangup: None,
        };
        // The outbox is opened whenever filters run: a reload may add a webhook sink.
        let outbox = if config.filters.directory.is_some() {
            let directory = config.filters.outbox.clone().unwrap_or_else(|| {
                args.data_dir
                    .clone()
                    .unwrap_or_else(|| config.store.path.clone())
                    .join("outbox")
            });
            let outbox = open_outbox(&directory)?;
            let (stop, shutdown) = watch::channel(false);
            let task = outbox.spawn_delivery(DeliveryOptions::default(), shutdown);
            services.delivery = Some((stop, task, outbox.clone()));
            Some(outbox)
        } else {
            None
        };
        let sinks = FilterSinks::new(outbox, Arc::clone(&metrics));
        if let Some(listen) = args.metrics_listen.as_ref().or(config.metrics.listen.as_ref()) {
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("listening on {listen} for metrics (is another process using that port?)"))?;
            eprintln!("metrics on http://{}/metrics", listener.local_addr()?);
            services.metrics_server = Some(tokio::spawn(nightjar_api::serve(
                listener,
                nightjar_api::metrics_router(Arc::clone(&metrics)),
                crate::serve::stop_requested(),
            )));
        }
        #[cfg(unix)]
        if config.filters.directory.is_some() {
            let flag = filters.reload_flag();
            let mut hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                .context("listening for SIGHUP")?;
            services.hangup = Some(tokio::spawn(async move {
                while hangup.recv().await.is_some() {
                    tracing::info!("SIGHUP: the filters are reloaded before the next batch");
                    flag.store(true, Ordering::Relaxed);
                }
            }));
        }
        Ok(Worker {
            metrics,
            modules,
            filters,
            sinks,
            services,
        })
    }

    /// True when a loaded filter publishes to Kafka.
    pub fn has_kafka_filter_sinks(&self) -> bool {
        self.filters.definitions().any(|definition| {
            definition
                .sinks
                .iter()
                .any(|sink| matches!(sink, SinkConfig::Kafka { .. }))
        })
    }
}

fn open_outbox(directory: &PathBuf) -> anyhow::Result<Outbox> {
    Outbox::open(directory).with_context(|| {
        format!(
            "opening the webhook outbox {} (each worker needs its own: set filters.outbox)",
            directory.display()
        )
    })
}

impl Services {
    /// Stops the services. Webhook posts still pending get up to `drain` to go out; what
    /// is left stays in the outbox for the next run.
    pub async fn finish(self, drain: Duration) {
        if let Some((stop, task, outbox)) = self.delivery {
            let started = Instant::now();
            while outbox.pending() > 0 && started.elapsed() < drain {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let _ = stop.send(true);
            let stats = task.await.unwrap_or_default();
            self.metrics.set_webhook_pending(outbox.pending());
            if stats.delivered + stats.failed > 0 || outbox.pending() > 0 {
                eprintln!(
                    "webhooks: {} posted, {} failed (kept in {}/failed), {} pending for the next run",
                    stats.delivered,
                    stats.failed,
                    outbox.directory().display(),
                    outbox.pending()
                );
            }
        }
        if let Some(server) = self.metrics_server {
            server.abort();
        }
        if let Some(hangup) = self.hangup {
            hangup.abort();
        }
    }
}
