//! Everything `keyhole` prints goes through here, for two reasons.
//!
//! Much of it comes from outside — the server's words, names other devices and accounts chose —
//! and a terminal obeys control characters: escape sequences move the cursor, rewrite earlier
//! lines, set the window title or write the clipboard, and bidirectional overrides reorder what
//! is shown. So every control character but line breaks and tabs is shown as `�`.
//!
//! And a reader that goes away (`keyhole verify Porch | head -1`) ends the printing, quietly,
//! not the command: what the command was doing (saving what it verified) still finishes.

use std::borrow::Cow;
use std::fmt;
use std::io::{ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once standard output's reader has gone: nothing more is written there.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);

/// `println!` through [`stdout`].
macro_rules! outln {
    () => {
        $crate::out::stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::stdout(format_args!($($arg)*))
    };
}

/// `eprintln!` through [`stderr`].
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::stderr(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprint!` through [`stderr`].
macro_rules! err {
    ($($arg:tt)*) => {
        $crate::out::stderr(format_args!($($arg)*))
    };
}

/// Whether the terminal would act on `c` rather than show it.
fn is_control(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` as it can be shown on a terminal: control characters other than line breaks and
/// tabs, and bidirectional controls, replaced by `�`.
pub(crate) fn printable(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| if is_control(c) { '\u{fffd}' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

/// Writes `args` to standard output, made printable. Once its reader has gone, writes nothing.
pub(crate) fn stdout(args: fmt::Arguments<'_>) {
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let text = args.to_string();
    let mut out = std::io::stdout().lock();
    if let Err(e) = out
        .write_all(printable(&text).as_bytes())
        .and_then(|()| out.flush())
    {
        STDOUT_GONE.store(true, Ordering::Relaxed);
        if e.kind() != ErrorKind::BrokenPipe {
            stderr(format_args!("keyhole: cannot write the output: {e}\n"));
        }
    }
}

/// Writes `args` to standard error, made printable. Errors writing it are ignored: there is
/// nowhere left to say them.
pub(crate) fn stderr(args: fmt::Arguments<'_>) {
    let text = args.to_string();
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(printable(&text).as_bytes())
        .and_then(|()| err.flush());
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escape_sequences_and_overrides_are_shown_not_obeyed() {
        assert_eq!(printable("Porch\tok\n"), "Porch\tok\n");
        assert_eq!(
            printable("phone\u{1b}]52;c;ZXZpbA==\u{7}\r"),
            "phone\u{fffd}]52;c;ZXZpbA==\u{fffd}\u{fffd}"
        );
        assert_eq!(printable("a\u{202e}b\u{9b}c"), "a\u{fffd}b\u{fffd}c");
    }
}
