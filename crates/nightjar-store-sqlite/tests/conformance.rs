//! Runs the storage conformance suite (`nightjar_store::conformance`) against `SqliteStore`, one
//! test per check, each store in its own temporary directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use nightjar_store::Store;
use nightjar_store::conformance::StoreFactory;
use nightjar_store_sqlite::SqliteStore;
use tempfile::TempDir;

/// Makes fresh stores in subdirectories of one temporary directory, removed when dropped.
struct TempStores {
    dir: Arc<TempDir>,
    next: Arc<AtomicUsize>,
}

impl TempStores {
    fn new() -> TempStores {
        TempStores {
            dir: Arc::new(tempfile::tempdir().expect("a temporary directory")),
            next: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn factory(&self) -> impl StoreFactory + use<> {
        let dir = Arc::clone(&self.dir);
        let next = Arc::clone(&self.next);
        move || {
            let data_dir = dir
                .path()
                .join(format!("store-{}", next.fetch_add(1, Ordering::Relaxed)));
            async move { SqliteStore::open(&data_dir).map(|store| Box::new(store) as Box<dyn Store>) }
        }
    }
}

nightjar_store::conformance_tests!(TempStores::new().factory());
