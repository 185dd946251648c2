//! CatalogAuthz over the wire: own rights, other subjects, batches, reverse lookups, ABAC.

use osam_proto::v1 as pb;
use pb::CatalogAction::{Download, Read, Write};
use tonic::Code;

use crate::harness::{OsamServer, allowed, check, reason_of};

#[tokio::test]
async fn a_user_checks_their_own_rights_with_reasons() {
    let server = OsamServer::start("");
    let mut catalog = server.catalog(&server.dev_token("alice")).await;

    let mut request = check("copernicus", &["s1-l1", "s2-l2"], Read);
    request.explain = true;
    let response = catalog.check(request).await.expect("check").into_inner();
    assert!(!response.allowed);
    assert_eq!(response.subject, "alice");
    let reasons: Vec<(bool, i32, &str)> = response
        .decisions
        .iter()
        .map(|d| {
            let r = d.reason.as_ref().expect("reason");
            (d.allowed, r.kind, r.detail.as_str())
        })
        .collect();
    assert_eq!(
        reasons,
        [
            (
                true,
                pb::ReasonKind::CatalogRole as i32,
                "rs_catalog_copernicus:s1-l1_read"
            ),
            (false, pb::ReasonKind::NoGrant as i32, ""),
        ]
    );

    assert!(allowed(&mut catalog, check("copernicus", &["s1-l1"], Download)).await);
    assert!(!allowed(&mut catalog, check("copernicus", &["s1-l1"], Write)).await);
    assert!(
        allowed(&mut catalog, check("alice", &["anything"], Write)).await,
        "owners may do anything"
    );
    let unexplained = catalog
        .check(check("paul", &["x", "y"], Read))
        .await
        .expect("check")
        .into_inner();
    assert!(unexplained.allowed && unexplained.decisions.is_empty());
}

#[tokio::test]
async fn checking_another_subject_needs_check_any() {
    let server = OsamServer::start("");
    let mut as_alice = server.catalog(&server.dev_token("alice")).await;
    let mut request = check("copernicus", &["s1-l1"], Read);
    request.subject = Some(pb::Subject {
        username: "bob".into(),
        ..Default::default()
    });
    let status = as_alice.check(request.clone()).await.expect_err("denied");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason_of(&status), "SUBJECT_NOT_ALLOWED");

    // The catalog service resolves bob through the directory...
    let mut as_service = server.catalog(&server.dev_token("catalog_service")).await;
    let response = as_service
        .check(request.clone())
        .await
        .expect("check")
        .into_inner();
    assert!(response.allowed);
    assert_eq!(response.subject, "bob");

    // ...or checks roles it already knows, as given.
    request.subject = Some(pb::Subject {
        username: "zed".into(),
        roles: vec!["rs_catalog_copernicus:*_write".into()],
        ..Default::default()
    });
    assert!(!allowed(&mut as_service, request.clone()).await);
    request.action = Write as i32;
    assert!(allowed(&mut as_service, request.clone()).await);

    request.subject = Some(pb::Subject {
        username: "ghost".into(),
        ..Default::default()
    });
    let status = as_service.check(request).await.expect_err("unknown user");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason_of(&status), "USER_NOT_FOUND");
}

#[tokio::test]
async fn bad_input_gets_invalid_argument_with_a_reason() {
    let server = OsamServer::start("");
    let mut catalog = server.catalog(&server.dev_token("catalog_service")).await;
    let status = catalog
        .check(check("o", &["c"], pb::CatalogAction::Unspecified))
        .await
        .expect_err("no action");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status), "INVALID_ARGUMENT");
    assert!(status.message().contains("check.action"), "{}", status.message());

    let mut request = check("o", &["c"], Read);
    request.resource = Some(pb::ResourceAttributes {
        read_groups: vec!["no-slash".into()],
        ..Default::default()
    });
    let status = catalog.check(request).await.expect_err("bad group");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("check.resource.read_groups[0]"),
        "{}",
        status.message()
    );

    let mut request = check("o", &["c"], Read);
    request.subject = Some(pb::Subject::default());
    assert_eq!(
        catalog.check(request).await.expect_err("empty subject").code(),
        Code::InvalidArgument
    );
}

#[tokio::test]
async fn resource_attributes_grant_through_the_group_hierarchy() {
    let server = OsamServer::start("");
    let mut catalog = server.catalog(&server.dev_token("alice")).await;
    let mut request = check("esa", &["ops-data"], Read);
    request.explain = true;
    request.resource = Some(pb::ResourceAttributes {
        read_groups: vec!["/institutions/esa".into()],
        ..Default::default()
    });
    let response = catalog.check(request.clone()).await.expect("check").into_inner();
    assert!(response.allowed);
    let reason = response.decisions[0].reason.clone().expect("reason");
    assert_eq!(
        (reason.kind, reason.detail.as_str()),
        (pb::ReasonKind::ResourceGroup as i32, "/institutions/esa")
    );

    request.resource = Some(pb::ResourceAttributes {
        read_groups: vec!["/institutions/es".into()],
        ..Default::default()
    });
    assert!(!allowed(&mut catalog, request.clone()).await, "separator-aware");
    request.action = Download as i32;
    request.resource = Some(pb::ResourceAttributes {
        public_read: true,
        ..Default::default()
    });
    assert!(
        !allowed(&mut catalog, request).await,
        "public read is not download"
    );
}

#[tokio::test]
async fn batches_answer_in_order_with_per_item_errors() {
    let server = OsamServer::start("[catalog]\nmax_batch_size = 3\n");
    let mut catalog = server.catalog(&server.dev_token("catalog_service")).await;
    let subject = |username: &str| {
        Some(pb::Subject {
            username: username.into(),
            ..Default::default()
        })
    };
    let item = |id: &str, username: &str, collections: &[&str]| pb::BatchCheckItem {
        correlation_id: id.into(),
        check: Some(pb::CheckRequest {
            subject: subject(username),
            ..check("copernicus", collections, Read)
        }),
    };
    let batch = pb::BatchCheckRequest {
        items: vec![
            item("a", "alice", &["s1-l1"]),
            item("b", "ghost", &["x"]),
            item("c", "alice", &["s2"]),
        ],
    };
    let results = catalog
        .batch_check(batch)
        .await
        .expect("batch")
        .into_inner()
        .results;
    let ids: Vec<&str> = results
        .iter()
        .map(|result| result.correlation_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    use pb::batch_check_result::Outcome;
    assert!(matches!(&results[0].outcome, Some(Outcome::Response(response)) if response.allowed));
    assert!(
        matches!(&results[1].outcome, Some(Outcome::Error(error)) if error.reason == "USER_NOT_FOUND" && error.code == Code::NotFound as i32)
    );
    assert!(matches!(&results[2].outcome, Some(Outcome::Response(response)) if !response.allowed));

    let too_many = pb::BatchCheckRequest {
        items: (0..4)
            .map(|i| item(&i.to_string(), "alice", &["s1-l1"]))
            .collect(),
    };
    let status = catalog.batch_check(too_many).await.expect_err("too large");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(reason_of(&status), "BATCH_TOO_LARGE");
}

#[tokio::test]
async fn list_grants_pages_through_every_grant() {
    let server = OsamServer::start("");
    let mut catalog = server.catalog(&server.dev_token("alice")).await;
    let mut token = String::new();
    let mut grants = Vec::new();
    loop {
        let request = pb::ListGrantsRequest {
            subject: None,
            page: Some(pb::PageRequest {
                page_size: 2,
                page_token: token.clone(),
            }),
        };
        let page = catalog.list_grants(request).await.expect("list").into_inner();
        assert_eq!(page.total_size, 6);
        grants.extend(page.grants);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let listed: Vec<(String, String, i32, String)> = grants
        .into_iter()
        .map(|grant| (grant.owner, grant.collection, grant.action, grant.source))
        .collect();
    let owner = |action: pb::CatalogAction| {
        (
            "alice".to_owned(),
            "*".to_owned(),
            action as i32,
            "owner".to_owned(),
        )
    };
    let role = |owner: &str, collection: &str, action: pb::CatalogAction, role: &str| {
        (
            owner.to_owned(),
            collection.to_owned(),
            action as i32,
            role.to_owned(),
        )
    };
    assert_eq!(
        listed,
        [
            owner(Read),
            owner(Write),
            owner(Download),
            role("copernicus", "s1-l1", Read, "rs_catalog_copernicus:s1-l1_read"),
            role(
                "copernicus",
                "s1-l1",
                Download,
                "rs_catalog_copernicus:s1-l1_download"
            ),
            role("paul", "*", Read, "rs_catalog_paul:*_read"),
        ]
    );

    let stale = pb::ListGrantsRequest {
        subject: None,
        page: Some(pb::PageRequest {
            page_size: 2,
            page_token: "bm90LWEtdG9rZW4".into(),
        }),
    };
    assert_eq!(
        catalog.list_grants(stale).await.expect_err("bad token").code(),
        Code::InvalidArgument
    );
}
