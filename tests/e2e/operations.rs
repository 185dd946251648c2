//! Running osam in production: the Prometheus endpoint (scraped by the test and by a real
//! Prometheus server), the audit log, request ids, load shedding, and TLS / mutual TLS from the
//! Rust client, with certificates reloaded when their files change.

use std::time::{Duration, Instant};

use osam_client::credentials::RunningUser;
use osam_client::{OsamClient, pb};
use osam_keycloak_fake::{FakeKeycloak, FakeUser};
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Identity};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::harness::{BearerToken, OsamServer, check, eventually, reason_of, secret_file};

fn metrics_address(server: &OsamServer) -> String {
    server
        .logs()
        .iter()
        .find(|event| event["message"] == "metrics listening")
        .and_then(|event| event["address"].as_str().map(str::to_owned))
        .expect("the metrics endpoint is announced")
}

async fn scrape(address: &str) -> String {
    reqwest::get(format!("http://{address}/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text")
}

/// The value of the sample `name{labels}` in an OpenMetrics text, if present.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with('{'))
        .find(|line| {
            labels
                .iter()
                .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

const CHECK: &str = "/osam.v1.CatalogAuthz/Check";

#[tokio::test]
async fn metrics_count_calls_by_method_and_code_and_decisions_by_reason() {
    let server = OsamServer::start("[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let address = metrics_address(&server);
    let mut catalog = server.catalog(&server.dev_token("alice")).await;
    let read = |owner: &str| {
        let mut request = check(owner, &["s1-l1"], pb::CatalogAction::Read);
        request.explain = true;
        request
    };
    for _ in 0..3 {
        assert!(
            catalog
                .check(read("alice"))
                .await
                .expect("owner")
                .into_inner()
                .allowed
        );
    }
    assert!(
        !catalog
            .check(read("nobody"))
            .await
            .expect("denied")
            .into_inner()
            .allowed
    );
    let mut anonymous = server.catalog("").await;
    assert_eq!(
        anonymous.check(read("alice")).await.expect_err("no token").code(),
        Code::Unauthenticated
    );

    let text = scrape(&address).await;
    assert_eq!(
        sample(
            &text,
            "osam_rpc_requests_total",
            &[("method", CHECK), ("code", "OK")]
        ),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "osam_rpc_requests_total",
            &[("method", CHECK), ("code", "UNAUTHENTICATED")]
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "osam_rpc_duration_seconds_count",
            &[("method", CHECK), ("code", "OK")]
        ),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &text,
            "osam_decisions_total",
            &[("outcome", "allowed"), ("reason", "REASON_KIND_OWNER")]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            "osam_decisions_total",
            &[("outcome", "denied"), ("reason", "REASON_KIND_NO_GRANT")]
        ),
        Some(1.0)
    );
    // One token, verified once and then served from the cache.
    assert_eq!(
        sample(&text, "osam_token_cache_total", &[("result", "miss")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "osam_token_cache_total", &[("result", "hit")]),
        Some(3.0)
    );
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
}

/// A real Prometheus (Debian's `prometheus`, installed by `.ci/run`) scrapes the endpoint and
/// answers a query for the RPC counter.
#[tokio::test]
async fn a_real_prometheus_scrapes_the_endpoint() {
    let binary = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|directory| directory.join("prometheus"))
        .find(|path| path.is_file())
        .expect("Prometheus is not on PATH: `apt-get install prometheus` (scripts/test.sh does)");
    let server = OsamServer::start("[metrics]\nlisten = \"127.0.0.1:0\"\n");
    let target = metrics_address(&server);
    let mut catalog = server.catalog(&server.dev_token("alice")).await;
    catalog
        .check(check("alice", &["s1-l1"], pb::CatalogAction::Read))
        .await
        .expect("a call to count");

    let work = tempfile::tempdir().expect("prometheus dir");
    let config = work.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: osam\n    static_configs:\n      - targets: [\"{target}\"]\n"
        ),
    )
    .expect("config");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let mut prometheus = std::process::Command::new(&binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            work.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus starts");

    let query = format!(
        "http://127.0.0.1:{port}/api/v1/query?query=osam_rpc_requests_total%7Bmethod%3D%22{}%22%7D",
        CHECK.replace('/', "%2F")
    );
    let started = Instant::now();
    let mut last = String::new();
    let mut found = None;
    while started.elapsed() < Duration::from_secs(90) && found.is_none() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(response) = reqwest::get(&query).await else {
            continue;
        };
        last = response.text().await.unwrap_or_default();
        let Ok(answer) = serde_json::from_str::<serde_json::Value>(&last) else {
            continue;
        };
        found = answer["data"]["result"]
            .as_array()
            .and_then(|results| results.first())
            .and_then(|result| result["value"][1].as_str())
            .map(str::to_owned);
    }
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert_eq!(
        found.as_deref(),
        Some("1"),
        "Prometheus never returned the counter; last answer: {last}"
    );
}

/// The audit decision events once at least `count` have been read from the server's stderr
/// (the logs are read by another thread), or all there are after 10 s.
async fn decisions_logged(server: &OsamServer, count: usize) -> Vec<serde_json::Value> {
    let started = Instant::now();
    loop {
        let decisions: Vec<serde_json::Value> = server
            .logs()
            .into_iter()
            .filter(|event| event["target"] == "osam::audit" && event["event"] == "decision")
            .collect();
        if decisions.len() >= count || started.elapsed() > Duration::from_secs(10) {
            return decisions;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn audit_events_record_allowed_denied_and_impersonated_calls_with_the_request_id() {
    let server = OsamServer::start("");
    let mut alice = server.catalog(&server.dev_token("alice")).await;
    let mut request = tonic::Request::new(check("alice", &["s1-l1"], pb::CatalogAction::Read));
    request
        .metadata_mut()
        .insert("x-request-id", "req-allowed-1".parse().expect("ascii"));
    let response = alice.check(request).await.expect("allowed");
    assert_eq!(
        response
            .metadata()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok()),
        Some("req-allowed-1"),
        "the request id comes back"
    );
    let denied = alice
        .check(check("nobody", &["s1-l1"], pb::CatalogAction::Write))
        .await
        .expect("denied");
    let generated = denied
        .metadata()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .expect("a generated request id");

    // The example app `notebook_app` may impersonate (deploy/examples/users.yaml).
    let app_token = server.dev_token("notebook_app");
    let mut app = pb::catalog_authz_client::CatalogAuthzClient::with_interceptor(
        server.channel().await,
        BearerToken::new(&app_token).impersonating("alice"),
    );
    app.check(check("alice", &["s1-l1"], pb::CatalogAction::Read))
        .await
        .expect("impersonated");

    let audit = decisions_logged(&server, 3).await;
    assert_eq!(audit.len(), 3, "{audit:#?}");
    let allowed = &audit[0];
    assert_eq!(
        (
            &allowed["request_id"],
            &allowed["caller"],
            &allowed["subject"],
            &allowed["outcome"]
        ),
        (
            &"req-allowed-1".into(),
            &"alice".into(),
            &"alice".into(),
            &"allowed".into()
        )
    );
    assert_eq!(allowed["method"], CHECK);
    assert_eq!(allowed["actor"], "");
    let denied = &audit[1];
    assert_eq!(
        (&denied["outcome"], &denied["owner"], &denied["action"]),
        (&"denied".into(), &"nobody".into(), &"CATALOG_ACTION_WRITE".into())
    );
    assert_eq!(denied["request_id"], generated.as_str());
    let impersonated = &audit[2];
    assert_eq!(
        (
            &impersonated["caller"],
            &impersonated["actor"],
            &impersonated["outcome"]
        ),
        (&"alice".into(), &"notebook_app".into(), &"allowed".into())
    );
    let everything = serde_json::to_string(&server.logs()).expect("json");
    assert!(!everything.contains(&app_token), "a token reached the logs");
}

#[tokio::test]
async fn allowed_decisions_can_be_left_out_of_the_audit_log() {
    let server = OsamServer::start("[audit]\nallowed_decisions_sample_rate = 0.0\n");
    let mut alice = server.catalog(&server.dev_token("alice")).await;
    alice
        .check(check("alice", &["s1-l1"], pb::CatalogAction::Read))
        .await
        .expect("allowed");
    alice
        .check(check("nobody", &["s1-l1"], pb::CatalogAction::Read))
        .await
        .expect("denied");
    let outcomes: Vec<String> = decisions_logged(&server, 1)
        .await
        .iter()
        .map(|event| event["outcome"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(outcomes, ["denied"]);
}

/// osam with live roles read from a Keycloak fake on every call (TTL 0), so that a slow Keycloak
/// makes every call slow; warmed up (JWKS and admin token read) before it returns.
async fn slow_keycloak_setup(
    server_toml: &str,
) -> (FakeKeycloak, OsamServer, String, tempfile::NamedTempFile) {
    let keycloak = FakeKeycloak::start("osam").await;
    keycloak.add_service_client("osam", "secret");
    keycloak.add_user(FakeUser::new("alice"));
    let secret = secret_file("secret");
    let config = format!(
        "[server]\n{server_toml}\n[auth]\nkey_source = \"oidc-discovery\"\nissuer = \"{issuer}\"\nlive_roles = true\nlive_roles_ttl_seconds = 0\n\
         [directory]\nkind = \"keycloak\"\n[directory.keycloak]\nbase_url = \"{base}\"\nrealm = \"osam\"\nclient_id = \"osam\"\nclient_secret_file = {secret:?}\n",
        issuer = keycloak.issuer(),
        base = keycloak.base_url(),
        secret = secret.path(),
    );
    let server = OsamServer::start(&config);
    let token = keycloak.user_token("alice", Duration::from_secs(600));
    let mut warm = server.catalog(&token).await;
    warm.check(check("alice", &["c"], pb::CatalogAction::Read))
        .await
        .expect("warm-up");
    (keycloak, server, token, secret)
}

/// A call longer than `server.request_timeout_seconds` ends with DEADLINE_EXCEEDED, counted in the
/// metrics under that code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_beyond_the_server_time_limit_ends_with_deadline_exceeded() {
    let (keycloak, server, token, _secret) =
        slow_keycloak_setup("request_timeout_seconds = 1\n[metrics]\nlisten = \"127.0.0.1:0\"").await;
    keycloak.faults().set_latency(Duration::from_millis(2500));
    let mut catalog = server.catalog(&token).await;
    let status = catalog
        .check(check("alice", &["c"], pb::CatalogAction::Read))
        .await
        .expect_err("too slow");
    assert_eq!(
        (status.code(), reason_of(&status).as_str()),
        (Code::DeadlineExceeded, "DEADLINE_EXCEEDED"),
        "{status:?}"
    );
    let text = scrape(&metrics_address(&server)).await;
    assert_eq!(
        sample(
            &text,
            "osam_rpc_requests_total",
            &[("method", CHECK), ("code", "DEADLINE_EXCEEDED")]
        ),
        Some(1.0),
        "{text}"
    );
}

/// Every call is made slow by a Keycloak that answers after a delay (live roles re-read the
/// caller at each call), so more calls than the limit are running at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_concurrency_limit_are_shed_and_the_server_stays_healthy() {
    let (keycloak, server, token, _secret) = slow_keycloak_setup("max_concurrent_requests = 2").await;
    keycloak.faults().set_latency(Duration::from_millis(1500));

    let channel = server.channel().await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let mut catalog = pb::catalog_authz_client::CatalogAuthzClient::with_interceptor(
            channel.clone(),
            BearerToken::new(&token),
        );
        calls.spawn(async move {
            catalog
                .check(check("alice", &["c"], pb::CatalogAction::Read))
                .await
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let health_during = HealthClient::new(channel.clone())
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await;
    let outcomes: Vec<_> = calls.join_all().await;
    let succeeded = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    let shed: Vec<&tonic::Status> = outcomes
        .iter()
        .filter_map(|outcome| outcome.as_ref().err())
        .collect();
    assert!(succeeded >= 1, "some calls run: {outcomes:?}");
    assert!(succeeded <= 2, "no more than the limit run at once: {outcomes:?}");
    assert!(
        shed.iter()
            .all(|status| status.code() == Code::ResourceExhausted && reason_of(status) == "OVERLOADED"),
        "{shed:?}"
    );
    assert_eq!(succeeded + shed.len(), 8);
    assert_eq!(
        health_during.expect("health is never shed").into_inner().status,
        ServingStatus::Serving as i32
    );

    keycloak.faults().set_latency(Duration::ZERO);
    let mut after = server.catalog(&token).await;
    after
        .check(check("alice", &["c"], pb::CatalogAction::Read))
        .await
        .expect("serves again");
}

/// A CA, and certificates it signs.
struct Pki {
    ca: rcgen::Certificate,
    ca_issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let key = rcgen::KeyPair::generate().expect("ca key");
        let ca = params.self_signed(&key).expect("ca");
        Pki {
            ca,
            ca_issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A leaf certificate and key (PEM) for `names`.
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let names: Vec<String> = names.iter().map(|name| name.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).expect("params");
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let certificate = params.signed_by(&key, &self.ca_issuer).expect("leaf");
        (certificate.pem(), key.serialize_pem())
    }

    fn ca_pem(&self) -> String {
        self.ca.pem()
    }
}

struct TlsFiles {
    dir: tempfile::TempDir,
}

impl TlsFiles {
    fn write(&self, name: &str, content: &str) -> std::path::PathBuf {
        let path = self.dir.path().join(name);
        // Written to a temporary name and renamed, as a Secret volume update does.
        let temporary = self.dir.path().join(format!(".{name}.new"));
        std::fs::write(&temporary, content).expect("write");
        std::fs::rename(&temporary, &path).expect("rename");
        path
    }
}

fn client(address: &str, tls: ClientTlsConfig, token: &str) -> OsamClient {
    let port = address.rsplit(':').next().expect("port");
    OsamClient::builder(format!("https://localhost:{port}"))
        .tls(tls)
        .credentials(RunningUser::new(token).expect("token"))
        .build()
        .expect("client")
}

#[tokio::test]
async fn tls_serves_the_rust_client_and_reloads_a_renewed_certificate() {
    let first = Pki::new("first CA");
    let files = TlsFiles {
        dir: tempfile::tempdir().expect("tls dir"),
    };
    let (cert, key) = first.leaf(&["localhost"]);
    let cert_file = files.write("tls.crt", &cert);
    let key_file = files.write("tls.key", &key);
    let server = OsamServer::start(&format!(
        "[server.tls]\ncert_file = {cert_file:?}\nkey_file = {key_file:?}\nreload_interval_seconds = 1\n"
    ));
    let token = server.dev_token("alice");
    let trusting = |pki: &Pki| ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pki.ca_pem()));

    let who = client(&server.address, trusting(&first), &token)
        .who_am_i()
        .await
        .expect("TLS call");
    assert_eq!(who.user.expect("user").username, "alice");
    let plain = OsamClient::builder(format!("http://{}", server.address))
        .credentials(RunningUser::new(token.as_str()).expect("token"))
        .retry(osam_client::RetryPolicy {
            attempts: 1,
            ..Default::default()
        })
        .build()
        .expect("client");
    assert!(
        plain.who_am_i().await.is_err(),
        "plaintext is refused on a TLS port"
    );

    // The certificate is renewed by a new CA: once reloaded, clients trusting the new CA connect.
    let second = Pki::new("second CA");
    let (cert, key) = second.leaf(&["localhost"]);
    files.write("tls.key", &key);
    files.write("tls.crt", &cert);
    let reloaded = eventually(Duration::from_secs(30), || async {
        client(&server.address, trusting(&second), &token)
            .who_am_i()
            .await
            .is_ok()
    })
    .await;
    assert!(
        reloaded,
        "the renewed certificate was not served within 30 s (reload interval 1 s)"
    );
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let server_pki = Pki::new("server CA");
    let client_pki = Pki::new("client CA");
    let files = TlsFiles {
        dir: tempfile::tempdir().expect("tls dir"),
    };
    let (cert, key) = server_pki.leaf(&["localhost"]);
    let cert_file = files.write("tls.crt", &cert);
    let key_file = files.write("tls.key", &key);
    let ca_file = files.write("clients.crt", &client_pki.ca_pem());
    let server = OsamServer::start(&format!(
        "[server.tls]\ncert_file = {cert_file:?}\nkey_file = {key_file:?}\nclient_ca_file = {ca_file:?}\n"
    ));
    let token = server.dev_token("alice");
    let base = || ClientTlsConfig::new().ca_certificate(Certificate::from_pem(server_pki.ca_pem()));

    let (client_cert, client_key) = client_pki.leaf(&["catalog-app"]);
    let with_identity = base().identity(Identity::from_pem(client_cert, client_key));
    client(&server.address, with_identity, &token)
        .who_am_i()
        .await
        .expect("a client with a certificate from the client CA is served");

    let anonymous = client(&server.address, base(), &token).who_am_i().await;
    assert!(anonymous.is_err(), "a client without a certificate is refused");

    let stranger = Pki::new("unknown CA");
    let (cert, key) = stranger.leaf(&["intruder"]);
    let foreign = base().identity(Identity::from_pem(cert, key));
    assert!(
        client(&server.address, foreign, &token).who_am_i().await.is_err(),
        "a certificate from another CA is refused"
    );
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_with_a_reason() {
    let server = OsamServer::start("[server]\nmax_message_bytes = 2048\n");
    let mut alice = server.catalog(&server.dev_token("alice")).await;
    let collections: Vec<String> = (0..200).map(|index| format!("collection-{index:04}")).collect();
    let mut request = check("alice", &[], pb::CatalogAction::Read);
    request.collections = collections;
    let status = alice.check(request).await.expect_err("too large");
    assert_eq!(
        (status.code(), reason_of(&status).as_str()),
        (Code::ResourceExhausted, "MESSAGE_TOO_LARGE"),
        "{status:?}"
    );
    assert!(status.message().contains("2048 bytes"), "{status:?}");
    let small = alice.check(check("alice", &["c"], pb::CatalogAction::Read)).await;
    assert!(small.is_ok(), "the server still serves: {small:?}");
}
