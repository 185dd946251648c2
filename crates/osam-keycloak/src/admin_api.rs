//! The Keycloak admin endpoints osam reads and writes, under `{base}/admin/realms/{realm}/`, and
//! the parts of their representations osam uses.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::client::AdminClient;
use crate::error::KeycloakError;

/// The fields of a `UserRepresentation` osam reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserRepresentation {
    pub(crate) id: String,
    pub(crate) username: String,
    /// Keycloak always sends it; a representation without it counts as disabled (fail closed).
    #[serde(default)]
    pub(crate) enabled: bool,
    #[serde(default)]
    pub(crate) first_name: Option<String>,
    #[serde(default)]
    pub(crate) last_name: Option<String>,
    #[serde(default)]
    pub(crate) email: Option<String>,
    #[serde(default)]
    pub(crate) attributes: Option<BTreeMap<String, Vec<String>>>,
    /// Set on a client's service-account user (`service-account-<client>`).
    #[serde(default)]
    pub(crate) service_account_client_id: Option<String>,
}

impl UserRepresentation {
    /// An enabled person: not disabled, and not a client's service account (a calling service is
    /// not a directory user: the sync gives it no account).
    pub(crate) fn is_active_person(&self) -> bool {
        self.enabled && self.service_account_client_id.is_none()
    }
}

#[derive(Deserialize)]
struct RoleRepresentation {
    name: String,
}

#[derive(Debug, PartialEq, Eq, Deserialize)]
pub(crate) struct GroupRepresentation {
    #[serde(default)]
    pub(crate) path: Option<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClientRepresentation {
    id: String,
    client_id: String,
}

impl AdminClient {
    /// `GET users?first&max&briefRepresentation=false`: one page of users with their attributes.
    pub(crate) async fn users_page(
        &self,
        first: u64,
        max: u32,
    ) -> Result<Vec<UserRepresentation>, KeycloakError> {
        let query = [
            ("first", first.to_string()),
            ("max", max.to_string()),
            ("briefRepresentation", "false".to_owned()),
        ];
        self.get_json(self.admin_url(&["users"]), &query).await
    }

    /// `GET users/count`: how many users the realm has, disabled ones included.
    pub(crate) async fn users_count(&self) -> Result<u64, KeycloakError> {
        self.get_json(self.admin_url(&["users", "count"]), &[]).await
    }

    /// `GET users?username&exact=true`: the users with this username (Keycloak compares
    /// lowercased usernames, so at most one).
    pub(crate) async fn users_named(&self, username: &str) -> Result<Vec<UserRepresentation>, KeycloakError> {
        let query = [
            ("username", username.to_owned()),
            ("exact", "true".to_owned()),
            ("briefRepresentation", "false".to_owned()),
        ];
        self.get_json(self.admin_url(&["users"]), &query).await
    }

    /// `GET users/{id}` as raw JSON, every field kept, for a read-modify-write.
    pub(crate) async fn user_document(&self, user_id: &str) -> Result<serde_json::Value, KeycloakError> {
        self.get_json(self.admin_url(&["users", user_id]), &[]).await
    }

    /// `PUT users/{id}` with a whole user representation.
    pub(crate) async fn replace_user_document(
        &self,
        user_id: &str,
        document: &serde_json::Value,
    ) -> Result<(), KeycloakError> {
        self.put_json(self.admin_url(&["users", user_id]), document).await
    }

    /// `GET users/{id}/role-mappings/realm/composite`: the user's effective realm roles, those
    /// granted directly, through groups (and their ancestors) and through composite roles.
    pub(crate) async fn effective_realm_roles(&self, user_id: &str) -> Result<Vec<String>, KeycloakError> {
        let url = self.admin_url(&["users", user_id, "role-mappings", "realm", "composite"]);
        let roles: Vec<RoleRepresentation> = self.get_json(url, &[]).await?;
        Ok(roles.into_iter().map(|role| role.name).collect())
    }

    /// `GET users/{id}/role-mappings/clients/{client uuid}/composite`: the user's effective roles
    /// of one client.
    pub(crate) async fn effective_client_roles(
        &self,
        user_id: &str,
        client_uuid: &str,
    ) -> Result<Vec<String>, KeycloakError> {
        let url = self.admin_url(&[
            "users",
            user_id,
            "role-mappings",
            "clients",
            client_uuid,
            "composite",
        ]);
        let roles: Vec<RoleRepresentation> = self.get_json(url, &[]).await?;
        Ok(roles.into_iter().map(|role| role.name).collect())
    }

    /// `GET users/{id}/groups`, every page: the groups the user is a direct member of.
    pub(crate) async fn user_groups(&self, user_id: &str) -> Result<Vec<GroupRepresentation>, KeycloakError> {
        let page_size = self.settings().page_size;
        let url = self.admin_url(&["users", user_id, "groups"]);
        let mut groups: Vec<GroupRepresentation> = Vec::new();
        loop {
            let query = [
                ("first", groups.len().to_string()),
                ("max", page_size.to_string()),
                ("briefRepresentation", "true".to_owned()),
            ];
            let page: Vec<GroupRepresentation> = self.get_json(url.clone(), &query).await?;
            let short_page = page.len() < page_size as usize;
            // A server that ignores `first` would send the same full page forever.
            if !short_page && page.iter().all(|group| groups.contains(group)) {
                return Err(KeycloakError::InvalidResponse {
                    call: format!("GET {}", url.path()),
                    message: "paging does not advance: a full page repeats groups already read".to_owned(),
                });
            }
            groups.extend(page);
            if short_page {
                return Ok(groups);
            }
        }
    }

    /// Forgets the client ids looked up so far (a client may have been recreated).
    pub(crate) async fn forget_client_uuids(&self) {
        self.client_uuids().lock().await.clear();
    }

    /// The internal id of the client `client_id` (`GET clients?clientId`), looked up once.
    pub(crate) async fn client_uuid(&self, client_id: &str) -> Result<String, KeycloakError> {
        let mut known = self.client_uuids().lock().await;
        if let Some(uuid) = known.get(client_id) {
            return Ok(uuid.clone());
        }
        let url = self.admin_url(&["clients"]);
        let query = [("clientId", client_id.to_owned())];
        let clients: Vec<ClientRepresentation> = self.get_json(url.clone(), &query).await?;
        // `clientId` is a search on some Keycloak versions; only the exact client counts.
        let Some(client) = clients.into_iter().find(|client| client.client_id == client_id) else {
            return Err(KeycloakError::InvalidResponse {
                call: format!("GET {}", url.path()),
                message: format!("realm has no client {client_id:?} (configured in client_roles)"),
            });
        };
        known.insert(client_id.to_owned(), client.id.clone());
        Ok(client.id)
    }
}

#[cfg(test)]
mod tests {
    use super::UserRepresentation;

    #[test]
    fn service_accounts_and_disabled_users_are_not_active_people() {
        let user = |json: &str| serde_json::from_str::<UserRepresentation>(json).expect("representation");
        assert!(user(r#"{"id":"1","username":"alice","enabled":true}"#).is_active_person());
        assert!(!user(r#"{"id":"2","username":"bob","enabled":false}"#).is_active_person());
        assert!(
            !user(r#"{"id":"3","username":"service-account-osam","enabled":true,"serviceAccountClientId":"osam"}"#)
                .is_active_person()
        );
        assert!(
            !user(r#"{"id":"4","username":"carol"}"#).is_active_person(),
            "no enabled field: fail closed"
        );
    }
}
