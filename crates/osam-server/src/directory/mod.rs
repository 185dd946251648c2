//! Directory adapters that live in the server. The static file directory is small enough not to
//! need its own crate; Keycloak has one (`osam-keycloak`).

pub mod static_file;
