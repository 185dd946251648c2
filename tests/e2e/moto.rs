//! A real IAM + S3 server for the tests: moto's server on a free loopback port, started with
//! INITIAL_NO_AUTH_ACTION_COUNT so that after bootstrapping an admin user every S3 call is
//! SigV4-verified and checked against IAM policies. moto comes from tests/python/requirements.txt.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_sdk_s3::config::{BehaviorVersion, Region};

/// How many unauthenticated calls bootstrap the admin: CreateUser, CreateAccessKey, PutUserPolicy.
const BOOTSTRAP_CALLS: u32 = 3;

pub struct Moto {
    child: Child,
    pub endpoint: String,
    pub admin_key: (String, String),
}

impl Moto {
    pub async fn start() -> Moto {
        let program = std::env::var("OSAM_TEST_MOTO").unwrap_or_else(|_| "moto_server".to_owned());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("free port")
            .local_addr()
            .expect("address")
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", BOOTSTRAP_CALLS.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("{program} cannot start ({error}): run `bash scripts/test.sh`, which installs moto, or set OSAM_TEST_MOTO")
            });
        let endpoint = format!("http://127.0.0.1:{port}");
        // Only a TCP connect: an HTTP request would use up one of the unauthenticated calls.
        let mut ready = false;
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "moto did not listen on {endpoint}");
        let mut moto = Moto {
            child,
            endpoint,
            admin_key: (String::new(), String::new()),
        };
        moto.admin_key = moto.bootstrap_admin().await;
        moto
    }

    async fn bootstrap_admin(&self) -> (String, String) {
        let iam = self.iam(("bootstrap", "bootstrap"));
        iam.create_user()
            .user_name("osam-test-admin")
            .send()
            .await
            .expect("create admin");
        let key = iam
            .create_access_key()
            .user_name("osam-test-admin")
            .send()
            .await
            .expect("admin key");
        let key = key.access_key().expect("access key");
        let everything =
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
        iam.put_user_policy()
            .user_name("osam-test-admin")
            .policy_name("everything")
            .policy_document(everything)
            .send()
            .await
            .expect("admin policy");
        (key.access_key_id().to_owned(), key.secret_access_key().to_owned())
    }

    pub fn iam(&self, (key, secret): (&str, &str)) -> aws_sdk_iam::Client {
        let config = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(key, secret, None, None, "test"))
            .build();
        aws_sdk_iam::Client::from_conf(config)
    }

    pub fn s3(&self, (key, secret): (&str, &str)) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .credentials_provider(Credentials::new(key, secret, None, None, "test"))
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub fn admin_iam(&self) -> aws_sdk_iam::Client {
        self.iam((&self.admin_key.0, &self.admin_key.1))
    }

    pub fn admin_s3(&self) -> aws_sdk_s3::Client {
        self.s3((&self.admin_key.0, &self.admin_key.1))
    }

    /// An IAM user with an access key, for calls made as that user.
    pub async fn user_with_key(&self, name: &str) -> (String, String) {
        let iam = self.admin_iam();
        iam.create_user()
            .user_name(name)
            .send()
            .await
            .expect("create user");
        let key = iam
            .create_access_key()
            .user_name(name)
            .send()
            .await
            .expect("user key");
        let key = key.access_key().expect("access key");
        (key.access_key_id().to_owned(), key.secret_access_key().to_owned())
    }

    pub async fn put_text(&self, bucket: &str, key: &str, text: &str) {
        self.admin_s3()
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(aws_sdk_s3::primitives::ByteStream::from(text.as_bytes().to_vec()))
            .send()
            .await
            .unwrap_or_else(|error| panic!("put s3://{bucket}/{key}: {error:?}"));
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
