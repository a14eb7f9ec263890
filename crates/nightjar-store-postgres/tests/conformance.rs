//! Runs the storage conformance suite (`nightjar_store::conformance`) against `PostgresStore`,
//! one test per check, each store in its own fresh database of the test cluster.

mod support;

use nightjar_store::conformance::{self, StoreFactory};
use nightjar_store::{Store, StoreError};
use nightjar_store_postgres::PostgresStore;

/// Makes stores in fresh databases.
fn factory() -> impl StoreFactory {
    || async {
        let url = support::fresh_database().await;
        PostgresStore::connect(&url)
            .await
            .map(|store| Box::new(store) as Box<dyn Store>)
    }
}

macro_rules! conformance_tests {
    ($($check:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $check() -> Result<(), StoreError> {
                conformance::$check(&factory()).await
            }
        )*

        #[test]
        fn every_check_has_a_test() {
            assert_eq!(&[$(stringify!($check)),*], conformance::CHECK_NAMES);
        }
    };
}

conformance_tests!(
    empty_store_reads_nothing,
    counts_after_one_write,
    replay_adds_nothing,
    order_and_batching_do_not_matter,
    light_curve_is_sorted_and_complete,
    upper_limits_are_deduplicated,
    history_detection_becomes_alert,
    cone_search_finds_objects,
    cone_search_respects_time_window,
    cone_search_across_ra_zero,
    cone_search_at_the_poles,
    latest_alerts_order_and_limit,
    alert_lookup_by_source_id,
    solar_system_alerts_by_name,
    cutouts_roundtrip,
    counts_per_night_uses_observing_nights,
    dead_letters_roundtrip,
    prune_removes_older_nights,
);

/// `run_all` runs the same checks against one factory.
#[tokio::test]
async fn run_all_passes() -> Result<(), StoreError> {
    conformance::run_all(factory()).await
}
