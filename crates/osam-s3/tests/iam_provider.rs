//! The IAM provider against moto's server with authentication enforced: accounts are real IAM
//! users whose keys moto's S3 accepts, secrets survive only sealed in S3, and users osam did not
//! make are never touched. Needs `moto_server` on PATH (or its path in OSAM_TEST_MOTO).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine;
use osam_policy::accounts::{AccountCredentials, AccountProvider, ProviderError, Secret};
use osam_s3::iam::DEFAULT_USER_PATH;
use osam_s3::{IamProvider, IamSettings, S3Settings, SealingKey, SecretStore, iam_user_name, s3_client};

const SECRETS_BUCKET: &str = "osam-secrets";
const SECRETS_PREFIX: &str = "iam/";
const REGION: &str = "us-east-1";

/// A moto server of this test's own. moto lets the first few calls through unsigned; they make
/// the administrator, and from then on every call is signed and checked against IAM policies.
struct MotoServer {
    process: Child,
    endpoint: String,
    admin: AccountCredentials,
}

/// CreateUser, PutUserPolicy and CreateAccessKey of the administrator.
const UNSIGNED_BOOTSTRAP_CALLS: &str = "3";

impl MotoServer {
    async fn launch() -> MotoServer {
        let program = std::env::var("OSAM_TEST_MOTO").unwrap_or_else(|_| "moto_server".into());
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("its address").port()
        };
        let process = Command::new(&program)
            .arg("-H")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(port.to_string())
            .env("INITIAL_NO_AUTH_ACTION_COUNT", UNSIGNED_BOOTSTRAP_CALLS)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot run {program}: {error}; put moto_server on PATH or set OSAM_TEST_MOTO")
            });
        let mut server = MotoServer {
            process,
            endpoint: format!("http://127.0.0.1:{port}"),
            admin: AccountCredentials {
                access_key_id: "unsigned".into(),
                secret_access_key: Secret::new("unsigned"),
            },
        };
        // Connecting is not a request, so it spends none of the unsigned calls.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "moto never listened");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server.admin = server.make_admin().await;
        server
            .admin_s3()
            .create_bucket()
            .bucket(SECRETS_BUCKET)
            .send()
            .await
            .expect("the secrets bucket");
        server
    }

    async fn make_admin(&self) -> AccountCredentials {
        let iam = self.admin_iam();
        let name = "test-administrator";
        iam.create_user()
            .user_name(name)
            .send()
            .await
            .expect("admin user");
        iam.put_user_policy()
            .user_name(name)
            .policy_name("all")
            .policy_document(allow(&["*"], "*"))
            .send()
            .await
            .expect("admin policy");
        let created = iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .expect("admin key");
        let key = created.access_key().expect("a key");
        AccountCredentials {
            access_key_id: key.access_key_id().into(),
            secret_access_key: Secret::new(key.secret_access_key()),
        }
    }

    fn admin_iam(&self) -> aws_sdk_iam::Client {
        let config = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(credentials_of(&self.admin))
            .build();
        aws_sdk_iam::Client::from_conf(config)
    }

    fn admin_s3(&self) -> aws_sdk_s3::Client {
        self.s3_as(&self.admin)
    }

    fn s3_as(&self, account: &AccountCredentials) -> aws_sdk_s3::Client {
        s3_client(&S3Settings {
            endpoint: Some(self.endpoint.clone()),
            region: REGION.into(),
            force_path_style: true,
            access_key_id: account.access_key_id.clone(),
            secret_access_key: account.secret_access_key.expose().into(),
        })
    }

    /// The provider under test, acting as the administrator, sealing into `secrets_bucket`.
    fn provider(&self, secrets_bucket: &str) -> IamProvider {
        let sealing_key = SealingKey::parse(&base64::engine::general_purpose::STANDARD.encode([42u8; 32]))
            .expect("a sealing key");
        let secrets = SecretStore::new(self.admin_s3(), secrets_bucket, SECRETS_PREFIX, sealing_key);
        let settings = IamSettings::new(
            Some(self.endpoint.clone()),
            REGION,
            self.admin.access_key_id.clone(),
            self.admin.secret_access_key.expose(),
        );
        IamProvider::new(&settings, secrets).expect("valid settings")
    }

    async fn key_ids_of(&self, user_name: &str) -> Vec<String> {
        let listed = self
            .admin_iam()
            .list_access_keys()
            .user_name(user_name)
            .send()
            .await
            .expect("access keys");
        listed
            .access_key_metadata()
            .iter()
            .filter_map(|key| key.access_key_id().map(str::to_owned))
            .collect()
    }

    async fn user_exists(&self, user_name: &str) -> bool {
        match self.admin_iam().get_user().user_name(user_name).send().await {
            Ok(_) => true,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_no_such_entity_exception()) =>
            {
                false
            }
            Err(error) => panic!("GetUser {user_name}: {error:?}"),
        }
    }

    async fn sealed_object(&self, account_id: &str) -> Option<Vec<u8>> {
        let object = self
            .admin_s3()
            .get_object()
            .bucket(SECRETS_BUCKET)
            .key(format!("{SECRETS_PREFIX}{account_id}"))
            .send()
            .await;
        match object {
            Ok(object) => Some(object.body.collect().await.expect("body").to_vec()),
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => None,
            Err(error) => panic!("reading the sealed object of {account_id}: {error:?}"),
        }
    }

    async fn put_sealed_object(&self, account_id: &str, bytes: Vec<u8>) {
        self.admin_s3()
            .put_object()
            .bucket(SECRETS_BUCKET)
            .key(format!("{SECRETS_PREFIX}{account_id}"))
            .body(ByteStream::from(bytes))
            .send()
            .await
            .expect("put the sealed object");
    }

    async fn delete_sealed_object(&self, account_id: &str) {
        self.admin_s3()
            .delete_object()
            .bucket(SECRETS_BUCKET)
            .key(format!("{SECRETS_PREFIX}{account_id}"))
            .send()
            .await
            .expect("delete the sealed object");
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn credentials_of(account: &AccountCredentials) -> Credentials {
    Credentials::new(
        account.access_key_id.clone(),
        account.secret_access_key.expose().to_owned(),
        None,
        None,
        "iam-provider-test",
    )
}

fn allow(actions: &[&str], resource: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": actions, "Resource": resource}],
    })
    .to_string()
}

async fn can_list_buckets(s3: &aws_sdk_s3::Client) -> bool {
    s3.list_buckets().send().await.is_ok()
}

#[tokio::test]
async fn accounts_are_tagged_iam_users_whose_keys_work_and_deletes_leave_nothing() {
    let moto = MotoServer::launch().await;
    let provider = moto.provider(SECRETS_BUCKET);
    let iam = moto.admin_iam();

    // Users osam did not make: one elsewhere, one under osam's path without the marker tag.
    iam.create_user()
        .user_name("outsider-elsewhere")
        .path("/people/")
        .send()
        .await
        .expect("outsider elsewhere");
    iam.create_user()
        .user_name("outsider-here")
        .path(DEFAULT_USER_PATH)
        .send()
        .await
        .expect("outsider here");
    iam.create_access_key()
        .user_name("outsider-here")
        .send()
        .await
        .expect("outsider key");

    let (alice, alice_credentials) = provider.create_account("osam:alice").await.expect("alice");
    let (bob, bob_credentials) = provider.create_account("osam:bob").await.expect("bob");
    assert_eq!(alice.id, iam_user_name("osam:alice"));
    assert_eq!(alice.marker, "osam:alice");
    assert_eq!(alice.access_key_id, alice_credentials.access_key_id);
    assert_ne!(alice.id, bob.id);
    assert_eq!(
        provider.account_with_marker("osam:alice").await.expect("lookup"),
        Some(alice.clone())
    );
    assert_eq!(
        provider.account_with_marker("osam:nobody").await.expect("lookup"),
        None
    );

    let listed = provider.list_accounts().await.expect("list");
    let find = |id: &str| listed.iter().find(|account| account.id == id).cloned();
    assert_eq!(find(&alice.id), Some(alice.clone()));
    assert_eq!(find(&bob.id), Some(bob.clone()));
    let outsider = find("outsider-here").expect("an untagged user under the path is listed");
    assert_eq!(outsider.marker, "", "listed as unmanaged");
    assert!(!outsider.access_key_id.is_empty());
    assert!(find("outsider-elsewhere").is_none(), "only osam's path is listed");
    assert!(find("test-administrator").is_none());

    assert_eq!(
        provider.credentials(&alice.id).await.expect("credentials"),
        alice_credentials
    );
    assert_eq!(
        provider.credentials(&bob.id).await.expect("credentials"),
        bob_credentials
    );
    let sealed = moto.sealed_object(&alice.id).await.expect("a sealed object");
    let secret = alice_credentials.secret_access_key.expose().as_bytes();
    assert!(
        !sealed.windows(secret.len()).any(|window| window == secret),
        "the stored object does not hold the secret in the clear"
    );

    // The key works, within the rights of the applied policy.
    moto.admin_s3()
        .create_bucket()
        .bucket("data")
        .send()
        .await
        .expect("bucket");
    moto.admin_s3()
        .put_object()
        .bucket("data")
        .key("hello.txt")
        .body(ByteStream::from_static(b"hello"))
        .send()
        .await
        .expect("object");
    let as_alice = moto.s3_as(&alice_credentials);
    assert!(!can_list_buckets(&as_alice).await, "no policy, no access");
    let rights = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::data/*"},
        ],
    })
    .to_string();
    provider.apply_policy(&alice.id, &rights).await.expect("applied");
    assert!(can_list_buckets(&as_alice).await);
    let object = as_alice
        .get_object()
        .bucket("data")
        .key("hello.txt")
        .send()
        .await
        .expect("alice reads data/hello.txt");
    assert_eq!(object.body.collect().await.expect("body").to_vec(), b"hello");
    assert!(
        as_alice
            .get_object()
            .bucket(SECRETS_BUCKET)
            .key(format!("{SECRETS_PREFIX}{}", alice.id))
            .send()
            .await
            .is_err(),
        "nothing outside the policy"
    );
    assert!(!can_list_buckets(&moto.s3_as(&bob_credentials)).await);

    let malformed = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"s3:*"}]}"#;
    assert!(matches!(
        provider.apply_policy(&alice.id, malformed).await,
        Err(ProviderError::Rejected(message)) if message.contains("MalformedPolicyDocument")
    ));
    assert!(matches!(
        provider.apply_policy("osam-nobody", &rights).await,
        Err(ProviderError::NotFound(_))
    ));
    provider.remove_policy(&alice.id).await.expect("removed");
    provider
        .remove_policy(&alice.id)
        .await
        .expect("removing a missing policy is fine");
    assert!(!can_list_buckets(&as_alice).await, "the policy is gone");
    assert!(matches!(
        provider.remove_policy("osam-nobody").await,
        Err(ProviderError::NotFound(_))
    ));

    // A delete removes keys, inline and managed policies and the sealed secret, then the user.
    provider.apply_policy(&bob.id, &rights).await.expect("applied");
    iam.put_user_policy()
        .user_name(&bob.id)
        .policy_name("added-by-hand")
        .policy_document(allow(&["s3:ListAllMyBuckets"], "*"))
        .send()
        .await
        .expect("inline policy");
    let managed = iam
        .create_policy()
        .policy_name("managed-by-hand")
        .policy_document(allow(&["s3:ListAllMyBuckets"], "*"))
        .send()
        .await
        .expect("managed policy");
    let managed_arn = managed.policy().and_then(|p| p.arn()).expect("arn").to_owned();
    iam.attach_user_policy()
        .user_name(&bob.id)
        .policy_arn(&managed_arn)
        .send()
        .await
        .expect("attached");
    provider.delete_account(&bob.id).await.expect("deleted");
    assert!(!moto.user_exists(&bob.id).await);
    assert_eq!(moto.sealed_object(&bob.id).await, None);
    assert!(
        !can_list_buckets(&moto.s3_as(&bob_credentials)).await,
        "the key is gone"
    );
    assert_eq!(
        provider.delete_account(&bob.id).await,
        Err(ProviderError::NotFound(bob.id.clone()))
    );
    assert_eq!(
        provider.credentials(&bob.id).await,
        Err(ProviderError::NotFound(bob.id.clone()))
    );
    assert_eq!(
        provider.delete_account("outsider-elsewhere").await,
        Err(ProviderError::NotFound("outsider-elsewhere".into())),
        "a user outside osam's path is not an account of the provider"
    );

    let listed = provider.list_accounts().await.expect("list");
    let ids: Vec<&str> = listed.iter().map(|account| account.id.as_str()).collect();
    assert!(
        ids.contains(&alice.id.as_str()) && !ids.contains(&bob.id.as_str()),
        "{ids:?}"
    );
    assert!(moto.user_exists("outsider-elsewhere").await);
    assert!(moto.user_exists("outsider-here").await);
    assert_eq!(moto.key_ids_of("outsider-here").await.len(), 1);
}

#[tokio::test]
async fn creates_are_idempotent_and_a_lost_secret_is_recovered_by_rotating_the_key() {
    let moto = MotoServer::launch().await;
    let provider = moto.provider(SECRETS_BUCKET);

    let (carol, carol_credentials) = provider.create_account("osam:carol").await.expect("carol");
    let (again, again_credentials) = provider
        .create_account("osam:carol")
        .await
        .expect("a retried create");
    assert_eq!(
        (again, again_credentials),
        (carol.clone(), carol_credentials.clone())
    );
    assert_eq!(
        moto.key_ids_of(&carol.id).await,
        vec![carol.access_key_id.clone()]
    );

    // Missing, garbage, or moved from another account: lost, never an empty secret.
    moto.delete_sealed_object(&carol.id).await;
    assert_eq!(
        provider.credentials(&carol.id).await,
        Err(ProviderError::SecretLost(carol.id.clone()))
    );
    moto.put_sealed_object(&carol.id, b"not a sealed secret".to_vec())
        .await;
    assert_eq!(
        provider.credentials(&carol.id).await,
        Err(ProviderError::SecretLost(carol.id.clone()))
    );
    let (dave, dave_credentials) = provider.create_account("osam:dave").await.expect("dave");
    let daves_object = moto.sealed_object(&dave.id).await.expect("sealed");
    moto.put_sealed_object(&carol.id, daves_object).await;
    assert_eq!(
        provider.credentials(&carol.id).await,
        Err(ProviderError::SecretLost(carol.id.clone()))
    );

    // Creating again rotates: a new key, sealed, and the old one deleted.
    let (rotated, rotated_credentials) = provider.create_account("osam:carol").await.expect("rotated");
    assert_eq!(rotated.id, carol.id);
    assert_ne!(rotated.access_key_id, carol.access_key_id);
    assert_eq!(
        moto.key_ids_of(&carol.id).await,
        vec![rotated.access_key_id.clone()]
    );
    assert_eq!(
        provider.credentials(&carol.id).await.expect("credentials"),
        rotated_credentials
    );
    provider
        .apply_policy(&carol.id, &allow(&["s3:ListAllMyBuckets"], "*"))
        .await
        .expect("applied");
    assert!(can_list_buckets(&moto.s3_as(&rotated_credentials)).await);
    assert!(
        !can_list_buckets(&moto.s3_as(&carol_credentials)).await,
        "the old key is gone"
    );

    // A stored secret of a key the user no longer has is lost too.
    moto.admin_iam()
        .delete_access_key()
        .user_name(&dave.id)
        .access_key_id(&dave_credentials.access_key_id)
        .send()
        .await
        .expect("key deleted by hand");
    assert_eq!(
        provider.credentials(&dave.id).await,
        Err(ProviderError::SecretLost(dave.id.clone()))
    );
    let (_, dave_rotated) = provider.create_account("osam:dave").await.expect("rotated");
    assert_eq!(provider.credentials(&dave.id).await, Ok(dave_rotated));

    // With IAM's two keys already taken, the rotation first makes room.
    moto.admin_iam()
        .create_access_key()
        .user_name(&carol.id)
        .send()
        .await
        .expect("a second key by hand");
    moto.delete_sealed_object(&carol.id).await;
    let (_, third) = provider.create_account("osam:carol").await.expect("rotated");
    assert_eq!(
        moto.key_ids_of(&carol.id).await,
        vec![third.access_key_id.clone()]
    );
    assert_eq!(provider.credentials(&carol.id).await, Ok(third));
}

#[tokio::test]
async fn a_user_osam_did_not_make_is_never_taken_over_and_a_missing_store_is_not_a_lost_secret() {
    let moto = MotoServer::launch().await;
    let provider = moto.provider(SECRETS_BUCKET);

    // Someone made a user with the very name osam would derive, without osam's tag.
    let squatted = iam_user_name("osam:erin");
    moto.admin_iam()
        .create_user()
        .user_name(&squatted)
        .path(DEFAULT_USER_PATH)
        .send()
        .await
        .expect("squatter");
    assert!(matches!(
        provider.create_account("osam:erin").await,
        Err(ProviderError::Rejected(_))
    ));
    assert!(moto.key_ids_of(&squatted).await.is_empty(), "no key was added");

    // A secrets bucket that does not exist is an outage to retry, not a reason to rotate keys.
    let (frank, _) = provider.create_account("osam:frank").await.expect("frank");
    let misconfigured = moto.provider("no-such-bucket");
    assert!(matches!(
        misconfigured.credentials(&frank.id).await,
        Err(ProviderError::Unavailable(_))
    ));
    assert!(matches!(
        misconfigured.create_account("osam:frank").await,
        Err(ProviderError::Unavailable(_))
    ));
    assert_eq!(
        moto.key_ids_of(&frank.id).await,
        vec![frank.access_key_id.clone()]
    );
    assert!(matches!(
        misconfigured.create_account("osam:gina").await,
        Err(ProviderError::Unavailable(_))
    ));
    let gina = iam_user_name("osam:gina");
    assert!(
        moto.key_ids_of(&gina).await.is_empty(),
        "a key whose secret could not be stored is deleted again"
    );
    let (_, gina_credentials) = provider
        .create_account("osam:gina")
        .await
        .expect("a later create succeeds");
    assert_eq!(provider.credentials(&gina).await, Ok(gina_credentials));
}
