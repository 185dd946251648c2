//! The auth layer against a JWKS endpoint served over HTTP by the test: every way a token can be
//! wrong, key rotation, scopes, and the public health and reflection services.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use osam_proto::v1 as pb;
use serde_json::{Value, json};
use tonic::Code;

use crate::harness::{OsamServer, allowed, check, reason_of, rsa_key};

const ISSUER: &str = "http://127.0.0.1/realms/test";

/// An RSA signing key with its public JWK.
struct TestKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
    public_der: Vec<u8>,
}

impl TestKey {
    fn generate(kid: &str) -> TestKey {
        let (key_pair, pem) = rsa_key();
        let public = key_pair.public_key();
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
        });
        TestKey {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_rsa_pem(pem.as_bytes()).expect("encoding key"),
            jwk,
            public_der: public.as_ref().to_vec(),
        }
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_as(&self.kid, claims)
    }

    /// Signs under another key id, as a forger guessing ids would.
    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signed")
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn claims(username: &str, roles: &[&str]) -> Value {
    json!({
        "iss": ISSUER, "aud": ["account", "osam"], "exp": now() + 600, "iat": now(), "nbf": now() - 5,
        "preferred_username": username,
        "realm_access": {"roles": roles},
        "resource_access": {"osam": {"roles": ["rs_osam_catalog_service"]}},
        "groups": ["/institutions/esa"],
    })
}

/// A JWKS endpoint whose key list the test can change, on a free loopback port.
struct JwksServer {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    requests: Arc<Mutex<u32>>,
}

impl JwksServer {
    async fn start(keys: Vec<Value>) -> JwksServer {
        let keys = Arc::new(Mutex::new(keys));
        let requests = Arc::new(Mutex::new(0));
        let (served_keys, counted) = (keys.clone(), requests.clone());
        let app = axum::Router::new().route(
            "/certs",
            axum::routing::get(move || {
                let keys = served_keys.lock().expect("keys").clone();
                *counted.lock().expect("count") += 1;
                async move { axum::Json(json!({ "keys": keys })) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/certs", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await.expect("jwks server") });
        JwksServer { url, keys, requests }
    }

    fn publish(&self, keys: Vec<Value>) {
        *self.keys.lock().expect("keys") = keys;
    }

    fn request_count(&self) -> u32 {
        *self.requests.lock().expect("count")
    }
}

fn jwks_config(url: &str, refresh_seconds: u64) -> String {
    format!(
        "[auth]\nkey_source = \"jwks\"\njwks_url = \"{url}\"\nissuer = \"{ISSUER}\"\naudience = \"osam\"\n\
         jwks_min_refresh_seconds = {refresh_seconds}\nleeway_seconds = 5\n"
    )
}

async fn who_am_i(server: &OsamServer, token: &str) -> Result<pb::WhoAmIResponse, tonic::Status> {
    server
        .rights(token)
        .await
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .map(tonic::Response::into_inner)
}

fn assert_refused(outcome: Result<pb::WhoAmIResponse, tonic::Status>, reason: &str) {
    let status = outcome.expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(reason_of(&status), reason, "{status:?}");
}

#[tokio::test]
async fn a_valid_token_maps_claims_to_a_principal() {
    let key = TestKey::generate("k1");
    let jwks = JwksServer::start(vec![key.jwk.clone()]).await;
    let server = OsamServer::start(&jwks_config(&jwks.url, 30));
    let me = who_am_i(&server, &key.sign(&claims("zoe", &["rs_osam_read"])))
        .await
        .expect("accepted");
    let user = me.user.expect("user");
    assert_eq!(user.username, "zoe");
    assert_eq!(
        user.roles,
        ["rs_osam_catalog_service", "rs_osam_read"],
        "realm and client roles are merged"
    );
    assert_eq!(user.groups, ["/institutions/esa"]);
    assert!(user.scopes.contains(&"catalog:check:any".to_owned()));
}

#[tokio::test]
async fn every_kind_of_bad_token_is_refused() {
    let key = TestKey::generate("k1");
    let jwks = JwksServer::start(vec![key.jwk.clone()]).await;
    let server = OsamServer::start(&jwks_config(&jwks.url, 30));

    assert_refused(who_am_i(&server, "").await, "MISSING_TOKEN");

    let mut expired = claims("zoe", &[]);
    expired["exp"] = json!(now() - 60);
    assert_refused(who_am_i(&server, &key.sign(&expired)).await, "TOKEN_EXPIRED");

    let mut not_yet = claims("zoe", &[]);
    not_yet["nbf"] = json!(now() + 600);
    assert_refused(who_am_i(&server, &key.sign(&not_yet)).await, "INVALID_TOKEN");

    let mut wrong_issuer = claims("zoe", &[]);
    wrong_issuer["iss"] = json!("http://127.0.0.1/realms/other");
    assert_refused(who_am_i(&server, &key.sign(&wrong_issuer)).await, "INVALID_TOKEN");

    let mut wrong_audience = claims("zoe", &[]);
    wrong_audience["aud"] = json!("another-service");
    assert_refused(
        who_am_i(&server, &key.sign(&wrong_audience)).await,
        "INVALID_TOKEN",
    );

    // Tampered: the payload of one token with the signature of another.
    let genuine = key.sign(&claims("zoe", &[]));
    let forged_payload =
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims("admin", &["rs_osam_update"])).expect("json"));
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
    assert_refused(who_am_i(&server, &tampered).await, "INVALID_TOKEN");

    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let unsigned = format!("{none_header}.{forged_payload}.");
    assert_refused(who_am_i(&server, &unsigned).await, "INVALID_TOKEN");

    // HMAC with the RSA public key as the secret, the classic algorithm-confusion forgery: HS256 is
    // not accepted without a configured secret.
    let mut hmac_header = Header::new(Algorithm::HS256);
    hmac_header.kid = Some("k1".into());
    let confused = jsonwebtoken::encode(
        &hmac_header,
        &claims("zoe", &[]),
        &EncodingKey::from_secret(&key.public_der),
    )
    .expect("signed");
    let status = who_am_i(&server, &confused).await.expect_err("refused");
    assert_eq!(reason_of(&status), "INVALID_TOKEN");
    assert!(status.message().contains("not accepted"), "{}", status.message());

    assert_refused(who_am_i(&server, "not.a.jwt").await, "INVALID_TOKEN");

    let mut no_username = claims("zoe", &[]);
    no_username
        .as_object_mut()
        .expect("object")
        .remove("preferred_username");
    assert_refused(who_am_i(&server, &key.sign(&no_username)).await, "INVALID_TOKEN");

    // A key that was never published.
    let stranger = TestKey::generate("stranger");
    assert_refused(
        who_am_i(&server, &stranger.sign(&claims("zoe", &[]))).await,
        "UNKNOWN_SIGNING_KEY",
    );
}

#[tokio::test]
async fn an_unknown_kid_refreshes_the_keys_at_most_once_per_interval() {
    const INTERVAL_SECONDS: u64 = 3;
    let old_key = TestKey::generate("old");
    // Generated before the timed part: key generation must not eat into the refresh interval.
    let forger = TestKey::generate("forger");
    let jwks = JwksServer::start(vec![old_key.jwk.clone()]).await;
    let server = OsamServer::start(&jwks_config(&jwks.url, INTERVAL_SECONDS));
    who_am_i(&server, &old_key.sign(&claims("zoe", &[])))
        .await
        .expect("old key accepted");
    assert_eq!(jwks.request_count(), 1, "keys are fetched once, then cached");

    // The issuer rotates: the new key is published, the old one withdrawn.
    let new_key = TestKey::generate("new");
    jwks.publish(vec![new_key.jwk.clone()]);
    let new_token = new_key.sign(&claims("zoe", &[]));
    let mut accepted = false;
    for _ in 0..40 {
        match who_am_i(&server, &new_token).await {
            Ok(_) => {
                accepted = true;
                break;
            }
            Err(status) => assert_eq!(reason_of(&status), "UNKNOWN_SIGNING_KEY"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(accepted, "the rotated key is picked up");
    let fetches_after_rotation = jwks.request_count();

    // A flood of distinct unknown kids right after a refresh causes no fetch at all...
    for attempt in 0..20 {
        let forged = forger.sign_as(&format!("forged-{attempt}"), &claims("zoe", &[]));
        assert_refused(who_am_i(&server, &forged).await, "UNKNOWN_SIGNING_KEY");
    }
    assert_eq!(
        jwks.request_count(),
        fetches_after_rotation,
        "no fetch within the interval"
    );

    // ...and once the interval has passed, exactly one.
    tokio::time::sleep(Duration::from_secs(INTERVAL_SECONDS) + Duration::from_millis(300)).await;
    for attempt in 0..5 {
        let forged = forger.sign_as(&format!("late-{attempt}"), &claims("zoe", &[]));
        assert_refused(who_am_i(&server, &forged).await, "UNKNOWN_SIGNING_KEY");
    }
    assert_eq!(
        jwks.request_count(),
        fetches_after_rotation + 1,
        "one fetch per interval"
    );
}

#[tokio::test]
async fn hmac_tokens_are_accepted_only_with_the_configured_secret() {
    let key = TestKey::generate("k1");
    let jwks = JwksServer::start(vec![key.jwk.clone()]).await;
    let secret = "a-shared-secret-of-at-least-32-bytes!!";
    let secret_file = tempfile::NamedTempFile::new().expect("secret file");
    std::fs::write(secret_file.path(), secret).expect("write");
    let config = format!(
        "{}algorithms = [\"RS256\", \"HS256\"]\nhmac_secret_file = {:?}\n",
        jwks_config(&jwks.url, 30),
        secret_file.path()
    );
    let server = OsamServer::start(&config);
    let hs256 = Header::new(Algorithm::HS256);
    let genuine = jsonwebtoken::encode(
        &hs256,
        &claims("zoe", &[]),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("signed");
    assert_eq!(
        who_am_i(&server, &genuine)
            .await
            .expect("accepted")
            .user
            .expect("user")
            .username,
        "zoe"
    );

    let confused = jsonwebtoken::encode(
        &hs256,
        &claims("zoe", &[]),
        &EncodingKey::from_secret(&key.public_der),
    )
    .expect("signed");
    let status = who_am_i(&server, &confused).await.expect_err("refused");
    assert_eq!(reason_of(&status), "INVALID_TOKEN");
    assert!(status.message().contains("bad signature"), "{}", status.message());
}

#[tokio::test]
async fn unreachable_keys_are_unavailable_and_encryption_keys_never_verify() {
    let key = TestKey::generate("k1");
    // Nothing listens on port 9 (discard) of the loopback: the fetch fails at once.
    let server = OsamServer::start(&jwks_config("http://127.0.0.1:9/certs", 30));
    let status = who_am_i(&server, &key.sign(&claims("zoe", &[])))
        .await
        .expect_err("no keys");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(reason_of(&status), "SIGNING_KEYS_UNAVAILABLE");
    assert!(
        !status.message().contains("127.0.0.1"),
        "no internal detail reaches the caller: {}",
        status.message()
    );

    // The same RSA key published for encryption only (alg RSA-OAEP, no `use`) is not a signing key.
    let mut encryption_jwk = key.jwk.clone();
    encryption_jwk.as_object_mut().expect("object").remove("use");
    encryption_jwk["alg"] = json!("RSA-OAEP");
    let jwks = JwksServer::start(vec![encryption_jwk]).await;
    let server = OsamServer::start(&jwks_config(&jwks.url, 30));
    let status = who_am_i(&server, &key.sign(&claims("zoe", &[])))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test]
async fn scopes_guard_methods_and_public_services_need_no_token() {
    let key = TestKey::generate("k1");
    let jwks = JwksServer::start(vec![key.jwk.clone()]).await;
    let server = OsamServer::start(&jwks_config(&jwks.url, 30));
    let plain_user = key.sign(&json!({
        "iss": ISSUER, "aud": "osam", "exp": now() + 600, "preferred_username": "plain",
    }));
    let mut rights = server.rights(&plain_user).await;
    let status = rights
        .get_user_info(pb::GetUserInfoRequest {
            username: "alice".into(),
        })
        .await
        .expect_err("no scope");
    assert_eq!(status.code(), Code::PermissionDenied);
    assert_eq!(reason_of(&status), "MISSING_SCOPE");
    // Every authenticated user may check their own catalog rights.
    let mut catalog = server.catalog(&plain_user).await;
    assert!(allowed(&mut catalog, check("plain", &["mine"], pb::CatalogAction::Write)).await);

    let channel = server.channel().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "osam.v1.CatalogAuthz".into(),
        })
        .await
        .expect("health");
    assert_eq!(
        serving.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::{ServerReflectionRequest, server_reflection_response::MessageResponse};
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = responses.message().await.expect("stream").expect("one response");
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected {response:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|service| service.name).collect();
    for expected in [
        "osam.v1.CatalogAuthz",
        "osam.v1.RightsService",
        "osam.v1.AccountService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.contains(&expected.to_owned()), "{names:?}");
    }
}
