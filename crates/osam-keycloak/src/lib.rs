//! The Keycloak adapter of osam: an admin REST client for one realm, authenticated as a
//! client-credentials service account, and the Keycloak implementation of the `Directory` port.

#![forbid(unsafe_code)]

mod admin_api;
mod client;
mod directory;
mod error;
mod retry;
mod settings;
mod token;

pub use client::AdminClient;
pub use directory::KeycloakDirectory;
pub use error::KeycloakError;
pub use settings::{ClientSecret, KeycloakSettings};
