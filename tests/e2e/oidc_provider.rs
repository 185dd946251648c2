//! osam against a real OpenID Connect provider: panva's oidc-provider (`tests/oidc/provider.mjs`)
//! run by node. Real here: the provider's discovery document, its token endpoint minting RS256 JWT
//! access tokens for the resource server `osam` (client_credentials grant), and its JWKS endpoint,
//! which osam fetches by itself. The test only supplies the signing keys (generated here) and
//! rotates them through the provider's reload hook. node and `tests/oidc/node_modules` come from
//! `bash scripts/test.sh`; without them these tests fail, they never skip.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use osam_proto::v1 as pb;
use serde_json::{Value, json};
use tonic::Code;

use crate::harness::{OsamServer, allowed, check, reason_of, rsa_key, workspace_root};

/// The one client of the provider; its tokens carry this username and these realm roles.
const CLIENT_ID: &str = "osam-e2e-service";
const CLIENT_SECRET: &str = "a-client-secret-for-the-e2e-tests";
const USERNAME: &str = "svc-oidc";
const REALM_ROLES: &[&str] = &["rs_osam_read"];
/// The resource indicator provider.mjs maps to the audience `osam`.
const RESOURCE: &str = "urn:osam";

/// An RSA private key: PKCS#8 PEM for the provider, an encoding key for forgeries.
struct SigningKey {
    kid: String,
    private_pem: String,
    encoding: EncodingKey,
}

impl SigningKey {
    fn generate(kid: &str) -> SigningKey {
        let (_, private_pem) = rsa_key();
        let encoding = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("encoding key");
        SigningKey {
            kid: kid.to_owned(),
            private_pem,
            encoding,
        }
    }

    /// Signs `claims` with this key under the key id `kid`, as a forger would.
    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signed")
    }
}

/// `tests/oidc/provider.mjs` running under node; killed when dropped.
struct OidcProvider {
    child: Child,
    /// Held open: the provider exits when its stdin closes, so a crashed test leaves no process.
    _stdin: ChildStdin,
    config_dir: tempfile::TempDir,
    issuer: String,
    http: reqwest::Client,
}

impl OidcProvider {
    /// Starts the provider on a free loopback port with `keys` (the first one signs).
    fn start(keys: &[&SigningKey]) -> OidcProvider {
        let oidc_dir = workspace_root().join("tests/oidc");
        assert!(
            oidc_dir.join("node_modules/oidc-provider").is_dir(),
            "oidc-provider is not installed in {}: run `bash scripts/test.sh` \
             (or `npm ci --prefix tests/oidc`)",
            oidc_dir.display()
        );
        let config_dir = tempfile::tempdir().expect("config dir");
        write_provider_config(&config_path(config_dir.path()), keys);
        let node = std::env::var("OSAM_TEST_NODE").unwrap_or_else(|_| "node".to_owned());
        let mut child = Command::new(&node)
            .arg(oidc_dir.join("provider.mjs"))
            .args(["--port", "0", "--config"])
            .arg(config_path(config_dir.path()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("{node} cannot start ({error}): install Node.js 20+ and run `bash scripts/test.sh`, or set OSAM_TEST_NODE")
            });
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (announcement_sender, announcement_receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = announcement_sender.send(line);
            }
            // Keep draining so the provider never blocks on a full pipe.
            lines.map_while(Result::ok).for_each(drop);
        });
        let Ok(line) = announcement_receiver.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("the OIDC provider did not start (its stderr is above)");
        };
        let announcement: Value = serde_json::from_str(&line).expect("the provider announces itself in JSON");
        let issuer = announcement["issuer"].as_str().expect("issuer").to_owned();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        OidcProvider {
            child,
            _stdin: stdin,
            config_dir,
            issuer,
            http,
        }
    }

    /// Replaces the provider's keys (the first one signs from now on) and returns the key ids it
    /// announces; the port, and so the issuer, stay the same.
    async fn rotate(&self, keys: &[&SigningKey]) -> Vec<String> {
        write_provider_config(&config_path(self.config_dir.path()), keys);
        let response = self
            .http
            .post(format!("{}/_test/reload", self.issuer))
            .send()
            .await
            .expect("reload request");
        let status = response.status();
        let body = response.text().await.expect("reload answer");
        assert!(status.is_success(), "reload failed ({status}): {body}");
        let announcement: Value = serde_json::from_str(&body).expect("json");
        string_list(&announcement["kids"])
    }

    async fn get_json(&self, url: &str) -> Value {
        let response = self.http.get(url).send().await.expect("GET");
        assert!(response.status().is_success(), "GET {url}: {}", response.status());
        response.json().await.expect("json")
    }

    async fn discovery(&self) -> Value {
        self.get_json(&format!("{}/.well-known/openid-configuration", self.issuer))
            .await
    }

    async fn jwks_uri(&self) -> String {
        let discovery = self.discovery().await;
        assert_eq!(discovery["issuer"], json!(self.issuer));
        discovery["jwks_uri"].as_str().expect("jwks_uri").to_owned()
    }

    /// The key ids the provider's own JWKS endpoint publishes.
    async fn published_kids(&self) -> Vec<String> {
        let jwks = self.get_json(&self.jwks_uri().await).await;
        let keys = jwks["keys"].as_array().expect("keys");
        keys.iter()
            .map(|key| key["kid"].as_str().expect("kid").to_owned())
            .collect()
    }

    /// An access token from the provider's token endpoint (client_credentials grant).
    async fn access_token(&self) -> String {
        let token_endpoint = self.discovery().await["token_endpoint"]
            .as_str()
            .expect("token_endpoint")
            .to_owned();
        let response = self
            .http
            .post(&token_endpoint)
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&resource={}",
                form_encoded(RESOURCE)
            ))
            .send()
            .await
            .expect("token request");
        let status = response.status();
        let answer: Value = response.json().await.expect("token answer");
        assert!(status.is_success(), "token endpoint answered {status}: {answer}");
        assert_eq!(answer["token_type"], "Bearer", "{answer}");
        answer["access_token"].as_str().expect("access_token").to_owned()
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config_path(config_dir: &Path) -> PathBuf {
    config_dir.join("provider.json")
}

fn write_provider_config(path: &Path, keys: &[&SigningKey]) {
    let keys: Vec<Value> = keys
        .iter()
        .map(|key| json!({ "kid": key.kid, "pem": key.private_pem }))
        .collect();
    let config = json!({
        "keys": keys,
        "clients": [{
            "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "preferred_username": USERNAME, "roles": REALM_ROLES,
        }],
    });
    std::fs::write(path, serde_json::to_vec_pretty(&config).expect("json")).expect("provider config");
}

/// `application/x-www-form-urlencoded` for the few characters a resource URI here can hold.
fn form_encoded(value: &str) -> String {
    value.replace('%', "%25").replace(':', "%3A").replace('/', "%2F")
}

fn string_list(value: &Value) -> Vec<String> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item.as_str().expect("a string").to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .expect("a JWT header")
        .kid
        .expect("a kid")
}

/// The claims of a token, read without verifying it.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("json")
}

/// osam verifying tokens with the keys at the provider's `jwks_uri`; an unknown kid refreshes them
/// at most once a second.
async fn osam_trusting(provider: &OidcProvider) -> OsamServer {
    let config = format!(
        "[auth]\nkey_source = \"jwks\"\njwks_url = \"{}\"\nissuer = \"{}\"\naudience = \"osam\"\n\
         username_claim = \"preferred_username\"\nrole_claims = [\"realm_access.roles\"]\n\
         jwks_min_refresh_seconds = 1\n",
        provider.jwks_uri().await,
        provider.issuer
    );
    OsamServer::start(&config)
}

async fn who_am_i(server: &OsamServer, token: &str) -> Result<pb::WhoAmIResponse, tonic::Status> {
    server
        .rights(token)
        .await
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .map(tonic::Response::into_inner)
}

/// Asserts that osam accepts `token` as the provider's client, with its username and roles, and
/// lets it check its own catalog (the implicit `authenticated` role).
async fn assert_accepted(server: &OsamServer, token: &str) {
    let me = who_am_i(server, token).await.expect("accepted");
    let user = me.user.expect("user");
    assert_eq!(user.username, USERNAME);
    assert_eq!(user.roles, REALM_ROLES);
    let mut catalog = server.catalog(token).await;
    assert!(allowed(&mut catalog, check(USERNAME, &["mine"], pb::CatalogAction::Write)).await);
}

fn assert_unauthenticated(outcome: Result<pb::WhoAmIResponse, tonic::Status>, reason: &str) {
    let status = outcome.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(reason_of(&status), reason, "{status:?}");
}

/// Calls WhoAmI until osam has refreshed its keys and accepts `token`: a refusal in between may
/// only be for an unknown key, and the retries are bounded.
async fn accepted_once_keys_refresh(server: &OsamServer, token: &str) {
    for _ in 0..60 {
        match who_am_i(server, token).await {
            Ok(_) => {
                assert_accepted(server, token).await;
                return;
            }
            Err(status) => assert_eq!(reason_of(&status), "UNKNOWN_SIGNING_KEY", "{status:?}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("osam never picked up the provider's new signing key");
}

#[tokio::test]
async fn tokens_from_a_real_oidc_provider_are_accepted_across_a_key_rotation() {
    let first_key = SigningKey::generate("first");
    let provider = OidcProvider::start(&[&first_key]);
    assert_eq!(provider.published_kids().await, ["first"]);
    let server = osam_trusting(&provider).await;

    let first_token = provider.access_token().await;
    assert_eq!(kid_of(&first_token), "first");
    let claims = claims_of(&first_token);
    assert_eq!(claims["iss"], json!(provider.issuer));
    assert_eq!(claims["aud"], "osam");
    assert_accepted(&server, &first_token).await;

    // The provider rotates: a new key signs, the old one stays published (second) so that tokens
    // already issued keep verifying until they expire.
    let second_key = SigningKey::generate("second");
    assert_eq!(
        provider.rotate(&[&second_key, &first_key]).await,
        ["second", "first"]
    );
    assert_eq!(provider.published_kids().await, ["second", "first"]);
    let second_token = provider.access_token().await;
    assert_eq!(kid_of(&second_token), "second", "the new key signs");
    accepted_once_keys_refresh(&server, &second_token).await;
    assert_accepted(&server, &first_token).await;
}

#[tokio::test]
async fn tokens_signed_with_a_key_the_provider_never_published_are_refused() {
    let published_key = SigningKey::generate("published");
    let provider = OidcProvider::start(&[&published_key]);
    let server = osam_trusting(&provider).await;
    let genuine = provider.access_token().await;
    assert_accepted(&server, &genuine).await;

    // The genuine token's claims (issuer, audience, username, roles, expiry), signed by a key the
    // provider never had: under a kid it never published, and under the kid it does publish.
    let forger = SigningKey::generate("forger");
    let claims = claims_of(&genuine);
    assert_unauthenticated(
        who_am_i(&server, &forger.sign_as("never-published", &claims)).await,
        "UNKNOWN_SIGNING_KEY",
    );
    assert_unauthenticated(
        who_am_i(&server, &forger.sign_as("published", &claims)).await,
        "INVALID_TOKEN",
    );
    let mut catalog = server.catalog(&forger.sign_as("published", &claims)).await;
    let status = catalog
        .check(check(USERNAME, &["mine"], pb::CatalogAction::Read))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // After a rotation, a forgery under the new kid fares no better than under the old one.
    let rotated_key = SigningKey::generate("rotated");
    provider.rotate(&[&rotated_key, &published_key]).await;
    accepted_once_keys_refresh(&server, &provider.access_token().await).await;
    for kid in ["rotated", "published"] {
        assert_unauthenticated(
            who_am_i(&server, &forger.sign_as(kid, &claims)).await,
            "INVALID_TOKEN",
        );
    }
}
