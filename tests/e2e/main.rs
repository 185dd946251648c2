//! End-to-end tests: each starts the real `osam` binary on a free loopback port and calls it over
//! gRPC, from Rust, from grpcurl and from a Python client generated from `proto/`.

mod accounts;
mod accounts_iam;
mod auth;
mod catalog;
mod cli;
mod client;
mod harness;
mod identity;
mod keycloak;
mod lifecycle;
mod moto;
mod oidc_provider;
mod operations;
mod other_languages;
mod rights;
