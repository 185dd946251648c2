//! The three catalog actions. A role grants exactly one of them; none implies another.

use std::fmt;

/// What a user may do on a catalog collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CatalogAction {
    Read,
    Write,
    Download,
}

impl CatalogAction {
    /// Every action, in the order used for sorting and indexing.
    pub const ALL: [CatalogAction; 3] = [CatalogAction::Read, CatalogAction::Write, CatalogAction::Download];

    /// The action's name as it appears at the end of a catalog role (case-sensitive).
    pub fn as_str(self) -> &'static str {
        match self {
            CatalogAction::Read => "read",
            CatalogAction::Write => "write",
            CatalogAction::Download => "download",
        }
    }

    /// Parses the exact lower-case name used in roles; `READ` is not an action.
    pub fn from_role_suffix(name: &str) -> Option<CatalogAction> {
        CatalogAction::ALL
            .into_iter()
            .find(|action| action.as_str() == name)
    }

    /// A dense index, for per-action tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CatalogAction {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}
