//! Runs the storage conformance suite (`nightjar_store::conformance`) against `PostgresStore`,
//! once per cone-search path (q3c where the server has it, and HEALPix), one test per check,
//! each store in its own fresh database of the test cluster.

mod support;

use nightjar_store::Store;
use nightjar_store::conformance::StoreFactory;
use nightjar_store_postgres::{Options, PostgresStore};

/// Makes stores in fresh databases, connected with `options`.
fn factory(options: Options) -> impl StoreFactory {
    move || async move {
        let url = support::fresh_database().await;
        PostgresStore::connect_with(&url, options)
            .await
            .map(|store| Box::new(store) as Box<dyn Store>)
    }
}

/// The default path: q3c where installed (`postgres::q3c_is_used_where_installed` checks which).
mod q3c {
    use super::*;

    nightjar_store::conformance_tests!(factory(Options { use_q3c: true }));
}

/// The HEALPix path, whatever the server has.
mod healpix {
    use super::*;

    nightjar_store::conformance_tests!(factory(Options { use_q3c: false }));
}
