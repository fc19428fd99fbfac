//! The gate service's tests, one binary: each scenario runs on SQLite (a temporary file) and on
//! PostgreSQL (a fresh schema; skipped with a printed reason when unreachable).

mod crash;
mod desk;
mod entry;
mod exit;
mod matching;
mod missed_exits;
mod support;
