//! Prometheus metrics: one registry for the process, served as OpenMetrics text on `/metrics` of
//! a separate port (`metrics.listen`), so scraping never competes with gRPC traffic and the port
//! can stay inside the cluster.
//!
//! Label values are bounded: methods are the method table's paths (anything else is `unknown`),
//! codes are gRPC code names, operations and outcomes are fixed words. No username, subject or
//! collection ever becomes a label.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use osam_policy::accounts::{Account, AccountCredentials, AccountProvider, ProviderFuture};
use osam_policy::{Directory, DirectoryFuture, DirectoryUser};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RpcLabels {
    pub method: &'static str,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub outcome: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub operation: &'static str,
    pub outcome: &'static str,
}

/// Every metric osam exports.
pub struct Metrics {
    registry: Registry,
    pub rpc_requests: Family<RpcLabels, Counter>,
    pub rpc_duration: Family<RpcLabels, Histogram>,
    pub decisions: Family<DecisionLabels, Counter>,
    pub token_cache: Family<ResultLabels, Counter>,
    pub jwks_refreshes: Family<ResultLabels, Counter>,
    pub directory_calls: Family<CallLabels, Histogram>,
    pub provider_calls: Family<CallLabels, Histogram>,
    pub sync_runs: Family<ResultLabels, Counter>,
    pub accounts_created: Counter,
    pub accounts_deleted: Counter,
    pub sync_failures: Counter,
    pub shed_requests: Counter,
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~6.5 s: decisions are microseconds, Keycloak and IAM calls tens of milliseconds.
    Histogram::new(exponential_buckets(0.000_1, 2.0, 17))
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("osam");
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        registry.register(
            "rpc_requests",
            "gRPC calls by method and status code",
            rpc_requests.clone(),
        );
        let rpc_duration =
            Family::<RpcLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "rpc_duration_seconds",
            "gRPC call latency by method and status code, until the response headers",
            rpc_duration.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "catalog decisions per collection, by outcome and reason kind",
            decisions.clone(),
        );
        let token_cache = Family::<ResultLabels, Counter>::default();
        registry.register(
            "token_cache",
            "verified-token cache lookups (hit or miss)",
            token_cache.clone(),
        );
        let jwks_refreshes = Family::<ResultLabels, Counter>::default();
        registry.register("jwks_refreshes", "JWKS fetches by result", jwks_refreshes.clone());
        let directory_calls =
            Family::<CallLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "directory_call_duration_seconds",
            "directory calls (Keycloak admin API or static file) by operation and outcome",
            directory_calls.clone(),
        );
        let provider_calls =
            Family::<CallLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> Histogram);
        registry.register(
            "provider_call_duration_seconds",
            "account provider calls (IAM or embedded) by operation and outcome",
            provider_calls.clone(),
        );
        let sync_runs = Family::<ResultLabels, Counter>::default();
        registry.register("sync_runs", "finished account syncs by result", sync_runs.clone());
        let accounts_created = Counter::default();
        registry.register(
            "sync_accounts_created",
            "accounts created by syncs",
            accounts_created.clone(),
        );
        let accounts_deleted = Counter::default();
        registry.register(
            "sync_accounts_deleted",
            "accounts deleted by syncs",
            accounts_deleted.clone(),
        );
        let sync_failures = Counter::default();
        registry.register(
            "sync_failures",
            "per-user failures reported by syncs",
            sync_failures.clone(),
        );
        let shed_requests = Counter::default();
        registry.register(
            "shed_requests",
            "calls refused with RESOURCE_EXHAUSTED because server.max_concurrent_requests were running",
            shed_requests.clone(),
        );
        Metrics {
            registry,
            rpc_requests,
            rpc_duration,
            decisions,
            token_cache,
            jwks_refreshes,
            directory_calls,
            provider_calls,
            sync_runs,
            accounts_created,
            accounts_deleted,
            sync_failures,
            shed_requests,
        }
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    pub fn record_rpc(&self, method: &'static str, code: tonic::Code, elapsed: Duration) {
        let labels = RpcLabels {
            method,
            code: code_name(code),
        };
        self.rpc_requests.get_or_create(&labels).inc();
        self.rpc_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub fn record_decision(&self, allowed: bool, reason: &'static str) {
        let outcome = if allowed { "allowed" } else { "denied" };
        self.decisions
            .get_or_create(&DecisionLabels { outcome, reason })
            .inc();
    }

    pub fn record_result(family: &Family<ResultLabels, Counter>, result: &'static str) {
        family.get_or_create(&ResultLabels { result }).inc();
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);
    &METRICS
}

/// The name gRPC gives a code (`OK`, `PERMISSION_DENIED`, ...).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Serves `/metrics` on `address` until the process ends; returns the bound address.
pub async fn serve(address: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    http::header::CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )],
                metrics().encode(),
            )
        }),
    );
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router).await {
            tracing::error!(%error, "the metrics endpoint stopped");
        }
    });
    Ok(bound)
}

/// Times `call` into `histogram` under `operation`, with `ok` or `error` as the outcome.
async fn timed<T, E>(
    histogram: &Family<CallLabels, Histogram>,
    operation: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = Instant::now();
    let result = call.await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    histogram
        .get_or_create(&CallLabels { operation, outcome })
        .observe(started.elapsed().as_secs_f64());
    result
}

/// A directory whose calls are timed.
pub struct InstrumentedDirectory(pub Arc<dyn Directory>);

impl Directory for InstrumentedDirectory {
    fn find_user<'a>(&'a self, username: &'a str) -> DirectoryFuture<'a, Option<DirectoryUser>> {
        Box::pin(timed(
            &metrics().directory_calls,
            "find_user",
            self.0.find_user(username),
        ))
    }

    fn list_users(&self) -> DirectoryFuture<'_, Vec<DirectoryUser>> {
        Box::pin(timed(
            &metrics().directory_calls,
            "list_users",
            self.0.list_users(),
        ))
    }

    fn set_attribute<'a>(
        &'a self,
        username: &'a str,
        name: &'a str,
        values: Vec<String>,
    ) -> DirectoryFuture<'a, ()> {
        Box::pin(timed(
            &metrics().directory_calls,
            "set_attribute",
            self.0.set_attribute(username, name, values),
        ))
    }
}

/// An account provider whose calls are timed.
pub struct InstrumentedProvider(pub Arc<dyn AccountProvider>);

impl AccountProvider for InstrumentedProvider {
    fn list_accounts(&self) -> ProviderFuture<'_, Vec<Account>> {
        Box::pin(timed(
            &metrics().provider_calls,
            "list_accounts",
            self.0.list_accounts(),
        ))
    }

    fn account_with_marker<'a>(&'a self, marker: &'a str) -> ProviderFuture<'a, Option<Account>> {
        Box::pin(timed(
            &metrics().provider_calls,
            "account_with_marker",
            self.0.account_with_marker(marker),
        ))
    }

    fn create_account<'a>(&'a self, marker: &'a str) -> ProviderFuture<'a, (Account, AccountCredentials)> {
        Box::pin(timed(
            &metrics().provider_calls,
            "create_account",
            self.0.create_account(marker),
        ))
    }

    fn delete_account<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(timed(
            &metrics().provider_calls,
            "delete_account",
            self.0.delete_account(account_id),
        ))
    }

    fn credentials<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, AccountCredentials> {
        Box::pin(timed(
            &metrics().provider_calls,
            "credentials",
            self.0.credentials(account_id),
        ))
    }

    fn apply_policy<'a>(&'a self, account_id: &'a str, policy_json: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(timed(
            &metrics().provider_calls,
            "apply_policy",
            self.0.apply_policy(account_id, policy_json),
        ))
    }

    fn remove_policy<'a>(&'a self, account_id: &'a str) -> ProviderFuture<'a, ()> {
        Box::pin(timed(
            &metrics().provider_calls,
            "remove_policy",
            self.0.remove_policy(account_id),
        ))
    }
}
