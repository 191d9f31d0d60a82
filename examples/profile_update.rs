//! Profiling aid: a tight loop of typed updates on one monitoring-default file.
//! `valgrind --tool=callgrind target/release/examples/profile_update`
use rrdcore::{CreateOptions, Rrd, Schema, Timestamp};
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join("rrd-profile-update");
    std::fs::create_dir_all(&dir)?;
    let opts = CreateOptions { start: Some(1_600_000_000), overwrite: true, ..CreateOptions::default() };
    let mut db = Rrd::create(dir.join("p.rrd"), &Schema::monitoring_default(), &opts)?;
    let n: i64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let batch = std::env::args().nth(2).is_some_and(|a| a == "batch");
    if batch {
        // Batches of 12 values, as the store applies them.
        let mut i = 0;
        while i < n {
            let points: Vec<(Timestamp, f64)> = (i + 1..=i + 12).map(|k| (Timestamp::from_secs(1_600_000_000 + k * 300), (k % 100) as f64)).collect();
            db.update_points(points, |_, e| panic!("{e}"));
            i += 12;
        }
    } else {
        for i in 1..=n {
            db.update(Timestamp::from_secs(1_600_000_000 + i * 300), &[(i % 100) as f64])?;
        }
    }
    println!("{} updates, last {}", n, db.last_update());
    Ok(())
}
