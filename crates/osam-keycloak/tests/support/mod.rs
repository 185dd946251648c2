//! A fake realm with osam's service account, and settings that reach it.

use std::time::Duration;

use osam_keycloak::{AdminClient, ClientSecret, KeycloakDirectory, KeycloakSettings};
use osam_keycloak_fake::FakeKeycloak;

pub const REALM: &str = "osam";
pub const CLIENT_ID: &str = "osam-admin";
pub const CLIENT_SECRET: &str = "osam-admin-secret-5b7e";

/// A realm with osam's service client.
pub async fn fake_realm() -> FakeKeycloak {
    let keycloak = FakeKeycloak::start(REALM).await;
    keycloak.add_service_client(CLIENT_ID, CLIENT_SECRET);
    keycloak
}

/// Settings for `keycloak` with a quick backoff, so retry tests stay fast.
pub fn settings(keycloak: &FakeKeycloak) -> KeycloakSettings {
    settings_with_secret(keycloak, CLIENT_SECRET)
}

pub fn settings_with_secret(keycloak: &FakeKeycloak, secret: &str) -> KeycloakSettings {
    let mut settings = KeycloakSettings::new(
        keycloak.base_url().to_string(),
        keycloak.realm().to_string(),
        CLIENT_ID.to_owned(),
        ClientSecret::new(secret.to_owned()),
    );
    settings.retry_base_delay = Duration::from_millis(10);
    settings.request_timeout = Duration::from_secs(5);
    settings
}

pub fn directory(settings: KeycloakSettings) -> KeycloakDirectory {
    KeycloakDirectory::new(AdminClient::new(settings).expect("valid settings"))
}
