//! The catalog decision: may a principal perform an action on collections of an owner?
//!
//! Allowed iff every collection is granted by at least one rule, checked in this order: the
//! subject is the owner; a catalog role (after removing the `<owner>_` prefix once when asked);
//! the resource attributes (ABAC); an admin bypass role. An empty collection list is allowed.

use std::collections::BTreeSet;

use crate::abac::ResourceAttributes;
use crate::action::CatalogAction;
use crate::group_path::GroupPath;
use crate::principal::Principal;

/// Why a collection was granted, or that nothing granted it. Borrowed from the principal and the
/// request, so an explained decision allocates only its list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason<'a> {
    /// The subject owns the collections.
    Owner,
    /// This catalog role grants the action.
    CatalogRole(&'a str),
    /// This resource group contains one of the subject's groups.
    ResourceGroup(&'a GroupPath),
    /// The resource attributes name the subject.
    ResourceUser(&'a str),
    /// The resource is public for reading.
    PublicRead,
    /// The subject holds this admin bypass role.
    AdminRole(&'a str),
    /// Nothing grants the action.
    NoGrant,
}

/// The outcome for one collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CollectionDecision<'a> {
    pub allowed: bool,
    pub reason: Reason<'a>,
}

/// The outcome of a request: `collections` has one entry per requested collection, in order, when
/// the decision was explained, and is empty otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    pub allowed: bool,
    pub collections: Vec<CollectionDecision<'a>>,
}

/// One question: may the principal perform `action` on `collections` of `owner`?
#[derive(Debug, Clone, Copy)]
pub struct CatalogRequest<'a> {
    pub owner: &'a str,
    pub collections: &'a [String],
    pub action: CatalogAction,
    /// The collection ids are `<owner>_<collection>`: the prefix is removed once before matching.
    pub owner_prefix: bool,
    pub resource: Option<&'a ResourceAttributes>,
}

/// The configurable part of catalog decisions.
#[derive(Debug, Clone, Default)]
pub struct CatalogPolicy {
    admin_roles: BTreeSet<String>,
}

impl CatalogPolicy {
    /// A policy where holders of any of `admin_roles` are granted everything.
    pub fn new(admin_roles: impl IntoIterator<Item = String>) -> CatalogPolicy {
        CatalogPolicy {
            admin_roles: admin_roles.into_iter().collect(),
        }
    }

    /// Decides `request` for `principal`. Without `explain`, stops at the first collection that
    /// is not granted and returns no per-collection list.
    pub fn decide<'a>(
        &'a self,
        principal: &'a Principal,
        request: &CatalogRequest<'a>,
        explain: bool,
    ) -> Decision<'a> {
        if principal.username() == request.owner {
            let collections = if explain {
                vec![
                    CollectionDecision {
                        allowed: true,
                        reason: Reason::Owner
                    };
                    request.collections.len()
                ]
            } else {
                Vec::new()
            };
            return Decision {
                allowed: true,
                collections,
            };
        }

        let owner_grants = principal.grants().for_owner(request.owner, request.action);
        if !explain && owner_grants.role_for_every_collection().is_some() {
            return Decision {
                allowed: true,
                collections: Vec::new(),
            };
        }

        // Attribute and admin grants do not depend on the collection: computed at most once.
        let mut fallback: Option<Option<Reason<'a>>> = None;
        let mut fallback_reason = || {
            *fallback.get_or_insert_with(|| {
                let attribute_grant = request.resource.and_then(|resource| {
                    resource.grant(principal.username(), principal.groups(), request.action)
                });
                attribute_grant.or_else(|| self.admin_role_of(principal).map(Reason::AdminRole))
            })
        };

        let mut allowed = true;
        let mut collections = Vec::with_capacity(if explain { request.collections.len() } else { 0 });
        for requested_collection in request.collections {
            let collection = if request.owner_prefix {
                strip_owner_prefix(requested_collection, request.owner)
            } else {
                requested_collection.as_str()
            };
            let reason = owner_grants
                .role_for(collection)
                .map(Reason::CatalogRole)
                .or_else(&mut fallback_reason);
            let granted = reason.is_some();
            allowed &= granted;
            if explain {
                collections.push(CollectionDecision {
                    allowed: granted,
                    reason: reason.unwrap_or(Reason::NoGrant),
                });
            } else if !granted {
                break;
            }
        }
        Decision { allowed, collections }
    }

    /// The first admin bypass role the principal holds, if any.
    pub fn admin_role_of<'a>(&self, principal: &'a Principal) -> Option<&'a str> {
        if self.admin_roles.is_empty() {
            return None;
        }
        principal
            .roles()
            .iter()
            .find(|role| self.admin_roles.contains(*role))
            .map(String::as_str)
    }
}

/// Removes `<owner>_` once from the start of a collection id, as the reference's `removeprefix`.
fn strip_owner_prefix<'c>(collection: &'c str, owner: &str) -> &'c str {
    collection
        .strip_prefix(owner)
        .and_then(|rest| rest.strip_prefix('_'))
        .unwrap_or(collection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abac::AccessList;
    use crate::scopes::RoleScopeTable;

    fn principal(username: &str, roles: &[&str], groups: &[&str]) -> Principal {
        Principal::new(
            username,
            roles.iter().map(|role| role.to_string()),
            groups.iter().map(|group| GroupPath::parse(group).expect("valid")),
            &RoleScopeTable::empty(),
        )
    }

    fn collections(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn request<'a>(owner: &'a str, collections: &'a [String], action: CatalogAction) -> CatalogRequest<'a> {
        CatalogRequest {
            owner,
            collections,
            action,
            owner_prefix: false,
            resource: None,
        }
    }

    #[test]
    fn explained_decisions_name_the_role_per_collection() {
        let policy = CatalogPolicy::default();
        let subject = principal("u", &["rs_catalog_o:a_read", "rs_catalog_o:*_write"], &[]);
        let names = collections(&["a", "b"]);
        let decision = policy.decide(&subject, &request("o", &names, CatalogAction::Read), true);
        assert!(!decision.allowed);
        assert_eq!(
            decision.collections,
            vec![
                CollectionDecision {
                    allowed: true,
                    reason: Reason::CatalogRole("rs_catalog_o:a_read")
                },
                CollectionDecision {
                    allowed: false,
                    reason: Reason::NoGrant
                },
            ]
        );
    }

    #[test]
    fn the_most_specific_role_is_reported() {
        let policy = CatalogPolicy::default();
        let subject = principal("u", &["rs_catalog_*:*_read", "rs_catalog_o:a_read"], &[]);
        let names = collections(&["a"]);
        let decision = policy.decide(&subject, &request("o", &names, CatalogAction::Read), true);
        assert_eq!(
            decision.collections[0].reason,
            Reason::CatalogRole("rs_catalog_o:a_read")
        );
    }

    #[test]
    fn owners_are_granted_every_action() {
        let policy = CatalogPolicy::default();
        let subject = principal("o", &[], &[]);
        let names = collections(&["x"]);
        for action in CatalogAction::ALL {
            let decision = policy.decide(&subject, &request("o", &names, action), true);
            assert!(decision.allowed);
            assert_eq!(decision.collections[0].reason, Reason::Owner);
        }
    }

    #[test]
    fn resource_attributes_grant_when_roles_do_not() {
        let policy = CatalogPolicy::default();
        let subject = principal("u", &[], &["/esa/ops"]);
        let resource = ResourceAttributes {
            read: AccessList {
                groups: vec![GroupPath::parse("/esa").expect("valid")],
                users: vec![],
            },
            ..ResourceAttributes::default()
        };
        let names = collections(&["a", "b"]);
        let mut question = request("o", &names, CatalogAction::Read);
        question.resource = Some(&resource);
        let decision = policy.decide(&subject, &question, true);
        assert!(decision.allowed);
        assert!(
            matches!(decision.collections[1].reason, Reason::ResourceGroup(group) if group.as_str() == "/esa")
        );
        question.action = CatalogAction::Write;
        assert!(!policy.decide(&subject, &question, false).allowed);
    }

    #[test]
    fn admin_roles_bypass_only_when_configured() {
        let subject = principal("u", &["catalog_admin"], &[]);
        let names = collections(&["a"]);
        let question = request("o", &names, CatalogAction::Write);
        assert!(
            !CatalogPolicy::default()
                .decide(&subject, &question, false)
                .allowed
        );
        let policy = CatalogPolicy::new(["catalog_admin".to_string()]);
        let decision = policy.decide(&subject, &question, true);
        assert!(decision.allowed);
        assert_eq!(decision.collections[0].reason, Reason::AdminRole("catalog_admin"));
    }

    #[test]
    fn unexplained_decisions_return_no_list() {
        let policy = CatalogPolicy::default();
        let subject = principal("u", &["rs_catalog_o:*_read"], &[]);
        let names = collections(&["a", "b"]);
        let decision = policy.decide(&subject, &request("o", &names, CatalogAction::Read), false);
        assert!(decision.allowed);
        assert!(decision.collections.is_empty());
    }

    #[test]
    fn owner_prefix_is_removed_once_and_only_with_underscore() {
        assert_eq!(strip_owner_prefix("o_o_a", "o"), "o_a");
        assert_eq!(strip_owner_prefix("oa", "o"), "oa");
        assert_eq!(strip_owner_prefix("p_a", "o"), "p_a");
    }
}
