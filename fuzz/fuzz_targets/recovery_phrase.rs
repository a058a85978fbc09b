//! `recovery::RecoveryPhrase::parse` on arbitrary UTF-8. A phrase that parses prints as the
//! input's words, lowercased and single-spaced, and parses back to the same phrase.
#![no_main]

use keyhole_core::recovery::{RecoveryPhrase, WORDS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(phrase) = RecoveryPhrase::parse(text) else {
        return;
    };
    let words = phrase.words();
    let lower = text.to_lowercase();
    let normalized: Vec<&str> = lower.split_whitespace().collect();
    assert_eq!(normalized.len(), WORDS);
    assert_eq!(
        *words,
        normalized.join(" "),
        "phrase words differ from the typed words"
    );
    let again = RecoveryPhrase::parse(&words)
        .unwrap_or_else(|e| panic!("printed phrase does not parse: {e}"));
    assert_eq!(*again.words(), *words);
});
