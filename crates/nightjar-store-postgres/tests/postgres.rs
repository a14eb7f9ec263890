//! PostgreSQL-specific behaviour beyond the conformance suite: migrations (idempotent, run once
//! by workers connecting together, a newer schema refused), night partitions (created on demand,
//! dropped by prune), the cone-search path chosen, concurrent writers with overlapping batches,
//! and connection errors that name the database without its password.

mod support;

use nightjar_store::conformance::{all_alerts, ztf_light_curve_alerts};
use nightjar_store::{Night, Store, StoreError, TimeWindow, WriteSummary};
use nightjar_store_postgres::{Options, PostgresStore};

/// A raw connection to a test database, for looking behind the store.
async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|error| panic!("connecting to {url}: {error}"));
    tokio::spawn(connection);
    client
}

async fn migrations_applied(url: &str) -> Vec<i64> {
    raw_client(url)
        .await
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .await
        .unwrap_or_else(|error| panic!("reading schema_migrations: {error}"))
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test]
async fn migrations_are_idempotent() -> Result<(), StoreError> {
    let url = support::fresh_database().await;
    let store = PostgresStore::connect(&url).await?;
    let written = store.write_batch(&ztf_light_curve_alerts()).await?;
    let counts = store.counts().await?;
    drop(store);

    let again = PostgresStore::connect(&url).await?;
    assert_eq!(again.counts().await?, counts, "a second connect keeps the data");
    assert_eq!(
        migrations_applied(&url).await,
        (1..=PostgresStore::schema_version()).collect::<Vec<_>>(),
        "each migration recorded once"
    );
    assert!(written.new_rows() > 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_connecting_together_migrate_once() -> Result<(), StoreError> {
    let url = support::fresh_database().await;
    let connects: Vec<_> = (0..6)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { PostgresStore::connect(&url).await.map(|_| ()) })
        })
        .collect();
    for connect in connects {
        connect
            .await
            .unwrap_or_else(|error| panic!("a connect task: {error}"))?;
    }
    assert_eq!(
        migrations_applied(&url).await,
        (1..=PostgresStore::schema_version()).collect::<Vec<_>>()
    );
    Ok(())
}

#[tokio::test]
async fn newer_schema_is_refused() -> Result<(), StoreError> {
    let url = support::fresh_database().await;
    PostgresStore::connect(&url).await?;
    let newer = PostgresStore::schema_version() + 1;
    raw_client(&url)
        .await
        .execute(
            "INSERT INTO schema_migrations (version, description, applied_unix) VALUES ($1, 'from the future', 0)",
            &[&newer],
        )
        .await
        .unwrap_or_else(|error| panic!("adding a newer migration: {error}"));
    match PostgresStore::connect(&url).await {
        Err(StoreError::TooNew { path, found, supported }) => {
            assert_eq!((found, supported), (newer, PostgresStore::schema_version()));
            assert_eq!(path, url, "the error names the database");
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    Ok(())
}

/// The partitions of `table`, by name.
async fn partitions_of(client: &tokio_postgres::Client, table: &str) -> Vec<String> {
    client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = $1::text::regclass ORDER BY c.relname",
            &[&table],
        )
        .await
        .unwrap_or_else(|error| panic!("listing the partitions of {table}: {error}"))
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The month partition name of a night, as the store names it.
fn month_partition(table: &str, night: Night) -> String {
    format!("{table}_p{:06}", night.0 / 100)
}

#[tokio::test]
async fn partitions_are_created_per_month_and_dropped_by_prune() -> Result<(), StoreError> {
    let url = support::fresh_database().await;
    let store = PostgresStore::connect(&url).await?;
    let alerts = all_alerts();
    store.write_batch(&alerts).await?;
    // Replaying creates nothing and adds nothing.
    let again = store.write_batch(&alerts).await?;
    assert_eq!(again.new_rows(), 0, "a replay adds no row");
    let client = raw_client(&url).await;
    let tables = ["detections", "upper_limits", "forced_photometry", "alerts", "cutouts"];

    // Every row is in its month's partition, none in DEFAULT.
    for table in tables {
        let partitions = partitions_of(&client, table).await;
        assert!(
            partitions.contains(&format!("{table}_default")),
            "{table}: {partitions:?}"
        );
        let misplaced: i64 = client
            .query_one(&format!("SELECT COUNT(*) FROM {table}_default"), &[])
            .await
            .unwrap_or_else(|error| panic!("counting {table}_default: {error}"))
            .get(0);
        assert_eq!(misplaced, 0, "{table}: rows in the default partition");
        let nights: Vec<i32> = client
            .query(&format!("SELECT DISTINCT night FROM {table}"), &[])
            .await
            .unwrap_or_else(|error| panic!("reading the nights of {table}: {error}"))
            .iter()
            .map(|row| row.get(0))
            .collect();
        for night in nights {
            let night = Night(u32::try_from(night).unwrap_or_else(|_| panic!("negative night {night}")));
            let name = month_partition(table, night);
            assert!(
                partitions.contains(&name),
                "{table}: no partition {name} for night {night}"
            );
        }
    }

    // Pruning before the 7th alert of the light curve drops the months wholly before it (the
    // 2016 Rubin alert's at least) and deletes the older rows of the straddling month.
    let before = Night::of_mjd(ztf_light_curve_alerts()[6].detection.mjd);
    let old_months: Vec<String> = partitions_of(&client, "alerts")
        .await
        .into_iter()
        .filter(|name| {
            name.strip_prefix("alerts_p")
                .and_then(|digits| digits.parse::<u32>().ok())
                .is_some_and(|month| (month + 1) * 100 <= before.0)
        })
        .collect();
    assert!(!old_months.is_empty(), "some month lies wholly before {before}");
    store.prune(before).await?;
    for table in tables {
        let partitions = partitions_of(&client, table).await;
        for month in &old_months {
            let name = month.replacen("alerts", table, 1);
            assert!(!partitions.contains(&name), "{name} is dropped");
        }
        let older: i64 = client
            .query_one(
                &format!("SELECT COUNT(*) FROM {table} WHERE night < $1"),
                &[&i32::try_from(before.0).unwrap_or(i32::MAX)],
            )
            .await
            .unwrap_or_else(|error| panic!("counting old rows of {table}: {error}"))
            .get(0);
        assert_eq!(older, 0, "{table}: rows before {before} left");
    }

    // Writing the pruned nights again recreates their partitions.
    store.write_batch(&alerts).await?;
    assert_eq!(store.counts().await?.alerts, alerts.len() as u64);
    for month in &old_months {
        assert!(
            partitions_of(&client, "alerts").await.contains(month),
            "{month} is back"
        );
    }
    Ok(())
}

#[tokio::test]
async fn q3c_is_used_where_installed() -> Result<(), StoreError> {
    let url = support::fresh_database().await;
    let available: bool = raw_client(&url)
        .await
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'q3c')",
            &[],
        )
        .await
        .unwrap_or_else(|error| panic!("reading pg_available_extensions: {error}"))
        .get(0);
    let store = PostgresStore::connect(&url).await?;
    let expected = if available { "q3c" } else { "healpix" };
    assert_eq!(store.cone_search_method(), expected, "q3c available: {available}");
    // CI installs q3c (postgresql-15-q3c) so that both paths are tested; it may ask for it.
    if std::env::var_os("NIGHTJAR_REQUIRE_Q3C").is_some() {
        assert!(available, "NIGHTJAR_REQUIRE_Q3C is set but the server lacks q3c");
    }

    // Asking for HEALPix on the same database gets it, and both find the same objects.
    let healpix = PostgresStore::connect_with(&url, Options { use_q3c: false }).await?;
    assert_eq!(healpix.cone_search_method(), "healpix");
    let alerts = all_alerts();
    store.write_batch(&alerts).await?;
    for alert in &alerts {
        let (ra, dec) = (alert.detection.ra, alert.detection.dec);
        for radius in [1.0 / 3600.0, 0.1, 5.0] {
            let by_default = store.cone_search(ra, dec, radius, TimeWindow::ALL).await?;
            let by_healpix = healpix.cone_search(ra, dec, radius, TimeWindow::ALL).await?;
            assert_eq!(by_default, by_healpix, "cone at ({ra}, {dec}) radius {radius}");
        }
    }
    Ok(())
}

#[tokio::test]
async fn connection_failure_names_the_url_without_password() {
    // Port 1 on the loopback interface: nothing listens there.
    let error = PostgresStore::connect("postgres://alice:s3cret@127.0.0.1:1/alerts")
        .await
        .expect_err("nothing listens on port 1");
    let message = error.to_string();
    assert!(matches!(error, StoreError::Backend { .. }), "{error:?}");
    assert!(message.contains("postgres://alice@127.0.0.1:1/alerts"), "{message}");
    assert!(!message.contains("s3cret"), "the password leaked: {message}");
}

#[tokio::test]
async fn invalid_url_is_an_invalid_argument() {
    let error = PostgresStore::connect("postgres://[not a host")
        .await
        .expect_err("an invalid url");
    assert!(matches!(error, StoreError::InvalidArgument(_)), "{error:?}");
}

/// Writes `alerts` in batches of `size`, in the order given.
async fn write_in_batches(
    store: &PostgresStore,
    alerts: &[nightjar_core::Alert],
    size: usize,
) -> Result<WriteSummary, StoreError> {
    let mut total = WriteSummary::default();
    for batch in alerts.chunks(size) {
        total.add(&store.write_batch(batch).await?);
    }
    Ok(total)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_store_each_row_once() -> Result<(), StoreError> {
    let alerts = all_alerts();
    let reference = PostgresStore::connect(&support::fresh_database().await).await?;
    reference.write_batch(&alerts).await?;
    let expected = reference.counts().await?;

    for round in 0..3 {
        let url = support::fresh_database().await;
        let first = PostgresStore::connect(&url).await?;
        let second = PostgresStore::connect(&url).await?;
        // Overlapping batches: the same alerts, one worker forwards, the other backwards, in
        // batches of different sizes, so they meet on the same objects and detections.
        let mut reversed = alerts.clone();
        reversed.reverse();
        let (a, b) = tokio::join!(
            write_in_batches(&first, &alerts, 4 + round),
            write_in_batches(&second, &reversed, 7 + round)
        );
        let (a, b) = (a?, b?);
        let counts = first.counts().await?;
        assert_eq!(counts, expected, "round {round}: counts after two concurrent writers");
        // Each row was new for exactly one of the writers.
        let mut both = a;
        both.add(&b);
        assert_eq!(both.new_objects, counts.objects, "round {round}: new objects");
        assert_eq!(both.new_detections, counts.detections, "round {round}: new detections");
        assert_eq!(
            both.new_upper_limits, counts.upper_limits,
            "round {round}: new upper limits"
        );
        assert_eq!(
            both.new_forced_photometry, counts.forced_photometry,
            "round {round}: new forced photometry"
        );
        assert_eq!(both.new_cutouts, counts.cutouts, "round {round}: new cutouts");
        assert_eq!(
            both.n_alerts - both.n_duplicate_alerts,
            counts.alerts,
            "round {round}: each alert new once"
        );
        // Summaries are computed from every detection, whichever writer committed last.
        for alert in &alerts {
            let stored = second.light_curve(alert.survey, &alert.object_id).await?;
            let wanted = reference.light_curve(alert.survey, &alert.object_id).await?;
            let (stored, wanted) = (
                stored.unwrap_or_else(|| panic!("no light curve for {}", alert.object_id)),
                wanted.unwrap_or_else(|| panic!("no reference light curve for {}", alert.object_id)),
            );
            assert_eq!(
                stored.detections, wanted.detections,
                "round {round}: {}",
                alert.object_id
            );
            assert_eq!(
                stored.object, wanted.object,
                "round {round}: summary of {}",
                alert.object_id
            );
        }
    }
    Ok(())
}
