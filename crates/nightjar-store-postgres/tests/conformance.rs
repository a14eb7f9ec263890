//! Runs the storage conformance suite (`nightjar_store::conformance`) against `PostgresStore`,
//! one test per check, each store in its own fresh database of the test cluster.

mod support;

use nightjar_store::Store;
use nightjar_store::conformance::StoreFactory;
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

nightjar_store::conformance_tests!(factory());
