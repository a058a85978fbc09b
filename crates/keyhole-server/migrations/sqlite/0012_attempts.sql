-- Attempts counted against the limits on password logins and account creation (auth.rs), per
-- name ("login ana 203.0.113.7", "login ana", "login from 203.0.113.7", "accounts from …"),
-- each in a window that starts at its first attempt: shared by every server on the database and
-- kept across restarts, so neither more servers nor a restart buys more guesses.
CREATE TABLE attempts (
    name  TEXT PRIMARY KEY,
    tries INTEGER NOT NULL,
    since INTEGER NOT NULL
);
