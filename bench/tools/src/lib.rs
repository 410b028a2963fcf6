//! Benchmark helpers; see the binaries.
