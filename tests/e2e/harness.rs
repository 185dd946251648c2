//! Starts `osam serve` in a temporary state directory with JSON logs, finds the address it bound
//! (it listens on port 0), and gives typed clients that send a bearer token.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use osam_proto::v1 as pb;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub const OSAM: &str = env!("CARGO_BIN_EXE_osam");

/// The workspace root, for `proto/` and `tests/python`.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A running `osam serve`; killed when dropped.
pub struct OsamServer {
    child: Child,
    pub address: String,
    pub config_path: PathBuf,
    pub state: tempfile::TempDir,
    logs: Logs,
}

impl OsamServer {
    /// Starts the embedded default (example users, development key) with `extra_toml` added.
    pub fn start(extra_toml: &str) -> OsamServer {
        let state = tempfile::tempdir().expect("state dir");
        let config_path = state.path().join("osam.toml");
        std::fs::write(&config_path, extra_toml).expect("config");
        OsamServer::start_with(state, config_path)
    }

    fn start_with(state: tempfile::TempDir, config_path: PathBuf) -> OsamServer {
        let (child, address, logs) = spawn(state.path(), &config_path);
        OsamServer {
            child,
            address,
            config_path,
            state,
            logs,
        }
    }

    /// A token for an example user, from `osam dev-token` against this server's configuration.
    pub fn dev_token(&self, user: &str) -> String {
        let output = osam_command(self.state.path())
            .args(["dev-token", "--user", user, "--config"])
            .arg(&self.config_path)
            .output()
            .expect("dev-token runs");
        assert!(
            output.status.success(),
            "dev-token failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.address))
            .expect("uri")
            .connect()
            .await
            .expect("connects")
    }

    pub async fn catalog(&self, token: &str) -> CatalogClient {
        pb::catalog_authz_client::CatalogAuthzClient::with_interceptor(
            self.channel().await,
            BearerToken::new(token),
        )
    }

    pub async fn rights(
        &self,
        token: &str,
    ) -> pb::rights_service_client::RightsServiceClient<InterceptedService<Channel, BearerToken>> {
        pb::rights_service_client::RightsServiceClient::with_interceptor(
            self.channel().await,
            BearerToken::new(token),
        )
    }

    pub async fn accounts(
        &self,
        token: &str,
    ) -> pb::account_service_client::AccountServiceClient<InterceptedService<Channel, BearerToken>> {
        pb::account_service_client::AccountServiceClient::with_interceptor(
            self.channel().await,
            BearerToken::new(token),
        )
    }

    /// The JSON log events so far.
    pub fn logs(&self) -> Vec<serde_json::Value> {
        self.logs.lock().expect("logs").clone()
    }

    /// Kills the process at once (SIGKILL), as a crash would, and starts it again on the same
    /// state directory and configuration.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, address, logs) = spawn(self.state.path(), &self.config_path);
        self.child = child;
        self.address = address;
        self.logs = logs;
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit, up to `timeout`, letting the test's runtime run meanwhile
    /// (its client connections must be able to close for the server to finish draining).
    pub async fn wait_for_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = tokio::time::Instant::now() + timeout;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for OsamServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Logs = Arc<Mutex<Vec<serde_json::Value>>>;

/// Starts `osam serve` on a free port and waits until it listens.
fn spawn(state_dir: &Path, config_path: &Path) -> (Child, String, Logs) {
    let mut child = osam_command(state_dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("osam starts");
    let stderr = child.stderr.take().expect("stderr");
    let logs: Logs = Arc::new(Mutex::new(Vec::new()));
    let (address_sender, address_receiver) = mpsc::channel();
    let collected = logs.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                eprintln!("osam: {line}");
                continue;
            };
            if event["message"] == "listening" {
                let _ = address_sender.send(event["address"].as_str().unwrap_or_default().to_owned());
            }
            collected.lock().expect("logs").push(event);
        }
    });
    match address_receiver.recv_timeout(Duration::from_secs(60)) {
        Ok(address) => (child, address, logs),
        Err(_) => {
            let _ = child.kill();
            panic!("osam did not start; logs: {:?}", logs.lock().expect("logs"));
        }
    }
}

/// `osam` with JSON logs and its state in `state_dir`; no OSAM_* variable leaks in from the test
/// environment.
pub fn osam_command(state_dir: &Path) -> Command {
    let mut command = Command::new(OSAM);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("OSAM_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
        .env("OSAM_SERVER__STATE_DIR", state_dir)
        .env("OSAM_LOG__FORMAT", "json");
    command
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct BearerToken {
    header: Option<MetadataValue<tonic::metadata::Ascii>>,
    impersonate: Option<MetadataValue<tonic::metadata::Ascii>>,
}

impl BearerToken {
    pub fn new(token: &str) -> BearerToken {
        let header = (!token.is_empty()).then(|| format!("Bearer {token}").parse().expect("ascii token"));
        BearerToken {
            header,
            impersonate: None,
        }
    }

    pub fn impersonating(mut self, user: &str) -> BearerToken {
        self.impersonate = Some(user.parse().expect("ascii user"));
        self
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(header) = &self.header {
            request.metadata_mut().insert("authorization", header.clone());
        }
        if let Some(user) = &self.impersonate {
            request.metadata_mut().insert("impersonate-user", user.clone());
        }
        Ok(request)
    }
}

/// The `ErrorInfo.reason` of a status.
pub fn reason_of(status: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

/// Runs an account sync as the operator, waits for it and returns its report.
pub async fn sync_accounts(server: &OsamServer, force: bool) -> pb::SyncRun {
    let mut accounts = server.accounts(&server.dev_token("operator")).await;
    let request = pb::SyncAccountsRequest {
        dry_run: false,
        wait: true,
        force,
    };
    accounts
        .sync_accounts(request)
        .await
        .expect("sync")
        .into_inner()
        .run
        .expect("a finished run")
}

/// A CatalogAuthz client that sends a bearer token.
pub type CatalogClient =
    pb::catalog_authz_client::CatalogAuthzClient<InterceptedService<Channel, BearerToken>>;

/// Whether `request` is allowed (the call itself must succeed).
pub async fn allowed(client: &mut CatalogClient, request: pb::CheckRequest) -> bool {
    client
        .check(request)
        .await
        .expect("check succeeds")
        .into_inner()
        .allowed
}

/// A CheckRequest for the caller.
pub fn check(owner: &str, collections: &[&str], action: pb::CatalogAction) -> pb::CheckRequest {
    pb::CheckRequest {
        owner: owner.to_owned(),
        collections: collections
            .iter()
            .map(|collection| collection.to_string())
            .collect(),
        action: action as i32,
        ..Default::default()
    }
}

/// Polls until `condition` holds, or gives up after `limit` (chosen far longer than the intervals
/// involved, so that a slow machine cannot make a test flaky); returns whether it held.
pub async fn eventually<F, Fut>(limit: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// A new RSA 2048 key pair and its private key as PKCS#8 PEM, for test token issuers.
pub fn rsa_key() -> (aws_lc_rs::rsa::KeyPair, String) {
    use aws_lc_rs::encoding::AsDer;
    use base64::Engine;
    let key_pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa key");
    let der = key_pair.as_der().expect("pkcs8");
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(der.as_ref())
    );
    (key_pair, pem)
}

/// A temporary file holding `secret`, for the `*_file` secret settings.
pub fn secret_file(secret: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("secret file");
    std::fs::write(file.path(), secret).expect("write secret");
    file
}
