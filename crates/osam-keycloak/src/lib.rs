//! The Keycloak adapter of osam: an admin REST client and the Keycloak `Directory`.
