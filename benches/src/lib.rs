//! Benchmarks for rrdcore live in `benches/`.
