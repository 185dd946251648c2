//! The outermost layer, in front of the auth layer: gives every call a request id (taken from
//! `x-request-id` or generated, returned in the response metadata and attached to every log line
//! of the call), sheds load beyond `server.max_concurrent_requests` with RESOURCE_EXHAUSTED
//! instead of queueing without bound, and records the RPC count and latency metrics.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::HeaderValue;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::auth::method_table;
use crate::error::ApiError;
use crate::metrics::metrics;

/// The metadata key of the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Health is never shed: an overloaded replica must not be restarted by its liveness probe.
const NEVER_SHED_PREFIX: &str = "/grpc.health.v1.Health/";

/// The id of one call, in the request's extensions for the services (and the audit log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

impl RequestId {
    /// The client's id when it is a sensible one (1–128 visible ASCII characters), a new one
    /// otherwise.
    fn of(headers: &http::HeaderMap) -> RequestId {
        let given = headers
            .get(REQUEST_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|id| (1..=128).contains(&id.len()) && id.bytes().all(|byte| byte.is_ascii_graphic()));
        match given {
            Some(id) => RequestId(id.to_owned()),
            None => RequestId::generate(),
        }
    }

    fn generate() -> RequestId {
        let mut bytes = [0u8; 16];
        // The system RNG does not fail on supported platforms; an all-zero id would still be valid.
        let _ = aws_lc_rs::rand::fill(&mut bytes);
        RequestId(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
    }
}

/// The gRPC path of the call (`/osam.v1.CatalogAuthz/Check`), in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodPath(pub String);

/// Calls exempt from the server's own time limit: a SyncAccounts that waits lasts as long as the
/// sync. The client's deadline (`grpc-timeout`) still applies to them.
const UNLIMITED_METHODS: &[&str] = &["/osam.v1.AccountService/SyncAccounts"];

/// The limits the edge enforces, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct EdgeLimits {
    pub max_concurrent_requests: usize,
    pub request_timeout: Duration,
    /// Only for the error message: the services enforce it while decoding.
    pub max_message_bytes: usize,
}

#[derive(Clone)]
pub struct EdgeLayer {
    in_flight: Arc<Semaphore>,
    limits: EdgeLimits,
}

impl EdgeLayer {
    pub fn new(limits: EdgeLimits) -> EdgeLayer {
        EdgeLayer {
            in_flight: Arc::new(Semaphore::new(limits.max_concurrent_requests)),
            limits,
        }
    }
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = EdgeService<S>;

    fn layer(&self, inner: S) -> EdgeService<S> {
        EdgeService {
            inner,
            in_flight: self.in_flight.clone(),
            limits: self.limits,
        }
    }
}

#[derive(Clone)]
pub struct EdgeService<S> {
    inner: S,
    in_flight: Arc<Semaphore>,
    limits: EdgeLimits,
}

type ResponseFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, RequestBody> tower::Service<http::Request<RequestBody>> for EdgeService<S>
where
    S: tower::Service<http::Request<RequestBody>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    RequestBody: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = ResponseFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, mut request: http::Request<RequestBody>) -> Self::Future {
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let in_flight = self.in_flight.clone();
        let path = request.uri().path().to_owned();
        let limit = (!UNLIMITED_METHODS.contains(&path.as_str())).then_some(self.limits.request_timeout);
        let max_message_bytes = self.limits.max_message_bytes;
        let request_id = RequestId::of(request.headers());
        let span = tracing::info_span!("rpc", request_id = %request_id.0, method = %path);
        let mut record = CallRecord::new(&path, request_id.clone());
        request.extensions_mut().insert(request_id);
        request.extensions_mut().insert(MethodPath(path.clone()));
        Box::pin(
            async move {
                let _permit = if path.starts_with(NEVER_SHED_PREFIX) {
                    None
                } else {
                    match in_flight.try_acquire_owned() {
                        Ok(permit) => Some(permit),
                        Err(_) => {
                            metrics().shed_requests.inc();
                            tracing::warn!("overloaded: call refused with RESOURCE_EXHAUSTED");
                            return Ok(record.finish(ApiError::Overloaded.to_status().into_http()));
                        }
                    }
                };
                let call = inner.call(request);
                let response = match limit {
                    None => call.await?,
                    Some(limit) => match tokio::time::timeout(limit, call).await {
                        Ok(response) => response?,
                        Err(_) => {
                            tracing::warn!(
                                limit_seconds = limit.as_secs(),
                                "call stopped at the server's time limit"
                            );
                            ApiError::DeadlineExceeded(limit).to_status().into_http()
                        }
                    },
                };
                Ok(record.finish(explain_oversized(response, max_message_bytes)))
            }
            .instrument(span),
        )
    }
}

/// tonic refuses a request message over the size limit with a bare OUT_OF_RANGE (a trailers-only
/// response) while decoding it; callers get RESOURCE_EXHAUSTED (the code gRPC specifies for it)
/// with the reason `MESSAGE_TOO_LARGE` and the limit instead.
fn explain_oversized(
    response: http::Response<tonic::body::Body>,
    max_message_bytes: usize,
) -> http::Response<tonic::body::Body> {
    let headers = response.headers();
    let out_of_range = headers
        .get("grpc-status")
        .is_some_and(|status| status.as_bytes() == b"11");
    // grpc-message is percent-encoded on the wire.
    let decoding_limit = headers
        .get("grpc-message")
        .and_then(|message| message.to_str().ok())
        .is_some_and(|message| {
            message
                .replace("%20", " ")
                .starts_with("Error, decoded message length too large")
        });
    if out_of_range && decoding_limit {
        ApiError::MessageTooLarge(max_message_bytes)
            .to_status()
            .into_http()
    } else {
        response
    }
}

/// Records one call in the metrics when its response is ready, or as CANCELLED when the call is
/// dropped first (the client's deadline passed or it went away).
struct CallRecord {
    method: &'static str,
    request_id: RequestId,
    started: Instant,
    finished: bool,
}

impl CallRecord {
    fn new(path: &str, request_id: RequestId) -> CallRecord {
        CallRecord {
            method: method_table::metric_label(path),
            request_id,
            started: Instant::now(),
            finished: false,
        }
    }

    /// Returns the request id and records the call. A trailers-only response (every error here)
    /// carries `grpc-status` in its headers; a unary success carries it in the trailers, so a
    /// response without it in the headers is OK.
    fn finish<B>(&mut self, mut response: http::Response<B>) -> http::Response<B> {
        if let Ok(value) = HeaderValue::from_str(&self.request_id.0) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        let code = response
            .headers()
            .get("grpc-status")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<i32>().ok())
            .map(tonic::Code::from_i32)
            .unwrap_or(tonic::Code::Ok);
        metrics().record_rpc(self.method, code, self.started.elapsed());
        self.finished = true;
        response
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        if !self.finished {
            metrics().record_rpc(self.method, tonic::Code::Cancelled, self.started.elapsed());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(id: &str) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        headers.insert(REQUEST_ID_HEADER, HeaderValue::from_str(id).expect("header"));
        headers
    }

    #[test]
    fn a_sensible_client_id_is_kept_and_anything_else_replaced() {
        assert_eq!(RequestId::of(&headers("abc-123")).0, "abc-123");
        let long = "x".repeat(129);
        for bad in [long.as_str(), "has space"] {
            let id = RequestId::of(&headers(bad)).0;
            assert_eq!(id.len(), 32, "{bad:?} gave {id:?}");
            assert!(id.bytes().all(|byte| byte.is_ascii_hexdigit()));
        }
        let generated = RequestId::of(&http::HeaderMap::new()).0;
        assert_ne!(
            generated,
            RequestId::of(&http::HeaderMap::new()).0,
            "ids are random"
        );
    }
}
