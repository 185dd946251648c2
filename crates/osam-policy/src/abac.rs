//! Attribute-based grants: access lists stored on a resource by the catalog (read/write groups and
//! users, an optional download list, public read).

use crate::action::CatalogAction;
use crate::decision::Reason;
use crate::group_path::GroupPath;

/// Who an access list admits: members of the groups (or of their subgroups) and the users named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessList {
    pub groups: Vec<GroupPath>,
    pub users: Vec<String>,
}

impl AccessList {
    /// The rule: a list admits a subject it names, or a subject with a group that one of its
    /// groups contains (`/a` admits members of `/a/b`, not of `/ab`).
    fn admits<'a>(&'a self, username: &str, subject_groups: &[GroupPath]) -> Option<Reason<'a>> {
        if let Some(user) = self.users.iter().find(|user| user.as_str() == username) {
            return Some(Reason::ResourceUser(user));
        }
        self.groups
            .iter()
            .find(|granted| subject_groups.iter().any(|group| granted.contains(group)))
            .map(Reason::ResourceGroup)
    }
}

/// The access attributes of a resource, as given in a check request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceAttributes {
    pub read: AccessList,
    pub write: AccessList,
    /// Replaces the read list for download when present.
    pub download: Option<AccessList>,
    /// Anyone authenticated may read; grants neither download nor write.
    pub public_read: bool,
}

impl ResourceAttributes {
    /// The rule: read is granted by `public_read` or the read list; write by the write list;
    /// download by the download list when given, otherwise by the read list (not by public read,
    /// so that a public listing never exposes data downloads).
    pub fn grant<'a>(
        &'a self,
        username: &str,
        subject_groups: &[GroupPath],
        action: CatalogAction,
    ) -> Option<Reason<'a>> {
        match action {
            CatalogAction::Read if self.public_read => Some(Reason::PublicRead),
            CatalogAction::Read => self.read.admits(username, subject_groups),
            CatalogAction::Write => self.write.admits(username, subject_groups),
            CatalogAction::Download => self
                .download
                .as_ref()
                .unwrap_or(&self.read)
                .admits(username, subject_groups),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(paths: &[&str]) -> Vec<GroupPath> {
        paths
            .iter()
            .map(|path| GroupPath::parse(path).expect("valid"))
            .collect()
    }

    fn attributes() -> ResourceAttributes {
        ResourceAttributes {
            read: AccessList {
                groups: groups(&["/institutions/esa"]),
                users: vec!["rita".into()],
            },
            write: AccessList {
                groups: groups(&["/institutions/esa/ops"]),
                users: vec![],
            },
            download: None,
            public_read: false,
        }
    }

    #[test]
    fn a_parent_group_admits_members_of_its_subgroups() {
        let attributes = attributes();
        let reason = attributes.grant("x", &groups(&["/institutions/esa/ops"]), CatalogAction::Read);
        assert!(
            matches!(reason, Some(Reason::ResourceGroup(group)) if group.as_str() == "/institutions/esa")
        );
    }

    #[test]
    fn a_subgroup_does_not_admit_members_of_its_parent() {
        let attributes = attributes();
        assert_eq!(
            attributes.grant("x", &groups(&["/institutions/esa"]), CatalogAction::Write),
            None
        );
    }

    #[test]
    fn group_prefixes_are_not_parents() {
        assert_eq!(
            attributes().grant("x", &groups(&["/institutions/esabis"]), CatalogAction::Read),
            None
        );
    }

    #[test]
    fn users_are_matched_by_name() {
        assert_eq!(
            attributes().grant("rita", &[], CatalogAction::Read),
            Some(Reason::ResourceUser("rita"))
        );
        assert_eq!(attributes().grant("rita", &[], CatalogAction::Write), None);
    }

    #[test]
    fn download_follows_read_unless_given() {
        let mut attributes = attributes();
        assert_eq!(
            attributes.grant("rita", &[], CatalogAction::Download),
            Some(Reason::ResourceUser("rita"))
        );
        attributes.download = Some(AccessList::default());
        assert_eq!(attributes.grant("rita", &[], CatalogAction::Download), None);
    }

    #[test]
    fn public_read_grants_read_only() {
        let attributes = ResourceAttributes {
            public_read: true,
            ..ResourceAttributes::default()
        };
        assert_eq!(
            attributes.grant("x", &[], CatalogAction::Read),
            Some(Reason::PublicRead)
        );
        assert_eq!(attributes.grant("x", &[], CatalogAction::Download), None);
        assert_eq!(attributes.grant("x", &[], CatalogAction::Write), None);
    }
}
