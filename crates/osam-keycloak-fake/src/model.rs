//! The realm the fake serves: users, realm and client roles, the group tree, admin tokens and
//! signing keys, with Keycloak's rules for effective roles. Plain data, no I/O; the server holds
//! it behind one mutex.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::FakeUser;
use crate::signing::{SigningKey, random_token, random_uuid};

pub(crate) const DEFAULT_ADMIN_TOKEN_LIFETIME: Duration = Duration::from_secs(300);
const ACCOUNT_CLIENT_ID: &str = "account";

/// A role named by where it lives: in the realm, or in one client (by its clientId).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RoleRef {
    Realm(String),
    Client { client_id: String, role: String },
}

#[derive(Debug)]
pub(crate) struct StoredRole {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub composites: BTreeSet<RoleRef>,
}

impl StoredRole {
    fn new(name: &str) -> StoredRole {
        StoredRole {
            id: random_uuid(),
            name: name.to_owned(),
            description: None,
            composites: BTreeSet::new(),
        }
    }
}

pub(crate) struct StoredClient {
    pub id: String,
    pub client_id: String,
    /// Set for service clients, which may use the client-credentials grant.
    pub secret: Option<String>,
    pub roles: BTreeMap<String, StoredRole>,
}

pub(crate) struct StoredGroup {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub realm_roles: BTreeSet<String>,
}

pub(crate) struct StoredUser {
    pub id: String,
    pub username: String,
    pub enabled: bool,
    pub email: Option<String>,
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub attributes: BTreeMap<String, Vec<String>>,
    pub created_timestamp_millis: u64,
    pub realm_roles: BTreeSet<String>,
    pub client_roles: BTreeSet<RoleRef>,
    pub group_ids: BTreeSet<String>,
}

struct IssuedAdminToken {
    issued_at: Instant,
    lifetime: Duration,
}

/// Why the token endpoint refused a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClientAuthenticationError {
    UnknownClient,
    WrongSecret,
}

pub(crate) struct RealmState {
    pub realm_id: String,
    realm_name: String,
    /// Keyed by username, so listing is ordered by username as in Keycloak.
    users: BTreeMap<String, StoredUser>,
    usernames_by_id: HashMap<String, String>,
    realm_roles: BTreeMap<String, StoredRole>,
    /// Keyed by clientId.
    clients: BTreeMap<String, StoredClient>,
    groups: BTreeMap<String, StoredGroup>,
    admin_tokens: HashMap<String, IssuedAdminToken>,
    pub admin_token_lifetime: Duration,
    /// Oldest first; the last one signs.
    signing_keys: Vec<Arc<SigningKey>>,
}

impl RealmState {
    /// A realm as Keycloak creates it: `offline_access`, `uma_authorization`, the `account`
    /// client's roles, and the `default-roles-{realm}` composite every user receives.
    pub(crate) fn new(realm_name: &str, signing_key: SigningKey) -> RealmState {
        let mut state = RealmState {
            realm_id: random_uuid(),
            realm_name: realm_name.to_owned(),
            users: BTreeMap::new(),
            usernames_by_id: HashMap::new(),
            realm_roles: BTreeMap::new(),
            clients: BTreeMap::new(),
            groups: BTreeMap::new(),
            admin_tokens: HashMap::new(),
            admin_token_lifetime: DEFAULT_ADMIN_TOKEN_LIFETIME,
            signing_keys: vec![Arc::new(signing_key)],
        };
        state.ensure_realm_role("offline_access").description = Some("${role_offline-access}".to_owned());
        state.ensure_realm_role("uma_authorization").description =
            Some("${role_uma_authorization}".to_owned());
        state.add_client_role(ACCOUNT_CLIENT_ID, "view-profile");
        state.add_client_role(ACCOUNT_CLIENT_ID, "manage-account-links");
        state.add_client_role(ACCOUNT_CLIENT_ID, "manage-account");
        state
            .ensure_client_role(ACCOUNT_CLIENT_ID, "manage-account")
            .composites
            .insert(RoleRef::Client {
                client_id: ACCOUNT_CLIENT_ID.to_owned(),
                role: "manage-account-links".to_owned(),
            });
        let default_roles_name = state.default_roles_name();
        let default_roles = state.ensure_realm_role(&default_roles_name);
        default_roles.description = Some("${role_default-roles}".to_owned());
        default_roles.composites.extend([
            RoleRef::Realm("offline_access".to_owned()),
            RoleRef::Realm("uma_authorization".to_owned()),
            RoleRef::Client {
                client_id: ACCOUNT_CLIENT_ID.to_owned(),
                role: "view-profile".to_owned(),
            },
            RoleRef::Client {
                client_id: ACCOUNT_CLIENT_ID.to_owned(),
                role: "manage-account".to_owned(),
            },
        ]);
        state
    }

    pub(crate) fn default_roles_name(&self) -> String {
        format!("default-roles-{}", self.realm_name.to_lowercase())
    }

    // ----- roles and clients -----

    pub(crate) fn ensure_realm_role(&mut self, name: &str) -> &mut StoredRole {
        self.realm_roles
            .entry(name.to_owned())
            .or_insert_with(|| StoredRole::new(name))
    }

    pub(crate) fn add_realm_role(&mut self, name: &str, composites: &[&str]) {
        for composite in composites {
            self.ensure_realm_role(composite);
        }
        let role = self.ensure_realm_role(name);
        role.composites.extend(
            composites
                .iter()
                .map(|composite| RoleRef::Realm((*composite).to_owned())),
        );
    }

    pub(crate) fn ensure_client(&mut self, client_id: &str) -> &mut StoredClient {
        self.clients
            .entry(client_id.to_owned())
            .or_insert_with(|| StoredClient {
                id: random_uuid(),
                client_id: client_id.to_owned(),
                secret: None,
                roles: BTreeMap::new(),
            })
    }

    /// The client gets a new internal id, as when it is deleted and created again (a realm
    /// re-import); its roles and their mappings are kept.
    pub(crate) fn recreate_client(&mut self, client_id: &str) {
        self.ensure_client(client_id).id = random_uuid();
    }

    pub(crate) fn add_service_client(&mut self, client_id: &str, secret: &str) {
        self.ensure_client(client_id).secret = Some(secret.to_owned());
    }

    pub(crate) fn ensure_client_role(&mut self, client_id: &str, role: &str) -> &mut StoredRole {
        self.ensure_client(client_id)
            .roles
            .entry(role.to_owned())
            .or_insert_with(|| StoredRole::new(role))
    }

    pub(crate) fn add_client_role(&mut self, client_id: &str, role: &str) {
        self.ensure_client_role(client_id, role);
    }

    pub(crate) fn clients(&self) -> impl Iterator<Item = &StoredClient> {
        self.clients.values()
    }

    pub(crate) fn client_by_uuid(&self, id: &str) -> Option<&StoredClient> {
        self.clients.values().find(|client| client.id == id)
    }

    fn role(&self, role: &RoleRef) -> Option<&StoredRole> {
        match role {
            RoleRef::Realm(name) => self.realm_roles.get(name),
            RoleRef::Client { client_id, role } => self.clients.get(client_id)?.roles.get(role),
        }
    }

    /// The role with the id of the realm or client that contains it.
    pub(crate) fn role_with_container(&self, role: &RoleRef) -> Option<(&StoredRole, &str)> {
        let stored = self.role(role)?;
        let container_id = match role {
            RoleRef::Realm(_) => self.realm_id.as_str(),
            RoleRef::Client { client_id, .. } => self.clients.get(client_id)?.id.as_str(),
        };
        Some((stored, container_id))
    }

    // ----- groups -----

    /// Creates every missing group along `path` ("/a/b/c") and returns the last one's id.
    pub(crate) fn ensure_group(&mut self, path: &str) -> String {
        let segments: Vec<&str> = path.split('/').filter(|segment| !segment.is_empty()).collect();
        assert!(!segments.is_empty(), "group path {path:?} names no group");
        let mut parent_id: Option<String> = None;
        for segment in segments {
            let existing = self
                .groups
                .values()
                .find(|group| group.name == segment && group.parent_id == parent_id)
                .map(|group| group.id.clone());
            let id = existing.unwrap_or_else(|| {
                let group = StoredGroup {
                    id: random_uuid(),
                    name: segment.to_owned(),
                    parent_id: parent_id.clone(),
                    realm_roles: BTreeSet::new(),
                };
                let id = group.id.clone();
                self.groups.insert(id.clone(), group);
                id
            });
            parent_id = Some(id);
        }
        parent_id.unwrap_or_default()
    }

    pub(crate) fn add_group(&mut self, path: &str, realm_roles: &[&str]) {
        for role in realm_roles {
            self.ensure_realm_role(role);
        }
        let group_id = self.ensure_group(path);
        if let Some(group) = self.groups.get_mut(&group_id) {
            group
                .realm_roles
                .extend(realm_roles.iter().map(|role| (*role).to_owned()));
        }
    }

    pub(crate) fn group(&self, id: &str) -> Option<&StoredGroup> {
        self.groups.get(id)
    }

    /// The full path, "/a/b/c", of a group.
    pub(crate) fn group_path(&self, id: &str) -> String {
        let mut names = Vec::new();
        let mut current = self.groups.get(id);
        while let Some(group) = current {
            names.push(group.name.as_str());
            current = group
                .parent_id
                .as_deref()
                .and_then(|parent| self.groups.get(parent));
        }
        names.reverse();
        format!("/{}", names.join("/"))
    }

    pub(crate) fn subgroup_count(&self, id: &str) -> usize {
        self.groups
            .values()
            .filter(|group| group.parent_id.as_deref() == Some(id))
            .count()
    }

    /// A group and all its ancestors, innermost first.
    fn group_and_ancestors(&self, id: &str) -> Vec<&StoredGroup> {
        let mut chain = Vec::new();
        let mut current = self.groups.get(id);
        while let Some(group) = current {
            chain.push(group);
            current = group
                .parent_id
                .as_deref()
                .and_then(|parent| self.groups.get(parent));
        }
        chain
    }

    // ----- users -----

    /// Adds a user; usernames are lowercased, as Keycloak stores them.
    pub(crate) fn add_user(&mut self, user: FakeUser) -> String {
        let username = user.username.to_lowercase();
        assert!(
            !self.users.contains_key(&username),
            "FakeKeycloak already has a user named {username:?}"
        );
        let id = random_uuid();
        let stored = StoredUser {
            id: id.clone(),
            username: username.clone(),
            enabled: user.enabled,
            email_verified: user.email.is_some(),
            email: user.email,
            first_name: user.first_name,
            last_name: user.last_name,
            attributes: user.attributes,
            created_timestamp_millis: unix_millis(),
            realm_roles: BTreeSet::new(),
            client_roles: BTreeSet::new(),
            group_ids: BTreeSet::new(),
        };
        self.usernames_by_id.insert(id.clone(), username.clone());
        self.users.insert(username, stored);
        id
    }

    pub(crate) fn remove_user(&mut self, username: &str) {
        if let Some(user) = self.users.remove(&username.to_lowercase()) {
            self.usernames_by_id.remove(&user.id);
        }
    }

    /// The user named `username`; a test naming a user it never added is a bug in the test.
    pub(crate) fn user_named(&self, username: &str) -> &StoredUser {
        self.users
            .get(&username.to_lowercase())
            .unwrap_or_else(|| panic!("FakeKeycloak has no user named {username:?}"))
    }

    pub(crate) fn user_named_mut(&mut self, username: &str) -> &mut StoredUser {
        self.users
            .get_mut(&username.to_lowercase())
            .unwrap_or_else(|| panic!("FakeKeycloak has no user named {username:?}"))
    }

    pub(crate) fn user_by_id(&self, id: &str) -> Option<&StoredUser> {
        self.users.get(self.usernames_by_id.get(id)?)
    }

    pub(crate) fn user_by_id_mut(&mut self, id: &str) -> Option<&mut StoredUser> {
        let username = self.usernames_by_id.get(id)?;
        self.users.get_mut(username)
    }

    /// Every user, ordered by username.
    pub(crate) fn users(&self) -> impl Iterator<Item = &StoredUser> {
        self.users.values()
    }

    pub(crate) fn grant_realm_role(&mut self, username: &str, role: &str) {
        self.ensure_realm_role(role);
        self.user_named_mut(username).realm_roles.insert(role.to_owned());
    }

    pub(crate) fn revoke_realm_role(&mut self, username: &str, role: &str) {
        self.user_named_mut(username).realm_roles.remove(role);
    }

    pub(crate) fn grant_client_role(&mut self, username: &str, client_id: &str, role: &str) {
        self.ensure_client_role(client_id, role);
        self.user_named_mut(username)
            .client_roles
            .insert(RoleRef::Client {
                client_id: client_id.to_owned(),
                role: role.to_owned(),
            });
    }

    pub(crate) fn join_group(&mut self, username: &str, path: &str) {
        self.user_named(username);
        let group_id = self.ensure_group(path);
        self.user_named_mut(username).group_ids.insert(group_id);
    }

    /// Keycloak's effective role mappings of a user: direct realm and client mappings, the
    /// realm's default roles, the roles of every group the user is in and of those groups'
    /// ancestors, all expanded through composites (transitively; cycles are harmless).
    pub(crate) fn effective_roles(&self, user: &StoredUser) -> BTreeSet<RoleRef> {
        let mut pending: VecDeque<RoleRef> = VecDeque::new();
        pending.push_back(RoleRef::Realm(self.default_roles_name()));
        pending.extend(user.realm_roles.iter().cloned().map(RoleRef::Realm));
        pending.extend(user.client_roles.iter().cloned());
        for group_id in &user.group_ids {
            for group in self.group_and_ancestors(group_id) {
                pending.extend(group.realm_roles.iter().cloned().map(RoleRef::Realm));
            }
        }
        let mut effective = BTreeSet::new();
        while let Some(role) = pending.pop_front() {
            if effective.contains(&role) {
                continue;
            }
            if let Some(stored) = self.role(&role) {
                pending.extend(stored.composites.iter().cloned());
                effective.insert(role);
            }
        }
        effective
    }

    /// Effective realm role names of a user, sorted.
    pub(crate) fn effective_realm_role_names(&self, user: &StoredUser) -> Vec<String> {
        self.effective_roles(user)
            .into_iter()
            .filter_map(|role| match role {
                RoleRef::Realm(name) => Some(name),
                RoleRef::Client { .. } => None,
            })
            .collect()
    }

    /// Effective client roles of a user, grouped by clientId, sorted.
    pub(crate) fn effective_client_role_names(&self, user: &StoredUser) -> BTreeMap<String, Vec<String>> {
        let mut by_client: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for role in self.effective_roles(user) {
            if let RoleRef::Client { client_id, role } = role {
                by_client.entry(client_id).or_default().push(role);
            }
        }
        by_client
    }

    // ----- admin tokens -----

    pub(crate) fn authenticate_client(
        &self,
        client_id: &str,
        secret: &str,
    ) -> Result<(), ClientAuthenticationError> {
        let client = self
            .clients
            .get(client_id)
            .ok_or(ClientAuthenticationError::UnknownClient)?;
        match &client.secret {
            Some(expected) if constant_time_equal(expected.as_bytes(), secret.as_bytes()) => Ok(()),
            _ => Err(ClientAuthenticationError::WrongSecret),
        }
    }

    /// Issues an opaque admin token valid for the current admin token lifetime.
    pub(crate) fn issue_admin_token(&mut self) -> (String, Duration) {
        let token = random_token();
        let lifetime = self.admin_token_lifetime;
        self.admin_tokens.insert(
            token.clone(),
            IssuedAdminToken {
                issued_at: Instant::now(),
                lifetime,
            },
        );
        (token, lifetime)
    }

    pub(crate) fn admin_token_is_valid(&self, token: &str) -> bool {
        self.admin_tokens
            .get(token)
            .is_some_and(|issued| issued.issued_at.elapsed() < issued.lifetime)
    }

    pub(crate) fn expire_admin_tokens(&mut self) {
        self.admin_tokens.clear();
    }

    // ----- signing keys -----

    pub(crate) fn current_signing_key(&self) -> Arc<SigningKey> {
        let newest = self.signing_keys.last();
        Arc::clone(newest.expect("a realm always has a signing key"))
    }

    /// Published keys, newest first.
    pub(crate) fn signing_keys(&self) -> impl Iterator<Item = &SigningKey> {
        self.signing_keys.iter().rev().map(|key| key.as_ref())
    }

    pub(crate) fn add_signing_key(&mut self, key: SigningKey) {
        self.signing_keys.push(Arc::new(key));
    }
}

pub(crate) fn unix_millis() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0_u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn realm() -> RealmState {
        RealmState::new("Test", SigningKey::generate())
    }

    #[test]
    fn effective_roles_follow_groups_ancestors_and_composites_without_looping() {
        let mut state = realm();
        state.add_realm_role("a", &["b"]);
        state.add_realm_role("b", &["a", "c"]);
        state.add_group("/top/middle/leaf", &["leaf-role"]);
        state.add_group("/top", &["a"]);
        state.add_user(FakeUser::new("Alice"));
        state.join_group("alice", "/top/middle/leaf");
        let alice = state.user_named("alice");
        let roles = state.effective_realm_role_names(alice);
        assert_eq!(
            roles,
            [
                "a",
                "b",
                "c",
                "default-roles-test",
                "leaf-role",
                "offline_access",
                "uma_authorization"
            ]
        );
        let client_roles = state.effective_client_role_names(alice);
        assert_eq!(
            client_roles["account"],
            ["manage-account", "manage-account-links", "view-profile"]
        );
    }

    #[test]
    fn group_paths_are_rebuilt_from_parents() {
        let mut state = realm();
        let leaf = state.ensure_group("/institutions/esa/ops");
        assert_eq!(state.group_path(&leaf), "/institutions/esa/ops");
        assert_eq!(state.ensure_group("institutions/esa/ops"), leaf);
        let esa = state.ensure_group("/institutions/esa");
        assert_eq!(state.subgroup_count(&esa), 1);
    }
}
