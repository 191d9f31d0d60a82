//! `rrdserver`: a thin binary over [`rrdserver::cli`].

use clap::Parser;

fn main() {
    let cli = rrdserver::cli::Cli::parse();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if let Err(e) = rrdserver::cli::run(cli, &mut out) {
        eprintln!("ERROR: {}", e.0);
        std::process::exit(1);
    }
}
