//! The framings of Keyhole's HTTP API that are not JSON (`docs/API.md`): the batch upload body,
//! the `Range` header and the announcement channel; and the messages servers sharing a database
//! send each other. One side builds each framing and the other parses it, both with these
//! functions, which do no I/O and are fuzzed (`fuzz/fuzz_targets/wire.rs`).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod announce;
pub mod batch;
mod id;
pub mod peer;
pub mod range;
