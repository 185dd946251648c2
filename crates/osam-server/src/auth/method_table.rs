//! The one table that maps every RPC to what it requires. A method missing from the table is
//! denied; a test checks that every method of the contract has an entry.

/// What a method requires of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    /// Health and reflection: no token.
    Public,
    /// Any valid token.
    Authenticated,
    /// A valid token whose roles grant one of these scopes.
    AnyScope(&'static [&'static str]),
}

const CATALOG_CHECK: &[&str] = &["catalog:check", "catalog:check:any"];

/// `(gRPC path, requirement)` for every method osam serves.
const METHOD_TABLE: &[(&str, Requirement)] = &[
    (
        "/osam.v1.CatalogAuthz/Check",
        Requirement::AnyScope(CATALOG_CHECK),
    ),
    (
        "/osam.v1.CatalogAuthz/BatchCheck",
        Requirement::AnyScope(CATALOG_CHECK),
    ),
    (
        "/osam.v1.CatalogAuthz/ListGrants",
        Requirement::AnyScope(CATALOG_CHECK),
    ),
    (
        "/osam.v1.RightsService/GetUserRights",
        Requirement::AnyScope(&["rights:read"]),
    ),
    (
        "/osam.v1.RightsService/ApplyUserRights",
        Requirement::AnyScope(&["rights:apply"]),
    ),
    (
        "/osam.v1.RightsService/GetUserInfo",
        Requirement::AnyScope(&["users:read"]),
    ),
    ("/osam.v1.RightsService/WhoAmI", Requirement::Authenticated),
    (
        "/osam.v1.AccountService/SyncAccounts",
        Requirement::AnyScope(&["accounts:sync"]),
    ),
    (
        "/osam.v1.AccountService/GetSyncStatus",
        Requirement::AnyScope(&["accounts:sync"]),
    ),
    (
        "/osam.v1.AccountService/ListAccounts",
        Requirement::AnyScope(&["accounts:read"]),
    ),
    (
        "/osam.v1.AccountService/GetMyCredentials",
        Requirement::Authenticated,
    ),
    (
        "/osam.v1.AccountService/GetStorageConfiguration",
        Requirement::AnyScope(&["storage:read"]),
    ),
];

/// Services whose every method is public.
const PUBLIC_SERVICES: &[&str] = &[
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
];

/// The label a call's path gets in metrics: a method of the table, a public service's name, or
/// `unknown`; always static, so recording a call allocates nothing and a scanner cannot grow the
/// label set.
pub fn metric_label(path: &str) -> &'static str {
    if let Some(service) = PUBLIC_SERVICES.iter().find(|service| path.starts_with(**service)) {
        return service;
    }
    METHOD_TABLE
        .iter()
        .find(|(method, _)| *method == path)
        .map_or("unknown", |(method, _)| method)
}

/// The requirement of the method at `path`, or `None` when the method is not in the table.
pub fn requirement(path: &str) -> Option<Requirement> {
    if PUBLIC_SERVICES.iter().any(|service| path.starts_with(service)) {
        return Some(Requirement::Public);
    }
    METHOD_TABLE
        .iter()
        .find(|(method, _)| *method == path)
        .map(|(_, requirement)| *requirement)
}

#[cfg(test)]
mod tests {
    use prost::Message;
    use prost_types::FileDescriptorSet;

    use super::*;

    #[test]
    fn every_contract_method_has_an_entry() {
        let descriptors = FileDescriptorSet::decode(osam_proto::FILE_DESCRIPTOR_SET).expect("descriptor set");
        let mut methods = Vec::new();
        for file in &descriptors.file {
            for service in &file.service {
                for method in &service.method {
                    methods.push(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
        assert_eq!(methods.len(), 12, "{methods:?}");
        for method in &methods {
            assert!(
                requirement(method).is_some(),
                "{method} has no entry in the method table"
            );
        }
        assert_eq!(
            methods.len(),
            METHOD_TABLE.len(),
            "the table lists a method the contract does not have"
        );
    }

    #[test]
    fn unknown_methods_have_no_entry() {
        assert_eq!(requirement("/osam.v1.CatalogAuthz/Delete"), None);
        assert_eq!(requirement("/grpc.health.v1.Healthy/Check"), None);
        assert_eq!(
            requirement("/grpc.health.v1.Health/Check"),
            Some(Requirement::Public)
        );
    }
}
