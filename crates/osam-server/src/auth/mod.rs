//! The auth layer: one HTTP-level tower layer in front of every service. It reads the method from
//! the URI path, looks up its requirement in the method table, authenticates the bearer token,
//! resolves impersonation, checks the scope, and hands the services a [`Caller`].

pub mod dev_key;
pub mod keys;
pub mod live_roles;
pub mod method_table;
pub mod token;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::HeaderMap;
use osam_policy::Principal;

use crate::error::ApiError;
use crate::identity::Identity;
use live_roles::LiveRoles;
use method_table::Requirement;
use token::TokenVerifier;

/// The metadata key an app sends to act for a user.
pub const IMPERSONATE_HEADER: &str = "impersonate-user";
/// The scope that allows impersonation.
pub const IMPERSONATE_SCOPE: &str = "users:impersonate";

/// The authenticated caller of a request, as the services see it. When an app impersonates a
/// user, `principal` is that user (with the app as its actor).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Arc<Principal>,
    pub name: Option<String>,
    pub email: Option<String>,
}

/// Authenticates requests; shared by every connection.
pub struct Authenticator {
    verifier: TokenVerifier,
    identity: Arc<Identity>,
    live_roles: Option<LiveRoles>,
}

impl Authenticator {
    /// With `live_roles`, callers are checked against the directory (and take its roles when
    /// roles are live); without, the token alone decides.
    pub fn new(
        verifier: TokenVerifier,
        identity: Arc<Identity>,
        live_roles: Option<LiveRoles>,
    ) -> Authenticator {
        Authenticator {
            verifier,
            identity,
            live_roles,
        }
    }

    /// `Ok(None)` for public methods, the caller otherwise.
    pub async fn authenticate(&self, method: &str, headers: &HeaderMap) -> Result<Option<Caller>, ApiError> {
        let requirement =
            method_table::requirement(method).ok_or_else(|| ApiError::MethodNotAllowed(method.to_owned()))?;
        if requirement == Requirement::Public {
            return Ok(None);
        }
        let token = bearer_token(headers)?;
        let scope_table = self.identity.scope_table();
        let identity = self.verifier.verify(token, &scope_table).await?;
        let from_token = Caller {
            principal: identity.principal,
            name: identity.name,
            email: identity.email,
        };
        let mut caller = match &self.live_roles {
            Some(live_roles) => live_roles.resolve(from_token, &self.identity).await?,
            None => from_token,
        };

        if let Some(target) = headers.get(IMPERSONATE_HEADER) {
            let target = target.to_str().map_err(|_| {
                ApiError::invalid_argument(IMPERSONATE_HEADER, "must be a visible ASCII username")
            })?;
            caller = self.impersonate(caller, target, method).await?;
        }

        if let Requirement::AnyScope(scopes) = requirement
            && !scopes.iter().any(|scope| caller.principal.has_scope(scope))
        {
            let scope = scopes.first().copied().unwrap_or_default();
            return Err(ApiError::MissingScope {
                method: method.to_owned(),
                scope: scope.to_owned(),
            });
        }
        Ok(Some(caller))
    }

    /// The target user's own roles and scopes decide from here on, never the app's (an app with
    /// wide rights acting for a user with narrow rights gets the narrow ones); the app is kept as
    /// the actor. Holding `users:impersonate` is therefore a strong trust: grant it to apps only.
    async fn impersonate(&self, app: Caller, target: &str, method: &str) -> Result<Caller, ApiError> {
        if !app.principal.has_scope(IMPERSONATE_SCOPE) {
            tracing::warn!(
                actor = app.principal.username(),
                user = target,
                method,
                "impersonation denied"
            );
            return Err(ApiError::ImpersonationNotAllowed);
        }
        let user = self.identity.find_user(target).await?;
        let principal =
            Principal::clone(&self.identity.principal_of(&user)).acted_for_by(app.principal.username());
        tracing::info!(
            actor = app.principal.username(),
            user = target,
            method,
            "impersonated call"
        );
        Ok(Caller {
            principal: Arc::new(principal),
            name: user.name,
            email: user.email,
        })
    }
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(ApiError::MissingToken)?;
    let value = value
        .to_str()
        .map_err(|_| ApiError::InvalidToken("the authorization header is not ASCII".into()))?;
    let (scheme, token) = value.split_once(' ').ok_or(ApiError::MissingToken)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(ApiError::MissingToken);
    }
    Ok(token.trim())
}

/// Puts the [`Authenticator`] in front of every service of the server, so that no service can be
/// added without authentication.
#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
}

impl AuthLayer {
    pub fn new(authenticator: Arc<Authenticator>) -> AuthLayer {
        AuthLayer { authenticator }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            authenticator: self.authenticator.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
}

type ResponseFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, RequestBody> tower::Service<http::Request<RequestBody>> for AuthService<S>
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
        // The ready service answers this call; a fresh clone waits for the next poll_ready.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let authenticator = self.authenticator.clone();
        Box::pin(async move {
            let method = request.uri().path().to_owned();
            match authenticator.authenticate(&method, request.headers()).await {
                Ok(caller) => {
                    if let Some(caller) = caller {
                        request.extensions_mut().insert(caller);
                    }
                    inner.call(request).await
                }
                Err(error) => {
                    tracing::debug!(%method, reason = error.reason(), "call refused");
                    Ok(error.to_status().into_http())
                }
            }
        })
    }
}
