//! The one place where osam's errors become gRPC statuses: a standard code, a message for humans
//! and a `google.rpc.ErrorInfo` whose reason is an UPPER_SNAKE constant clients can switch on.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every osam error.
pub const ERROR_DOMAIN: &str = "osam";

/// Every error a call can end with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("missing bearer token: send the header `authorization: Bearer <token>`")]
    MissingToken,
    #[error("the token has expired")]
    TokenExpired,
    #[error("the token is not valid: {0}")]
    InvalidToken(String),
    #[error("the token is signed with key id {0:?}, which the issuer does not publish")]
    UnknownSigningKey(String),
    #[error("the token issuer's signing keys are unavailable; try again later")]
    KeysUnavailable,
    #[error("{method} requires the scope {scope:?}, which the caller's roles do not grant")]
    MissingScope { method: String, scope: String },
    #[error("{0} is not in the method table and is denied")]
    MethodNotAllowed(String),
    #[error("checking another subject than the caller requires the scope \"catalog:check:any\"")]
    SubjectNotAllowed,
    #[error("impersonating a user requires the scope \"users:impersonate\"")]
    ImpersonationNotAllowed,
    #[error(
        "user {0:?} is not in the directory; users are added in the directory, and their object-storage \
         accounts are then created by osam.v1.AccountService/SyncAccounts"
    )]
    UserNotFound(String),
    #[error("user {0:?} is disabled or no longer in the directory")]
    UserDisabled(String),
    #[error("{field}: {message}")]
    InvalidArgument { field: String, message: String },
    #[error("the batch has {size} items; the maximum is {max}")]
    BatchTooLarge { size: usize, max: usize },
    #[error("the directory is unavailable: {0}")]
    DirectoryUnavailable(String),
    #[error("no valid bucket configuration is loaded from {0} yet")]
    BucketConfigNotLoaded(String),
    #[error("no bucket configuration is loaded from {0} yet")]
    NoBucketConfig(String),
    #[error(
        "user {0:?} has no object-storage account; accounts are created by a sync: call \
         osam.v1.AccountService/SyncAccounts (scope accounts:sync)"
    )]
    NoAccount(String),
    #[error("object-storage account {0:?} does not exist")]
    AccountNotFound(String),
    #[error("the account provider rejected the request: {0}")]
    ProviderRejected(String),
    #[error("the secret of account {0:?} is lost or unreadable; rotate its access key")]
    SecretLost(String),
    #[error("the account provider is unavailable: {0}")]
    ProviderUnavailable(String),
    #[error("the server is at its limit of concurrent calls; retry with backoff")]
    Overloaded,
    #[error("the call took longer than the server's limit of {0:?} (server.request_timeout_seconds)")]
    DeadlineExceeded(std::time::Duration),
    #[error("the request message is larger than the server's limit of {0} bytes (server.max_message_bytes)")]
    MessageTooLarge(usize),
    #[error(
        "this replica does not hold the sync lease, so it cannot run or wait for a sync; call again \
         (a new connection may reach the leader) or read the leader from the Lease"
    )]
    NotSyncLeader,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid_argument(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            ApiError::MissingToken
            | ApiError::TokenExpired
            | ApiError::InvalidToken(_)
            | ApiError::UnknownSigningKey(_)
            | ApiError::UserDisabled(_) => Code::Unauthenticated,
            ApiError::MissingScope { .. }
            | ApiError::MethodNotAllowed(_)
            | ApiError::SubjectNotAllowed
            | ApiError::ImpersonationNotAllowed => Code::PermissionDenied,
            ApiError::UserNotFound(_)
            | ApiError::NoBucketConfig(_)
            | ApiError::NoAccount(_)
            | ApiError::AccountNotFound(_) => Code::NotFound,
            ApiError::BucketConfigNotLoaded(_) | ApiError::ProviderRejected(_) | ApiError::SecretLost(_) => {
                Code::FailedPrecondition
            }
            ApiError::ProviderUnavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
            ApiError::Overloaded => Code::ResourceExhausted,
            ApiError::DeadlineExceeded(_) => Code::DeadlineExceeded,
            ApiError::MessageTooLarge(_) => Code::ResourceExhausted,
            ApiError::NotSyncLeader => Code::Unavailable,
            ApiError::InvalidArgument { .. } | ApiError::BatchTooLarge { .. } => Code::InvalidArgument,
            ApiError::KeysUnavailable | ApiError::DirectoryUnavailable(_) => Code::Unavailable,
        }
    }

    /// The `ErrorInfo.reason` of this error.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::MissingToken => "MISSING_TOKEN",
            ApiError::TokenExpired => "TOKEN_EXPIRED",
            ApiError::InvalidToken(_) => "INVALID_TOKEN",
            ApiError::UnknownSigningKey(_) => "UNKNOWN_SIGNING_KEY",
            ApiError::KeysUnavailable => "SIGNING_KEYS_UNAVAILABLE",
            ApiError::MissingScope { .. } => "MISSING_SCOPE",
            ApiError::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
            ApiError::SubjectNotAllowed => "SUBJECT_NOT_ALLOWED",
            ApiError::ImpersonationNotAllowed => "IMPERSONATION_NOT_ALLOWED",
            ApiError::UserNotFound(_) => "USER_NOT_FOUND",
            ApiError::UserDisabled(_) => "USER_DISABLED",
            ApiError::InvalidArgument { .. } => "INVALID_ARGUMENT",
            ApiError::BatchTooLarge { .. } => "BATCH_TOO_LARGE",
            ApiError::DirectoryUnavailable(_) => "DIRECTORY_UNAVAILABLE",
            ApiError::BucketConfigNotLoaded(_) => "BUCKET_CONFIG_NOT_LOADED",
            ApiError::NoBucketConfig(_) => "NO_BUCKET_CONFIG",
            ApiError::NoAccount(_) => "NO_ACCOUNT",
            ApiError::AccountNotFound(_) => "ACCOUNT_NOT_FOUND",
            ApiError::ProviderRejected(_) => "PROVIDER_REJECTED",
            ApiError::SecretLost(_) => "SECRET_LOST",
            ApiError::ProviderUnavailable(_) => "PROVIDER_UNAVAILABLE",
            ApiError::Internal(_) => "INTERNAL",
            ApiError::Overloaded => "OVERLOADED",
            ApiError::DeadlineExceeded(_) => "DEADLINE_EXCEEDED",
            ApiError::MessageTooLarge(_) => "MESSAGE_TOO_LARGE",
            ApiError::NotSyncLeader => "NOT_SYNC_LEADER",
        }
    }

    /// Extra `ErrorInfo.metadata`, naming what the error is about.
    fn metadata(&self) -> Vec<(String, String)> {
        match self {
            ApiError::MissingScope { method, scope } => {
                vec![("method".into(), method.clone()), ("scope".into(), scope.clone())]
            }
            ApiError::MethodNotAllowed(method) => vec![("method".into(), method.clone())],
            ApiError::UserNotFound(username) | ApiError::NoAccount(username) => {
                vec![("username".into(), username.clone())]
            }
            ApiError::ProviderRejected(reason) => vec![("provider_reason".into(), reason.clone())],
            ApiError::InvalidArgument { field, .. } => vec![("field".into(), field.clone())],
            ApiError::UnknownSigningKey(kid) => vec![("kid".into(), kid.clone())],
            _ => Vec::new(),
        }
    }

    /// The status sent on the wire.
    pub fn to_status(&self) -> Status {
        let metadata: std::collections::HashMap<String, String> = self.metadata().into_iter().collect();
        let details = ErrorDetails::with_error_info(self.reason(), ERROR_DOMAIN, metadata);
        Status::with_error_details(self.code(), self.to_string(), details)
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        error.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_carry_an_error_info_reason() {
        let status = ApiError::MissingScope {
            method: "/osam.v1.X/Y".into(),
            scope: "a:b".into(),
        }
        .to_status();
        assert_eq!(status.code(), Code::PermissionDenied);
        let info = status.get_details_error_info().expect("error info");
        assert_eq!(info.reason, "MISSING_SCOPE");
        assert_eq!(info.domain, ERROR_DOMAIN);
        assert_eq!(info.metadata.get("scope").map(String::as_str), Some("a:b"));
    }
}
