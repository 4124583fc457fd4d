//! End-to-end tests: the real `weir` binary runs job files over real files and real Wasm
//! components, and the committed output is compared exactly.
//!
//! Plugins must be built first (`scripts/build-plugins.sh`, which `scripts/test.sh` runs).

mod common;

mod admin_api;
mod bad_input;
mod c_plugins;
mod continuous;
mod crash;
mod dedup;
mod delta;
mod event_time;
mod foreach_batch;
mod hostile;
mod hostile_js;
mod hot_swap;
mod joins;
mod js_plugins;
mod kafka;
mod listeners;
mod metrics;
mod monitor;
mod pipeline;
mod plugin_new;
mod plugin_outputs;
mod postgres;
mod restart_after_change;
mod retention;
mod routers;
mod sandbox;
mod shutdown;
mod sources;
mod stateful;
mod ui;
mod windows;
mod writers;
