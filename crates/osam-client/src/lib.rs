//! A typed async client for osam's three services.
//!
//! ```no_run
//! # async fn example() -> Result<(), osam_client::Error> {
//! use osam_client::{OsamClient, credentials::RunningUser, pb};
//! let client = OsamClient::builder("http://127.0.0.1:50051")
//!     .credentials(RunningUser::new("<the user's access token>")?)
//!     .build()?;
//! let me = client.who_am_i().await?;
//! println!("{}", me.user.map(|user| user.displayed_name).unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! Credentials are chosen explicitly (see [`credentials`]); an app holding `users:impersonate`
//! acts for a user with [`OsamClientBuilder::act_for`] or [`OsamClient::acting_for`]. Calls
//! that only read are retried on UNAVAILABLE with backoff; calls that change state are not.

#![forbid(unsafe_code)]

pub mod credentials;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Status};
use tonic_types::StatusExt;

pub use osam_proto::v1 as pb;

use credentials::{CredentialError, TokenSource};

/// The metadata key that asks the server to act for another user.
pub const IMPERSONATE_HEADER: &str = "impersonate-user";

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server (or the transport) answered with an error status. `reason` is the
    /// `google.rpc.ErrorInfo` reason (such as `MISSING_SCOPE`), when the server sent one.
    #[error("{code:?}: {message}")]
    Status {
        code: Code,
        message: String,
        reason: Option<String>,
        metadata: HashMap<String, String>,
    },
    #[error("credentials: {0}")]
    Credentials(#[from] CredentialError),
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    #[error("no credentials: choose a source with OsamClientBuilder::credentials")]
    NoCredentials,
    #[error("{0:?} cannot be sent as gRPC metadata")]
    InvalidMetadata(String),
}

impl Error {
    fn from_status(status: Status) -> Error {
        let info = status.get_details_error_info();
        Error::Status {
            code: status.code(),
            message: status.message().to_owned(),
            reason: info.as_ref().map(|info| info.reason.clone()),
            metadata: info.map(|info| info.metadata).unwrap_or_default(),
        }
    }

    /// The gRPC code, for status errors.
    pub fn code(&self) -> Option<Code> {
        match self {
            Error::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The server's `ErrorInfo` reason, for status errors that carry one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Error::Status { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }
}

/// How calls that only read are retried when the server is unavailable.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 disables retries.
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// Builds an [`OsamClient`].
#[derive(Debug)]
pub struct OsamClientBuilder {
    endpoint: String,
    tls: Option<ClientTlsConfig>,
    connect_timeout: Duration,
    request_timeout: Duration,
    retry: RetryPolicy,
    credentials: Option<Arc<dyn TokenSource>>,
    act_for: Option<String>,
}

impl OsamClientBuilder {
    /// TLS for `https://` endpoints (system roots by default; give a CA or a client identity
    /// for private PKI and mutual TLS).
    pub fn tls(mut self, tls: ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The deadline of each call, sent to the server as `grpc-timeout`.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The token source; required, and never replaced by another behind the caller's back.
    pub fn credentials(mut self, source: impl TokenSource + 'static) -> Self {
        self.credentials = Some(Arc::new(source));
        self
    }

    /// Act for `username` (needs the scope `users:impersonate`).
    pub fn act_for(mut self, username: impl Into<String>) -> Self {
        self.act_for = Some(username.into());
        self
    }

    /// The client; the connection is made at the first call, so a server that starts later is fine.
    pub fn build(self) -> Result<OsamClient, Error> {
        let invalid = |reason: String| Error::InvalidEndpoint {
            endpoint: self.endpoint.clone(),
            reason,
        };
        // The deadline is sent to the server (grpc-timeout) and enforced here too, so a server
        // that ignores it cannot hold a call longer.
        let mut endpoint = Endpoint::from_shared(self.endpoint.clone())
            .map_err(|error| invalid(error.to_string()))?
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout);
        if let Some(tls) = self.tls.clone() {
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|error| invalid(error.to_string()))?;
        }
        let credentials = self.credentials.clone().ok_or(Error::NoCredentials)?;
        let act_for = self.act_for.as_deref().map(metadata_value).transpose()?;
        Ok(OsamClient {
            channel: endpoint.connect_lazy(),
            credentials,
            act_for,
            request_timeout: self.request_timeout,
            retry: self.retry,
        })
    }
}

fn metadata_value(text: &str) -> Result<MetadataValue<Ascii>, Error> {
    text.parse().map_err(|_| Error::InvalidMetadata(text.to_owned()))
}

/// A client of osam. Cheap to clone: clones share one connection.
#[derive(Clone, Debug)]
pub struct OsamClient {
    channel: Channel,
    credentials: Arc<dyn TokenSource>,
    act_for: Option<MetadataValue<Ascii>>,
    request_timeout: Duration,
    retry: RetryPolicy,
}

/// Whether a call may be sent again after a failure.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Idempotency {
    ReadOnly,
    ChangesState,
}

impl OsamClient {
    pub fn builder(endpoint: impl Into<String>) -> OsamClientBuilder {
        OsamClientBuilder {
            endpoint: endpoint.into(),
            tls: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            credentials: None,
            act_for: None,
        }
    }

    /// The same client with other credentials (a service calling for each of its users in turn).
    pub fn with_credentials(&self, source: impl TokenSource + 'static) -> OsamClient {
        OsamClient {
            credentials: Arc::new(source),
            ..self.clone()
        }
    }

    /// The same client acting for `username` (needs the scope `users:impersonate`).
    pub fn acting_for(&self, username: &str) -> Result<OsamClient, Error> {
        Ok(OsamClient {
            act_for: Some(metadata_value(username)?),
            ..self.clone()
        })
    }

    async fn call<Request, Response, Send, Answer>(
        &self,
        request: Request,
        idempotency: Idempotency,
        send: Send,
    ) -> Result<Response, Error>
    where
        Request: Clone,
        Send: Fn(Channel, tonic::Request<Request>) -> Answer,
        Answer: Future<Output = Result<tonic::Response<Response>, Status>>,
    {
        let attempts = match idempotency {
            Idempotency::ReadOnly => self.retry.attempts.max(1),
            Idempotency::ChangesState => 1,
        };
        let mut delay = self.retry.first_delay;
        for attempt in 1..=attempts {
            let token = self.credentials.token().await?;
            let mut outgoing = tonic::Request::new(request.clone());
            outgoing.set_timeout(self.request_timeout);
            let authorization = metadata_value(&format!("Bearer {}", token.expose()))
                .map_err(|_| Error::InvalidMetadata("<the token>".to_owned()))?;
            outgoing.metadata_mut().insert("authorization", authorization);
            if let Some(user) = &self.act_for {
                outgoing.metadata_mut().insert(IMPERSONATE_HEADER, user.clone());
            }
            match send(self.channel.clone(), outgoing).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) if status.code() == Code::Unavailable && attempt < attempts => {
                    tracing::debug!(attempt, message = status.message(), "osam unavailable; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.retry.max_delay);
                }
                Err(status) => return Err(Error::from_status(status)),
            }
        }
        unreachable!("the last attempt returns")
    }
}

/// One typed method per RPC: `$name(request) -> response`, with its service client and whether
/// it only reads. A macro because the eleven methods differ only in these four names; written out
/// they would be eleven copies of the same five lines.
macro_rules! rpc {
    ($(#[$doc:meta])* $name:ident, $client:ident, $request:ty, $response:ty, $idempotency:expr) => {
        $(#[$doc])*
        pub async fn $name(&self, request: $request) -> Result<$response, Error> {
            self.call(request, $idempotency, |channel, request| async move {
                $client::new(channel).$name(request).await
            })
            .await
        }
    };
}

use pb::account_service_client::AccountServiceClient;
use pb::catalog_authz_client::CatalogAuthzClient;
use pb::rights_service_client::RightsServiceClient;

impl OsamClient {
    rpc!(
        /// CatalogAuthz.Check: one authorization question.
        check, CatalogAuthzClient, pb::CheckRequest, pb::CheckResponse, Idempotency::ReadOnly
    );
    rpc!(
        /// CatalogAuthz.BatchCheck: many questions, answered in order.
        batch_check, CatalogAuthzClient, pb::BatchCheckRequest, pb::BatchCheckResponse, Idempotency::ReadOnly
    );
    rpc!(
        /// CatalogAuthz.ListGrants: one page of a subject's grants.
        list_grants, CatalogAuthzClient, pb::ListGrantsRequest, pb::ListGrantsResponse, Idempotency::ReadOnly
    );
    rpc!(
        /// RightsService.GetUserRights: a user's S3 rights and policy, not applied.
        get_user_rights, RightsServiceClient, pb::GetUserRightsRequest, pb::GetUserRightsResponse, Idempotency::ReadOnly
    );
    rpc!(
        /// RightsService.ApplyUserRights: applies a user's policy (not retried).
        apply_user_rights, RightsServiceClient, pb::ApplyUserRightsRequest, pb::ApplyUserRightsResponse, Idempotency::ChangesState
    );
    rpc!(
        /// RightsService.GetUserInfo: a user's roles, scopes and displayed name.
        get_user_info, RightsServiceClient, pb::GetUserInfoRequest, pb::GetUserInfoResponse, Idempotency::ReadOnly
    );
    rpc!(
        /// AccountService.SyncAccounts: triggers an account sync (not retried).
        sync_accounts, AccountServiceClient, pb::SyncAccountsRequest, pb::SyncAccountsResponse, Idempotency::ChangesState
    );
    rpc!(
        /// AccountService.GetSyncStatus: the current and last sync run.
        get_sync_status, AccountServiceClient, pb::GetSyncStatusRequest, pb::GetSyncStatusResponse, Idempotency::ReadOnly
    );
    rpc!(
        /// AccountService.ListAccounts: one page of users and their accounts.
        list_accounts, AccountServiceClient, pb::ListAccountsRequest, pb::ListAccountsResponse, Idempotency::ReadOnly
    );
    rpc!(
        /// AccountService.GetMyCredentials: the caller's own S3 credentials.
        get_my_credentials, AccountServiceClient, pb::GetMyCredentialsRequest, pb::GetMyCredentialsResponse, Idempotency::ReadOnly
    );
    rpc!(
        /// AccountService.GetStorageConfiguration: the bucket configuration rows.
        get_storage_configuration, AccountServiceClient, pb::GetStorageConfigurationRequest, pb::GetStorageConfigurationResponse, Idempotency::ReadOnly
    );

    /// RightsService.WhoAmI: the caller, and the acting app when impersonating.
    pub async fn who_am_i(&self) -> Result<pb::WhoAmIResponse, Error> {
        self.call(
            pb::WhoAmIRequest {},
            Idempotency::ReadOnly,
            |channel, request| async move { RightsServiceClient::new(channel).who_am_i(request).await },
        )
        .await
    }
}
