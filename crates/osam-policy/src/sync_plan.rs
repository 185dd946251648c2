//! The account sync plan: which accounts to create, delete, keep or link again so that every
//! directory user has exactly one object-storage account. Pure: the server lists the directory
//! and the provider, asks for a plan, checks its refusal, then carries it out.
//!
//! Safety comes from ownership markers: an account is osam's to delete only when its marker is
//! exactly the configured template filled with a username, and a plan that would delete too large
//! a share of those accounts (an empty or broken directory answer) is refused unless forced.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use crate::accounts::{Account, MarkerTemplate, USERNAME_PLACEHOLDER};

/// A directory user as the sync sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncUser {
    pub username: String,
    /// The account id the user's link attribute names, if it is set.
    pub linked_account: Option<String>,
}

/// A directory user and the account that is theirs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccountLink {
    pub username: String,
    pub account_id: String,
}

/// What the sync should do, every list sorted so that the same inputs give the same plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    create: Vec<String>,
    relink: Vec<AccountLink>,
    delete: Vec<String>,
    keep: Vec<AccountLink>,
    duplicates: Vec<String>,
    skipped_users: Vec<String>,
    managed_accounts: usize,
}

/// The sizes of a plan's lists, for status reports and logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncCounts {
    pub create: usize,
    pub relink: usize,
    pub delete: usize,
    pub keep: usize,
    pub duplicates: usize,
    pub skipped_users: usize,
    pub managed_accounts: usize,
}

impl SyncPlan {
    /// Plans the sync of the provider's `accounts` (all of them, osam's or not) against the
    /// directory `users`; each decision is one of the rule functions of this module.
    pub fn compute(users: &[SyncUser], accounts: &[Account], template: &MarkerTemplate) -> SyncPlan {
        let markers = MarkerShape::of(template);
        let accounts_by_owner = managed_accounts_by_owner(&markers, accounts);
        let links_by_user = links_by_username(users);
        let no_accounts = BTreeSet::new();

        let mut plan = SyncPlan {
            managed_accounts: accounts_by_owner.values().map(BTreeSet::len).sum(),
            ..SyncPlan::default()
        };
        for (&username, links) in &links_by_user {
            if !can_own_an_account(&markers, username) {
                plan.skipped_users.push(username.to_owned());
                continue;
            }
            let own_accounts = accounts_by_owner.get(username).unwrap_or(&no_accounts);
            let chosen = chosen_account(own_accounts, links);
            match user_action(chosen, links) {
                UserAction::Keep(account_id) => plan.keep.push(link(username, account_id)),
                UserAction::Relink(account_id) => plan.relink.push(link(username, account_id)),
                UserAction::Create => plan.create.push(username.to_owned()),
            }
            let other_accounts = own_accounts.iter().filter(|&&id| Some(id) != chosen);
            plan.duplicates.extend(other_accounts.map(|&id| id.to_owned()));
        }
        for (&owner, account_ids) in &accounts_by_owner {
            if is_deleted(owner, &links_by_user) {
                plan.delete.extend(account_ids.iter().map(|&id| id.to_owned()));
            }
        }
        // Users come out sorted from the map; account ids gathered from several owners do not.
        plan.delete.sort();
        plan.delete.dedup();
        plan.duplicates.sort();
        plan
    }

    /// Users who need a new account (and a link to it), by username.
    pub fn create(&self) -> &[String] {
        &self.create
    }

    /// Users whose account exists but whose link is missing or names another account: write the
    /// link again.
    pub fn relink(&self) -> &[AccountLink] {
        &self.relink
    }

    /// Ids of the accounts to delete: managed accounts of users no longer in the directory.
    pub fn delete(&self) -> &[String] {
        &self.delete
    }

    /// Users whose link already names their account.
    pub fn keep(&self) -> &[AccountLink] {
        &self.keep
    }

    /// Ids of extra accounts carrying a present user's marker (left by a crash between creating
    /// an account and writing the link); never deleted by the sync, listed for operators.
    pub fn duplicates(&self) -> &[String] {
        &self.duplicates
    }

    /// Directory users who cannot own a managed account (an empty username, or one holding the
    /// placeholder): the sync neither creates nor deletes anything for them.
    pub fn skipped_users(&self) -> &[String] {
        &self.skipped_users
    }

    /// How many accounts carry a managed marker, whether kept, duplicated or deleted.
    pub fn managed_accounts(&self) -> usize {
        self.managed_accounts
    }

    /// True when the plan neither creates, links nor deletes anything.
    pub fn changes_nothing(&self) -> bool {
        self.create.is_empty() && self.relink.is_empty() && self.delete.is_empty()
    }

    /// The sizes of every list, for the sync status and logs.
    pub fn counts(&self) -> SyncCounts {
        SyncCounts {
            create: self.create.len(),
            relink: self.relink.len(),
            delete: self.delete.len(),
            keep: self.keep.len(),
            duplicates: self.duplicates.len(),
            skipped_users: self.skipped_users.len(),
            managed_accounts: self.managed_accounts,
        }
    }

    /// A plan is refused, unless forced, when it deletes a larger share of the managed accounts
    /// than allowed; a plan that deletes nothing is never refused.
    pub fn refusal(&self, max_delete_share: DeleteShare, force: bool) -> Option<PlanRefusal> {
        if force || self.delete.is_empty() {
            return None;
        }
        // Deleted accounts are managed ones, so the denominator is not zero here.
        let deleted_share = self.delete.len() as f64 / self.managed_accounts as f64;
        let too_many = deleted_share > max_delete_share.fraction();
        too_many.then_some(PlanRefusal {
            deletions: self.delete.len(),
            managed_accounts: self.managed_accounts,
            max_delete_share,
        })
    }
}

fn link(username: &str, account_id: &str) -> AccountLink {
    AccountLink {
        username: username.to_owned(),
        account_id: account_id.to_owned(),
    }
}

/// The username that owns `marker`: an account is managed (osam's) iff its marker is exactly the
/// template filled with a non-empty username free of the placeholder, and that username owns it.
///
/// Near misses (another prefix or suffix, other case, the template left unfilled, the template
/// filled with nothing) own nothing, so the sync never touches those accounts.
pub fn marker_owner<'m>(template: &MarkerTemplate, marker: &'m str) -> Option<&'m str> {
    MarkerShape::of(template).owner(marker)
}

/// Where the username sits in a filled template, learnt through `marker_for` alone so that the
/// ownership rule cannot drift from the way markers are written.
struct MarkerShape<'t> {
    template: &'t MarkerTemplate,
    /// The length of the template's own text: the template filled with the empty username.
    literal_len: usize,
    /// How often the placeholder occurs; each occurrence repeats the username.
    placeholder_count: usize,
    /// The byte offset of the first placeholder, the same for every username.
    username_start: usize,
}

impl<'t> MarkerShape<'t> {
    fn of(template: &'t MarkerTemplate) -> MarkerShape<'t> {
        let literal_len = template.marker_for("").len();
        let filled_with_a = template.marker_for("a");
        let filled_with_b = template.marker_for("b");
        // Both usernames are one byte long: the length difference counts the placeholders, and
        // the two markers first differ where the first placeholder starts.
        let placeholder_count = filled_with_a.len().saturating_sub(literal_len);
        let username_start = filled_with_a
            .bytes()
            .zip(filled_with_b.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(filled_with_a.len());
        MarkerShape {
            template,
            literal_len,
            placeholder_count,
            username_start,
        }
    }

    /// See [`marker_owner`]: the candidate is read at the placeholder's place with the length the
    /// marker implies, then accepted only if filling the template with it gives the marker back.
    fn owner<'m>(&self, marker: &'m str) -> Option<&'m str> {
        if self.placeholder_count == 0 {
            return None;
        }
        let username_bytes = marker.len().checked_sub(self.literal_len)?;
        if username_bytes % self.placeholder_count != 0 {
            return None;
        }
        let username_len = username_bytes / self.placeholder_count;
        let username_end = self.username_start.checked_add(username_len)?;
        let candidate = marker.get(self.username_start..username_end)?;
        // A username holding the placeholder would let the bare template look owned.
        let is_owner = !candidate.is_empty()
            && !candidate.contains(USERNAME_PLACEHOLDER)
            && self.template.marker_for(candidate) == marker;
        is_owner.then_some(candidate)
    }
}

/// A directory user can own a managed account only if their own marker is a managed marker
/// (their username is not empty and does not hold the placeholder); otherwise they are skipped.
fn can_own_an_account(markers: &MarkerShape<'_>, username: &str) -> bool {
    let marker = markers.template.marker_for(username);
    markers.owner(&marker) == Some(username)
}

/// The managed accounts grouped by the username that owns them; unmanaged accounts are left out
/// here, which is what keeps every later rule from ever touching them.
fn managed_accounts_by_owner<'a>(
    markers: &MarkerShape<'_>,
    accounts: &'a [Account],
) -> BTreeMap<&'a str, BTreeSet<&'a str>> {
    let mut accounts_by_owner: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for account in accounts {
        if let Some(owner) = markers.owner(&account.marker) {
            accounts_by_owner.entry(owner).or_default().insert(&account.id);
        }
    }
    accounts_by_owner
}

/// The directory's usernames with the account ids their links name; a username listed twice is
/// planned once, with the links of every entry.
fn links_by_username(users: &[SyncUser]) -> BTreeMap<&str, BTreeSet<&str>> {
    let mut links_by_user: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for user in users {
        let links = links_by_user.entry(&user.username).or_default();
        links.extend(user.linked_account.as_deref());
    }
    links_by_user
}

/// Among the accounts carrying a user's marker, theirs is the one their link names, else the one
/// with the smallest id (byte order), so that repeated plans agree.
fn chosen_account<'a>(own_accounts: &BTreeSet<&'a str>, links: &BTreeSet<&str>) -> Option<&'a str> {
    let linked = own_accounts.iter().find(|id| links.contains(*id));
    linked.or_else(|| own_accounts.first()).copied()
}

/// What to do for one directory user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserAction<'a> {
    Keep(&'a str),
    Relink(&'a str),
    Create,
}

/// A user is kept when their link names their account, relinked when their account exists but
/// the link is missing or names another account, and gets a new account when none carries their
/// marker (also when the linked account no longer exists).
fn user_action<'a>(chosen: Option<&'a str>, links: &BTreeSet<&str>) -> UserAction<'a> {
    match chosen {
        Some(account_id) if links.contains(account_id) => UserAction::Keep(account_id),
        Some(account_id) => UserAction::Relink(account_id),
        None => UserAction::Create,
    }
}

/// A managed account is deleted exactly when the user owning its marker is not in the directory;
/// while the user exists, none of their accounts is, not even a duplicate.
fn is_deleted(owner: &str, links_by_user: &BTreeMap<&str, BTreeSet<&str>>) -> bool {
    !links_by_user.contains_key(owner)
}

/// The largest share of managed accounts one sync may delete without `force`, a fraction in
/// `0.0..=1.0` (0.1 allows deleting 10%).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Deserialize)]
#[serde(try_from = "f64")]
pub struct DeleteShare(f64);

/// Why a value is not a delete share.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeleteShareError {
    #[error(
        "{0:?} is not a number; write the maximum delete share as a fraction (0.1) or a percentage (10%)"
    )]
    NotANumber(String),
    #[error("the maximum delete share {0} is outside 0 to 1 (0% to 100%); 0.1 allows deleting 10%")]
    OutOfRange(f64),
}

impl DeleteShare {
    /// 10%: a few users leaving between two syncs pass, a directory answer missing most users
    /// does not.
    pub const DEFAULT: DeleteShare = DeleteShare(0.1);

    pub fn new(fraction: f64) -> Result<DeleteShare, DeleteShareError> {
        // NaN fails the range check too, so it never reaches a comparison.
        if (0.0..=1.0).contains(&fraction) {
            Ok(DeleteShare(fraction))
        } else {
            Err(DeleteShareError::OutOfRange(fraction))
        }
    }

    /// Reads a fraction (`0.1`) or a percentage (`10%`).
    pub fn parse(text: &str) -> Result<DeleteShare, DeleteShareError> {
        let trimmed = text.trim();
        let (number, divisor) = match trimmed.strip_suffix('%') {
            Some(percentage) => (percentage.trim_end(), 100.0),
            None => (trimmed, 1.0),
        };
        let value: f64 = number
            .parse()
            .map_err(|_| DeleteShareError::NotANumber(text.to_owned()))?;
        DeleteShare::new(value / divisor)
    }

    pub fn fraction(self) -> f64 {
        self.0
    }
}

impl Default for DeleteShare {
    fn default() -> DeleteShare {
        DeleteShare::DEFAULT
    }
}

impl TryFrom<f64> for DeleteShare {
    type Error = DeleteShareError;

    fn try_from(fraction: f64) -> Result<DeleteShare, DeleteShareError> {
        DeleteShare::new(fraction)
    }
}

impl fmt::Display for DeleteShare {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&percentage(self.0))
    }
}

/// Why a plan was not carried out: it deletes more of the managed accounts than allowed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "the plan deletes {deletions} of {managed_accounts} managed accounts ({}), more than the {} allowed; \
     an empty or broken directory answer looks like this: check the directory, or run with force",
    percentage(*.deletions as f64 / *.managed_accounts as f64),
    .max_delete_share
)]
pub struct PlanRefusal {
    pub deletions: usize,
    pub managed_accounts: usize,
    pub max_delete_share: DeleteShare,
}

/// `0.7` as "70%", `1/3` as "33.33%": two decimals at most, so that a share just above the limit
/// does not print the same as the limit.
fn percentage(fraction: f64) -> String {
    let fixed = format!("{:.2}", fraction * 100.0);
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    format!("{trimmed}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template() -> MarkerTemplate {
        MarkerTemplate::parse("osam:%keycloak-user%/v1").expect("valid template")
    }

    fn account(id: &str, marker: &str) -> Account {
        Account {
            id: id.to_owned(),
            marker: marker.to_owned(),
            access_key_id: format!("AK-{id}"),
        }
    }

    fn managed(id: &str, username: &str) -> Account {
        account(id, &template().marker_for(username))
    }

    fn user(username: &str, linked_account: Option<&str>) -> SyncUser {
        SyncUser {
            username: username.to_owned(),
            linked_account: linked_account.map(str::to_owned),
        }
    }

    fn links(pairs: &[(&str, &str)]) -> Vec<AccountLink> {
        pairs
            .iter()
            .map(|(username, account_id)| link(username, account_id))
            .collect()
    }

    fn plan(users: &[SyncUser], accounts: &[Account]) -> SyncPlan {
        SyncPlan::compute(users, accounts, &template())
    }

    #[test]
    fn the_owner_of_a_marker_is_the_username_that_fills_the_template_exactly() {
        let template = template();
        assert_eq!(marker_owner(&template, "osam:alice/v1"), Some("alice"));
        assert_eq!(marker_owner(&template, "osam:a/v1/v1"), Some("a/v1"));
        assert_eq!(marker_owner(&template, "osam:élodie/v1"), Some("élodie"));
    }

    #[test]
    fn near_miss_markers_have_no_owner() {
        let template = template();
        let near_misses = [
            "osam:alice/v2",
            "osam:alice",
            "osam:alice/v1 ",
            "osam:alice/v1\n",
            " osam:alice/v1",
            "xosam:alice/v1",
            "OSAM:alice/v1",
            "osam:/v1",
            "osam:",
            "osam:%keycloak-user%/v1",
            "osam:a%keycloak-user%/v1",
            "alice",
            "",
        ];
        for marker in near_misses {
            assert_eq!(marker_owner(&template, marker), None, "marker {marker:?}");
        }
    }

    #[test]
    fn templates_with_the_placeholder_first_or_twice_are_read_exactly() {
        let suffix_only = MarkerTemplate::parse("%keycloak-user%@osam").expect("valid");
        assert_eq!(marker_owner(&suffix_only, "bob@osam"), Some("bob"));
        assert_eq!(marker_owner(&suffix_only, "bob@osam2"), None);
        assert_eq!(marker_owner(&suffix_only, "@osam"), None);

        let twice = MarkerTemplate::parse("u-%keycloak-user%-x-%keycloak-user%").expect("valid");
        assert_eq!(marker_owner(&twice, "u-bob-x-bob"), Some("bob"));
        assert_eq!(marker_owner(&twice, "u-bob-x-bo"), None);
        assert_eq!(marker_owner(&twice, "u-bob-x-rob"), None);
        assert_eq!(marker_owner(&twice, "u--x-"), None);

        let same_letter_around = MarkerTemplate::parse("a%keycloak-user%a").expect("valid");
        assert_eq!(marker_owner(&same_letter_around, "aaa"), Some("a"));
        assert_eq!(marker_owner(&same_letter_around, "aaaa"), Some("aa"));
        assert_eq!(marker_owner(&same_letter_around, "aa"), None);
    }

    #[test]
    fn a_user_whose_link_names_their_account_is_kept() {
        let plan = plan(&[user("alice", Some("1"))], &[managed("1", "alice")]);
        assert_eq!(plan.keep(), links(&[("alice", "1")]));
        assert!(plan.changes_nothing());
    }

    #[test]
    fn a_user_without_a_link_whose_account_exists_is_relinked() {
        let plan = plan(&[user("alice", None)], &[managed("1", "alice")]);
        assert_eq!(plan.relink(), links(&[("alice", "1")]));
        assert!(plan.create().is_empty() && plan.keep().is_empty());
    }

    #[test]
    fn a_stale_link_to_a_missing_account_is_replaced_by_the_marked_account() {
        let plan = plan(&[user("alice", Some("gone"))], &[managed("1", "alice")]);
        assert_eq!(plan.relink(), links(&[("alice", "1")]));
    }

    #[test]
    fn a_link_to_an_unmanaged_or_foreign_account_is_replaced_and_that_account_left_alone() {
        let accounts = [
            managed("1", "alice"),
            account("2", "legacy-alice"),
            managed("3", "bob"),
        ];
        let users = [
            user("alice", Some("2")),
            user("bob", Some("3")),
            user("carol", Some("3")),
        ];
        let plan = plan(&users, &accounts);
        assert_eq!(plan.relink(), links(&[("alice", "1")]));
        assert_eq!(plan.keep(), links(&[("bob", "3")]));
        assert_eq!(plan.create(), ["carol"]);
        assert!(plan.delete().is_empty());
    }

    #[test]
    fn a_user_without_a_marked_account_gets_one_even_if_the_link_names_a_missing_account() {
        let plan = plan(
            &[user("alice", Some("gone")), user("bob", None)],
            &[account("2", "legacy-bob")],
        );
        assert_eq!(plan.create(), ["alice", "bob"]);
        assert!(plan.relink().is_empty() && plan.delete().is_empty());
    }

    #[test]
    fn only_managed_accounts_of_absent_users_are_deleted() {
        let accounts = [
            managed("1", "alice"),
            managed("2", "gone"),
            managed("3", "gone"),
            account("4", "osam:gone/v2"),
            account("5", "osam:/v1"),
            account("6", "osam:%keycloak-user%/v1"),
            account("7", "osam:"),
            account("8", "someone-else"),
        ];
        let plan = plan(&[user("alice", Some("1"))], &accounts);
        assert_eq!(plan.delete(), ["2", "3"]);
        assert_eq!(plan.managed_accounts(), 3);
    }

    #[test]
    fn duplicates_prefer_the_linked_account_and_are_never_deleted_while_the_user_exists() {
        let accounts = [
            managed("1", "alice"),
            managed("2", "alice"),
            managed("3", "alice"),
        ];
        let linked = plan(&[user("alice", Some("2"))], &accounts);
        assert_eq!(linked.keep(), links(&[("alice", "2")]));
        assert_eq!(linked.duplicates(), ["1", "3"]);
        assert!(linked.delete().is_empty());

        let unlinked = plan(&[user("alice", None)], &accounts);
        assert_eq!(unlinked.relink(), links(&[("alice", "1")]));
        assert_eq!(unlinked.duplicates(), ["2", "3"]);
        assert!(unlinked.delete().is_empty());
    }

    #[test]
    fn users_who_cannot_own_a_managed_account_are_skipped() {
        let accounts = [account("1", "osam:/v1"), account("2", "osam:%keycloak-user%/v1")];
        let plan = plan(&[user("", Some("1")), user("%keycloak-user%", None)], &accounts);
        assert_eq!(plan.skipped_users(), ["", "%keycloak-user%"]);
        assert!(plan.changes_nothing() && plan.keep().is_empty());
    }

    #[test]
    fn a_username_listed_twice_is_planned_once() {
        let plan = plan(
            &[user("alice", None), user("alice", Some("1"))],
            &[managed("1", "alice")],
        );
        assert_eq!(plan.keep(), links(&[("alice", "1")]));
        assert_eq!(
            plan.counts().keep + plan.counts().relink + plan.counts().create,
            1
        );
    }

    #[test]
    fn the_plan_does_not_depend_on_input_order() {
        let mut users = vec![user("bob", None), user("alice", Some("9")), user("carol", None)];
        let mut accounts = vec![
            managed("b", "bob"),
            managed("z", "zed"),
            managed("a", "yann"),
            managed("c", "alice"),
        ];
        let forward = plan(&users, &accounts);
        users.reverse();
        accounts.reverse();
        assert_eq!(plan(&users, &accounts), forward);
        assert_eq!(forward.delete(), ["a", "z"]);
        assert_eq!(forward.relink(), links(&[("alice", "c"), ("bob", "b")]));
    }

    /// Ten managed accounts of users `u0` to `u9`, the first `deleted` of whom left the directory.
    fn plan_deleting(deleted: usize) -> SyncPlan {
        let accounts: Vec<Account> = (0..10)
            .map(|index| managed(&index.to_string(), &format!("u{index}")))
            .collect();
        let users: Vec<SyncUser> = (deleted..10)
            .map(|index| user(&format!("u{index}"), Some(&index.to_string())))
            .collect();
        plan(&users, &accounts)
    }

    #[test]
    fn a_plan_deleting_exactly_the_allowed_share_runs() {
        let plan = plan_deleting(1);
        assert_eq!(plan.delete().len(), 1);
        assert_eq!(plan.refusal(DeleteShare::DEFAULT, false), None);
        let three_tenths = DeleteShare::new(0.3).expect("valid");
        assert_eq!(plan_deleting(3).refusal(three_tenths, false), None);
    }

    #[test]
    fn a_plan_deleting_more_than_the_allowed_share_is_refused_and_says_why() {
        let plan = plan_deleting(7);
        let refusal = plan.refusal(DeleteShare::DEFAULT, false).expect("refused");
        assert_eq!(
            refusal,
            PlanRefusal {
                deletions: 7,
                managed_accounts: 10,
                max_delete_share: DeleteShare::DEFAULT,
            }
        );
        assert_eq!(
            refusal.to_string(),
            "the plan deletes 7 of 10 managed accounts (70%), more than the 10% allowed; an empty or \
             broken directory answer looks like this: check the directory, or run with force"
        );
        assert!(plan_deleting(2).refusal(DeleteShare::DEFAULT, false).is_some());
    }

    #[test]
    fn force_overrides_the_refusal() {
        assert_eq!(plan_deleting(10).refusal(DeleteShare::DEFAULT, true), None);
    }

    #[test]
    fn a_plan_that_deletes_nothing_is_never_refused() {
        let nothing_managed = plan(&[], &[account("1", "someone-else")]);
        assert_eq!(nothing_managed.managed_accounts(), 0);
        let zero = DeleteShare::new(0.0).expect("valid");
        assert_eq!(nothing_managed.refusal(zero, false), None);
        assert_eq!(plan_deleting(0).refusal(zero, false), None);
        assert!(plan_deleting(1).refusal(zero, false).is_some());
    }

    #[test]
    fn an_empty_directory_answer_is_refused() {
        let plan = plan(&[], &[managed("1", "alice"), managed("2", "bob")]);
        let refusal = plan.refusal(DeleteShare::DEFAULT, false).expect("refused");
        assert!(refusal.to_string().contains("2 of 2 managed accounts (100%)"));
        let everything = DeleteShare::new(1.0).expect("valid");
        assert_eq!(plan.refusal(everything, false), None);
    }

    #[test]
    fn delete_shares_are_fractions_or_percentages_within_range() {
        assert_eq!(DeleteShare::parse("0.1"), Ok(DeleteShare::DEFAULT));
        assert_eq!(DeleteShare::parse(" 10% "), Ok(DeleteShare::DEFAULT));
        assert_eq!(DeleteShare::parse("0").map(DeleteShare::fraction), Ok(0.0));
        assert_eq!(DeleteShare::parse("100%").map(DeleteShare::fraction), Ok(1.0));
        assert_eq!(DeleteShare::parse("1.5"), Err(DeleteShareError::OutOfRange(1.5)));
        assert_eq!(
            DeleteShare::parse("-0.1"),
            Err(DeleteShareError::OutOfRange(-0.1))
        );
        assert!(DeleteShare::parse("NaN").is_err());
        assert!(DeleteShare::parse("inf").is_err());
        assert_eq!(
            DeleteShare::parse("ten"),
            Err(DeleteShareError::NotANumber("ten".to_owned()))
        );
        assert!(DeleteShare::try_from(2.0).is_err());
        assert_eq!(DeleteShare::default().to_string(), "10%");
    }

    #[test]
    fn percentages_keep_enough_digits_to_tell_a_share_from_the_limit() {
        assert_eq!(percentage(0.7), "70%");
        assert_eq!(percentage(1.0 / 3.0), "33.33%");
        assert_eq!(percentage(251.0 / 2500.0), "10.04%");
        assert_eq!(percentage(0.0), "0%");
    }
}
