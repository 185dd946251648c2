//! The Keycloak `Directory`: users, their effective roles (realm roles and the roles of the
//! configured clients, inherited through groups and composites included), their group paths and
//! attributes, read through the admin API; attributes written by read-modify-write of the whole
//! user representation.
//!
//! Usernames are compared case-insensitively: Keycloak lowercases usernames when it stores them,
//! so `Alice` and `alice` name the same Keycloak user; the user returned carries Keycloak's
//! spelling. Disabled users are absent, as if deleted.
//!
//! Since Keycloak 24 the user profile drops attributes it does not declare; the realm must
//! declare the attributes osam writes (`obs-user`) or enable unmanaged attributes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use osam_policy::{Directory, DirectoryError, DirectoryFuture, DirectoryUser, GroupPath};

use crate::admin_api::{GroupRepresentation, UserRepresentation};
use crate::client::AdminClient;
use crate::error::KeycloakError;

/// How often the whole user list is read again when the realm changed while it was read.
const MAX_LISTING_PASSES: usize = 3;

pub struct KeycloakDirectory {
    client: AdminClient,
    /// Serialises osam's own attribute writes per user, so two read-modify-writes of one user
    /// cannot lose one another while writes to different users run at once.
    attribute_writes: std::sync::Mutex<HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>>,
}

impl KeycloakDirectory {
    pub fn new(client: AdminClient) -> KeycloakDirectory {
        KeycloakDirectory {
            client,
            attribute_writes: std::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn client(&self) -> &AdminClient {
        &self.client
    }

    /// The lock of `username`'s attribute writes, shared by the writes waiting for it.
    fn write_lock(&self, username: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .attribute_writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Keycloak usernames are case-insensitive: one lock per stored user.
        let key = username.to_lowercase();
        if let Some(lock) = locks.get(&key).and_then(std::sync::Weak::upgrade) {
            return lock;
        }
        // Locks nobody holds any more are dropped as the map grows.
        if locks.len() >= 1024 {
            locks.retain(|_, lock| lock.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(key, Arc::downgrade(&lock));
        lock
    }

    async fn find(&self, username: &str) -> Result<Option<DirectoryUser>, KeycloakError> {
        let Some(user) = self.enabled_user_named(username).await? else {
            return Ok(None);
        };
        let client_uuids = self.configured_client_uuids().await?;
        complete_user(self.client.clone(), Arc::new(client_uuids), user).await
    }

    async fn list(&self) -> Result<Vec<DirectoryUser>, KeycloakError> {
        let listed = self.list_every_user().await?;
        let client_uuids = Arc::new(self.configured_client_uuids().await?);
        let permits = Arc::new(tokio::sync::Semaphore::new(self.client.settings().concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for user in listed.into_iter().filter(UserRepresentation::is_active_person) {
            let client = self.client.clone();
            let client_uuids = client_uuids.clone();
            let permits = permits.clone();
            tasks.spawn(async move {
                // The semaphore is never closed, so acquiring only fails if it were.
                let _permit = permits.acquire_owned().await;
                complete_user(client, client_uuids, user).await
            });
        }
        let mut users = Vec::with_capacity(tasks.len());
        while let Some(joined) = tasks.join_next().await {
            let completed = joined.map_err(|error| KeycloakError::InvalidResponse {
                call: "reading the users' roles and groups".to_owned(),
                message: error.to_string(),
            })?;
            // Dropping `tasks` on error aborts the calls still running.
            if let Some(user) = completed? {
                users.push(user);
            }
        }
        users.sort_by(|left, right| left.username.cmp(&right.username));
        Ok(users)
    }

    /// Every user of the realm, disabled ones included, deduplicated by id. Keycloak pages by
    /// offset, so a user created or deleted during the listing shifts the pages; when the count
    /// before and after and the number of users read disagree, the listing is read again and the
    /// passes are merged, so no user is dropped (a user deleted meanwhile is skipped later, when
    /// their roles answer 404).
    async fn list_every_user(&self) -> Result<Vec<UserRepresentation>, KeycloakError> {
        let mut users_by_id = BTreeMap::new();
        for pass in 1..=MAX_LISTING_PASSES {
            let count_before = self.client.users_count().await?;
            let read_this_pass = self.read_every_page(&mut users_by_id).await?;
            let count_after = self.client.users_count().await?;
            if count_before == count_after && read_this_pass as u64 == count_after {
                break;
            }
            tracing::warn!(
                pass,
                count_before,
                count_after,
                read_this_pass,
                "the realm's users changed while they were listed, or its count disagrees with its listing"
            );
        }
        Ok(users_by_id.into_values().collect())
    }

    /// Reads `users` page by page until a short page; returns how many distinct users this pass
    /// read.
    async fn read_every_page(
        &self,
        users_by_id: &mut BTreeMap<String, UserRepresentation>,
    ) -> Result<usize, KeycloakError> {
        let page_size = self.client.settings().page_size;
        let mut ids_this_pass = BTreeSet::new();
        let mut first = 0u64;
        loop {
            let page = self.client.users_page(first, page_size).await?;
            let page_len = page.len();
            let mut new_on_page = 0;
            for user in page {
                if ids_this_pass.insert(user.id.clone()) {
                    new_on_page += 1;
                }
                users_by_id.insert(user.id.clone(), user);
            }
            if page_len < page_size as usize {
                return Ok(ids_this_pass.len());
            }
            // A server that ignores `first` would send the same full page forever.
            if new_on_page == 0 {
                return Err(KeycloakError::InvalidResponse {
                    call: format!("GET {}", self.client.admin_url(&["users"]).path()),
                    message: format!("paging does not advance at first={first}"),
                });
            }
            first += page_len as u64;
        }
    }

    /// The enabled user with this username, compared case-insensitively (an exact match first).
    async fn enabled_user_named(&self, username: &str) -> Result<Option<UserRepresentation>, KeycloakError> {
        let candidates = self.client.users_named(username).await?;
        let exact = candidates.iter().position(|user| user.username == username);
        let chosen = exact.or_else(|| {
            let wanted = username.to_lowercase();
            candidates
                .iter()
                .position(|user| user.username.to_lowercase() == wanted)
        });
        Ok(chosen
            .map(|index| candidates[index].clone())
            .filter(|user| user.enabled))
    }

    /// The UUIDs of the clients whose roles count, in the configured order.
    async fn configured_client_uuids(&self) -> Result<Vec<String>, KeycloakError> {
        let mut uuids = Vec::new();
        for client_id in &self.client.settings().client_roles {
            uuids.push(self.client.client_uuid(client_id).await?);
        }
        Ok(uuids)
    }

    async fn write_attribute(
        &self,
        username: &str,
        name: &str,
        values: Vec<String>,
    ) -> Result<(), DirectoryError> {
        let not_found = || DirectoryError::UserNotFound(username.to_owned());
        let write_lock = self.write_lock(username);
        let _write = write_lock.lock().await;
        let user = self
            .enabled_user_named(username)
            .await
            .map_err(unavailable)?
            .ok_or_else(not_found)?;
        let mut document = match self.client.user_document(&user.id).await {
            Err(error) if error.status() == Some(404) => return Err(not_found()),
            other => other.map_err(unavailable)?,
        };
        if document.get("enabled") != Some(&serde_json::Value::Bool(true)) {
            return Err(not_found());
        }
        set_attribute_in_document(&mut document, name, values).map_err(|message| {
            unavailable(KeycloakError::InvalidResponse {
                call: format!("GET {}", self.client.admin_url(&["users", &user.id]).path()),
                message,
            })
        })?;
        match self.client.replace_user_document(&user.id, &document).await {
            Err(error) if error.status() == Some(404) => Err(not_found()),
            other => other.map_err(unavailable),
        }
    }
}

/// Replaces `attributes[name]` of a user representation, leaving every other field as it is.
fn set_attribute_in_document(
    document: &mut serde_json::Value,
    name: &str,
    values: Vec<String>,
) -> Result<(), String> {
    let Some(fields) = document.as_object_mut() else {
        return Err("the user representation is not a JSON object".to_owned());
    };
    let attributes = fields
        .entry("attributes")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    if attributes.is_null() {
        *attributes = serde_json::Value::Object(serde_json::Map::new());
    }
    let Some(attributes) = attributes.as_object_mut() else {
        return Err("the user's attributes are not a JSON object".to_owned());
    };
    attributes.insert(
        name.to_owned(),
        serde_json::Value::Array(values.into_iter().map(serde_json::Value::String).collect()),
    );
    Ok(())
}

/// The user with their effective roles and groups, or `None` when they were deleted meanwhile.
async fn complete_user(
    client: AdminClient,
    client_uuids: Arc<Vec<String>>,
    user: UserRepresentation,
) -> Result<Option<DirectoryUser>, KeycloakError> {
    let user_reads = tokio::try_join!(
        client.effective_realm_roles(&user.id),
        client.user_groups(&user.id)
    );
    let (mut roles, groups) = match user_reads {
        Ok(read) => read,
        // Only the user's own endpoints tell that the user is gone.
        Err(error) if error.status() == Some(404) => {
            tracing::debug!(username = %user.username, "user deleted while being read; skipped");
            return Ok(None);
        }
        Err(error) => return Err(error),
    };
    for client_uuid in client_uuids.iter() {
        match client.effective_client_roles(&user.id, client_uuid).await {
            Ok(client_roles) => roles.extend(client_roles),
            // The user or the client vanished; a client recreated under a new id must not make
            // every user look deleted, so this is an error, and the ids are looked up again.
            Err(error) if error.status() == Some(404) => {
                client.forget_client_uuids().await;
                return Err(KeycloakError::InvalidResponse {
                    call: "reading a configured client's roles (client_roles)".to_owned(),
                    message: format!(
                        "404 for user {:?}: the user or a configured client is gone; client ids are looked up again at the next read",
                        user.username
                    ),
                });
            }
            Err(error) => return Err(error),
        }
    }
    Ok(Some(directory_user(user, roles, groups)))
}

/// The directory's view of a Keycloak user: roles sorted and deduplicated, group paths parsed
/// (an unparsable one is skipped with a warning), the person's name from first and last name.
fn directory_user(
    user: UserRepresentation,
    roles: Vec<String>,
    groups: Vec<GroupRepresentation>,
) -> DirectoryUser {
    let roles: BTreeSet<String> = roles.into_iter().collect();
    let mut group_paths = BTreeSet::new();
    for group in groups {
        let path = group.path.unwrap_or_default();
        match GroupPath::parse(&path) {
            Ok(path) => {
                group_paths.insert(path);
            }
            Err(error) => {
                tracing::warn!(username = %user.username, group = ?group.name, %error, "group skipped");
            }
        }
    }
    let first_name = user.first_name.unwrap_or_default();
    let last_name = user.last_name.unwrap_or_default();
    let name = format!("{} {}", first_name.trim(), last_name.trim())
        .trim()
        .to_owned();
    DirectoryUser {
        username: user.username,
        roles: roles.into_iter().collect(),
        groups: group_paths.into_iter().collect(),
        name: Some(name).filter(|name| !name.is_empty()),
        email: user.email.filter(|email| !email.is_empty()),
        attributes: user.attributes.unwrap_or_default(),
    }
}

fn unavailable(error: KeycloakError) -> DirectoryError {
    DirectoryError::Unavailable(error.to_string())
}

impl Directory for KeycloakDirectory {
    fn find_user<'a>(&'a self, username: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>> {
        Box::pin(async move { self.find(username).await.map_err(unavailable) })
    }

    fn list_users(&self) -> DirectoryFuture<'_, Vec<DirectoryUser>> {
        Box::pin(async move { self.list().await.map_err(unavailable) })
    }

    fn set_attribute<'a>(
        &'a self,
        username: &'a str,
        name: &'a str,
        values: Vec<String>,
    ) -> DirectoryFuture<'a, ()> {
        Box::pin(async move { self.write_attribute(username, name, values).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(first_name: Option<&str>, last_name: Option<&str>) -> UserRepresentation {
        UserRepresentation {
            id: "id-1".into(),
            username: "alice".into(),
            enabled: true,
            first_name: first_name.map(str::to_owned),
            last_name: last_name.map(str::to_owned),
            email: Some(String::new()),
            attributes: None,
            service_account_client_id: None,
        }
    }

    fn group(path: &str) -> GroupRepresentation {
        GroupRepresentation {
            path: Some(path.to_owned()),
            name: Some(path.rsplit('/').next().unwrap_or_default().to_owned()),
        }
    }

    #[test]
    fn the_name_joins_first_and_last_name_and_is_absent_when_both_are_empty() {
        let name = |first, last| directory_user(user(first, last), vec![], vec![]).name;
        assert_eq!(name(Some("Alice"), Some("Liddell")), Some("Alice Liddell".into()));
        assert_eq!(name(Some("Alice"), None), Some("Alice".into()));
        assert_eq!(name(None, Some(" Liddell ")), Some("Liddell".into()));
        assert_eq!(name(Some(" "), Some("")), None);
        assert_eq!(name(None, None), None);
    }

    #[test]
    fn roles_are_sorted_and_deduplicated_and_bad_group_paths_are_skipped() {
        let converted = directory_user(
            user(None, None),
            vec!["b".into(), "a".into(), "b".into()],
            vec![group("/x/y"), group("not-a-path"), group("/a"), group("//")],
        );
        assert_eq!(converted.roles, vec!["a".to_owned(), "b".to_owned()]);
        let paths: Vec<&str> = converted.groups.iter().map(GroupPath::as_str).collect();
        assert_eq!(paths, vec!["/a", "/x/y"]);
        assert_eq!(converted.email, None, "an empty email is no email");
    }

    #[test]
    fn writing_an_attribute_keeps_every_other_field() {
        let mut document = json!({
            "id": "id-1", "username": "alice", "enabled": true, "unknownField": {"kept": 1},
            "attributes": {"other": ["x"], "obs-user": ["old"]}
        });
        set_attribute_in_document(&mut document, "obs-user", vec!["new".into()]).expect("object");
        assert_eq!(
            document["attributes"],
            json!({"other": ["x"], "obs-user": ["new"]})
        );
        assert_eq!(document["unknownField"], json!({"kept": 1}));

        let mut without_attributes = json!({"id": "id-1", "attributes": null});
        set_attribute_in_document(&mut without_attributes, "a", vec![]).expect("object");
        assert_eq!(without_attributes["attributes"], json!({"a": []}));
        assert!(set_attribute_in_document(&mut json!([]), "a", vec![]).is_err());
    }
}
