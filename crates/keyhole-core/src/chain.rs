//! The rule by which a numbered, hash-chained list moves on (the roster, the account log): the
//! same link again, or exactly the next one naming the trusted link's hash.

/// What an offered link is to the trusted one.
pub(crate) enum Step {
    /// The trusted link itself.
    Same,
    /// Its direct successor.
    Next,
}

/// Why an offered link does not follow the trusted one.
pub(crate) enum Break {
    /// An older number.
    Rollback,
    /// The same number, other bytes: two histories.
    Fork,
    /// A number beyond the next.
    Gap,
    /// The next number, naming another predecessor.
    BrokenChain,
}

/// `trusted` and `offered` are the links' numbers; `identical` is whether the offered bytes are
/// the trusted ones, `links` whether the offered link names the trusted one's hash.
pub(crate) fn step(
    trusted: u64,
    offered: u64,
    identical: bool,
    links: bool,
) -> Result<Step, Break> {
    if offered < trusted {
        Err(Break::Rollback)
    } else if offered == trusted {
        if identical {
            Ok(Step::Same)
        } else {
            Err(Break::Fork)
        }
    } else if offered != trusted + 1 {
        Err(Break::Gap)
    } else if links {
        Ok(Step::Next)
    } else {
        Err(Break::BrokenChain)
    }
}
