//! What a store's flush makes durable, read from the syncs it makes
//! (recorded through `rrdcore::sync`): every database written, then every
//! directory whose entries changed, deepest first, so a series created
//! since the last flush is on disk under its name after the next one.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use rrdcore::sync::{Kind, record};
use rrdcore::{SeriesKey, Store, StoreConfig, Timestamp};

#[test]
fn a_flush_syncs_new_files_then_their_directories() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), StoreConfig::default()).unwrap();
    let short = SeriesKey::new("m", [("host", "a")]).unwrap();
    let long = SeriesKey::new("m", [("host", "x".repeat(300))]).unwrap();
    record(dir.path(), true);
    store.write(&short, Timestamp::from_secs(1_700_000_100), 1.0).unwrap();
    store.write(&long, Timestamp::from_secs(1_700_000_100), 2.0).unwrap();
    store.flush().unwrap();
    let syncs = record(dir.path(), false);
    let metric_dir = dir.path().join("m");
    let at = |kind: Kind, path: &std::path::Path| syncs.iter().position(|(k, p)| *k == kind && p == path).unwrap_or_else(|| panic!("no {kind:?} sync of {}: {syncs:?}", path.display()));
    let file = at(Kind::Map, &metric_dir.join("host=a.rrd"));
    let key_file = syncs.iter().position(|(k, p)| *k == Kind::File && p.extension().is_some_and(|e| e == "key")).expect("the .key file of the hashed name is synced");
    let metric = at(Kind::Dir, &metric_dir);
    let data = at(Kind::Dir, dir.path());
    assert!(file < metric && key_file < metric, "files before their directory: {syncs:?}");
    assert!(metric < data, "the metric directory before the data directory's entry for it: {syncs:?}");

    // Nothing new: a second flush syncs the open files and no directory.
    record(dir.path(), true);
    store.write(&short, Timestamp::from_secs(1_700_000_400), 3.0).unwrap();
    store.flush().unwrap();
    let syncs = record(dir.path(), false);
    assert!(syncs.iter().all(|(k, _)| *k != Kind::Dir), "{syncs:?}");
}
