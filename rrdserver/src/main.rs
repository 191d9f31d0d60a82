//! `rrdserver`: the command line and server over rrdcore (verbs land with later issues).

fn main() {
    eprintln!(
        "rrdserver {}: the command-line verbs and the server are not built yet; \
         use the rrdcore library (see README.md)",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
