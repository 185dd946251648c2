//! osam-client against the real binary: credential sources, impersonation with the user's own
//! rights, errors that keep the server's reason, retries.

use std::time::Duration;

use osam_client::credentials::{FileRetry, LaunchingUser, RunningUser};
use osam_client::{OsamClient, RetryPolicy, pb};
use tonic::Code;

use crate::harness::OsamServer;

/// Users for impersonation: an app with wide catalog rights, a user with narrow ones.
const USERS: &str = r#"
users:
  wide_app:
    roles: [rs_osam_impersonate, "rs_catalog_*:*_write", "rs_catalog_*:*_read"]
  plain_app:
    roles: ["rs_catalog_*:*_write"]
  operator:
    roles: rs_osam_update
  alice:
    roles: ["rs_catalog_copernicus:s1-l1_read"]
    email: alice@example.org
"#;

fn server_with_users() -> (OsamServer, tempfile::NamedTempFile) {
    let users = tempfile::NamedTempFile::new().expect("users file");
    std::fs::write(users.path(), USERS).expect("write");
    let server = OsamServer::start(&format!("[directory]\nfile = {:?}\n", users.path()));
    (server, users)
}

fn write_check(owner: &str, collection: &str) -> pb::CheckRequest {
    pb::CheckRequest {
        owner: owner.to_owned(),
        collections: vec![collection.to_owned()],
        action: pb::CatalogAction::Write as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn an_app_acting_for_a_user_gets_the_users_rights_not_its_own() {
    let (server, _users) = server_with_users();
    let token_file = tempfile::NamedTempFile::new().expect("token file");
    std::fs::write(token_file.path(), server.dev_token("wide_app")).expect("write");
    let app = OsamClient::builder(format!("http://{}", server.address))
        .credentials(LaunchingUser::from_file(token_file.path()))
        .build()
        .expect("client");

    assert!(
        app.check(write_check("copernicus", "s1-l1"))
            .await
            .expect("check")
            .allowed,
        "the app itself may write"
    );
    let for_alice = app.acting_for("alice").expect("valid name");
    assert!(
        !for_alice
            .check(write_check("copernicus", "s1-l1"))
            .await
            .expect("check")
            .allowed,
        "alice may not"
    );
    let me = for_alice.who_am_i().await.expect("whoami");
    assert_eq!(
        (me.user.expect("user").username.as_str(), me.actor.as_str()),
        ("alice", "wide_app")
    );

    let audit = server
        .logs()
        .into_iter()
        .find(|event| event["message"] == "impersonated call")
        .expect("audit line");
    assert_eq!(
        (audit["actor"].as_str(), audit["user"].as_str()),
        (Some("wide_app"), Some("alice"))
    );
    assert_eq!(audit["method"], "/osam.v1.CatalogAuthz/Check");

    let plain = OsamClient::builder(format!("http://{}", server.address))
        .credentials(RunningUser::new(server.dev_token("plain_app")).expect("token"))
        .act_for("alice")
        .build()
        .expect("client");
    let error = plain
        .check(write_check("copernicus", "s1-l1"))
        .await
        .expect_err("no impersonation scope");
    assert_eq!(error.code(), Some(Code::PermissionDenied));
    assert_eq!(error.reason(), Some("IMPERSONATION_NOT_ALLOWED"));
}

#[tokio::test]
async fn a_rotated_launching_user_token_is_used_at_once() {
    let (server, _users) = server_with_users();
    let token_file = tempfile::NamedTempFile::new().expect("token file");
    std::fs::write(token_file.path(), server.dev_token("alice")).expect("write");
    let client = OsamClient::builder(format!("http://{}", server.address))
        .credentials(LaunchingUser::from_file(token_file.path()))
        .build()
        .expect("client");
    let username = |response: pb::WhoAmIResponse| response.user.expect("user").username;
    assert_eq!(username(client.who_am_i().await.expect("whoami")), "alice");

    std::fs::write(token_file.path(), server.dev_token("operator")).expect("rotate");
    assert_eq!(username(client.who_am_i().await.expect("whoami")), "operator");

    let error = client
        .get_user_info(pb::GetUserInfoRequest {
            username: String::new(),
        })
        .await
        .expect_err("bad input");
    assert_eq!(error.reason(), Some("INVALID_ARGUMENT"));
    assert!(error.to_string().contains("username"), "{error}");
}

#[tokio::test]
async fn missing_credentials_and_unreachable_servers_are_reported_clearly() {
    let directory = tempfile::tempdir().expect("temp dir");
    let missing = directory.path().join("no-token");
    let retry = FileRetry {
        attempts: 2,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    };
    let client = OsamClient::builder("http://127.0.0.1:9")
        .credentials(LaunchingUser::with_retry(&missing, retry))
        .build()
        .expect("client");
    let error = client.who_am_i().await.expect_err("no token");
    assert!(error.to_string().contains("no-token"), "names the file: {error}");

    let quick = RetryPolicy {
        attempts: 2,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(10),
    };
    let client = OsamClient::builder("http://127.0.0.1:9")
        .credentials(RunningUser::new("t").expect("token"))
        .retry(quick)
        .build()
        .expect("client");
    assert_eq!(
        client.who_am_i().await.expect_err("nothing listens").code(),
        Some(Code::Unavailable)
    );
    assert!(
        OsamClient::builder("not a uri")
            .credentials(RunningUser::new("t").expect("token"))
            .build()
            .is_err()
    );
    assert!(
        OsamClient::builder("http://127.0.0.1:9").build().is_err(),
        "credentials are required, never implied"
    );
}
