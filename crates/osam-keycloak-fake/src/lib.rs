//! Test support: an in-process HTTP server speaking the Keycloak endpoints osam uses, with
//! Keycloak's JSON representations, RS256 user tokens and injectable faults.
//!
//! Users must exist before a helper names them (naming an unknown user panics, as it is a bug
//! in the test); roles, clients and groups are created on first mention. Usernames are
//! lowercased, as Keycloak stores them.

#![forbid(unsafe_code)]

mod faults;
mod model;
mod representation;
mod routes;
mod server;
mod signing;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use crate::faults::Faults;
use crate::model::RealmState;
use crate::server::Shared;
use crate::signing::{SigningKey, random_uuid};

/// The client every user token claims to be issued to (`azp`) and one of its audiences.
const TOKEN_CLIENT_ID: &str = "osam";

/// A running fake Keycloak with one realm. The server stops when this is dropped.
pub struct FakeKeycloak {
    shared: Arc<Shared>,
    server_task: JoinHandle<()>,
}

/// A user to add with [`FakeKeycloak::add_user`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeUser {
    pub username: String,
    pub enabled: bool,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
}

impl FakeUser {
    /// An enabled user with no email, names or attributes.
    pub fn new(username: &str) -> FakeUser {
        FakeUser {
            username: username.to_owned(),
            enabled: true,
            email: None,
            first_name: None,
            last_name: None,
            attributes: BTreeMap::new(),
        }
    }
}

impl std::fmt::Debug for FakeKeycloak {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("FakeKeycloak")
            .field("base_url", &self.shared.base_url)
            .field("realm", &self.shared.realm)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeKeycloak {
    fn drop(&mut self) {
        self.server_task.abort();
    }
}

impl FakeKeycloak {
    /// Starts a server for `realm` on 127.0.0.1 with an ephemeral port. Must be called inside a
    /// Tokio runtime; panics if it cannot bind, which only a broken test machine causes.
    pub async fn start(realm: &str) -> FakeKeycloak {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Keycloak to 127.0.0.1:0");
        let address = listener.local_addr().expect("the bound address");
        let signing_key = tokio::task::spawn_blocking(SigningKey::generate)
            .await
            .expect("generate the realm's signing key");
        let state = RealmState::new(realm, signing_key);
        let shared = Arc::new(Shared::new(realm, format!("http://{address}"), state));
        let server_task = tokio::spawn(server::serve(listener, Arc::clone(&shared)));
        FakeKeycloak { shared, server_task }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn realm(&self) -> &str {
        &self.shared.realm
    }

    /// `{base_url}/realms/{realm}`, the `iss` of every token.
    pub fn issuer(&self) -> String {
        self.shared.issuer()
    }

    /// The realm's token endpoint.
    pub fn token_endpoint(&self) -> String {
        format!("{}/protocol/openid-connect/token", self.issuer())
    }

    /// The realm's JWKS endpoint.
    pub fn jwks_uri(&self) -> String {
        format!("{}/protocol/openid-connect/certs", self.issuer())
    }

    /// Adds (or updates the secret of) a confidential client that may use the
    /// client-credentials grant; the tokens it obtains are admin tokens.
    pub fn add_service_client(&self, client_id: &str, secret: &str) {
        self.shared.state().add_service_client(client_id, secret);
    }

    /// The lifetime of admin tokens issued from now on (default 300 s). The token response's
    /// `expires_in` is this lifetime in whole seconds, rounded down.
    pub fn set_admin_token_lifetime(&self, lifetime: Duration) {
        self.shared.state().admin_token_lifetime = lifetime;
    }

    /// Every admin token issued so far is rejected with 401 from now on.
    pub fn expire_admin_tokens(&self) {
        self.shared.state().expire_admin_tokens();
    }

    /// Adds a realm role, or adds `composites` to an existing one; missing composites are created.
    pub fn add_realm_role(&self, name: &str, composites: &[&str]) {
        self.shared.state().add_realm_role(name, composites);
    }

    /// Adds a client (with a random UUID id) if it does not exist yet.
    pub fn add_client(&self, client_id: &str) {
        self.shared.state().ensure_client(client_id);
    }

    /// Gives the client a new internal id, as a delete and re-create (or a realm re-import) does;
    /// requests with the old id answer 404.
    pub fn recreate_client(&self, client_id: &str) {
        self.shared.state().recreate_client(client_id);
    }

    /// The UUID id of a client, if it exists.
    pub fn client_uuid(&self, client_id: &str) -> Option<String> {
        let state = self.shared.state();
        state
            .clients()
            .find(|client| client.client_id == client_id)
            .map(|client| client.id.clone())
    }

    pub fn add_client_role(&self, client_id: &str, role: &str) {
        self.shared.state().add_client_role(client_id, role);
    }

    /// Adds the group at `path` ("/a/b/c"), creating missing parents, and maps `realm_roles`
    /// on it.
    pub fn add_group(&self, path: &str, realm_roles: &[&str]) {
        self.shared.state().add_group(path, realm_roles);
    }

    /// Adds a user and returns its id. Panics if a user with that username already exists.
    pub fn add_user(&self, user: FakeUser) -> String {
        self.shared.state().add_user(user)
    }

    /// The id of a user, if it exists.
    pub fn user_id(&self, username: &str) -> Option<String> {
        let state = self.shared.state();
        let id = state
            .users()
            .find(|user| user.username == username.to_lowercase());
        id.map(|user| user.id.clone())
    }

    /// Removes a user; removing an unknown user does nothing.
    pub fn remove_user(&self, username: &str) {
        self.shared.state().remove_user(username);
    }

    pub fn set_enabled(&self, username: &str, enabled: bool) {
        self.shared.state().user_named_mut(username).enabled = enabled;
    }

    pub fn grant_realm_role(&self, username: &str, role: &str) {
        self.shared.state().grant_realm_role(username, role);
    }

    pub fn revoke_realm_role(&self, username: &str, role: &str) {
        self.shared.state().revoke_realm_role(username, role);
    }

    pub fn grant_client_role(&self, username: &str, client_id: &str, role: &str) {
        self.shared.state().grant_client_role(username, client_id, role);
    }

    /// Makes the user a member of the group at `path`, creating the group if needed.
    pub fn join_group(&self, username: &str, path: &str) {
        self.shared.state().join_group(username, path);
    }

    pub fn user_attributes(&self, username: &str) -> BTreeMap<String, Vec<String>> {
        self.shared.state().user_named(username).attributes.clone()
    }

    /// An RS256 access token for `username`, signed with the current key, shaped like the
    /// tokens Keycloak issues to the `osam` client: effective realm and client roles, group
    /// full paths, audiences `osam` and `account`.
    pub fn user_token(&self, username: &str, lifetime: Duration) -> String {
        let (claims, key) = {
            let state = self.shared.state();
            let user = state.user_named(username);
            let issued_at = unix_seconds();
            let mut resource_access = Map::new();
            for (client_id, roles) in state.effective_client_role_names(user) {
                resource_access.insert(client_id, json!({ "roles": roles }));
            }
            let mut groups: Vec<String> = user
                .group_ids
                .iter()
                .map(|group_id| state.group_path(group_id))
                .collect();
            groups.sort();
            let mut claims = json!({
                "exp": issued_at + lifetime.as_secs(),
                "iat": issued_at,
                "jti": random_uuid(),
                "iss": self.issuer(),
                "aud": [TOKEN_CLIENT_ID, "account"],
                "sub": user.id,
                "typ": "Bearer",
                "azp": TOKEN_CLIENT_ID,
                "sid": random_uuid(),
                "acr": "1",
                "realm_access": { "roles": state.effective_realm_role_names(user) },
                "resource_access": resource_access,
                "scope": "openid profile email",
                "email_verified": user.email_verified,
                "preferred_username": user.username,
                "groups": groups,
            });
            let names = [user.first_name.as_deref(), user.last_name.as_deref()];
            let full_name: Vec<&str> = names.into_iter().flatten().collect();
            let optional = [
                ("email", user.email.clone()),
                ("given_name", user.first_name.clone()),
                ("family_name", user.last_name.clone()),
                ("name", (!full_name.is_empty()).then(|| full_name.join(" "))),
            ];
            if let Value::Object(object) = &mut claims {
                for (claim, value) in optional {
                    if let Some(value) = value {
                        object.insert(claim.to_owned(), json!(value));
                    }
                }
            }
            (claims, state.current_signing_key())
        };
        key.sign(&claims)
    }

    /// Generates a new signing key; new tokens are signed with it, and the JWKS document
    /// publishes it first followed by every earlier key, so old tokens still verify.
    pub fn rotate_signing_key(&self) {
        let key = SigningKey::generate();
        self.shared.state().add_signing_key(key);
    }

    /// The key id (`kid`) of the current signing key.
    pub fn signing_key_id(&self) -> String {
        self.shared.state().current_signing_key().kid().to_owned()
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Calls to the token endpoint, successful or not (including faulted ones).
    pub fn token_requests(&self) -> usize {
        self.shared.token_requests.load(Ordering::Relaxed)
    }

    /// Calls under `/admin/`, authorised or not (including faulted ones).
    pub fn admin_requests(&self) -> usize {
        self.shared.admin_requests.load(Ordering::Relaxed)
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}
