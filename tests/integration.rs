//! Every integration test in one binary, each file of `tests/` a module of it.
//!
//! One binary, not one per file: each test binary links the whole of prescale and its
//! dependencies again and instantiates their generics again, and with 42 of them linking and
//! code generation were most of a clean test build (CI at 86 % of its 15-minute budget). Tests
//! still run in parallel threads as before (`--test-threads`, the cores by default).
//!
//! Three test files stay binaries of their own (`Cargo.toml` lists them): `fuzz_readers`,
//! `fuzz_regressions` and `input_memory` install a counting global allocator and bound the bytes
//! a reader allocates, which other tests' threads in the same process would add to.
//!
//! The helpers under `common/` are declared once here; a test module brings one into scope with
//! `use crate::cli;` (and so on), and helpers reach each other through `crate::`.

#[path = "common/cli.rs"]
mod cli;
#[path = "common/cluster.rs"]
mod cluster;
mod common;
#[path = "common/fake_api.rs"]
mod fake_api;
#[path = "common/fake_kube.rs"]
mod fake_kube;
#[path = "common/fake_lease.rs"]
mod fake_lease;
#[path = "common/shard_lease.rs"]
mod lease_setup;
#[path = "common/prometheus.rs"]
mod prometheus;
#[path = "common/shard.rs"]
mod shard_setup;
#[path = "common/two_traces.rs"]
mod two_traces;
#[path = "common/victoria.rs"]
mod victoria;

mod act_command;
mod act_decision_log;
mod act_kube;
mod backtest_online;
mod cli_edges;
mod cli_forecast;
mod cluster_state;
mod collect_backfill;
mod collect_faults;
mod collect_live;
mod collect_tls;
mod collect_victoria;
mod deploy_manifests;
mod export_prometheus;
mod history_input;
mod keda;
mod keda_generated;
mod rbac_calls;
mod restart_state;
mod run_cold_start;
mod run_events;
mod run_leader;
mod run_live;
mod run_risk;
mod run_share;
mod shard_lease;
mod shard_nodes;
mod shard_partition;
mod shard_prometheus;
mod shard_readback;
mod shard_resize;
mod shutdown;
mod simulate_refused;
mod simulate_replay;
mod simulate_risk;
mod simulate_tasks;
mod startup;
mod train_exclude;
