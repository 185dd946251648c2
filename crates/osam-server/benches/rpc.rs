//! What osam's request path costs over gRPC itself: the same load of unary `Check` calls against
//! (a) a bare tonic server whose `Check` answers at once (no edge layer, no auth, no decision) and
//! (b) the real osam server (request ids, load shedding, metrics, token verification with its
//! cache, the catalog decision, the audit log formatted as JSON), both in this process on loopback. Prints calls per
//! second and latency percentiles for each, and osam's throughput as a share of the bare one.
//!
//! cargo bench -p osam-server --bench rpc [-- SECONDS]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use osam_proto::v1 as pb;
use osam_server::config::Config;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Request, Response, Status};

/// Calls in flight at once, spread over a few HTTP/2 connections as a catalog's pool would.
const CONCURRENCY: usize = 32;
const CONNECTIONS: usize = 4;

/// A CatalogAuthz that allows everything at once: the transport's own cost.
struct Bare;

#[tonic::async_trait]
impl pb::catalog_authz_server::CatalogAuthz for Bare {
    async fn check(&self, request: Request<pb::CheckRequest>) -> Result<Response<pb::CheckResponse>, Status> {
        let check = request.into_inner();
        Ok(Response::new(pb::CheckResponse {
            allowed: true,
            decisions: Vec::new(),
            subject: check.owner,
        }))
    }

    async fn batch_check(
        &self,
        _: Request<pb::BatchCheckRequest>,
    ) -> Result<Response<pb::BatchCheckResponse>, Status> {
        Err(Status::unimplemented("not measured"))
    }

    async fn list_grants(
        &self,
        _: Request<pb::ListGrantsRequest>,
    ) -> Result<Response<pb::ListGrantsResponse>, Status> {
        Err(Status::unimplemented("not measured"))
    }
}

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

async fn connect(address: SocketAddr) -> Channel {
    let started = Instant::now();
    loop {
        match Channel::from_shared(format!("http://{address}"))
            .expect("uri")
            .connect()
            .await
        {
            Ok(channel) => return channel,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => panic!("cannot connect to {address}: {error}"),
        }
    }
}

struct Measured {
    calls_per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// Runs `CONCURRENCY` callers for `duration` and measures every call.
async fn load(address: SocketAddr, token: String, duration: Duration) -> Measured {
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(connect(address).await);
    }
    let header: MetadataValue<_> = format!("Bearer {token}").parse().expect("ascii");
    let deadline = Instant::now() + duration;
    let mut callers = tokio::task::JoinSet::new();
    for caller in 0..CONCURRENCY {
        let mut client =
            pb::catalog_authz_client::CatalogAuthzClient::new(channels[caller % CONNECTIONS].clone());
        let header = header.clone();
        callers.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let mut request = Request::new(pb::CheckRequest {
                    owner: "alice".into(),
                    collections: vec!["s1-l1".into(), "s2-l2".into()],
                    action: pb::CatalogAction::Read as i32,
                    ..Default::default()
                });
                request.metadata_mut().insert("authorization", header.clone());
                let started = Instant::now();
                let response = client.check(request).await.expect("check");
                latencies.push(started.elapsed());
                assert!(response.into_inner().allowed);
            }
            latencies
        });
    }
    let started = Instant::now();
    let mut latencies: Vec<Duration> = callers.join_all().await.into_iter().flatten().collect();
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile =
        |share: f64| latencies[((latencies.len() as f64 * share) as usize).min(latencies.len() - 1)];
    Measured {
        calls_per_second: latencies.len() as f64 / elapsed,
        p50: percentile(0.50),
        p99: percentile(0.99),
    }
}

fn report(name: &str, measured: &Measured) {
    println!(
        "{name:<36} {:>9.0} calls/s   p50 {:>7.1} µs   p99 {:>7.1} µs",
        measured.calls_per_second,
        measured.p50.as_secs_f64() * 1e6,
        measured.p99.as_secs_f64() * 1e6
    );
}

fn main() {
    let seconds: u64 = std::env::args()
        .skip(1)
        .find_map(|argument| argument.parse().ok())
        .unwrap_or(5);
    let duration = Duration::from_secs(seconds);
    // Logs and audit events are formatted as in production (JSON, info), then discarded.
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_env_filter("info")
        .with_writer(std::io::sink)
        .init();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let bare_address = free_address();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(pb::catalog_authz_server::CatalogAuthzServer::new(Bare))
                .serve(bare_address),
        );

        // Both osam servers share a state directory, so one development token serves both.
        let state = tempfile::tempdir().expect("state");
        let start_osam = |sample_rate: f64| {
            let mut config = Config::load(None).expect("the embedded default");
            config.server.listen = free_address();
            config.server.state_dir = state.path().to_path_buf();
            config.audit.allowed_decisions_sample_rate = sample_rate;
            let address = config.server.listen;
            tokio::spawn(osam_server::server::serve(config.clone()));
            (address, config)
        };
        let (osam_address, config) = start_osam(1.0);
        let (unaudited_address, _) = start_osam(0.0);
        let token = osam_server::dev_token::mint(&config, "alice", 3600)
            .await
            .expect("a development token");

        println!("{CONCURRENCY} callers over {CONNECTIONS} connections, {seconds} s each, unary Check of 2 collections");
        // Warm both (connections, the token cache, the principal cache).
        // The bare server gets the same bearer token (and ignores it): both transports carry the
        // same bytes.
        load(bare_address, token.clone(), Duration::from_millis(300)).await;
        load(osam_address, token.clone(), Duration::from_millis(300)).await;
        load(unaudited_address, token.clone(), Duration::from_millis(300)).await;
        let bare = load(bare_address, token.clone(), duration).await;
        report("bare tonic", &bare);
        let osam = load(osam_address, token.clone(), duration).await;
        report("osam", &osam);
        let unaudited = load(unaudited_address, token, duration).await;
        report("osam, allowed decisions not audited", &unaudited);
        let share = |measured: &Measured| 100.0 * measured.calls_per_second / bare.calls_per_second;
        println!(
            "osam serves {:.0}% of the bare transport's calls per second (p50 latency ×{:.2}); {:.0}% with \
             audit.allowed_decisions_sample_rate = 0",
            share(&osam),
            osam.p50.as_secs_f64() / bare.p50.as_secs_f64(),
            share(&unaudited)
        );
    });
}
