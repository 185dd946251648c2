//! The Keycloak directory against the wire fake: complete listings, effective roles, groups,
//! attribute writes and disabled users.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use osam_keycloak_fake::FakeUser;
use osam_policy::{Directory, DirectoryError, GroupPath};

use support::{directory, fake_realm, settings};

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|value| (*value).to_owned()).collect()
}

#[tokio::test]
async fn every_user_of_a_large_realm_is_listed_once_and_sorted_across_pages() {
    let keycloak = fake_realm().await;
    // Created in an order unlike the sorted one, so sorting is the directory's doing.
    let mut expected = BTreeSet::new();
    for index in 0..2_500u32 {
        let username = format!("user-{:04}", (index * 7919) % 2_500);
        keycloak.add_user(FakeUser::new(&username));
        expected.insert(username);
    }
    assert_eq!(expected.len(), 2_500);
    let mut settings = settings(&keycloak);
    settings.page_size = 100;
    let directory = directory(settings);

    let users = directory.list_users().await.expect("listed");

    let usernames: Vec<String> = users.iter().map(|user| user.username.clone()).collect();
    assert_eq!(usernames.len(), 2_500, "every user, once");
    assert_eq!(
        usernames,
        expected.into_iter().collect::<Vec<_>>(),
        "sorted, none missing"
    );
    let pages = 26;
    let counts = 2;
    let per_user_reads = 2 * 2_500;
    assert_eq!(
        keycloak.admin_requests(),
        pages + counts + per_user_reads,
        "one pass over the pages, realm roles and groups of each user"
    );
}

#[tokio::test]
async fn a_user_removed_while_the_realm_is_listed_shifts_no_one_out_of_the_listing() {
    let keycloak = fake_realm().await;
    let mut expected = BTreeSet::new();
    for index in 0..300 {
        let username = format!("user-{index:04}");
        keycloak.add_user(FakeUser::new(&username));
        expected.insert(username);
    }
    let mut settings = settings(&keycloak);
    settings.page_size = 100;
    let directory = directory(settings);
    directory.client().probe().await.expect("token");
    // Slow answers, so that the removal lands between the first two pages (the count is
    // answered at 50 ms, the first page at 100 ms, the second at 150 ms): every later user moves
    // one place forward, and a single pass would miss `user-0100`.
    keycloak
        .faults()
        .set_latency(std::time::Duration::from_millis(50));
    let listing = tokio::spawn(async move { directory.list_users().await });
    tokio::time::sleep(std::time::Duration::from_millis(125)).await;
    keycloak.remove_user("user-0005");
    keycloak.faults().set_latency(std::time::Duration::ZERO);
    expected.remove("user-0005");

    let users = listing.await.expect("joined").expect("listed");

    let usernames: Vec<String> = users.into_iter().map(|user| user.username).collect();
    let listed: BTreeSet<String> = usernames.iter().cloned().collect();
    assert_eq!(listed.len(), usernames.len(), "no user twice");
    let missing: Vec<&String> = expected.difference(&listed).collect();
    let extra: Vec<&String> = listed.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
}

#[tokio::test]
async fn effective_roles_include_composites_groups_their_ancestors_and_configured_client_roles() {
    let keycloak = fake_realm().await;
    keycloak.add_realm_role("reader", &[]);
    keycloak.add_realm_role("editor", &["reader"]);
    keycloak.add_realm_role("institution-member", &[]);
    keycloak.add_realm_role("esa-operator", &[]);
    keycloak.add_group("/institutions", &["institution-member"]);
    keycloak.add_group("/institutions/esa", &["esa-operator"]);
    keycloak.add_client("catalog");
    keycloak.add_client_role("catalog", "catalog-admin");
    keycloak.add_client("unconfigured");
    keycloak.add_client_role("unconfigured", "not-counted");
    keycloak.add_user(FakeUser::new("alice"));
    keycloak.grant_realm_role("alice", "editor");
    keycloak.join_group("alice", "/institutions/esa");
    keycloak.grant_client_role("alice", "catalog", "catalog-admin");
    keycloak.grant_client_role("alice", "unconfigured", "not-counted");
    let mut settings = settings(&keycloak);
    settings.client_roles = strings(&["catalog"]);
    let directory = directory(settings);

    let alice = directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");

    for role in [
        "editor",
        "reader",
        "esa-operator",
        "institution-member",
        "catalog-admin",
    ] {
        assert!(
            alice.roles.contains(&role.to_owned()),
            "{role} in {:?}",
            alice.roles
        );
    }
    assert!(
        !alice.roles.contains(&"not-counted".to_owned()),
        "{:?}",
        alice.roles
    );
    let mut sorted_unique = alice.roles.clone();
    sorted_unique.sort();
    sorted_unique.dedup();
    assert_eq!(alice.roles, sorted_unique, "roles are sorted and deduplicated");

    let listed = directory.list_users().await.expect("listed");
    assert_eq!(listed, vec![alice], "listing and lookup agree");
}

#[tokio::test]
async fn groups_are_the_full_paths_of_the_user_s_groups() {
    let keycloak = fake_realm().await;
    keycloak.add_group("/institutions", &[]);
    keycloak.add_group("/institutions/esa", &[]);
    keycloak.add_group("/institutions/esa/ops team", &[]);
    keycloak.add_group("/projects", &[]);
    keycloak.add_user(FakeUser::new("alice"));
    keycloak.join_group("alice", "/institutions/esa/ops team");
    keycloak.join_group("alice", "/projects");
    keycloak.add_user(FakeUser::new("bob"));
    let directory = directory(settings(&keycloak));

    let alice = directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");
    let bob = directory.find_user("bob").await.expect("lookup").expect("bob");

    let expected: Vec<GroupPath> = ["/institutions/esa/ops team", "/projects"]
        .into_iter()
        .map(|path| GroupPath::parse(path).expect("valid"))
        .collect();
    assert_eq!(alice.groups, expected);
    assert!(bob.groups.is_empty());
}

#[tokio::test]
async fn a_user_s_name_email_and_attributes_come_from_the_representation() {
    let keycloak = fake_realm().await;
    let mut alice = FakeUser::new("alice");
    alice.first_name = Some("Alice".into());
    alice.last_name = Some("Liddell".into());
    alice.email = Some("alice@example.org".into());
    alice.attributes = BTreeMap::from([("obs-user".to_owned(), strings(&["account-1"]))]);
    keycloak.add_user(alice);
    keycloak.add_user(FakeUser::new("nameless"));
    let directory = directory(settings(&keycloak));

    let alice = directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");
    assert_eq!(alice.name.as_deref(), Some("Alice Liddell"));
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));
    assert_eq!(alice.attribute("obs-user"), Some("account-1"));

    let nameless = directory
        .find_user("nameless")
        .await
        .expect("lookup")
        .expect("user");
    assert_eq!(nameless.name, None);
    assert_eq!(nameless.email, None);
    assert!(nameless.attributes.is_empty());

    assert_eq!(directory.find_user("nobody").await.expect("lookup"), None);
}

#[tokio::test]
async fn usernames_are_matched_case_insensitively_as_keycloak_stores_them_lowercased() {
    let keycloak = fake_realm().await;
    keycloak.add_user(FakeUser::new("alice"));
    let directory = directory(settings(&keycloak));

    let found = directory
        .find_user("Alice")
        .await
        .expect("lookup")
        .expect("alice");
    assert_eq!(found.username, "alice", "Keycloak's spelling");
    assert_eq!(
        directory.find_user("alic").await.expect("lookup"),
        None,
        "exact, not a search"
    );
}

#[tokio::test]
async fn writing_an_attribute_keeps_the_other_attributes_and_fields() {
    let keycloak = fake_realm().await;
    let mut alice = FakeUser::new("alice");
    alice.first_name = Some("Alice".into());
    alice.attributes = BTreeMap::from([
        ("obs-user".to_owned(), strings(&["old-account"])),
        ("department".to_owned(), strings(&["ops", "science"])),
    ]);
    keycloak.add_user(alice);
    let directory = directory(settings(&keycloak));

    directory
        .set_attribute("alice", "obs-user", strings(&["new-account"]))
        .await
        .expect("written");
    directory
        .set_attribute("alice", "added", strings(&["value"]))
        .await
        .expect("written");

    assert_eq!(
        keycloak.user_attributes("alice"),
        BTreeMap::from([
            ("added".to_owned(), strings(&["value"])),
            ("department".to_owned(), strings(&["ops", "science"])),
            ("obs-user".to_owned(), strings(&["new-account"])),
        ])
    );
    let alice = directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");
    assert_eq!(alice.name.as_deref(), Some("Alice"), "other fields are kept");
    assert_eq!(alice.attribute("obs-user"), Some("new-account"));
}

#[tokio::test]
async fn disabled_users_are_absent_and_cannot_be_written() {
    let keycloak = fake_realm().await;
    keycloak.add_user(FakeUser::new("alice"));
    let mut bob = FakeUser::new("bob");
    bob.enabled = false;
    keycloak.add_user(bob);
    keycloak.add_user(FakeUser::new("carol"));
    let directory = directory(settings(&keycloak));

    assert_eq!(directory.find_user("bob").await.expect("lookup"), None);
    let listed: Vec<String> = directory
        .list_users()
        .await
        .expect("listed")
        .into_iter()
        .map(|user| user.username)
        .collect();
    assert_eq!(listed, strings(&["alice", "carol"]));
    assert_eq!(
        directory.set_attribute("bob", "obs-user", strings(&["x"])).await,
        Err(DirectoryError::UserNotFound("bob".into()))
    );
    assert!(keycloak.user_attributes("bob").is_empty(), "nothing written");
    assert_eq!(
        directory
            .set_attribute("ghost", "obs-user", strings(&["x"]))
            .await,
        Err(DirectoryError::UserNotFound("ghost".into()))
    );

    keycloak.set_enabled("carol", false);
    assert_eq!(directory.find_user("carol").await.expect("lookup"), None);
    keycloak.set_enabled("bob", true);
    assert!(directory.find_user("bob").await.expect("lookup").is_some());
}

#[tokio::test]
async fn revoked_roles_and_removed_users_are_seen_at_the_next_read() {
    let keycloak = fake_realm().await;
    keycloak.add_realm_role("editor", &[]);
    keycloak.add_user(FakeUser::new("alice"));
    keycloak.grant_realm_role("alice", "editor");
    let directory = directory(settings(&keycloak));
    let alice = directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");
    assert!(alice.roles.contains(&"editor".to_owned()));

    keycloak.revoke_realm_role("alice", "editor");
    let alice = directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");
    assert!(!alice.roles.contains(&"editor".to_owned()));

    keycloak.remove_user("alice");
    assert_eq!(directory.find_user("alice").await.expect("lookup"), None);
}

#[tokio::test]
async fn a_recreated_client_is_an_error_then_found_again_never_a_realm_without_users() {
    let keycloak = fake_realm().await;
    keycloak.add_user(FakeUser::new("alice"));
    keycloak.add_client("catalog");
    keycloak.add_client_role("catalog", "reader");
    keycloak.grant_client_role("alice", "catalog", "reader");
    let mut settings = settings(&keycloak);
    settings.client_roles = strings(&["catalog"]);
    let directory = directory(settings);
    let roles = |user: Option<osam_policy::DirectoryUser>| user.expect("alice").roles;
    assert!(roles(directory.find_user("alice").await.expect("found")).contains(&"reader".to_owned()));

    // The client's cached id now answers 404 for every user: the listing must fail, not come
    // back empty (an empty realm would look like every user left).
    keycloak.recreate_client("catalog");
    let error = directory
        .list_users()
        .await
        .expect_err("a stale client id is an error");
    assert!(matches!(error, DirectoryError::Unavailable(_)), "{error:?}");
    assert!(error.to_string().contains("client"), "{error}");
    // The id is looked up again at the next read.
    let users = directory.list_users().await.expect("listed after the lookup");
    assert_eq!(users.len(), 1);
    assert!(users[0].roles.contains(&"reader".to_owned()));
}
