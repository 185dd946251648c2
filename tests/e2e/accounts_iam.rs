//! The account sync against moto's IAM (signatures and policies enforced): IAM users and keys are
//! created, a user's own key from GetMyCredentials works once ApplyUserRights has run, a user who
//! leaves the directory loses their IAM user, and IAM users osam does not own survive every sync.

use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use base64::Engine;
use osam_proto::v1 as pb;

use crate::harness::{OsamServer, sync_accounts};
use crate::moto::Moto;

fn users_yaml(names: &[&str]) -> String {
    let mut yaml = String::from("users:\n  operator:\n    roles: rs_osam_update\n");
    for name in names {
        yaml.push_str(&format!(
            "  {name}:\n    roles: [\"rs_catalog_copernicus:s1-l1_download\"]\n"
        ));
    }
    yaml
}

async fn osam_iam_users(moto: &Moto) -> Vec<String> {
    let listed = moto
        .admin_iam()
        .list_users()
        .path_prefix("/osam/")
        .send()
        .await
        .expect("list users");
    listed
        .users()
        .iter()
        .map(|user| user.user_name().to_owned())
        .collect()
}

#[tokio::test]
async fn the_sync_manages_iam_users_whose_keys_work_and_leaves_others_alone() {
    let moto = Moto::start().await;
    let admin_s3 = moto.admin_s3();
    for bucket in ["osam-secrets", "osam-catalog", "osam-s1"] {
        admin_s3
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("bucket");
    }
    moto.put_text("osam-s1", "copernicus/s1-l1/product.txt", "data")
        .await;
    moto.put_text("osam-catalog", "someone/else/product.txt", "data")
        .await;
    // IAM users osam does not own: elsewhere, and under its path without the ownership tag.
    let iam = moto.admin_iam();
    iam.create_user()
        .user_name("human-admin")
        .send()
        .await
        .expect("user");
    iam.create_user()
        .user_name("legacy-osam")
        .path("/osam/")
        .send()
        .await
        .expect("user");

    let files = tempfile::tempdir().expect("files");
    let users = files.path().join("users.yaml");
    std::fs::write(&users, users_yaml(&["alice", "bob"])).expect("write");
    let buckets = files.path().join("buckets.csv");
    std::fs::write(&buckets, "*,*,*,30,osam-catalog\ncopernicus,s1-l1,*,30,osam-s1\n").expect("write");
    let secret = files.path().join("admin-secret");
    std::fs::write(&secret, &moto.admin_key.1).expect("write");
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key).expect("random");
    let sealing_key = files.path().join("sealing-key");
    std::fs::write(
        &sealing_key,
        base64::engine::general_purpose::STANDARD.encode(key),
    )
    .expect("write");
    let config = format!(
        "[directory]\nfile = {users:?}\nreload_interval_seconds = 1\n\
         [storage]\nbucket_config_file = {buckets:?}\n\
         [storage.s3]\nendpoint = \"{endpoint}\"\naccess_key_id = \"{key_id}\"\nsecret_access_key_file = {secret:?}\n\
         [accounts]\nprovider = \"iam\"\n\
         [accounts.iam]\nendpoint = \"{endpoint}\"\naccess_key_id = \"{key_id}\"\nsecret_access_key_file = {secret:?}\n\
         secrets_bucket = \"osam-secrets\"\nsealing_key_file = {sealing_key:?}\n",
        endpoint = moto.endpoint,
        key_id = moto.admin_key.0,
    );
    let server = OsamServer::start(&config);

    let first = sync_accounts(&server, false).await;
    assert_eq!((first.created, first.failures.len()), (3, 0), "{first:?}");
    let managed = osam_iam_users(&moto).await;
    assert_eq!(managed.len(), 4, "three created and the legacy user: {managed:?}");

    // alice's own key, from GetMyCredentials, is accepted by moto; her rights apply once applied.
    let mut as_alice = server.accounts(&server.dev_token("alice")).await;
    let credentials = as_alice
        .get_my_credentials(pb::GetMyCredentialsRequest {})
        .await
        .expect("credentials")
        .into_inner();
    assert_eq!(credentials.endpoint, moto.endpoint);
    let alice_s3 = moto.s3((&credentials.access_key_id, &credentials.secret_access_key));
    let before = alice_s3
        .get_object()
        .bucket("osam-s1")
        .key("copernicus/s1-l1/product.txt")
        .send()
        .await;
    assert_eq!(before.expect_err("no policy yet").code(), Some("AccessDenied"));

    let mut rights = server.rights(&server.dev_token("operator")).await;
    rights
        .apply_user_rights(pb::ApplyUserRightsRequest {
            username: "alice".into(),
        })
        .await
        .expect("applied");
    alice_s3
        .get_object()
        .bucket("osam-s1")
        .key("copernicus/s1-l1/product.txt")
        .send()
        .await
        .expect("allowed now");
    let elsewhere = alice_s3
        .get_object()
        .bucket("osam-catalog")
        .key("someone/else/product.txt")
        .send()
        .await;
    assert_eq!(
        elsewhere.expect_err("outside her rights").code(),
        Some("AccessDenied")
    );

    // bob leaves the directory: his IAM user goes (forced: one of three managed is over 10%).
    std::fs::write(&users, users_yaml(&["alice"])).expect("write");
    let mut reloaded = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut accounts = server.accounts(&server.dev_token("operator")).await;
        let plan = accounts
            .sync_accounts(pb::SyncAccountsRequest {
                dry_run: true,
                ..Default::default()
            })
            .await
            .expect("plan");
        if plan.into_inner().plan.is_some_and(|plan| plan.delete.len() == 1) {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "the directory change was seen");
    let refused = sync_accounts(&server, false).await;
    assert_eq!(refused.state, pb::SyncState::Refused as i32);
    let forced = sync_accounts(&server, true).await;
    assert_eq!((forced.deleted, forced.failures.len()), (1, 0), "{forced:?}");
    let remaining = osam_iam_users(&moto).await;
    assert_eq!(remaining.len(), 3, "{remaining:?}");
    assert!(
        remaining.contains(&"legacy-osam".to_owned()),
        "the untagged user survives"
    );
    iam.get_user()
        .user_name("human-admin")
        .send()
        .await
        .expect("the outside user survives");

    let again = sync_accounts(&server, false).await;
    assert_eq!(
        (again.created, again.deleted, again.relinked),
        (0, 0, 0),
        "converged: {again:?}"
    );
}
