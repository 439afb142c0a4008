//! Test workloads shared by the `it` integration tests and the on-demand binaries of this
//! package (`crash-cycles`), and the throwaway PostgreSQL server they (and the benchmarks)
//! run on. The harness for ordinary tests lives in `tests/it/harness.rs`.

pub mod crash;
pub mod packages;
pub mod postgres;
