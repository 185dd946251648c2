//! The real `osam` binary with Keycloak as its directory and token issuer, against the Keycloak
//! wire fake (no Keycloak server can be installed here): tokens verified through the realm's
//! discovery document and JWKS, a sync that creates accounts for the realm's users and writes
//! their links through the admin API, live roles that drop a revoked role within their TTL, a
//! disabled user refused at authentication, and `check-config --probe`.

use std::collections::BTreeMap;
use std::time::Duration;

use osam_keycloak_fake::{FakeKeycloak, FakeUser};
use osam_proto::v1 as pb;
use tonic::Code;

use crate::harness::{OsamServer, check, eventually, osam_command, reason_of, secret_file};

const CLIENT_ID: &str = "osam";
const CLIENT_SECRET: &str = "fake-client-secret-for-tests";
const TOKEN_LIFETIME: Duration = Duration::from_secs(600);

/// A realm with an operator, two users with catalog roles (one through a group) and a
/// pre-existing attribute that the link must not overwrite.
async fn realm() -> FakeKeycloak {
    let keycloak = FakeKeycloak::start("osam").await;
    keycloak.add_service_client(CLIENT_ID, CLIENT_SECRET);
    keycloak.add_realm_role("rs_osam_update", &[]);
    keycloak.add_realm_role("rs_catalog_esa:s1-l1_read", &[]);
    keycloak.add_realm_role("rs_catalog_esa:s2-l2_read", &[]);
    keycloak.add_group("/institutions/esa/ops", &["rs_catalog_esa:s2-l2_read"]);

    keycloak.add_user(FakeUser::new("operator"));
    keycloak.grant_realm_role("operator", "rs_osam_update");
    let mut alice = FakeUser::new("alice");
    alice.attributes = BTreeMap::from([("institute".to_owned(), vec!["esa".to_owned()])]);
    keycloak.add_user(alice);
    keycloak.grant_realm_role("alice", "rs_catalog_esa:s1-l1_read");
    keycloak.add_user(FakeUser::new("bob"));
    keycloak.join_group("bob", "/institutions/esa/ops");
    keycloak
}

fn osam_config(keycloak: &FakeKeycloak, secret_file: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[auth]
key_source = "oidc-discovery"
issuer = "{issuer}"
audience = "osam"
{extra}

[directory]
kind = "keycloak"

[directory.keycloak]
base_url = "{base}"
realm = "{realm}"
client_id = "{CLIENT_ID}"
client_secret_file = {secret_file:?}
"#,
        issuer = keycloak.issuer(),
        base = keycloak.base_url(),
        realm = keycloak.realm(),
    )
}

async fn allowed_or_status(
    server: &OsamServer,
    token: &str,
    request: pb::CheckRequest,
) -> Result<bool, tonic::Status> {
    let mut catalog = server.catalog(token).await;
    catalog
        .check(request)
        .await
        .map(|response| response.into_inner().allowed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keycloak_tokens_are_verified_through_discovery_and_roles_come_from_the_token() {
    let keycloak = realm().await;
    let secret = secret_file(CLIENT_SECRET);
    let server = OsamServer::start(&osam_config(
        &keycloak,
        secret.path(),
        "jwks_min_refresh_seconds = 1\nlive_roles_ttl_seconds = 1",
    ));

    let alice = keycloak.user_token("alice", TOKEN_LIFETIME);
    let bob = keycloak.user_token("bob", TOKEN_LIFETIME);
    let read = |collection: &str| check("esa", &[collection], pb::CatalogAction::Read);
    assert!(
        allowed_or_status(&server, &alice, read("s1-l1"))
            .await
            .expect("alice")
    );
    assert!(
        !allowed_or_status(&server, &alice, read("s2-l2"))
            .await
            .expect("alice")
    );
    assert!(
        allowed_or_status(&server, &bob, read("s2-l2"))
            .await
            .expect("bob"),
        "a role mapped on an ancestor group reaches the token through the realm's composite mapping"
    );

    // A token signed by a rotated-in key is accepted once the JWKS may be read again (at most
    // once per jwks_min_refresh_seconds, so the first attempt may come too early).
    keycloak.rotate_signing_key();
    let rotated = keycloak.user_token("alice", TOKEN_LIFETIME);
    let accepted = eventually(Duration::from_secs(30), || async {
        allowed_or_status(&server, &rotated, read("s1-l1"))
            .await
            .unwrap_or(false)
    })
    .await;
    assert!(
        accepted,
        "a token from the rotated key is still refused after 30 s"
    );

    // Without live roles, a revoked role lasts as long as the token: the documented trade-off.
    keycloak.revoke_realm_role("alice", "rs_catalog_esa:s1-l1_read");
    assert!(
        allowed_or_status(&server, &alice, read("s1-l1"))
            .await
            .expect("alice")
    );

    // But a disabled user is refused at authentication, live roles or not.
    keycloak.set_enabled("alice", false);
    let refused = eventually(Duration::from_secs(30), || async {
        match allowed_or_status(&server, &alice, read("s1-l1")).await {
            Err(status) => status.code() == Code::Unauthenticated && reason_of(&status) == "USER_DISABLED",
            Ok(_) => false,
        }
    })
    .await;
    assert!(
        refused,
        "a disabled user's token is still accepted after 30 s with a 1 s TTL"
    );
    assert!(
        allowed_or_status(&server, &bob, read("s2-l2"))
            .await
            .expect("bob"),
        "other users are unaffected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_creates_accounts_for_the_realm_users_and_links_them_in_keycloak() {
    let keycloak = realm().await;
    let secret = secret_file(CLIENT_SECRET);
    let server = OsamServer::start(&osam_config(&keycloak, secret.path(), ""));
    let operator = keycloak.user_token("operator", TOKEN_LIFETIME);

    let mut accounts = server.accounts(&operator).await;
    let request = pb::SyncAccountsRequest {
        dry_run: false,
        wait: true,
        force: false,
    };
    let run = accounts
        .sync_accounts(request)
        .await
        .expect("sync")
        .into_inner()
        .run
        .expect("a finished run");
    assert!(run.failures.is_empty(), "{:?}", run.failures);
    assert_eq!(run.created, 3, "operator, alice and bob get an account: {run:?}");

    for user in ["operator", "alice", "bob"] {
        let attributes = keycloak.user_attributes(user);
        let link = attributes.get("obs-user").and_then(|values| values.first());
        assert!(
            link.is_some_and(|link| !link.is_empty()),
            "{user} is linked: {attributes:?}"
        );
    }
    assert_eq!(
        keycloak.user_attributes("alice").get("institute"),
        Some(&vec!["esa".to_owned()]),
        "writing the link keeps the user's other attributes"
    );

    // Each user fetches their own credentials with their Keycloak token.
    let alice = keycloak.user_token("alice", TOKEN_LIFETIME);
    let credentials = server
        .accounts(&alice)
        .await
        .get_my_credentials(pb::GetMyCredentialsRequest {})
        .await
        .expect("alice's credentials")
        .into_inner();
    assert_eq!(
        Some(&credentials.account_id),
        keycloak
            .user_attributes("alice")
            .get("obs-user")
            .and_then(|values| values.first()),
        "the link written in Keycloak names the account whose key alice gets"
    );
    assert!(!credentials.access_key_id.is_empty());

    // A user removed from the realm loses their account at the next sync, but one user of three
    // is more than the 10% a sync may delete unforced: the first run refuses.
    keycloak.remove_user("bob");
    let sync = |force: bool| {
        let mut accounts = accounts.clone();
        async move {
            let request = pb::SyncAccountsRequest {
                dry_run: false,
                wait: true,
                force,
            };
            let response = accounts.sync_accounts(request).await.expect("sync");
            response.into_inner().run.expect("a finished run")
        }
    };
    let refused = sync(false).await;
    assert_eq!(refused.state, pb::SyncState::Refused as i32, "{refused:?}");
    let run = sync(true).await;
    assert_eq!((run.created, run.deleted), (0, 1), "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_live_roles_a_revoked_role_and_a_disabled_user_take_effect_within_the_ttl() {
    let keycloak = realm().await;
    let secret = secret_file(CLIENT_SECRET);
    let live = "live_roles = true\nlive_roles_ttl_seconds = 1";
    let server = OsamServer::start(&osam_config(&keycloak, secret.path(), live));
    let alice = keycloak.user_token("alice", TOKEN_LIFETIME);
    let read = || check("esa", &["s1-l1"], pb::CatalogAction::Read);

    assert!(allowed_or_status(&server, &alice, read()).await.expect("alice"));
    keycloak.revoke_realm_role("alice", "rs_catalog_esa:s1-l1_read");
    let revoked = eventually(Duration::from_secs(30), || async {
        !allowed_or_status(&server, &alice, read()).await.expect("alice")
    })
    .await;
    assert!(revoked, "the revoked role still grants after 30 s with a 1 s TTL");

    // A role granted in Keycloak also applies before the user gets a new token.
    keycloak.grant_realm_role("alice", "rs_catalog_esa:s2-l2_read");
    let granted = eventually(Duration::from_secs(30), || async {
        allowed_or_status(&server, &alice, check("esa", &["s2-l2"], pb::CatalogAction::Read))
            .await
            .expect("alice")
    })
    .await;
    assert!(granted, "the new role is not seen after 30 s with a 1 s TTL");

    keycloak.set_enabled("alice", false);
    let refused = eventually(Duration::from_secs(30), || async {
        match allowed_or_status(&server, &alice, read()).await {
            Err(status) => status.code() == Code::Unauthenticated && reason_of(&status) == "USER_DISABLED",
            Ok(_) => false,
        }
    })
    .await;
    assert!(
        refused,
        "a disabled user's valid token is still accepted after 30 s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_config_probe_requests_an_admin_token_and_never_prints_the_secret() {
    let keycloak = realm().await;
    let state = tempfile::tempdir().expect("state");
    let probe = |secret: &str| {
        let secret = secret_file(secret);
        let config = state.path().join("osam.toml");
        std::fs::write(&config, osam_config(&keycloak, secret.path(), "")).expect("config");
        let output = osam_command(state.path())
            .args(["check-config", "--probe", "--config"])
            .arg(&config)
            .output()
            .expect("check-config runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.code(), text)
    };

    let requests_before = keycloak.token_requests();
    let (code, text) = tokio::task::block_in_place(|| probe(CLIENT_SECRET));
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("obtained an admin token"), "{text}");
    assert!(
        keycloak.token_requests() > requests_before,
        "the probe reached the token endpoint"
    );
    assert!(!text.contains(CLIENT_SECRET), "the secret is printed: {text}");

    let wrong = "a-wrong-secret-that-must-not-leak";
    let (code, text) = tokio::task::block_in_place(|| probe(wrong));
    assert_eq!(code, Some(3), "{text}");
    assert!(text.contains("probe failed"), "{text}");
    assert!(!text.contains(wrong), "the secret is printed: {text}");
}
