//! RightsService identity methods, impersonation, the static directory reload, and the methods
//! that later work fills in.

use std::time::Duration;

use osam_proto::v1 as pb;
use tonic::Code;

use crate::harness::{BearerToken, OsamServer, allowed, check, reason_of};

#[tokio::test]
async fn who_am_i_and_user_info_use_the_bluesky_displayed_name() {
    let server = OsamServer::start("");
    let mut rights = server.rights(&server.dev_token("alice")).await;
    let me = rights
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("whoami")
        .into_inner();
    let user = me.user.expect("user");
    assert_eq!(user.displayed_name, "alice \"Alice Martin <alice@example.org>\"");
    assert_eq!(user.scopes, ["catalog:check"]);
    assert_eq!(user.groups, ["/institutions/esa/ops"]);
    assert!(me.actor.is_empty());

    let status = rights
        .get_user_info(pb::GetUserInfoRequest {
            username: "bob".into(),
        })
        .await
        .expect_err("no scope");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason_of(&status), "MISSING_SCOPE");

    let mut as_operator = server.rights(&server.dev_token("operator")).await;
    let bob = as_operator
        .get_user_info(pb::GetUserInfoRequest {
            username: "bob".into(),
        })
        .await
        .expect("info")
        .into_inner();
    let bob = bob.user.expect("user");
    assert_eq!(bob.displayed_name, "bob <bob@example.org>");
    assert_eq!(
        bob.roles,
        ["rs_catalog_copernicus:*_read", "rs_catalog_copernicus:*_write"]
    );
    let carol = as_operator
        .get_user_info(pb::GetUserInfoRequest {
            username: "carol".into(),
        })
        .await
        .expect("info")
        .into_inner();
    assert_eq!(carol.user.expect("user").displayed_name, "carol");
    let status = as_operator
        .get_user_info(pb::GetUserInfoRequest {
            username: "ghost".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn an_app_with_the_scope_acts_with_the_users_rights() {
    let server = OsamServer::start("");
    let channel = server.channel().await;
    let app_token = server.dev_token("notebook_app");
    let acting_for_alice = BearerToken::new(&app_token).impersonating("alice");
    let mut rights = pb::rights_service_client::RightsServiceClient::with_interceptor(
        channel.clone(),
        acting_for_alice.clone(),
    );
    let me = rights
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .expect("whoami")
        .into_inner();
    assert_eq!(me.user.expect("user").username, "alice");
    assert_eq!(me.actor, "notebook_app");

    let mut catalog =
        pb::catalog_authz_client::CatalogAuthzClient::with_interceptor(channel.clone(), acting_for_alice);
    assert!(
        allowed(
            &mut catalog,
            check("copernicus", &["s1-l1"], pb::CatalogAction::Read)
        )
        .await
    );
    assert!(
        !allowed(
            &mut catalog,
            check("copernicus", &["s1-l1"], pb::CatalogAction::Write)
        )
        .await
    );

    let logged = server.logs().into_iter().any(|event| {
        event["message"] == "impersonated call"
            && event["actor"] == "notebook_app"
            && event["user"] == "alice"
    });
    assert!(logged, "the impersonated call is logged with both names");

    let without_scope = BearerToken::new(&server.dev_token("bob")).impersonating("alice");
    let mut rights =
        pb::rights_service_client::RightsServiceClient::with_interceptor(channel.clone(), without_scope);
    let status = rights.who_am_i(pb::WhoAmIRequest {}).await.expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason_of(&status), "IMPERSONATION_NOT_ALLOWED");

    let ghost = BearerToken::new(&app_token).impersonating("ghost");
    let mut rights = pb::rights_service_client::RightsServiceClient::with_interceptor(channel, ghost);
    assert_eq!(
        rights
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .expect_err("unknown")
            .code(),
        Code::NotFound
    );
}

#[tokio::test]
async fn the_static_directory_is_reloaded_and_broken_edits_are_ignored() {
    let users = tempfile::NamedTempFile::new().expect("users file");
    std::fs::write(
        users.path(),
        "users:\n  operator:\n    roles: rs_osam_update\n  dora:\n    email: dora@example.org\n",
    )
    .expect("write");
    let config = format!(
        "[directory]\nfile = {:?}\nreload_interval_seconds = 1\n",
        users.path()
    );
    let server = OsamServer::start(&config);
    let mut rights = server.rights(&server.dev_token("operator")).await;
    let email_of = |info: pb::GetUserInfoResponse| info.user.expect("user").email;
    let info = rights
        .get_user_info(pb::GetUserInfoRequest {
            username: "dora".into(),
        })
        .await
        .expect("info");
    assert_eq!(email_of(info.into_inner()), "dora@example.org");

    std::fs::write(
        users.path(),
        "users:\n  operator:\n    roles: rs_osam_update\n  dora:\n    email: dora@new.example.org\n",
    )
    .expect("write");
    let mut reloaded = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let info = rights
            .get_user_info(pb::GetUserInfoRequest {
                username: "dora".into(),
            })
            .await
            .expect("info");
        if email_of(info.into_inner()) == "dora@new.example.org" {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "the edit was picked up");

    std::fs::write(
        users.path(),
        "users:\n  operator:\n    roles: rs_osam_update\n  dora:\n    emial: typo\n",
    )
    .expect("write");
    let mut warned = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        warned = server.logs().iter().any(|event| {
            event["level"] == "WARN"
                && event["reason"]
                    .as_str()
                    .is_some_and(|reason| reason.contains("emial"))
        });
        if warned {
            break;
        }
    }
    assert!(warned, "the broken edit is logged with its reason");
    let info = rights
        .get_user_info(pb::GetUserInfoRequest {
            username: "dora".into(),
        })
        .await
        .expect("still served");
    assert_eq!(
        email_of(info.into_inner()),
        "dora@new.example.org",
        "the last good version is kept"
    );
}
