//! Test support: an in-process HTTP server speaking the Keycloak endpoints osam uses.
