//! Rolecall's integration tests, in one binary so that axum, sqlx and reqwest are linked
//! once. Each module is what was a test binary of its own; `common` starts the real app,
//! real databases, a fake identity provider on loopback, and reads the contract.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod common;

mod api;
mod audit;
mod auth;
mod authzen;
mod check;
mod cli;
mod config_docs;
mod connections;
mod console;
mod containers;
mod contract;
mod decision_log;
mod engine_reference;
mod escapes;
mod faults;
mod gateway;
mod graph;
mod idp_selftest;
mod import;
mod logs;
mod metrics;
mod pim;
mod principals;
mod replicas;
mod resources;
mod search;
mod store_conformance;
mod strict_input;
