//! Where verification keys come from: the development key, a PEM public key file, or a JWKS URL
//! (cached by `kid`, refreshed on an unknown `kid` at most once per interval so that a flood of
//! forged key ids cannot hammer the issuer), plus an optional HMAC shared secret.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::error::ApiError;
use crate::metrics::{Metrics, metrics};

/// Whether `algorithm` is an HMAC (shared secret) algorithm.
pub fn is_hmac(algorithm: Algorithm) -> bool {
    matches!(algorithm, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// A verification key and the algorithm its publisher bound it to, if any.
#[derive(Clone)]
struct PublishedKey {
    key: Arc<DecodingKey>,
    algorithm: Option<Algorithm>,
}

/// Where the JWKS document is: a configured URL, or the `jwks_uri` of the issuer's discovery
/// document (read once, on the first fetch that needs it).
enum JwksLocation {
    Url(String),
    Discovery {
        issuer: String,
        jwks_uri: tokio::sync::OnceCell<String>,
    },
}

/// The JWKS document of an issuer, cached.
pub struct JwksKeys {
    location: JwksLocation,
    client: reqwest::Client,
    min_refresh_interval: Duration,
    keys: RwLock<HashMap<String, PublishedKey>>,
    /// When the last fetch started, and its error if it failed.
    last_fetch: tokio::sync::Mutex<Option<(Instant, Option<String>)>>,
}

impl JwksKeys {
    pub fn new(url: String, timeout: Duration, min_refresh_interval: Duration) -> Result<JwksKeys, String> {
        JwksKeys::at(JwksLocation::Url(url), timeout, min_refresh_interval)
    }

    /// Keys found through `{issuer}/.well-known/openid-configuration`.
    pub fn discover(
        issuer: String,
        timeout: Duration,
        min_refresh_interval: Duration,
    ) -> Result<JwksKeys, String> {
        let location = JwksLocation::Discovery {
            issuer,
            jwks_uri: tokio::sync::OnceCell::new(),
        };
        JwksKeys::at(location, timeout, min_refresh_interval)
    }

    fn at(
        location: JwksLocation,
        timeout: Duration,
        min_refresh_interval: Duration,
    ) -> Result<JwksKeys, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|error| error.to_string())?;
        Ok(JwksKeys {
            location,
            client,
            min_refresh_interval,
            keys: RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(None),
        })
    }

    fn cached(&self, kid: Option<&str>) -> Option<PublishedKey> {
        let keys = self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        match kid {
            Some(kid) => keys.get(kid).cloned(),
            // Without a kid, only an issuer publishing a single key is unambiguous.
            None if keys.len() == 1 => keys.values().next().cloned(),
            None => None,
        }
    }

    async fn key(&self, kid: Option<&str>) -> Result<PublishedKey, ApiError> {
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        let last_error = self.refresh_if_due().await;
        if let Some(key) = self.cached(kid) {
            return Ok(key);
        }
        match (last_error, kid) {
            // The detail (URL, network error) is logged by the refresh, not sent to the caller.
            (Some(_), _) => Err(ApiError::KeysUnavailable),
            (None, Some(kid)) => Err(ApiError::UnknownSigningKey(kid.to_owned())),
            (None, None) => Err(ApiError::InvalidToken(
                "the token has no kid and the issuer publishes several keys".into(),
            )),
        }
    }

    /// Fetches the document unless a fetch started less than the minimum interval ago; returns
    /// the error of the latest fetch, if it failed.
    async fn refresh_if_due(&self) -> Option<String> {
        let mut last_fetch = self.last_fetch.lock().await;
        if let Some((started, error)) = last_fetch.as_ref()
            && started.elapsed() < self.min_refresh_interval
        {
            return error.clone();
        }
        let started = Instant::now();
        let outcome = self.fetch().await;
        let result = match &outcome {
            Ok(keys) if keys.is_empty() => "empty",
            Ok(_) => "ok",
            Err(_) => "error",
        };
        Metrics::record_result(&metrics().jwks_refreshes, result);
        let error = match outcome {
            // An empty answer is more likely a broken issuer than a real withdrawal of every key:
            // keep serving with the keys we have.
            Ok(keys) if keys.is_empty() => {
                tracing::warn!(source = %self.describe(), "the JWKS document has no usable signing key; keeping the previous keys");
                Some("no usable signing key in the JWKS document".to_owned())
            }
            Ok(keys) => {
                tracing::info!(source = %self.describe(), keys = keys.len(), "fetched signing keys");
                *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = keys;
                None
            }
            Err(error) => {
                tracing::warn!(source = %self.describe(), %error, "cannot fetch signing keys");
                Some(error)
            }
        };
        *last_fetch = Some((started, error.clone()));
        error
    }

    fn describe(&self) -> String {
        match &self.location {
            JwksLocation::Url(url) => url.clone(),
            JwksLocation::Discovery { issuer, jwks_uri } => match jwks_uri.get() {
                Some(url) => url.clone(),
                None => format!("{issuer} (discovery)"),
            },
        }
    }

    async fn jwks_url(&self) -> Result<&str, String> {
        match &self.location {
            JwksLocation::Url(url) => Ok(url),
            JwksLocation::Discovery { issuer, jwks_uri } => jwks_uri
                .get_or_try_init(|| self.discover_jwks_uri(issuer))
                .await
                .map(String::as_str),
        }
    }

    /// The discovery document's `jwks_uri`, after checking that it speaks for `issuer` (OpenID
    /// Connect Discovery 1.0, section 4.3).
    async fn discover_jwks_uri(&self, issuer: &str) -> Result<String, String> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let document: Discovery = self.get_json(&url, "discovery document").await?;
        if document.issuer != issuer {
            return Err(format!(
                "the discovery document at {url} is for issuer {:?}, not {issuer:?}",
                document.issuer
            ));
        }
        // An https issuer's keys come over https too: a plain-http jwks_uri would let anyone on
        // the path substitute the keys.
        let secure = document.jwks_uri.starts_with("https://");
        if !(secure || document.jwks_uri.starts_with("http://") && !issuer.starts_with("https://")) {
            return Err(format!(
                "the discovery document at {url} has no usable jwks_uri (an https issuer needs an https jwks_uri)"
            ));
        }
        tracing::info!(%issuer, jwks_uri = %document.jwks_uri, "discovered the issuer's signing keys");
        Ok(document.jwks_uri)
    }

    async fn fetch(&self) -> Result<HashMap<String, PublishedKey>, String> {
        let url = self.jwks_url().await?;
        let document: JwkSet = self.get_json(url, "JWKS document").await?;
        Ok(document.keys.iter().filter_map(signing_key).collect())
    }

    /// GETs `url` and parses the JSON `what` it must answer.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str, what: &str) -> Result<T, String> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|error| error.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url} answered {status}"));
        }
        response
            .json()
            .await
            .map_err(|error| format!("invalid {what} at {url}: {error}"))
    }
}

/// The JWK as a signature verification key, or `None` for keys that must not verify signatures:
/// keys marked for encryption (`use: enc`, or an encryption `alg` such as RSA-OAEP), keys without
/// a `kid`, and key types jsonwebtoken cannot use.
fn signing_key(jwk: &Jwk) -> Option<(String, PublishedKey)> {
    let kid = jwk.common.key_id.clone()?;
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|usage| *usage != PublicKeyUse::Signature)
    {
        return None;
    }
    let algorithm = match jwk.common.key_algorithm {
        None => None,
        Some(published) => match published.to_string().parse::<Algorithm>() {
            Ok(algorithm) => Some(algorithm),
            Err(_) => {
                tracing::debug!(%kid, algorithm = %published, "skipping a JWKS key that is not for signatures");
                return None;
            }
        },
    };
    match DecodingKey::from_jwk(jwk) {
        Ok(key) => Some((
            kid,
            PublishedKey {
                key: Arc::new(key),
                algorithm,
            },
        )),
        Err(error) => {
            tracing::debug!(%kid, %error, "skipping an unusable JWKS key");
            None
        }
    }
}

/// The asymmetric key source.
pub enum AsymmetricKeys {
    /// One fixed key (development key or public key file); `kid` is checked when the key has one.
    Fixed {
        kid: Option<String>,
        key: Arc<DecodingKey>,
    },
    Jwks(Box<JwksKeys>),
}

/// Every key a token may be verified with.
pub struct KeyStore {
    asymmetric: AsymmetricKeys,
    hmac_secret: Option<Arc<DecodingKey>>,
}

impl KeyStore {
    pub fn new(asymmetric: AsymmetricKeys, hmac_secret: Option<DecodingKey>) -> KeyStore {
        KeyStore {
            asymmetric,
            hmac_secret: hmac_secret.map(Arc::new),
        }
    }

    /// The key for a token signed with `algorithm` under `kid`. The algorithm has already been
    /// checked against the accepted list; here it must also fit the key that is found.
    pub async fn key_for(
        &self,
        kid: Option<&str>,
        algorithm: Algorithm,
    ) -> Result<Arc<DecodingKey>, ApiError> {
        if is_hmac(algorithm) {
            return self
                .hmac_secret
                .clone()
                .ok_or_else(|| ApiError::InvalidToken("HMAC-signed tokens are not accepted".into()));
        }
        match &self.asymmetric {
            AsymmetricKeys::Fixed {
                kid: Some(expected), ..
            } if kid.is_some_and(|kid| kid != expected) => {
                Err(ApiError::UnknownSigningKey(kid.unwrap_or_default().to_owned()))
            }
            AsymmetricKeys::Fixed { key, .. } => Ok(key.clone()),
            AsymmetricKeys::Jwks(jwks) => {
                let published = jwks.key(kid).await?;
                match published.algorithm {
                    Some(bound) if bound != algorithm => Err(ApiError::InvalidToken(format!(
                        "the key is published for {bound:?}, the token claims {algorithm:?}"
                    ))),
                    _ => Ok(published.key),
                }
            }
        }
    }
}
