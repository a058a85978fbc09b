//! Command-line output pinned in files: each case is a command's exit code, standard output and
//! standard error, compared with `NAME.txt` in a folder of the crate's tests. `KEYHOLE_BLESS=1`
//! writes them anew (to review in the diff); a file without a case fails as much as a
//! difference does.

use std::path::Path;
use std::process::Command;

/// Runs `exe` with `args` (no terminal, 100 columns, `KEYHOLE_*` settings left out) and gives
/// what a snapshot holds of it.
///
/// # Panics
/// If it cannot be started.
#[must_use]
pub fn run(exe: &str, args: &[&str]) -> String {
    let mut command = Command::new(exe);
    command.args(args).env("COLUMNS", "100");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("KEYHOLE_") {
            command.env_remove(key);
        }
    }
    let out = command.output().expect("starting the command");
    let name = Path::new(exe)
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    format!(
        "$ {name} {}\nexit: {}\n--- stdout\n{}--- stderr\n{}",
        args.join(" "),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The subcommands a clap `--help` output lists, `help` left out.
#[must_use]
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.ends_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect()
}

/// The help cases of `exe`: `help` for its `--help`, and `help-COMMAND` for each subcommand's
/// `--help`, the list read from the first (so a new command needs a snapshot). Returns the
/// subcommands too, for the caller to check that the list was read.
///
/// # Panics
/// If `exe` cannot be started.
#[must_use]
pub fn help_cases(exe: &str) -> (Vec<String>, Vec<(String, String)>) {
    let help = run(exe, &["--help"]);
    let commands = subcommands(&help);
    let mut cases = vec![("help".to_owned(), help)];
    for command in &commands {
        cases.push((format!("help-{command}"), run(exe, &[command, "--help"])));
    }
    (commands, cases)
}

/// Compares each `(name, output)` of `cases` with `dir/name.txt`, or writes them all anew with
/// `KEYHOLE_BLESS=1`.
///
/// # Panics
/// If an output differs from its file, a file is missing, or a file has no case.
pub fn assert_match(dir: &Path, cases: &[(String, String)]) {
    if std::env::var_os("KEYHOLE_BLESS").is_some() {
        std::fs::create_dir_all(dir).expect("making the snapshot folder");
        for old in std::fs::read_dir(dir).expect("reading the snapshot folder") {
            std::fs::remove_file(old.expect("a snapshot").path()).expect("removing a snapshot");
        }
        for (name, got) in cases {
            std::fs::write(dir.join(format!("{name}.txt")), got).expect("writing a snapshot");
        }
    }
    let differ: Vec<String> = cases
        .iter()
        .filter(|(name, got)| {
            std::fs::read_to_string(dir.join(format!("{name}.txt")))
                .ok()
                .as_deref()
                != Some(got.as_str())
        })
        .map(|(name, got)| format!("{name}:\n{got}"))
        .collect();
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .expect("reading the snapshot folder")
        .map(|e| {
            e.expect("a snapshot")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut expected: Vec<String> = cases.iter().map(|(n, _)| format!("{n}.txt")).collect();
    expected.sort();
    assert_eq!(on_disk, expected, "a snapshot for each case and no other");
    assert!(
        differ.is_empty(),
        "output differs from its snapshot (KEYHOLE_BLESS=1 writes them anew):\n{}",
        differ.join("\n")
    );
}
