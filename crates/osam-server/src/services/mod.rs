//! The gRPC services. Each reads the [`Caller`](crate::auth::Caller) the auth layer attached and
//! turns domain results into messages; errors go through [`ApiError`](crate::error::ApiError).

pub mod accounts;
pub mod catalog;
pub mod rights;

use tonic::Request;

use crate::auth::Caller;
use crate::error::ApiError;

/// The caller of an authenticated method. The auth layer guarantees it is present; its absence
/// means a routing mistake, answered as unauthenticated rather than a panic.
pub(crate) fn caller_of<T>(request: &Request<T>) -> Result<Caller, ApiError> {
    request
        .extensions()
        .get::<Caller>()
        .cloned()
        .ok_or(ApiError::MissingToken)
}
