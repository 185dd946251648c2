//! The pure domain of osam: what a role means, what a principal may do on the catalog, which
//! scopes roles grant, and the static directory format. No I/O, no async runtime: every rule of
//! DESIGN.md section 3 can be read here top to bottom and tested without a server.

#![forbid(unsafe_code)]

pub mod abac;
pub mod action;
pub mod catalog_role;
pub mod decision;
pub mod directory;
pub mod displayed_name;
pub mod grant_index;
pub mod group_path;
pub mod principal;
pub mod scopes;
pub mod static_directory;

pub use abac::{AccessList, ResourceAttributes};
pub use action::CatalogAction;
pub use catalog_role::{CatalogRole, RolePattern};
pub use decision::{CatalogPolicy, CatalogRequest, CollectionDecision, Decision, Reason};
pub use directory::{Directory, DirectoryError, DirectoryFuture, DirectoryUser};
pub use displayed_name::displayed_name;
pub use grant_index::{GrantIndex, ListedGrant};
pub use group_path::{GroupPath, GroupPathError};
pub use principal::Principal;
pub use scopes::{RoleScopeTable, ScopeEdit, ScopeError};
