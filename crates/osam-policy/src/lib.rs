//! The pure domain of osam: what a role means, what a principal may do on the catalog, which
//! scopes roles grant, and the static directory format. No I/O, no async runtime: every rule of
//! DESIGN.md section 3 can be read here top to bottom and tested without a server.

#![forbid(unsafe_code)]

pub mod abac;
pub mod accounts;
pub mod action;
pub mod bucket_config;
pub mod bucket_source;
pub mod catalog_role;
pub mod decision;
pub mod directory;
pub mod displayed_name;
pub mod grant_index;
pub mod group_path;
pub mod policy_document;
pub mod principal;
pub mod s3_rights;
pub mod scopes;
pub mod static_directory;
pub mod sync_plan;

pub use abac::{AccessList, ResourceAttributes};
pub use action::CatalogAction;
pub use bucket_config::{
    BucketConfig, BucketConfigError, BucketName, BucketNameError, BucketRule, RuleValue,
};
pub use catalog_role::{CatalogRole, RolePattern};
pub use decision::{CatalogPolicy, CatalogRequest, CollectionDecision, Decision, Reason};
pub use directory::{Directory, DirectoryError, DirectoryFuture, DirectoryUser};
pub use displayed_name::displayed_name;
pub use grant_index::{GrantIndex, ListedGrant};
pub use group_path::{GroupPath, GroupPathError};
pub use policy_document::{PolicyDocument, PolicyDocumentError, Statement};
pub use principal::Principal;
pub use s3_rights::{PathSegment, RightsLevel, RightsPath, S3Rights};
pub use scopes::{RoleScopeTable, ScopeEdit, ScopeError};
pub use sync_plan::{
    AccountLink, DeleteShare, DeleteShareError, PlanRefusal, SyncCounts, SyncPlan, SyncUser, marker_owner,
};
