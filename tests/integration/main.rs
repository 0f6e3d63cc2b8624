//! The integration tests, linked into one test binary (`cargo test --test
//! integration`) so the library is linked once rather than once per file.
//! Each module holds the tests of one area, as its own file did before;
//! [`support`] holds what they share: real processes and ports, a fake PromQL
//! API, a webhook receiver, the exporter's samples and the sidecar's configs.
//!
//! Tests run in parallel (cargo's default test threads): every test takes
//! its ports from [`support::process::free_port`] or binds `127.0.0.1:0`, and
//! keeps its files in its own temporary directory.

mod support;

mod alerting_stack;
mod alertmanager_sink;
mod backtest;
mod baseline_capture;
mod cli;
mod config_examples;
mod detectors_extra;
mod doc_paths;
mod end_to_end;
mod engines;
mod explanations;
mod fake_promql;
mod fuzz;
mod hostile_source;
mod http;
mod image;
mod kubernetes;
mod layers;
mod monitor_loop;
mod promql_client;
mod reference_cache;
mod reload;
mod replica_rules;
mod replicas;
mod signals;
mod signals_extra;
mod statistics;
mod status_api;
mod storage;
mod victoriametrics;
mod web_security;
mod webhooks;
mod young_series;
