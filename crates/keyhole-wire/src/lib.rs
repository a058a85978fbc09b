//! The request framings of Keyhole's HTTP API that are not JSON (`docs/API.md`): the batch
//! upload body and the `Range` header. Cameras build them, the server parses them; both use
//! these functions, which do no I/O and are fuzzed (`fuzz/fuzz_targets/wire.rs`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod batch;
pub mod range;
