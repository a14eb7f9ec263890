//! `nightjar bench api`: latency of the light-curve and cone-search routes under concurrent
//! clients while ingestion runs, against the same requests on the idle store, for the
//! embedded store and PostgreSQL; and the rate at which each store was filled.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nightjar_api::{ApiConfig, router};
use nightjar_decode::Decoder;
use nightjar_pipeline::{IngestConfig, IngestSummary};
use nightjar_simulate::Amplifier;
use nightjar_store::Store;
use nightjar_store_postgres::PostgresStore;
use nightjar_store_sqlite::SqliteStore;

use crate::bench::{SimulatedSource, directory_bytes, ztf_amplifier};
use crate::config::without_password;

#[derive(Debug, clap::Args)]
pub struct ApiBenchArgs {
    /// Unique alerts in the store before the clients start.
    #[arg(long, default_value_t = 1_000_000)]
    count: u64,
    /// Concurrent clients; each sends its next request when the last is answered, light
    /// curves and cone searches in turn, for objects of the store picked at random.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Seconds of requests per measurement (idle store, then while ingesting).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Cone-search radius, arcsec.
    #[arg(long, default_value_t = 10.0)]
    radius: f64,
    /// Template alerts: one-alert ZTF Avro files.
    #[arg(long, default_value = "tests/data/ztf/alerts", value_name = "PATH")]
    templates: PathBuf,
    /// Messages per micro-batch when filling and ingesting.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Where the embedded store goes (default: the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    work_dir: Option<PathBuf>,
    /// Also measure PostgreSQL: an empty database, postgres://user@host:port/database. The
    /// benchmark writes --count alerts and more into it.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,
    /// Measure PostgreSQL only.
    #[arg(long, requires = "postgres")]
    no_sqlite: bool,
}

/// Alerts ingested a second time to measure the conflict path.
const REPLAYED: u64 = 20_000;

/// Latencies of the answered requests of one route.
#[derive(Debug, Default)]
struct RouteLatencies {
    latencies: Vec<Duration>,
    /// Answers with no row (an object or cone the store should have had).
    empty: u64,
}

impl RouteLatencies {
    /// (p50, p99) in milliseconds.
    fn quantiles_ms(&mut self) -> (f64, f64) {
        if self.latencies.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        self.latencies.sort_unstable();
        let at = |fraction: f64| {
            let index = ((self.latencies.len() as f64 * fraction) as usize).min(self.latencies.len() - 1);
            self.latencies[index].as_secs_f64() * 1e3
        };
        (at(0.50), at(0.99))
    }
}

/// What the clients saw in one measurement.
#[derive(Debug, Default)]
struct Measurement {
    light_curve: RouteLatencies,
    cone: RouteLatencies,
    seconds: f64,
}

/// A small deterministic generator (splitmix64) for the clients' choices.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Runs `clients` client threads against the API at `address` for `seconds`: each picks a
/// stored copy at random (indices below `n_stored`) and asks for its light curve, then for a
/// cone around its position, and so on.
fn run_clients(
    address: SocketAddr,
    amplifier: &Amplifier,
    n_stored: u64,
    args: &ApiBenchArgs,
    round: u64,
) -> anyhow::Result<Measurement> {
    let budget = Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let results: Vec<anyhow::Result<(RouteLatencies, RouteLatencies)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.clients)
            .map(|client| {
                scope.spawn(move || -> anyhow::Result<(RouteLatencies, RouteLatencies)> {
                    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                    let mut random = SplitMix(round * 1_000 + client as u64);
                    let (mut light_curve, mut cone) = (RouteLatencies::default(), RouteLatencies::default());
                    let mut turn = client;
                    while started.elapsed() < budget {
                        let mut copy = amplifier.copy_info(random.next() % n_stored)?;
                        // A few templates' object ids are not rewritten per copy; skip them.
                        while copy.object_id.is_none() {
                            copy = amplifier.copy_info(random.next() % n_stored)?;
                        }
                        let (url, route) = if turn % 2 == 0 {
                            let object = copy.object_id.unwrap_or_default();
                            (
                                format!("http://{address}/api/v1/objects?objectId={object}"),
                                &mut light_curve,
                            )
                        } else {
                            (
                                format!(
                                    "http://{address}/api/v1/conesearch?ra={}&dec={}&radius={}",
                                    copy.ra, copy.dec, args.radius
                                ),
                                &mut cone,
                            )
                        };
                        turn += 1;
                        let sent = Instant::now();
                        let mut response = agent.get(&url).call().with_context(|| format!("GET {url}"))?;
                        let body = response
                            .body_mut()
                            .with_config()
                            .limit(u64::MAX)
                            .read_to_string()
                            .with_context(|| format!("reading the answer to {url}"))?;
                        let elapsed = sent.elapsed();
                        if response.status() != 200 {
                            bail!("GET {url}: status {}: {body}", response.status());
                        }
                        route.latencies.push(elapsed);
                        route.empty += u64::from(body.trim() == "[]");
                    }
                    Ok((light_curve, cone))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a client thread panicked")))
            })
            .collect()
    });
    let mut measurement = Measurement {
        seconds: started.elapsed().as_secs_f64(),
        ..Measurement::default()
    };
    for result in results {
        let (light_curve, cone) = result?;
        measurement.light_curve.latencies.extend(light_curve.latencies);
        measurement.light_curve.empty += light_curve.empty;
        measurement.cone.latencies.extend(cone.latencies);
        measurement.cone.empty += cone.empty;
    }
    Ok(measurement)
}

/// Ingests the copies `start..end` (or until `stop` is set) into `store`, without cutouts.
fn ingest_copies(
    runtime: &tokio::runtime::Runtime,
    amplifier: &Arc<Amplifier>,
    store: &Arc<dyn Store>,
    (start, end): (u64, u64),
    stop: Option<Arc<AtomicBool>>,
    batch_size: usize,
) -> anyhow::Result<IngestSummary> {
    let source = SimulatedSource {
        amplifier: amplifier.clone(),
        next: start,
        count: end,
        stop,
    };
    let config = IngestConfig {
        batch_size,
        keep_cutouts: false,
        ..IngestConfig::default()
    };
    let modules = nightjar_modules::ModuleRunner::new(Vec::new())?;
    let filters = nightjar_pipeline::FilterStage::without_filters(&modules)?;
    Ok(runtime.block_on(nightjar_pipeline::ingest(
        source,
        Decoder::new(),
        None,
        modules,
        filters,
        nightjar_pipeline::FilterSinks::new(None, Arc::default()),
        store.clone(),
        config,
        |_| {},
    ))?)
}

/// Fills `store`, then measures the routes on the idle store and while ingesting.
fn measure_store(
    label: &str,
    store: Arc<dyn Store>,
    amplifier: &Arc<Amplifier>,
    args: &ApiBenchArgs,
    disk: Option<&std::path::Path>,
    runtime: &Arc<tokio::runtime::Runtime>,
) -> anyhow::Result<()> {
    println!("  {label}");
    let fill = ingest_copies(runtime, amplifier, &store, (0, args.count), None, args.batch_size)?;
    let new_alerts = fill.stored.n_alerts - fill.stored.n_duplicate_alerts;
    if fill.n_rejected() > 0 || new_alerts != args.count {
        bail!(
            "{label}: expected {} new alerts, got {new_alerts} ({} rejected, {} already stored: use an empty database)",
            args.count,
            fill.n_rejected(),
            fill.stored.n_duplicate_alerts
        );
    }
    let seconds = fill.elapsed.as_secs_f64();
    let disk = disk
        .map(|dir| format!(", {:.0} MB on disk", directory_bytes(dir) as f64 / 1e6))
        .unwrap_or_default();
    println!(
        "    {:<26} {:>9.0} alerts/s {:>10.0} new rows/s   {:.1} s, {} rows{disk}",
        "fill (histories upserted)",
        fill.alerts_per_second(),
        fill.stored.new_rows() as f64 / seconds,
        seconds,
        fill.stored.new_rows(),
    );

    // The same alerts again: every alert, detection and limit is already stored, so each row
    // goes through the conflict path (a stream's histories are mostly stored already).
    let n_replay = args.count.min(REPLAYED);
    let replay = ingest_copies(runtime, amplifier, &store, (0, n_replay), None, args.batch_size)?;
    if replay.stored.n_duplicate_alerts != n_replay || replay.stored.new_rows() != 0 {
        bail!(
            "{label}: a replay of {n_replay} stored alerts added {} rows ({} alerts already stored)",
            replay.stored.new_rows(),
            replay.stored.n_duplicate_alerts
        );
    }
    println!(
        "    {:<26} {:>9.0} alerts/s {:>10} new rows     {:.2}x fill rate ({n_replay} alerts already stored)",
        "replay (all rows exist)",
        replay.alerts_per_second(),
        0,
        replay.alerts_per_second() / fill.alerts_per_second(),
    );

    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let address = listener.local_addr()?;
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(nightjar_api::serve(
        listener,
        router(store.clone(), ApiConfig::default()),
        async {
            let _ = server_stopped.await;
        },
    ));

    // Reference: the same clients on the idle store.
    let mut idle = run_clients(address, amplifier, args.count, args, 1)?;
    // Then while ingesting further copies, as fast as the store takes them.
    let stop_ingest = Arc::new(AtomicBool::new(false));
    let ingesting = {
        let (runtime, amplifier, store, stop) =
            (runtime.clone(), amplifier.clone(), store.clone(), stop_ingest.clone());
        let range = (args.count, args.count.saturating_mul(2).max(args.count + 1));
        let batch_size = args.batch_size;
        std::thread::spawn(move || ingest_copies(&runtime, &amplifier, &store, range, Some(stop), batch_size))
    };
    let loaded = run_clients(address, amplifier, args.count, args, 2);
    stop_ingest.store(true, Ordering::Relaxed);
    let during = ingesting
        .join()
        .map_err(|_| anyhow::anyhow!("the ingesting thread panicked"))??;
    let mut loaded = loaded?;
    let _ = stop_server.send(());
    runtime.block_on(server)??;

    for (name, idle_route, loaded_route) in [
        ("light curve", &mut idle.light_curve, &mut loaded.light_curve),
        ("cone search", &mut idle.cone, &mut loaded.cone),
    ] {
        let (idle_p50, idle_p99) = idle_route.quantiles_ms();
        let (p50, p99) = loaded_route.quantiles_ms();
        let empty = idle_route.empty + loaded_route.empty;
        let empty = if empty > 0 {
            format!("   {empty} empty answers")
        } else {
            String::new()
        };
        println!(
            "    {:<26} p50 {idle_p50:>7.2} ms  p99 {idle_p99:>7.2} ms  {:>6.0} req/s  (reference)",
            format!("{name}, idle"),
            idle_route.latencies.len() as f64 / idle.seconds,
        );
        println!(
            "    {:<26} p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  {:>6.0} req/s  {:.2}x p50, {:.2}x p99 idle{empty}",
            format!("{name}, ingesting"),
            loaded_route.latencies.len() as f64 / loaded.seconds,
            p50 / idle_p50,
            p99 / idle_p99,
        );
    }
    println!(
        "    {:<26} {:>9.0} alerts/s {:>10.0} new rows/s   {:.2}x fill rate",
        "ingest while queried",
        during.alerts_per_second(),
        during.stored.new_rows() as f64 / during.elapsed.as_secs_f64().max(1e-9),
        during.alerts_per_second() / fill.alerts_per_second(),
    );
    Ok(())
}

pub fn api(args: ApiBenchArgs) -> anyhow::Result<ExitCode> {
    let positive = |value: f64| value.is_finite() && value > 0.0;
    if args.count == 0 || args.clients == 0 || !positive(args.seconds) || !positive(args.radius) {
        bail!("--count, --clients, --seconds and --radius must be greater than 0");
    }
    let (n_templates, amplifier) = ztf_amplifier(&args.templates, 2)?;
    let n_cycle = (amplifier.templates().len() as u64).min(args.count);
    if !(0..n_cycle).any(|index| amplifier.copy_info(index).is_ok_and(|copy| copy.object_id.is_some())) {
        bail!(
            "none of the first {n_cycle} copies has an object id to ask for: use other --templates or a larger --count"
        );
    }
    let runtime = Arc::new(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?,
    );
    println!(
        "api benchmark: {} unique ZTF alerts amplified from {n_templates} real ones (no cutouts), {} clients, {} s per measurement, cones of {} arcsec",
        args.count, args.clients, args.seconds, args.radius
    );
    if !args.no_sqlite {
        let work_dir = match &args.work_dir {
            Some(dir) => tempfile::tempdir_in(dir)?,
            None => tempfile::tempdir()?,
        };
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(work_dir.path())?);
        measure_store(
            "embedded store (SQLite)",
            store,
            &amplifier,
            &args,
            Some(work_dir.path()),
            &runtime,
        )?;
    }
    if let Some(url) = &args.postgres {
        let store = runtime
            .block_on(PostgresStore::connect(url))
            .with_context(|| format!("connecting to {}", without_password(url)))?;
        let label = format!("PostgreSQL ({})", without_password(url));
        measure_store(&label, Arc::new(store), &amplifier, &args, None, &runtime)?;
    }
    Ok(ExitCode::SUCCESS)
}
