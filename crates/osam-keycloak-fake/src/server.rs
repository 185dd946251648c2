//! The accept loop. Connections are served by hand with hyper so that a fault can close one
//! without writing a response; every request passes through the counters and the fault plan
//! before reaching the axum router.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, StatusCode, header};
use axum::response::IntoResponse;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::faults::{Faults, InjectedFault};
use crate::model::RealmState;
use crate::routes::{self, ErrorReply};

/// What the handlers and the owning [`crate::FakeKeycloak`] share.
pub(crate) struct Shared {
    pub realm: String,
    pub base_url: String,
    state: Mutex<RealmState>,
    pub faults: Faults,
    pub token_requests: AtomicUsize,
    pub admin_requests: AtomicUsize,
}

impl Shared {
    pub(crate) fn new(realm: &str, base_url: String, state: RealmState) -> Shared {
        Shared {
            realm: realm.to_owned(),
            base_url,
            state: Mutex::new(state),
            faults: Faults::default(),
            token_requests: AtomicUsize::new(0),
            admin_requests: AtomicUsize::new(0),
        }
    }

    /// The realm. Callers keep the guard for a few statements and never across an await.
    pub(crate) fn state(&self) -> MutexGuard<'_, RealmState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn issuer(&self) -> String {
        format!("{}/realms/{}", self.base_url, self.realm)
    }

    fn count_request(&self, path: &str) {
        if path.starts_with("/admin/") {
            self.admin_requests.fetch_add(1, Ordering::Relaxed);
        } else if path.ends_with("/protocol/openid-connect/token") {
            self.token_requests.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Returned by the service to make hyper close the connection without a response.
#[derive(Debug)]
struct DroppedByFault;

impl std::fmt::Display for DroppedByFault {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for DroppedByFault {}

/// Serves until the task is aborted; aborting also drops every open connection.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let router = routes::router(Arc::clone(&shared));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let shared = Arc::clone(&shared);
                let router = router.clone();
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    handle(Arc::clone(&shared), router.clone(), request)
                });
                connections.spawn(async move {
                    // A failed connection (including a deliberately dropped one) only ends itself.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_finished) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    router: Router,
    request: Request<Incoming>,
) -> Result<Response<Body>, DroppedByFault> {
    shared.count_request(request.uri().path());
    let (latency, fault) = shared.faults.take_next();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    match fault {
        InjectedFault::DropConnection => return Err(DroppedByFault),
        InjectedFault::FailWithStatus(status) => return Ok(failure_response(status)),
        InjectedFault::RateLimit { retry_after_seconds } => {
            return Ok(rate_limited_response(retry_after_seconds));
        }
        InjectedFault::None => {}
    }
    let response: Result<Response<Body>, Infallible> = router.oneshot(request).await;
    match response {
        Ok(response) => Ok(response),
        Err(never) => match never {},
    }
}

fn failure_response(status: u16) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let reason = status.canonical_reason().unwrap_or("Unknown");
    let description = format!("fault injected by FakeKeycloak: {} {reason}", status.as_u16());
    ErrorReply::described(status, "unknown_error", &description).into_response()
}

fn rate_limited_response(retry_after_seconds: u64) -> Response<Body> {
    let mut response = ErrorReply::described(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "fault injected by FakeKeycloak: rate limited",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
    response
}
