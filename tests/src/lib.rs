//! Test workloads shared by the `it` integration tests and the on-demand binaries of this
//! package (`crash-cycles`). The harness for ordinary tests lives in `tests/it/harness.rs`.

pub mod crash;
