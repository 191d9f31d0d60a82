//! A store's databases write their live state only at a checkpoint, after
//! their rows are synced, so no order in which the kernel writes pages back
//! can leave a file whose state claims rows it does not have (the state
//! pages are the first of the file; a power cut may keep them and lose the
//! rows). What the file holds is read through the page cache: what a cut
//! could keep of it.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use std::path::Path;

use rrdcore::{Rrd, SeriesKey, Store, StoreConfig, Timestamp};

const T0: i64 = 1_700_000_000;

fn key(host: &str) -> SeriesKey {
    SeriesKey::new("m", [("host", host)]).unwrap()
}

fn file(dir: &Path, host: &str) -> std::path::PathBuf {
    dir.join("m").join(format!("host={host}.rrd"))
}

/// The bytes before the rows (header and both live-state slots) of `path`
/// as the page cache has them, and the last update they record (read from
/// a copy, so nothing of the store's is locked or changed).
fn state_pages(path: &Path) -> (Vec<u8>, i64) {
    let bytes = std::fs::read(path).unwrap();
    let copy = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(copy.path(), &bytes).unwrap();
    let db = Rrd::open_read_only(copy.path()).unwrap();
    let len = usize::try_from(db.info().header_size).unwrap();
    (bytes[..len].to_vec(), db.last_update().sec)
}

#[test]
fn the_state_pages_change_only_at_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let a = key("a");
    store.write(&a, Timestamp::from_secs(T0 + 300), 1.0).unwrap();
    store.flush().unwrap();
    let (checkpointed, last) = state_pages(&file(dir.path(), "a"));
    assert_eq!(last, T0 + 300);
    let rows_before = std::fs::read(file(dir.path(), "a")).unwrap();

    for i in 2..40 {
        store.write(&a, Timestamp::from_secs(T0 + i * 300), i as f64).unwrap();
    }
    let (now, last) = state_pages(&file(dir.path(), "a"));
    assert_eq!(now, checkpointed, "the state pages wait for the checkpoint");
    assert_eq!(last, T0 + 300);
    assert_ne!(std::fs::read(file(dir.path(), "a")).unwrap(), rows_before, "the rows are written as updates come");
    assert_eq!(store.last_update(&a).unwrap().sec, T0 + 39 * 300, "readers see every update");

    store.flush().unwrap();
    let (_, last) = state_pages(&file(dir.path(), "a"));
    assert_eq!(last, T0 + 39 * 300);
}

#[test]
fn an_evicted_database_keeps_its_state_until_the_next_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { max_open: 1, ..StoreConfig::default() };
    let store = Store::open(dir.path(), config).unwrap();
    let (a, b) = (key("a"), key("b"));
    store.write(&a, Timestamp::from_secs(T0 + 300), 1.0).unwrap();
    store.flush().unwrap();
    let (checkpointed, _) = state_pages(&file(dir.path(), "a"));

    store.write(&a, Timestamp::from_secs(T0 + 600), 2.0).unwrap();
    store.write(&b, Timestamp::from_secs(T0 + 600), 5.0).unwrap();
    assert_eq!(store.stats().evictions, 1);
    assert_eq!(state_pages(&file(dir.path(), "a")).0, checkpointed, "closing does not write the state");

    // Reopened, it goes on from the state it had, not the file's.
    store.write(&a, Timestamp::from_secs(T0 + 900), 3.0).unwrap();
    assert_eq!(store.last_update(&a).unwrap().sec, T0 + 900);

    // Closed again with changes, then checkpointed while closed.
    store.write(&b, Timestamp::from_secs(T0 + 900), 6.0).unwrap();
    store.flush().unwrap();
    assert_eq!(state_pages(&file(dir.path(), "a")).1, T0 + 900);
    assert_eq!(state_pages(&file(dir.path(), "b")).1, T0 + 900);
}

#[test]
fn closing_a_store_keeps_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { max_open: 1, ..StoreConfig::default() };
    let store = Store::open(dir.path(), config.clone()).unwrap();
    store.write(&key("a"), Timestamp::from_secs(T0 + 300), 1.0).unwrap();
    store.write(&key("b"), Timestamp::from_secs(T0 + 300), 2.0).unwrap();
    drop(store);
    let store = Store::open(dir.path(), config).unwrap();
    assert_eq!(store.last_update(&key("a")).unwrap().sec, T0 + 300, "parked, written when the store closed");
    assert_eq!(store.last_update(&key("b")).unwrap().sec, T0 + 300, "open, written when the store closed");
}

#[test]
fn a_file_replaced_by_an_import_drops_the_parked_state() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig { max_open: 1, ..StoreConfig::default() };
    let store = Store::open(dir.path(), config).unwrap();
    let (a, b) = (key("a"), key("b"));
    store.write(&a, Timestamp::from_secs(T0 + 300), 1.0).unwrap();
    let (schema, image_state) = store.with_db(&a, |db| (db.schema().clone(), db.state().clone())).unwrap();
    store.write(&a, Timestamp::from_secs(T0 + 600), 2.0).unwrap();
    store.write(&b, Timestamp::from_secs(T0 + 600), 5.0).unwrap();
    let rows: Vec<Vec<f64>> = schema.archives.iter().map(|r| vec![f64::NAN; usize::try_from(r.rows).unwrap()]).collect();
    store.insert_image(&a, &schema, &image_state, &rows, true).unwrap();
    assert_eq!(store.last_update(&a).unwrap().sec, T0 + 300, "the imported file's state, not the parked one");
    store.flush().unwrap();
    assert_eq!(state_pages(&file(dir.path(), "a")).1, T0 + 300);
}

#[test]
fn a_database_opened_on_its_own_and_an_open_store_exclude_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    store.write(&key("a"), Timestamp::from_secs(T0 + 300), 1.0).unwrap();
    let path = file(dir.path(), "a");
    let refused = Rrd::open(&path).unwrap_err();
    assert!(matches!(&refused, rrdcore::Error::InStore { store, .. } if store == &dir.path().canonicalize().unwrap()), "{refused}");
    assert!(refused.to_string().contains("stop it first"), "{refused}");
    let schema = store.with_db(&key("a"), |db| db.schema().clone()).unwrap();
    let opts = rrdcore::CreateOptions { start: Some(T0), overwrite: true, ..Default::default() };
    assert!(matches!(Rrd::create(&path, &schema, &opts), Err(rrdcore::Error::InStore { .. })), "an overwrite is refused before anything is written");
    assert!(matches!(Rrd::create(dir.path().join("m").join("new.rrd"), &schema, &opts), Err(rrdcore::Error::InStore { .. })));
    assert!(!dir.path().join("m").join("new.rrd").exists());
    assert_eq!(store.last_update(&key("a")).unwrap().sec, T0 + 300);
    assert!(Rrd::open_read_only(&path).is_ok(), "reading is allowed");
    drop(store);

    let mut db = Rrd::open(&path).unwrap();
    assert_eq!(db.last_update().sec, T0 + 300);
    assert!(matches!(Store::open(dir.path(), StoreConfig::default()), Err(rrdcore::Error::Locked { .. })), "no store opens while a file in it is written");
    db.update(Timestamp::from_secs(T0 + 600), &[2.0]).unwrap();
    drop(db);
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.last_update(&key("a")).unwrap().sec, T0 + 600);
}
