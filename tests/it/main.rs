//! Integration tests: one binary, a module per area.

#[path = "../support/mod.rs"]
mod support;

mod admin;
mod cli;
mod config;
mod dashboard;
mod delivery;
mod email;
mod ingress;
mod journal_log;
mod replay;
mod retention;
mod rules;
mod server;
mod sources;
mod store_faults;
mod tickets;
