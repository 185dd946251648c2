//! Property tests of the sync plan over random directories (usernames from a tiny alphabet, so
//! directory users, account owners and near-miss markers collide often) and random account sets
//! (managed markers of present and absent users, near misses, unrelated markers):
//!
//! - deletions: exactly the accounts whose marker is the template filled with a username absent
//!   from the directory, judged by an oracle written here that tries every substring;
//! - accounts without an exact marker are never deleted, kept, relinked or reported as duplicates;
//! - every directory user is in exactly one of keep, relink, create (or skipped, for the names that
//!   cannot own a managed account), the one their accounts and links call for;
//! - convergence: carrying out the plan, as simulated here, then planning again changes nothing;
//! - determinism: the plan does not depend on the order of its inputs.

use std::collections::BTreeSet;

use osam_policy::accounts::{Account, MarkerTemplate, USERNAME_PLACEHOLDER};
use osam_policy::{SyncPlan, SyncUser};
use proptest::prelude::*;

const TEMPLATES: [&str; 6] = [
    "osam:%keycloak-user%",
    "osam:%keycloak-user%/v1",
    "%keycloak-user%@osam",
    "u-%keycloak-user%-x-%keycloak-user%",
    "a%keycloak-user%a",
    "%keycloak-user%%keycloak-user%b",
];
/// How many account ids links may name: more than the accounts generated, so links go stale.
const LINKABLE_IDS: usize = 14;

/// Usernames over `a` and `b`, sometimes one that cannot own a managed account.
fn username() -> impl Strategy<Value = String> {
    prop_oneof![
        12 => "[ab]{1,3}",
        1 => Just(String::new()),
        1 => Just(USERNAME_PLACEHOLDER.to_owned()),
    ]
}

/// How an account's marker is made from the template.
#[derive(Debug, Clone)]
enum MarkerRecipe {
    Exact(String),
    NearMiss(String, usize),
    Unrelated(String),
}

fn marker_recipe() -> impl Strategy<Value = MarkerRecipe> {
    prop_oneof![
        4 => username().prop_map(MarkerRecipe::Exact),
        3 => (username(), 0..8usize).prop_map(|(name, variant)| MarkerRecipe::NearMiss(name, variant)),
        1 => "[ab%:/@xu-]{0,10}".prop_map(MarkerRecipe::Unrelated),
    ]
}

fn marker(template: &MarkerTemplate, recipe: &MarkerRecipe) -> String {
    match recipe {
        MarkerRecipe::Exact(username) => template.marker_for(username),
        MarkerRecipe::NearMiss(username, variant) => {
            let exact = template.marker_for(username);
            match variant {
                0 => format!("{exact}x"),
                1 => format!("x{exact}"),
                2 => exact.to_uppercase(),
                3 => template.marker_for(""),
                4 => template.marker_for(USERNAME_PLACEHOLDER),
                5 => exact.chars().skip(1).collect(),
                6 => format!("{exact}\n"),
                _ => username.clone(),
            }
        }
        MarkerRecipe::Unrelated(text) => text.clone(),
    }
}

fn accounts(template: &MarkerTemplate, recipes: &[MarkerRecipe]) -> Vec<Account> {
    recipes
        .iter()
        .enumerate()
        .map(|(index, recipe)| Account {
            id: format!("acc-{index}"),
            marker: marker(template, recipe),
            access_key_id: format!("AK{index}"),
        })
        .collect()
}

/// A link naming an account id that may or may not exist.
fn link() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        2 => Just(None),
        3 => (0..LINKABLE_IDS).prop_map(|index| Some(format!("acc-{index}"))),
        1 => Just(Some("gone".to_owned())),
    ]
}

fn directory() -> impl Strategy<Value = Vec<SyncUser>> {
    proptest::collection::vec(
        (username(), link()).prop_map(|(username, linked_account)| SyncUser {
            username,
            linked_account,
        }),
        0..8,
    )
}

/// The oracle: the usernames `u` (non-empty, without the placeholder) with
/// `template.marker_for(u) == marker`, found by trying every substring of the marker.
fn oracle_owners(template: &MarkerTemplate, marker: &str) -> BTreeSet<String> {
    let boundaries: Vec<usize> = marker
        .char_indices()
        .map(|(index, _)| index)
        .chain([marker.len()])
        .collect();
    let mut owners = BTreeSet::new();
    for (position, &start) in boundaries.iter().enumerate() {
        for &end in &boundaries[position + 1..] {
            let candidate = &marker[start..end];
            if !candidate.contains(USERNAME_PLACEHOLDER) && template.marker_for(candidate) == marker {
                owners.insert(candidate.to_owned());
            }
        }
    }
    owners
}

fn oracle_owner(template: &MarkerTemplate, marker: &str) -> Option<String> {
    let owners = oracle_owners(template, marker);
    assert!(
        owners.len() <= 1,
        "marker {marker:?} filled by several usernames {owners:?}"
    );
    owners.into_iter().next()
}

fn directory_usernames(users: &[SyncUser]) -> BTreeSet<String> {
    users.iter().map(|user| user.username.clone()).collect()
}

/// Carries out a plan the way the server does: new accounts carry the user's marker, links are
/// written for created and relinked users, deleted accounts disappear.
fn apply(plan: &SyncPlan, template: &MarkerTemplate, users: &mut [SyncUser], accounts: &mut Vec<Account>) {
    let mut write_link = |username: &str, account_id: &str| {
        for user in users.iter_mut().filter(|user| user.username == username) {
            user.linked_account = Some(account_id.to_owned());
        }
    };
    for (index, username) in plan.create().iter().enumerate() {
        let account_id = format!("new-{index}");
        accounts.push(Account {
            id: account_id.clone(),
            marker: template.marker_for(username),
            access_key_id: format!("AKNEW{index}"),
        });
        write_link(username, &account_id);
    }
    for link in plan.relink() {
        write_link(&link.username, &link.account_id);
    }
    accounts.retain(|account| !plan.delete().contains(&account.id));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn deletions_are_exactly_the_managed_accounts_of_absent_users(
        template in proptest::sample::select(&TEMPLATES[..]),
        users in directory(),
        recipes in proptest::collection::vec(marker_recipe(), 0..12),
    ) {
        let template = MarkerTemplate::parse(template).expect("valid template");
        let accounts = accounts(&template, &recipes);
        let plan = SyncPlan::compute(&users, &accounts, &template);
        let present = directory_usernames(&users);

        let expected: BTreeSet<&str> = accounts
            .iter()
            .filter(|account| {
                oracle_owner(&template, &account.marker).is_some_and(|owner| !present.contains(&owner))
            })
            .map(|account| account.id.as_str())
            .collect();
        let deleted: BTreeSet<&str> = plan.delete().iter().map(String::as_str).collect();
        prop_assert_eq!(deleted, expected);

        let managed = accounts
            .iter()
            .filter(|account| oracle_owner(&template, &account.marker).is_some())
            .count();
        prop_assert_eq!(plan.managed_accounts(), managed);
    }

    #[test]
    fn accounts_without_an_exact_marker_are_never_touched(
        template in proptest::sample::select(&TEMPLATES[..]),
        users in directory(),
        recipes in proptest::collection::vec(marker_recipe(), 0..12),
    ) {
        let template = MarkerTemplate::parse(template).expect("valid template");
        let accounts = accounts(&template, &recipes);
        let plan = SyncPlan::compute(&users, &accounts, &template);

        let mentioned: BTreeSet<&str> = plan
            .delete()
            .iter()
            .chain(plan.duplicates())
            .map(String::as_str)
            .chain(plan.keep().iter().chain(plan.relink()).map(|link| link.account_id.as_str()))
            .collect();
        for account in &accounts {
            if oracle_owner(&template, &account.marker).is_none() {
                prop_assert!(
                    !mentioned.contains(account.id.as_str()),
                    "unmanaged account {:?} is in the plan {:?}", account, plan
                );
            }
        }
        for duplicate in plan.duplicates() {
            prop_assert!(!plan.delete().contains(duplicate), "duplicate {} deleted", duplicate);
        }
    }

    #[test]
    fn every_directory_user_is_in_exactly_one_list(
        template in proptest::sample::select(&TEMPLATES[..]),
        users in directory(),
        recipes in proptest::collection::vec(marker_recipe(), 0..12),
    ) {
        let template = MarkerTemplate::parse(template).expect("valid template");
        let accounts = accounts(&template, &recipes);
        let plan = SyncPlan::compute(&users, &accounts, &template);

        let mut listed: Vec<&str> = plan
            .keep()
            .iter()
            .chain(plan.relink())
            .map(|link| link.username.as_str())
            .chain(plan.create().iter().map(String::as_str))
            .chain(plan.skipped_users().iter().map(String::as_str))
            .collect();
        listed.sort_unstable();
        let present = directory_usernames(&users);
        let expected: Vec<&str> = present.iter().map(String::as_str).collect();
        prop_assert_eq!(listed, expected);

        for skipped in plan.skipped_users() {
            prop_assert!(skipped.is_empty() || skipped.contains(USERNAME_PLACEHOLDER));
        }
        for link in plan.keep().iter().chain(plan.relink()) {
            let account = accounts.iter().find(|account| account.id == link.account_id);
            prop_assert_eq!(
                account.map(|account| account.marker.clone()),
                Some(template.marker_for(&link.username))
            );
        }
    }

    #[test]
    fn each_user_is_kept_relinked_or_created_as_their_accounts_and_links_say(
        template in proptest::sample::select(&TEMPLATES[..]),
        users in directory(),
        recipes in proptest::collection::vec(marker_recipe(), 0..12),
    ) {
        let template = MarkerTemplate::parse(template).expect("valid template");
        let accounts = accounts(&template, &recipes);
        let plan = SyncPlan::compute(&users, &accounts, &template);

        for username in directory_usernames(&users) {
            if plan.skipped_users().contains(&username) {
                continue;
            }
            let own_accounts: BTreeSet<&str> = accounts
                .iter()
                .filter(|account| account.marker == template.marker_for(&username))
                .map(|account| account.id.as_str())
                .collect();
            let links: BTreeSet<&str> = users
                .iter()
                .filter(|user| user.username == username)
                .filter_map(|user| user.linked_account.as_deref())
                .collect();
            let kept = plan.keep().iter().find(|link| link.username == username);
            let relinked = plan.relink().iter().find(|link| link.username == username);
            let created = plan.create().contains(&username);
            if own_accounts.iter().any(|id| links.contains(id)) {
                let kept_id = kept.map(|link| link.account_id.as_str());
                prop_assert!(kept_id.is_some_and(|id| links.contains(id) && own_accounts.contains(id)));
            } else if let Some(smallest) = own_accounts.first() {
                prop_assert_eq!(relinked.map(|link| link.account_id.as_str()), Some(*smallest));
            } else {
                prop_assert!(created, "{} has no account but is not created", username);
            }
        }
    }

    #[test]
    fn carrying_out_the_plan_then_planning_again_changes_nothing(
        template in proptest::sample::select(&TEMPLATES[..]),
        mut users in directory(),
        recipes in proptest::collection::vec(marker_recipe(), 0..12),
    ) {
        let template = MarkerTemplate::parse(template).expect("valid template");
        let mut accounts = accounts(&template, &recipes);
        let unmanaged: Vec<Account> = accounts
            .iter()
            .filter(|account| oracle_owner(&template, &account.marker).is_none())
            .cloned()
            .collect();

        let first = SyncPlan::compute(&users, &accounts, &template);
        apply(&first, &template, &mut users, &mut accounts);
        let second = SyncPlan::compute(&users, &accounts, &template);

        prop_assert!(second.changes_nothing(), "first {:?}, second {:?}", first, second);
        prop_assert_eq!(second.keep().len() + second.skipped_users().len(), directory_usernames(&users).len());
        prop_assert_eq!(second.duplicates(), first.duplicates());
        for account in &unmanaged {
            prop_assert!(accounts.contains(account), "unmanaged account {:?} lost", account);
        }
    }

    #[test]
    fn the_plan_does_not_depend_on_input_order(
        template in proptest::sample::select(&TEMPLATES[..]),
        mut users in directory(),
        recipes in proptest::collection::vec(marker_recipe(), 0..12),
    ) {
        let template = MarkerTemplate::parse(template).expect("valid template");
        let mut accounts = accounts(&template, &recipes);
        let forward = SyncPlan::compute(&users, &accounts, &template);
        users.reverse();
        accounts.reverse();
        prop_assert_eq!(SyncPlan::compute(&users, &accounts, &template), forward);
    }
}
