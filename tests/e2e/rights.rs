//! S3 rights end to end: the bucket configuration read from S3 and reloaded, the rights and
//! policies of the conformance vectors accepted by IAM and enforced on S3 with each user's own
//! key, and ApplyUserRights through the embedded account provider.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use aws_sdk_s3::error::ProvideErrorMetadata;
use osam_proto::v1 as pb;
use serde::Deserialize;
use tonic::Code;

use crate::harness::{OsamServer, osam_command, reason_of, workspace_root};
use crate::moto::Moto;

#[derive(Deserialize)]
struct Vectors {
    bucket_config: String,
    cases: Vec<Case>,
}

#[derive(Deserialize, Clone)]
struct Case {
    user: String,
    roles: Vec<String>,
    read: Vec<String>,
    read_download: Vec<String>,
    write_download: Vec<String>,
}

fn vectors() -> Vectors {
    let directory = std::env::var_os("OSAM_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("../shared/conformance"));
    let text =
        std::fs::read_to_string(directory.join("s3-rights.yaml")).expect("s3-rights.yaml (read in place)");
    serde_yaml_ng::from_str(&text).expect("vectors parse")
}

/// `osam rights --json` for one user, from the real binary.
fn rights_json(
    state: &std::path::Path,
    csv: &std::path::Path,
    user: &str,
    roles: &[String],
) -> serde_json::Value {
    let output = osam_command(state)
        .args([
            "rights",
            "--json",
            "--user",
            user,
            "--roles",
            &roles.join(","),
            "--bucket-config",
        ])
        .arg(csv)
        .output()
        .expect("osam rights runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON object")
}

#[tokio::test]
async fn the_operator_command_prints_the_conformance_rights() {
    let vectors = vectors();
    let state = tempfile::tempdir().expect("temp dir");
    let csv = state.path().join("buckets.csv");
    std::fs::write(&csv, &vectors.bucket_config).expect("write");
    for case in &vectors.cases {
        let rights = rights_json(state.path(), &csv, &case.user, &case.roles);
        assert_eq!(
            rights["read"],
            serde_json::json!(case.read),
            "{} {:?}",
            case.user,
            case.roles
        );
        assert_eq!(
            rights["read_download"],
            serde_json::json!(case.read_download),
            "{} {:?}",
            case.user,
            case.roles
        );
        assert_eq!(
            rights["write_download"],
            serde_json::json!(case.write_download),
            "{} {:?}",
            case.user,
            case.roles
        );
        assert_eq!(rights["policy"]["Version"], "2012-10-17");
        // Owner `*` with a named collection cannot be expressed in IAM without widening it.
        let owner_wildcard = case
            .roles
            .iter()
            .any(|role| role.starts_with("rs_catalog_*:") && !role.starts_with("rs_catalog_*:*"));
        assert_eq!(
            rights["not_enforceable"]
                .as_array()
                .is_some_and(|list| !list.is_empty()),
            owner_wildcard,
            "{:?}",
            case.roles
        );
    }
    // The policy is embedded exactly as it is applied: Version first, Sid before Effect.
    let output = osam_command(state.path())
        .args([
            "rights",
            "--json",
            "--user",
            "paul",
            "--roles",
            "rs_catalog_paul:s1-l1_read",
            "--bucket-config",
        ])
        .arg(&csv)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let position = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing from {text}"))
    };
    assert!(position("\"Version\"") < position("\"Statement\""), "{text}");
    assert!(position("\"Sid\"") < position("\"Effect\""), "{text}");

    let output = osam_command(state.path())
        .args(["rights", "--user", "x", "--bucket-config", "/nonexistent.csv"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent.csv"));
}

#[tokio::test]
async fn every_conformance_policy_is_accepted_by_iam() {
    let vectors = vectors();
    let moto = Moto::start().await;
    let state = tempfile::tempdir().expect("temp dir");
    let csv = state.path().join("buckets.csv");
    std::fs::write(&csv, &vectors.bucket_config).expect("write");
    let iam = moto.admin_iam();
    for (position, case) in vectors.cases.iter().enumerate() {
        let policy = rights_json(state.path(), &csv, &case.user, &case.roles)["policy"].to_string();
        let user = format!("case-{position}-{}", case.user);
        iam.create_user()
            .user_name(&user)
            .send()
            .await
            .expect("create user");
        let put = iam
            .put_user_policy()
            .user_name(&user)
            .policy_name("osam")
            .policy_document(&policy)
            .send()
            .await;
        assert!(put.is_ok(), "case {position} {:?}: {put:?}\n{policy}", case.roles);
    }
}

/// Whether `key` of `bucket` lies under one of `paths` (`bucket/owner/collection/`, where `*` in
/// a segment matches any run of characters within that segment).
fn covered(paths: &[String], bucket: &str, key: &str) -> bool {
    let key_segments: Vec<&str> = key.split('/').collect();
    paths.iter().any(|path| {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        segments.len() == 3
            && segments[0] == bucket
            && key_segments.len() > 2
            && segment_matches(segments[1], key_segments[0])
            && segment_matches(segments[2], key_segments[1])
    })
}

fn segment_matches(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((prefix, rest)) => {
            value.starts_with(prefix)
                && (0..=value.len() - prefix.len())
                    .any(|skip| segment_matches(rest, &value[prefix.len() + skip..]))
        }
    }
}

/// A concrete object key under a rights path: `*` becomes a value the glob accepts.
fn key_under(path: &str) -> (String, String) {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let concrete = |segment: &str| segment.replace('*', "zz");
    (
        segments[0].to_owned(),
        format!("{}/{}/object.txt", concrete(segments[1]), concrete(segments[2])),
    )
}

#[tokio::test]
async fn each_users_own_key_can_do_exactly_what_the_rights_lists_allow() {
    let vectors = vectors();
    let moto = Moto::start().await;
    let admin = moto.admin_s3();
    let buckets: BTreeSet<String> = vectors
        .bucket_config
        .lines()
        .filter_map(|line| line.split(',').nth(4))
        .map(|bucket| bucket.trim().to_owned())
        .collect();
    for bucket in &buckets {
        admin
            .create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("create bucket");
    }
    let state = tempfile::tempdir().expect("temp dir");
    let csv = state.path().join("buckets.csv");
    std::fs::write(&csv, &vectors.bucket_config).expect("write");

    let mut exercised = BTreeSet::new();
    let mut listings = BTreeSet::new();
    for (position, case) in vectors.cases.iter().enumerate() {
        let rights = rights_json(state.path(), &csv, &case.user, &case.roles);
        let policy = rights["policy"].to_string();
        // Paths IAM cannot express exactly are left out of the document: never granted on S3.
        let left_out: Vec<String> = rights["not_enforceable"]
            .as_array()
            .expect("list")
            .iter()
            .map(|entry| entry["path"].as_str().expect("path").to_owned())
            .collect();
        let enforced = |paths: &[String]| -> Vec<String> {
            paths
                .iter()
                .filter(|path| !left_out.contains(path))
                .cloned()
                .collect()
        };
        let iam_user = format!("enforce-{position}");
        let key = moto.user_with_key(&iam_user).await;
        moto.admin_iam()
            .put_user_policy()
            .user_name(&iam_user)
            .policy_name("osam")
            .policy_document(&policy)
            .send()
            .await
            .expect("policy");
        let as_user = moto.s3((&key.0, &key.1));

        let mut probes: Vec<(String, String)> = [&case.read, &case.read_download, &case.write_download]
            .into_iter()
            .flatten()
            .map(|path| key_under(path))
            .collect();
        let catch_all = buckets
            .iter()
            .find(|bucket| bucket.as_str() == "rspython-ops-catalog")
            .expect("catch-all bucket");
        probes.push((
            catch_all.clone(),
            "nobody-owner/no-collection/object.txt".to_owned(),
        ));
        for (bucket, object) in probes {
            moto.put_text(&bucket, &object, "content").await;
            let downloadable = [enforced(&case.read_download), enforced(&case.write_download)].concat();
            let may_get = covered(&downloadable, &bucket, &object);
            let may_put = covered(&enforced(&case.write_download), &bucket, &object);

            let get = as_user.get_object().bucket(&bucket).key(&object).send().await;
            assert_eq!(
                get.is_ok(),
                may_get,
                "case {position} GET s3://{bucket}/{object}: {:?}",
                get.as_ref().err()
            );
            if let Err(error) = &get {
                assert_eq!(error.code(), Some("AccessDenied"), "{error:?}");
            }
            let put = as_user
                .put_object()
                .bucket(&bucket)
                .key(&object)
                .body(aws_sdk_s3::primitives::ByteStream::from_static(b"new"))
                .send()
                .await;
            assert_eq!(
                put.is_ok(),
                may_put,
                "case {position} PUT s3://{bucket}/{object}: {:?}",
                put.as_ref().err()
            );
            if let Err(error) = &put {
                assert_eq!(error.code(), Some("AccessDenied"), "{error:?}");
            }
            exercised.insert((may_get, may_put));
        }

        // Listing: the read level's own right. moto ignores the s3:prefix conditions (they have
        // unit tests), so a bucket is listable here when any enforced path of any level is in it.
        let enforced_paths = [
            enforced(&case.read),
            enforced(&case.read_download),
            enforced(&case.write_download),
        ]
        .concat();
        for bucket in &buckets {
            let may_list = enforced_paths
                .iter()
                .any(|path| path.split('/').next() == Some(bucket.as_str()));
            let listed = as_user.list_objects_v2().bucket(bucket).send().await;
            assert_eq!(
                listed.is_ok(),
                may_list,
                "case {position} LIST s3://{bucket}: {:?}",
                listed.as_ref().err()
            );
            listings.insert(may_list);
        }
    }
    assert!(
        listings.contains(&true) && listings.contains(&false),
        "listing was both allowed and denied"
    );
    // Downloadable and writable, downloadable only, and neither were all exercised.
    for outcome in [(true, true), (true, false), (false, false)] {
        assert!(
            exercised.contains(&outcome),
            "no probe for {outcome:?}: {exercised:?}"
        );
    }
}

#[tokio::test]
async fn the_bucket_configuration_is_read_from_s3_and_reloaded() {
    let moto = Moto::start().await;
    moto.admin_s3()
        .create_bucket()
        .bucket("osam-config")
        .send()
        .await
        .expect("bucket");
    moto.put_text("osam-config", "buckets.csv", "*,*,*,30,osam-catalog\n")
        .await;
    let secret_file = tempfile::NamedTempFile::new().expect("secret file");
    std::fs::write(secret_file.path(), &moto.admin_key.1).expect("write");
    let config = format!(
        "[storage]\nbucket_config_source = \"s3\"\nbucket_config_bucket = \"osam-config\"\nbucket_config_key = \"buckets.csv\"\n\
         poll_interval_seconds = 1\n[storage.s3]\nendpoint = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key_file = {:?}\n",
        moto.endpoint,
        moto.admin_key.0,
        secret_file.path()
    );
    let server = OsamServer::start(&config);
    let mut accounts = server.accounts(&server.dev_token("operator")).await;
    let rules = |response: pb::GetStorageConfigurationResponse| -> Vec<String> {
        response
            .rules
            .iter()
            .map(|rule| format!("{},{},{}", rule.owner, rule.collection, rule.bucket))
            .collect()
    };
    let first = accounts
        .get_storage_configuration(pb::GetStorageConfigurationRequest {})
        .await
        .expect("config")
        .into_inner();
    assert_eq!(first.source, "s3://osam-config/buckets.csv");
    assert_eq!(rules(first), ["*,*,osam-catalog"]);

    moto.put_text(
        "osam-config",
        "buckets.csv",
        "*,*,*,30,osam-catalog\ncopernicus, s1-l1, *, 10, osam-s1\n",
    )
    .await;
    let mut served = Vec::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        served = rules(
            accounts
                .get_storage_configuration(pb::GetStorageConfigurationRequest {})
                .await
                .expect("config")
                .into_inner(),
        );
        if served.len() == 2 {
            break;
        }
    }
    assert_eq!(
        served,
        ["*,*,osam-catalog", "copernicus,s1-l1,osam-s1"],
        "the new rules are served"
    );

    // alice's rights follow the new rule at once.
    let mut rights = server.rights(&server.dev_token("operator")).await;
    let alice = rights
        .get_user_rights(pb::GetUserRightsRequest {
            username: "alice".into(),
        })
        .await
        .expect("rights")
        .into_inner();
    assert!(
        alice
            .read_download
            .contains(&"osam-s1/copernicus/s1-l1/".to_owned()),
        "{:?}",
        alice.read_download
    );

    moto.put_text("osam-config", "buckets.csv", "*,*,*,thirty,osam-catalog\n")
        .await;
    let mut warned = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        warned = server.logs().iter().any(|event| {
            event["level"] == "WARN"
                && event["reason"]
                    .as_str()
                    .is_some_and(|reason| reason.contains("line 1"))
        });
        if warned {
            break;
        }
    }
    assert!(warned, "the broken version is logged with its line");
    let kept = rules(
        accounts
            .get_storage_configuration(pb::GetStorageConfigurationRequest {})
            .await
            .expect("config")
            .into_inner(),
    );
    assert_eq!(kept.len(), 2, "the last valid version is kept");
}

/// Writes the embedded provider's state with one account, `embedded-000001`, linked to `username`
/// by its ownership marker, as a sync leaves it.
fn seed_account(server: &OsamServer, username: &str) {
    let seeded = serde_json::json!({"next_id": 1, "accounts": {"embedded-000001": {
        "marker": format!("osam-managed:{username}"), "access_key_id": "OSAMTESTKEY", "secret_access_key": "test-secret"}}});
    std::fs::write(server.state.path().join("accounts.json"), seeded.to_string()).expect("seed");
}

#[tokio::test]
async fn rights_are_computed_and_applied_through_the_embedded_provider() {
    let server = OsamServer::start("");
    let mut rights = server.rights(&server.dev_token("operator")).await;
    let alice = rights
        .get_user_rights(pb::GetUserRightsRequest {
            username: "alice".into(),
        })
        .await
        .expect("rights")
        .into_inner();
    assert!(
        alice
            .read_download
            .contains(&"osam-dev-copernicus-s1-l1/copernicus/s1-l1/".to_owned()),
        "{alice:?}"
    );
    assert!(
        alice
            .write_download
            .contains(&"osam-dev-catalog/alice/*/".to_owned())
    );
    let policy: serde_json::Value = serde_json::from_str(&alice.policy_json).expect("JSON policy");
    assert_eq!(policy["Version"], "2012-10-17");

    let status = rights
        .apply_user_rights(pb::ApplyUserRightsRequest {
            username: "alice".into(),
        })
        .await
        .expect_err("no account yet");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason_of(&status), "NO_ACCOUNT");
    assert!(
        status.message().contains("SyncAccounts"),
        "says how to create accounts: {}",
        status.message()
    );

    // An account linked to alice by its ownership marker, as a sync leaves it.
    let accounts_file = server.state.path().join("accounts.json");
    seed_account(&server, "alice");
    let applied = rights
        .apply_user_rights(pb::ApplyUserRightsRequest {
            username: "alice".into(),
        })
        .await
        .expect("applied")
        .into_inner();
    assert_eq!(applied.account_id, "embedded-000001");
    assert_eq!(applied.policy_json, alice.policy_json);
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&accounts_file).expect("state")).expect("JSON");
    assert_eq!(
        stored["accounts"]["embedded-000001"]["policy"], policy,
        "the provider holds the applied policy"
    );

    let status = rights
        .get_user_rights(pb::GetUserRightsRequest {
            username: "ghost".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    let mut as_alice = server.rights(&server.dev_token("alice")).await;
    let status = as_alice
        .apply_user_rights(pb::ApplyUserRightsRequest {
            username: "alice".into(),
        })
        .await
        .expect_err("scope");
    assert_eq!(reason_of(&status), "MISSING_SCOPE");
}

#[tokio::test]
async fn a_policy_the_provider_rejects_is_a_failed_precondition_with_its_reason() {
    // Enough catalog roles to exceed IAM's 6,144-character limit on a managed policy.
    let roles: Vec<String> = (0..150)
        .map(|i| format!("      - rs_catalog_owner{i}:collection{i}_read"))
        .collect();
    let users = tempfile::NamedTempFile::new().expect("users");
    std::fs::write(
        users.path(),
        format!(
            "users:\n  operator:\n    roles: rs_osam_update\n  hoarder:\n    roles:\n{}\n",
            roles.join("\n")
        ),
    )
    .expect("write");
    let server = OsamServer::start(&format!("[directory]\nfile = {:?}\n", users.path()));
    seed_account(&server, "hoarder");
    let mut rights = server.rights(&server.dev_token("operator")).await;
    let status = rights
        .apply_user_rights(pb::ApplyUserRightsRequest {
            username: "hoarder".into(),
        })
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&status), "PROVIDER_REJECTED");
    assert!(
        status.message().contains("6144"),
        "carries the provider's reason: {}",
        status.message()
    );
}

#[tokio::test]
async fn without_a_bucket_configuration_rights_and_rows_say_so() {
    let directory = tempfile::tempdir().expect("temp dir");
    let missing = directory.path().join("not-yet.csv");
    let server = OsamServer::start(&format!("[storage]\nbucket_config_file = {missing:?}\n"));
    let token = server.dev_token("operator");
    let status = server
        .accounts(&token)
        .await
        .get_storage_configuration(pb::GetStorageConfigurationRequest {})
        .await
        .expect_err("nothing loaded");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(reason_of(&status), "NO_BUCKET_CONFIG");
    let status = server
        .rights(&token)
        .await
        .get_user_rights(pb::GetUserRightsRequest {
            username: "alice".into(),
        })
        .await
        .expect_err("no configuration");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(reason_of(&status), "BUCKET_CONFIG_NOT_LOADED");
    assert!(
        status.message().contains("not-yet.csv"),
        "names the source: {}",
        status.message()
    );
}
