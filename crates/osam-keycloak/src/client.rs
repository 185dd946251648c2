//! The HTTP side of the admin client: the service account's token (cached, refreshed before it
//! expires and once when Keycloak rejects it), a timeout on every attempt, and retries of
//! transient failures. The Keycloak endpoints themselves are in `admin_api`.

use std::collections::HashMap;
use std::error::Error as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Url};
use serde::de::DeserializeOwned;

use crate::error::{KeycloakError, body_snippet};
use crate::retry::{is_transient_status, parse_retry_after, retry_delay};
use crate::settings::KeycloakSettings;
use crate::token::{AdminToken, CachedToken, TokenErrorResponse, TokenResponse};

/// The token, and the failure of the latest request for one.
#[derive(Default)]
struct TokenState {
    cached: Option<CachedToken>,
    last_failure: Option<(Instant, KeycloakError)>,
}

impl std::fmt::Debug for TokenState {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("TokenState")
            .field("cached", &self.cached.is_some())
            .field("last_failure", &self.last_failure)
            .finish()
    }
}

/// A client of one realm's admin REST API. Cheap to clone: clones share the connection pool, the
/// token and the cache of client ids.
#[derive(Clone)]
pub struct AdminClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: KeycloakSettings,
    http: reqwest::Client,
    base_url: Url,
    token_url: Url,
    /// One lock for reading and replacing the token: callers that find it stale wait for the one
    /// refresh in progress instead of each requesting their own, and share its failure too.
    token: tokio::sync::Mutex<TokenState>,
    /// Client UUIDs by client id; held across the lookup so one client is looked up once.
    client_uuids: tokio::sync::Mutex<HashMap<String, String>>,
}

/// An HTTP answer with its body read.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    retry_after: Option<Duration>,
}

impl Answer {
    fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// How a call is named in errors and logs: the method and the path, never the query or a body.
#[derive(Debug, Clone)]
pub(crate) struct CallName(String);

impl CallName {
    fn new(method: &Method, url: &Url) -> CallName {
        CallName(format!("{method} {}", url.path()))
    }

    fn text(&self) -> String {
        self.0.clone()
    }
}

impl AdminClient {
    /// A client for `settings`. Nothing is sent yet; the first call requests the token.
    pub fn new(settings: KeycloakSettings) -> Result<AdminClient, KeycloakError> {
        let invalid = |message: String| KeycloakError::InvalidSettings(message);
        let base_url = Url::parse(settings.base_url.trim_end_matches('/'))
            .map_err(|error| invalid(format!("base_url {:?}: {error}", settings.base_url)))?;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(invalid(format!(
                "base_url {:?} is not an http(s) URL",
                settings.base_url
            )));
        }
        if base_url.query().is_some() || base_url.fragment().is_some() {
            return Err(invalid(format!(
                "base_url {:?} must not have a query or fragment",
                settings.base_url
            )));
        }
        if settings.realm.is_empty() || settings.client_id.is_empty() {
            return Err(invalid("realm and client_id are required".to_owned()));
        }
        if settings.max_attempts == 0 || settings.page_size == 0 || settings.concurrency == 0 {
            return Err(invalid(
                "max_attempts, page_size and concurrency must be at least 1".to_owned(),
            ));
        }
        let token_url = path_url(
            &base_url,
            &["realms", &settings.realm, "protocol", "openid-connect", "token"],
        );
        let http = reqwest::Client::builder()
            // A redirect would re-send the token request's body, client secret included, to
            // wherever it points (another host, plain http): never follow one.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(settings.request_timeout)
            .timeout(settings.request_timeout)
            .build()
            .map_err(|error| invalid(format!("building the HTTP client: {}", error_chain(&error))))?;
        Ok(AdminClient {
            inner: Arc::new(Inner {
                settings,
                http,
                base_url,
                token_url,
                token: tokio::sync::Mutex::new(TokenState::default()),
                client_uuids: tokio::sync::Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn settings(&self) -> &KeycloakSettings {
        &self.inner.settings
    }

    /// Requests a fresh admin token, proving that Keycloak is reachable and accepts the client
    /// credentials (`osam check-config --probe`). The token is kept for later calls.
    pub async fn probe(&self) -> Result<(), KeycloakError> {
        let mut state = self.inner.token.lock().await;
        let fresh = self.request_token().await?;
        state.cached = Some(fresh);
        Ok(())
    }

    pub(crate) fn client_uuids(&self) -> &tokio::sync::Mutex<HashMap<String, String>> {
        &self.inner.client_uuids
    }

    /// `{base}/admin/realms/{realm}/{segments...}`, each segment percent-encoded.
    pub(crate) fn admin_url(&self, segments: &[&str]) -> Url {
        let mut url = path_url(
            &self.inner.base_url,
            &["admin", "realms", &self.inner.settings.realm],
        );
        if let Ok(mut path) = url.path_segments_mut() {
            path.extend(segments);
        }
        url
    }

    /// GETs `url` with `query` and decodes the JSON answer.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        url: Url,
        query: &[(&str, String)],
    ) -> Result<T, KeycloakError> {
        let call = CallName::new(&Method::GET, &url);
        let answer = self.admin_call(&call, Method::GET, &url, query, None).await?;
        serde_json::from_slice(&answer.body).map_err(|error| KeycloakError::InvalidResponse {
            call: call.text(),
            message: error.to_string(),
        })
    }

    /// PUTs `body` as JSON to `url`.
    pub(crate) async fn put_json(&self, url: Url, body: &serde_json::Value) -> Result<(), KeycloakError> {
        let call = CallName::new(&Method::PUT, &url);
        self.admin_call(&call, Method::PUT, &url, &[], Some(body)).await?;
        Ok(())
    }

    /// An admin call with the service account's token: retried while it fails transiently, and
    /// sent once more with a new token when Keycloak answers 401 (a token revoked or expired
    /// early). Any other status outside 2xx is an error.
    async fn admin_call(
        &self,
        call: &CallName,
        method: Method,
        url: &Url,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, KeycloakError> {
        let mut token = self.current_token().await?;
        let mut token_replaced = false;
        loop {
            let build = || {
                let request = self
                    .inner
                    .http
                    .request(method.clone(), url.clone())
                    .query(query)
                    .bearer_auth(token.expose());
                match body {
                    Some(body) => request.json(body),
                    None => request,
                }
            };
            let answer = self.send_with_retries(call, &build).await?;
            if answer.status == 401 && !token_replaced {
                tracing::debug!(call = %call.0, "admin token rejected; requesting a new one");
                token = self.replace_rejected_token(&token).await?;
                token_replaced = true;
                continue;
            }
            if answer.is_success() {
                return Ok(answer);
            }
            return Err(KeycloakError::Status {
                call: call.text(),
                status: answer.status,
                detail: body_snippet(&answer.body),
            });
        }
    }

    /// The cached token, or a new one when it is missing or inside its refresh margin.
    async fn current_token(&self) -> Result<AdminToken, KeycloakError> {
        self.token_other_than(None).await
    }

    /// A token other than `rejected`: the one another caller already obtained meanwhile, or a new one.
    async fn replace_rejected_token(&self, rejected: &AdminToken) -> Result<AdminToken, KeycloakError> {
        self.token_other_than(Some(rejected)).await
    }

    /// A fresh token (not `rejected`), requested at most once for all the callers waiting: a
    /// caller that waited while another's request failed gets that failure instead of running a
    /// whole retry cycle of its own against a Keycloak that is down.
    async fn token_other_than(&self, rejected: Option<&AdminToken>) -> Result<AdminToken, KeycloakError> {
        let arrived = Instant::now();
        let mut state = self.inner.token.lock().await;
        if let Some(cached) = state.cached.as_ref()
            && rejected.is_none_or(|rejected| cached.token != *rejected)
            && cached.is_fresh(Instant::now())
        {
            return Ok(cached.token.clone());
        }
        if let Some((failed_at, error)) = &state.last_failure
            && *failed_at >= arrived
        {
            return Err(error.clone());
        }
        match self.request_token().await {
            Ok(fresh) => {
                let token = fresh.token.clone();
                state.cached = Some(fresh);
                state.last_failure = None;
                Ok(token)
            }
            Err(error) => {
                state.last_failure = Some((Instant::now(), error.clone()));
                Err(error)
            }
        }
    }

    /// The client-credentials grant.
    async fn request_token(&self) -> Result<CachedToken, KeycloakError> {
        let settings = &self.inner.settings;
        let url = &self.inner.token_url;
        let call = CallName::new(&Method::POST, url);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", settings.client_id.as_str()),
            ("client_secret", settings.client_secret.expose()),
        ];
        let requested_at = Instant::now();
        let build = || self.inner.http.post(url.clone()).form(&form);
        let answer = self.send_with_retries(&call, &build).await?;
        if answer.is_success() {
            let granted: TokenResponse =
                serde_json::from_slice(&answer.body).map_err(|error| KeycloakError::InvalidResponse {
                    call: call.text(),
                    message: error.to_string(),
                })?;
            // Capped: an absurd expires_in must not overflow the clock arithmetic.
            let lifetime = Duration::from_secs(granted.expires_in.min(86_400));
            tracing::debug!(lifetime_seconds = granted.expires_in, "admin token obtained");
            return Ok(CachedToken::new(granted.access_token, requested_at, lifetime));
        }
        if matches!(answer.status, 400 | 401 | 403) {
            let refusal: TokenErrorResponse = serde_json::from_slice(&answer.body).unwrap_or_default();
            return Err(KeycloakError::TokenRefused {
                client_id: settings.client_id.clone(),
                status: answer.status,
                error: if refusal.error.is_empty() {
                    body_snippet(&answer.body)
                } else {
                    refusal.error
                },
                description: refusal.error_description,
            });
        }
        Err(KeycloakError::Status {
            call: call.text(),
            status: answer.status,
            detail: body_snippet(&answer.body),
        })
    }

    /// Sends the request `build` makes, again while it fails transiently (no answer, 429, 5xx)
    /// and attempts are left; waits between attempts as `retry` says. Returns the last answer,
    /// whatever its status.
    async fn send_with_retries(
        &self,
        call: &CallName,
        build: &(dyn Fn() -> RequestBuilder + Sync),
    ) -> Result<Answer, KeycloakError> {
        let settings = &self.inner.settings;
        let mut attempt = 1;
        loop {
            let started = Instant::now();
            let outcome = send_once(build()).await;
            let elapsed_ms = started.elapsed().as_millis() as u64;
            let attempts_left = attempt < settings.max_attempts;
            match outcome {
                Ok(answer) => {
                    tracing::debug!(call = %call.0, status = answer.status, elapsed_ms, attempt, "keycloak call");
                    if !(is_transient_status(answer.status) && attempts_left) {
                        return Ok(answer);
                    }
                    let delay = retry_delay(settings.retry_base_delay, attempt, answer.retry_after);
                    tracing::debug!(call = %call.0, status = answer.status, delay_ms = delay.as_millis() as u64, "retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(error) => {
                    let message = error_chain(&error);
                    tracing::debug!(call = %call.0, error = %message, elapsed_ms, attempt, "keycloak call failed");
                    if !(is_transient_error(&error) && attempts_left) {
                        return Err(KeycloakError::Unreachable {
                            call: call.text(),
                            message,
                        });
                    }
                    let delay = retry_delay(settings.retry_base_delay, attempt, None);
                    tokio::time::sleep(delay).await;
                }
            }
            attempt += 1;
        }
    }
}

/// One attempt, the body included: a connection dropped mid-body is a failed attempt too.
async fn send_once(request: RequestBuilder) -> Result<Answer, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_retry_after);
    let body = response.bytes().await?.to_vec();
    Ok(Answer {
        status,
        body,
        retry_after,
    })
}

/// Everything but a request osam built wrongly may succeed when sent again: connect errors,
/// timeouts, connections dropped before or during the answer.
fn is_transient_error(error: &reqwest::Error) -> bool {
    !(error.is_builder() || error.is_redirect())
}

/// The error and its causes on one line, without the URL (which the call name already gives).
fn error_chain(error: &reqwest::Error) -> String {
    let mut message = if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// `base` with `segments` appended, each percent-encoded.
fn path_url(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    // `AdminClient::new` accepts only http(s) base URLs, which always have path segments.
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ClientSecret;

    fn client(base_url: &str) -> Result<AdminClient, KeycloakError> {
        AdminClient::new(KeycloakSettings::new(
            base_url.to_owned(),
            "my realm".to_owned(),
            "osam".to_owned(),
            ClientSecret::new("secret".to_owned()),
        ))
    }

    #[test]
    fn admin_urls_percent_encode_their_segments_and_keep_a_base_path() {
        let client = client("https://sso.example.org/auth/").expect("valid");
        assert_eq!(
            client.admin_url(&["users", "a/b c"]).as_str(),
            "https://sso.example.org/auth/admin/realms/my%20realm/users/a%2Fb%20c"
        );
        assert_eq!(
            client.inner.token_url.as_str(),
            "https://sso.example.org/auth/realms/my%20realm/protocol/openid-connect/token"
        );
    }

    #[test]
    fn unusable_base_urls_are_refused() {
        for base_url in [
            "",
            "sso.example.org",
            "mailto:a@b",
            "ftp://sso.example.org",
            "https://h/?x=1",
        ] {
            assert!(
                matches!(client(base_url), Err(KeycloakError::InvalidSettings(_))),
                "{base_url:?}"
            );
        }
    }
}
