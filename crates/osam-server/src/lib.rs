//! The osam server as a library: configuration, the auth layer, the services, the account sync and
//! their composition. The `osam` binary (`main.rs`) only parses the command line and calls in here;
//! benches drive the same pieces in process.

#![forbid(unsafe_code)]

mod atomic_file;
pub mod audit;
pub mod auth;
pub mod config;
pub mod dev_token;
mod digest;
pub mod directory;
pub mod edge;
pub mod error;
pub mod identity;
pub mod metrics;
mod paging;
pub mod rights_command;
pub mod server;
pub mod services;
pub mod storage;
pub mod sync;
pub mod telemetry;
pub mod tls;
