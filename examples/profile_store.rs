//! Profiling aid: one update on each of N series per round, through the store.
//! `valgrind --tool=cachegrind --cache-sim=yes target/release/examples/profile_store 10000 3`
use rrdcore::{SeriesKey, Store, StoreConfig, Timestamp};
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rounds: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("rrd-profile-store-{}", std::process::id()));
    let store = Store::open(&dir, StoreConfig { max_open: n, ..StoreConfig::default() })?;
    let keys: Vec<SeriesKey> = (0..n).map(|i| SeriesKey::new("bench.metric", [("host", format!("h{i:07}"))])).collect::<Result<_, _>>()?;
    let start = 1_600_000_000;
    for k in &keys {
        store.write(k, Timestamp::from_secs(start), 1.0)?;
    }
    let t0 = std::time::Instant::now();
    for r in 1..=rounds {
        for k in &keys {
            store.write(k, Timestamp::from_secs(start + r * 300), 2.0)?;
        }
    }
    let per = t0.elapsed().as_nanos() as f64 / (n as f64 * rounds as f64);
    println!("{per:.0} ns per update over {rounds} rounds of {n} series");
    drop(store);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
