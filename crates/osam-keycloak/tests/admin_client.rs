//! The admin client against the wire fake: the token's life cycle, retries of transient
//! failures, errors that name the call, and a secret that never shows.

mod support;

use std::time::{Duration, Instant};

use osam_keycloak::{AdminClient, KeycloakError};
use osam_keycloak_fake::FakeUser;
use osam_policy::{Directory, DirectoryError};

use support::{CLIENT_ID, directory, fake_realm, settings, settings_with_secret};

/// A realm with the user alice, and a directory that already holds an admin token.
async fn alice_with_a_token() -> (osam_keycloak_fake::FakeKeycloak, osam_keycloak::KeycloakDirectory) {
    let keycloak = fake_realm().await;
    keycloak.add_user(FakeUser::new("alice"));
    let directory = directory(settings(&keycloak));
    directory.client().probe().await.expect("token");
    (keycloak, directory)
}

#[tokio::test]
async fn an_expired_admin_token_is_replaced_once_and_the_call_succeeds() {
    let keycloak = fake_realm().await;
    keycloak.add_user(FakeUser::new("alice"));
    let directory = directory(settings(&keycloak));
    directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");
    assert_eq!(keycloak.token_requests(), 1);

    keycloak.expire_admin_tokens();
    directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");
    assert_eq!(keycloak.token_requests(), 2, "one new token");

    directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");
    assert_eq!(keycloak.token_requests(), 2, "and it is kept");
}

#[tokio::test]
async fn a_token_is_replaced_before_it_expires() {
    let keycloak = fake_realm().await;
    keycloak.add_user(FakeUser::new("alice"));
    // Replaced with a tenth of its lifetime left: from 3.6 s on.
    keycloak.set_admin_token_lifetime(Duration::from_secs(4));
    let directory = directory(settings(&keycloak));
    directory.find_user("alice").await.expect("lookup");
    assert_eq!(keycloak.token_requests(), 1);

    tokio::time::sleep(Duration::from_millis(1_000)).await;
    directory.find_user("alice").await.expect("lookup");
    assert_eq!(keycloak.token_requests(), 1, "still well within its lifetime");

    tokio::time::sleep(Duration::from_millis(2_750)).await;
    let admin_requests_before = keycloak.admin_requests();
    directory.find_user("alice").await.expect("lookup");
    assert_eq!(keycloak.token_requests(), 2, "replaced inside the margin");
    assert_eq!(
        keycloak.admin_requests() - admin_requests_before,
        admin_requests_per_lookup(),
        "without a rejected call first"
    );
}

/// A lookup is the user search, the realm roles and the groups.
fn admin_requests_per_lookup() -> usize {
    3
}

#[tokio::test]
async fn concurrent_callers_share_one_token_request() {
    let keycloak = fake_realm().await;
    keycloak.add_user(FakeUser::new("alice"));
    let directory = std::sync::Arc::new(directory(settings(&keycloak)));
    let mut lookups = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let directory = directory.clone();
        lookups.spawn(async move { directory.find_user("alice").await });
    }
    while let Some(lookup) = lookups.join_next().await {
        lookup.expect("joined").expect("lookup").expect("alice");
    }
    assert_eq!(keycloak.token_requests(), 1);
}

#[tokio::test]
async fn callers_waiting_during_an_outage_share_the_failure_of_one_token_request() {
    let keycloak = fake_realm().await;
    keycloak.add_user(FakeUser::new("alice"));
    let settings = settings(&keycloak);
    let attempts = settings.max_attempts as usize;
    let directory = std::sync::Arc::new(directory(settings));
    // Keycloak answers 503 to everything for a while.
    keycloak.faults().fail_next(1_000, 503);
    let mut lookups = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let directory = directory.clone();
        lookups.spawn(async move { directory.find_user("alice").await });
    }
    while let Some(lookup) = lookups.join_next().await {
        lookup.expect("joined").expect_err("Keycloak is down");
    }
    assert_eq!(
        keycloak.token_requests(),
        attempts,
        "one retry cycle for all the waiting callers, not one each"
    );
}

#[tokio::test]
async fn a_rejected_token_is_replaced_and_the_call_sent_again() {
    let (keycloak, directory) = alice_with_a_token().await;

    keycloak.faults().fail_next(1, 401);
    directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");
    assert_eq!(keycloak.token_requests(), 2);
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let (keycloak, directory) = alice_with_a_token().await;

    keycloak.faults().fail_next(3, 503);
    directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_time_keycloak_asks_for() {
    let (keycloak, directory) = alice_with_a_token().await;

    keycloak.faults().rate_limit_next(1, 1);
    let started = Instant::now();
    directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn dropped_connections_are_retried_until_success() {
    let keycloak = fake_realm().await;
    keycloak.add_user(FakeUser::new("alice"));
    let directory = directory(settings(&keycloak));

    // The token request is dropped too, and retried like any other call.
    keycloak.faults().drop_next(3);
    directory
        .find_user("alice")
        .await
        .expect("lookup")
        .expect("alice");
}

#[tokio::test]
async fn transient_failures_give_up_after_the_last_attempt() {
    let keycloak = fake_realm().await;
    keycloak.add_user(FakeUser::new("alice"));
    let mut settings = settings(&keycloak);
    settings.max_attempts = 3;
    let directory = directory(settings);
    directory.client().probe().await.expect("token");
    let admin_requests_before = keycloak.admin_requests();

    keycloak.faults().fail_next(3, 503);
    let error = directory.find_user("alice").await.expect_err("gave up");
    assert_eq!(keycloak.admin_requests() - admin_requests_before, 3);
    let DirectoryError::Unavailable(message) = error else {
        panic!("unavailable expected, got {error:?}");
    };
    assert!(message.contains("503"), "{message}");
}

#[tokio::test]
async fn a_forbidden_call_fails_at_once_naming_the_call() {
    let (keycloak, directory) = alice_with_a_token().await;
    let admin_requests_before = keycloak.admin_requests();

    keycloak.faults().fail_next(1, 403);
    let error = directory.find_user("alice").await.expect_err("forbidden");

    assert_eq!(
        keycloak.admin_requests() - admin_requests_before,
        1,
        "not retried"
    );
    let DirectoryError::Unavailable(message) = error else {
        panic!("unavailable expected, got {error:?}");
    };
    assert!(message.contains("GET /admin/realms/osam/users"), "{message}");
    assert!(message.contains("403"), "{message}");
    assert!(
        !message.contains("alice"),
        "the query is not part of the call's name: {message}"
    );
}

#[tokio::test]
async fn a_wrong_client_secret_is_a_clear_token_error_without_the_secret() {
    let keycloak = fake_realm().await;
    keycloak.add_user(FakeUser::new("alice"));
    let wrong_secret = "wrong-secret-do-not-print-91c2";
    let settings = settings_with_secret(&keycloak, wrong_secret);
    assert!(!format!("{settings:?}").contains(wrong_secret));
    let client = AdminClient::new(settings).expect("valid settings");

    let error = client.probe().await.expect_err("refused");

    assert!(matches!(error, KeycloakError::TokenRefused { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains(CLIENT_ID), "{message}");
    assert!(!message.contains(wrong_secret), "{message}");
    assert!(!format!("{error:?}").contains(wrong_secret));

    let directory = osam_keycloak::KeycloakDirectory::new(client);
    let DirectoryError::Unavailable(message) = directory.find_user("alice").await.expect_err("refused")
    else {
        panic!("unavailable expected");
    };
    assert!(message.contains("refused"), "{message}");
    assert!(!message.contains(wrong_secret), "{message}");
}

#[tokio::test]
async fn an_unreachable_keycloak_is_reported_after_the_attempts() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let mut settings = osam_keycloak::KeycloakSettings::new(
        format!("http://127.0.0.1:{port}"),
        "osam".to_owned(),
        CLIENT_ID.to_owned(),
        osam_keycloak::ClientSecret::new("secret".to_owned()),
    );
    settings.max_attempts = 2;
    settings.retry_base_delay = Duration::from_millis(10);
    let client = AdminClient::new(settings).expect("valid settings");

    let error = client.probe().await.expect_err("unreachable");

    assert!(matches!(error, KeycloakError::Unreachable { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains("POST /realms/osam/protocol/openid-connect/token"),
        "{error}"
    );
}
