//! The request framings of Keyhole's HTTP API that are not JSON (`docs/API.md`): the batch
//! upload body and the `Range` header; and the messages servers sharing a database send each
//! other. Cameras build the framings, the server parses them; both use these functions, which
//! do no I/O and are fuzzed (`fuzz/fuzz_targets/wire.rs`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod batch;
pub mod peer;
pub mod range;
