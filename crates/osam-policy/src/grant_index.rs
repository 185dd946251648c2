//! The per-principal grant index: catalog roles parsed once into hash tables, so a decision costs
//! at most two lookups per collection instead of a parse of every role string.

use std::collections::BTreeSet;

use rustc_hash::FxHashMap;

use crate::action::CatalogAction;
use crate::catalog_role::{CatalogRole, RolePattern};

/// Index of a role string in [`GrantIndex::roles`].
type RoleId = usize;

/// The grants of one action, by how specific the role is. FxHash is safe here: the tables are
/// built from the principal's own roles, and request values are only looked up, never inserted.
#[derive(Debug, Default, Clone)]
struct ActionGrants {
    any_owner_any_collection: Option<RoleId>,
    any_collection_by_owner: FxHashMap<String, RoleId>,
    any_owner_by_collection: FxHashMap<String, RoleId>,
    by_owner_then_collection: FxHashMap<String, FxHashMap<String, RoleId>>,
}

/// The owner-level part of a lookup, resolved once per request so that each collection then
/// costs at most two hash lookups.
#[derive(Debug, Clone, Copy)]
pub struct OwnerGrants<'a> {
    index: &'a GrantIndex,
    action_grants: &'a ActionGrants,
    exact_collections: Option<&'a FxHashMap<String, RoleId>>,
    every_collection: Option<RoleId>,
}

impl<'a> OwnerGrants<'a> {
    /// The role granting the action on `collection` of this owner, most specific role first.
    pub fn role_for(&self, collection: &str) -> Option<&'a str> {
        let role_id = self
            .exact_collections
            .and_then(|collections| collections.get(collection))
            .or_else(|| self.action_grants.any_owner_by_collection.get(collection))
            .copied()
            .or(self.every_collection)?;
        Some(self.index.role(role_id))
    }

    /// The role granting the action on every collection of this owner, if one does.
    pub fn role_for_every_collection(&self) -> Option<&'a str> {
        self.every_collection.map(|role_id| self.index.role(role_id))
    }
}

/// One grant of a principal, for reverse lookups (ListGrants).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ListedGrant<'a> {
    pub owner: &'a str,
    pub collection: &'a str,
    pub action: CatalogAction,
    pub role: &'a str,
}

/// A principal's catalog roles, parsed and indexed by action, owner and collection.
#[derive(Debug, Default, Clone)]
pub struct GrantIndex {
    roles: Vec<String>,
    per_action: [ActionGrants; 3],
}

impl GrantIndex {
    /// Builds the index from role strings; roles that are not catalog roles are skipped. When two
    /// roles give the same grant, the first in sorted order is the one reported.
    pub fn build(roles: &BTreeSet<String>) -> GrantIndex {
        let mut index = GrantIndex::default();
        for role in roles {
            let Some(parsed) = CatalogRole::parse(role) else {
                continue;
            };
            let role_id = index.roles.len();
            index.roles.push(role.clone());
            index.insert(parsed, role_id);
        }
        index
    }

    fn insert(&mut self, role: CatalogRole, role_id: RoleId) {
        let grants = &mut self.per_action[role.action.index()];
        match (role.owner, role.collection) {
            (RolePattern::Any, RolePattern::Any) => {
                grants.any_owner_any_collection.get_or_insert(role_id);
            }
            (RolePattern::Exact(owner), RolePattern::Any) => {
                grants.any_collection_by_owner.entry(owner).or_insert(role_id);
            }
            (RolePattern::Any, RolePattern::Exact(collection)) => {
                grants
                    .any_owner_by_collection
                    .entry(collection)
                    .or_insert(role_id);
            }
            (RolePattern::Exact(owner), RolePattern::Exact(collection)) => {
                grants
                    .by_owner_then_collection
                    .entry(owner)
                    .or_default()
                    .entry(collection)
                    .or_insert(role_id);
            }
        }
    }

    fn role(&self, role_id: RoleId) -> &str {
        &self.roles[role_id]
    }

    /// Resolves the owner-level grants of `action` on `owner`'s collections.
    pub fn for_owner(&self, owner: &str, action: CatalogAction) -> OwnerGrants<'_> {
        let action_grants = &self.per_action[action.index()];
        OwnerGrants {
            index: self,
            action_grants,
            exact_collections: action_grants.by_owner_then_collection.get(owner),
            every_collection: action_grants
                .any_collection_by_owner
                .get(owner)
                .copied()
                .or(action_grants.any_owner_any_collection),
        }
    }

    /// Every grant, sorted by owner, collection and action (`*` sorts before letters).
    pub fn list(&self) -> Vec<ListedGrant<'_>> {
        let mut listed = Vec::new();
        for action in CatalogAction::ALL {
            let action_grants = &self.per_action[action.index()];
            let grant =
                |owner: &'static str, collection: &'static str, role_id: RoleId| (owner, collection, role_id);
            let wildcard_grants = action_grants
                .any_owner_any_collection
                .map(|role_id| grant("*", "*", role_id));
            let owner_grants = action_grants
                .any_collection_by_owner
                .iter()
                .map(|(owner, role_id)| (owner.as_str(), "*", *role_id));
            let collection_grants = action_grants
                .any_owner_by_collection
                .iter()
                .map(|(collection, role_id)| ("*", collection.as_str(), *role_id));
            let exact_grants =
                action_grants
                    .by_owner_then_collection
                    .iter()
                    .flat_map(|(owner, collections)| {
                        collections
                            .iter()
                            .map(move |(collection, role_id)| (owner.as_str(), collection.as_str(), *role_id))
                    });
            let all_grants = wildcard_grants
                .into_iter()
                .chain(owner_grants)
                .chain(collection_grants)
                .chain(exact_grants);
            listed.extend(all_grants.map(|(owner, collection, role_id)| ListedGrant {
                owner,
                collection,
                action,
                role: self.role(role_id),
            }));
        }
        listed.sort();
        listed
    }
}
