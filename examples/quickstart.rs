//! Creates a database with the built-in monitoring schema, feeds it a day of
//! 5-minute samples and prints a fetch of the last two hours, as `rrdtool fetch` would.
//!
//! `cargo run --release -p rrd-examples --example quickstart [DIR]`

use rrdcore::{Cf, CreateOptions, FetchRequest, Rrd, Schema, Timestamp};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "data".to_owned());
    std::fs::create_dir_all(&dir)?;
    let path = std::path::Path::new(&dir).join("quickstart.rrd");
    let start = 1_700_000_000 - 10;
    let opts = CreateOptions {
        start: Some(start),
        overwrite: true,
        ..CreateOptions::default()
    };
    let mut db = Rrd::create(&path, &Schema::monitoring_default(), &opts)?;
    // A day of samples: a daily sine wave of CPU load, one every 5 minutes.
    for i in 1..=288_i64 {
        let phase = (i as f64) / 288.0 * std::f64::consts::TAU;
        let load = 50.0 + 40.0 * phase.sin();
        db.update(Timestamp::from_secs(start + 10 + i * 300), &[load])?;
    }
    let end = db.last_update().sec;
    let got = db.fetch(&FetchRequest::new(Cf::Average, end - 7200, end))?;
    println!("{} ({} bytes)", path.display(), std::fs::metadata(&path)?.len());
    print!("{}", rrdserver::rrdtext::fetch(&got));
    Ok(())
}
