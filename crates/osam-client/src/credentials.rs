//! Where a client's bearer token comes from. Each source is chosen explicitly when the client is
//! built, and none falls back to another: a missing token is an error that says which source
//! failed, never a silent switch to a different identity.
//!
//! - [`RunningUser`]: the token of the user using the app, given by the caller.
//! - [`LaunchingUser`]: a token file mounted by the platform (a Kubernetes secret), re-read when
//!   it changes so a rotated token is used at once.
//! - [`DeveloperUser`]: a token from an environment variable or a `.env` file, for local
//!   development only; refused when `OSAM_ENV=production`.

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The default token file of the launching user.
pub const DEFAULT_TOKEN_FILE: &str = "/var/run/secrets/osam/token";
/// The variable (in the environment or a `.env` file) holding a developer token.
pub const DEVELOPER_TOKEN_VARIABLE: &str = "OSAM_DEV_TOKEN";
/// The variable naming the environment; `production` refuses the developer source.
pub const ENVIRONMENT_VARIABLE: &str = "OSAM_ENV";

/// Why no token could be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("the running user's token is empty")]
    EmptyToken,
    #[error("the launching user's token file {path} cannot be read after {attempts} attempts: {reason}")]
    TokenFileUnreadable {
        path: PathBuf,
        attempts: u32,
        reason: String,
    },
    #[error("the launching user's token in {path} expired at {expired_at} (Unix time) and was not renewed")]
    TokenFileExpired { path: PathBuf, expired_at: u64 },
    #[error("the developer token source is refused because {ENVIRONMENT_VARIABLE}=production")]
    DeveloperSourceInProduction,
    #[error("no developer token: set {DEVELOPER_TOKEN_VARIABLE} in the environment or in {env_file}")]
    NoDeveloperToken { env_file: PathBuf },
    #[error("cannot read {path}: {reason}")]
    EnvFileUnreadable { path: PathBuf, reason: String },
}

/// A bearer token. Its Debug output never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Token {
        Token(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The `exp` claim, read without verifying the signature (the server verifies; the client
    /// only avoids sending a token it knows has expired).
    fn expires_at(&self) -> Option<u64> {
        let payload = self.0.split('.').nth(1)?;
        let decoded = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
        serde_json::from_slice::<serde_json::Value>(&decoded)
            .ok()?
            .get("exp")?
            .as_u64()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Token(<redacted>)")
    }
}

/// The future a source returns.
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<Token, CredentialError>> + Send + 'a>>;

/// Something that produces the bearer token of each call.
pub trait TokenSource: Send + Sync + fmt::Debug {
    fn token(&self) -> TokenFuture<'_>;
}

/// The user using an app: the app passes the user's token.
#[derive(Debug, Clone)]
pub struct RunningUser {
    token: Token,
}

impl RunningUser {
    pub fn new(token: impl Into<String>) -> Result<RunningUser, CredentialError> {
        let token = Token::new(token.into().trim());
        if token.expose().is_empty() {
            return Err(CredentialError::EmptyToken);
        }
        Ok(RunningUser { token })
    }
}

impl TokenSource for RunningUser {
    fn token(&self) -> TokenFuture<'_> {
        let token = self.token.clone();
        Box::pin(async move { Ok(token) })
    }
}

/// How a launching-user file is retried while it is missing, unreadable or expired (the platform
/// may be writing a new one).
#[derive(Debug, Clone, Copy)]
pub struct FileRetry {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for FileRetry {
    fn default() -> Self {
        FileRetry {
            attempts: 5,
            first_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

/// The user who launched the process: a token file mounted by the platform.
#[derive(Debug)]
pub struct LaunchingUser {
    path: PathBuf,
    retry: FileRetry,
    /// The last token read and the file state it was read at; the file is read again whenever
    /// its modification time or size changes.
    cached: Mutex<Option<(FileStamp, Token)>>,
}

/// What identifies one version of the token file: a Kubernetes secret rotation replaces the file
/// (new inode), an in-place rewrite changes its change time even when the length is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: SystemTime,
    length: u64,
    inode: u64,
    changed_nanos: i128,
}

impl FileStamp {
    fn of(metadata: &std::fs::Metadata) -> FileStamp {
        #[cfg(unix)]
        let (inode, changed_nanos) = {
            use std::os::unix::fs::MetadataExt;
            (
                metadata.ino(),
                i128::from(metadata.ctime()) * 1_000_000_000 + i128::from(metadata.ctime_nsec()),
            )
        };
        #[cfg(not(unix))]
        let (inode, changed_nanos) = (0, 0);
        FileStamp {
            modified: metadata.modified().unwrap_or(UNIX_EPOCH),
            length: metadata.len(),
            inode,
            changed_nanos,
        }
    }
}

impl LaunchingUser {
    /// The token file at `path`; it is read at each call (when it changed), not now, so a file
    /// that appears after start-up is fine.
    pub fn from_file(path: impl Into<PathBuf>) -> LaunchingUser {
        LaunchingUser::with_retry(path, FileRetry::default())
    }

    /// The platform's default token file, [`DEFAULT_TOKEN_FILE`].
    pub fn from_default_file() -> LaunchingUser {
        LaunchingUser::from_file(DEFAULT_TOKEN_FILE)
    }

    pub fn with_retry(path: impl Into<PathBuf>, retry: FileRetry) -> LaunchingUser {
        LaunchingUser {
            path: path.into(),
            retry,
            cached: Mutex::new(None),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn read_current(&self) -> Result<Token, AttemptError> {
        let metadata = tokio::fs::metadata(&self.path)
            .await
            .map_err(|error| AttemptError::Unreadable(error.to_string()))?;
        let stamp = FileStamp::of(&metadata);
        let cached = self
            .cached
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let token = match cached {
            Some((cached_stamp, token)) if cached_stamp == stamp => token,
            _ => {
                let text = tokio::fs::read_to_string(&self.path)
                    .await
                    .map_err(|error| AttemptError::Unreadable(error.to_string()))?;
                let token = Token::new(text.trim());
                if token.expose().is_empty() {
                    return Err(AttemptError::Unreadable("the file is empty".to_owned()));
                }
                *self
                    .cached
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some((stamp, token.clone()));
                token
            }
        };
        match token.expires_at() {
            Some(expired_at) if expired_at <= unix_now() => Err(AttemptError::Expired(expired_at)),
            _ => Ok(token),
        }
    }
}

enum AttemptError {
    Unreadable(String),
    Expired(u64),
}

impl TokenSource for LaunchingUser {
    fn token(&self) -> TokenFuture<'_> {
        Box::pin(async move {
            let mut delay = self.retry.first_delay;
            let attempts = self.retry.attempts.max(1);
            for attempt in 1..=attempts {
                let failure = match self.read_current().await {
                    Ok(token) => return Ok(token),
                    Err(failure) => failure,
                };
                if attempt == attempts {
                    return Err(match failure {
                        AttemptError::Unreadable(reason) => CredentialError::TokenFileUnreadable {
                            path: self.path.clone(),
                            attempts,
                            reason,
                        },
                        AttemptError::Expired(expired_at) => CredentialError::TokenFileExpired {
                            path: self.path.clone(),
                            expired_at,
                        },
                    });
                }
                tracing::debug!(path = %self.path.display(), attempt, "token file not usable yet; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(self.retry.max_delay);
            }
            unreachable!("the last attempt returns")
        })
    }
}

/// A developer's own token, for local development against a development server.
#[derive(Debug, Clone)]
pub struct DeveloperUser {
    token: Token,
}

impl DeveloperUser {
    /// The token from [`DEVELOPER_TOKEN_VARIABLE`] in the environment, else in `./.env`. Warns
    /// every time, and refuses when `OSAM_ENV=production`. The environment is only read.
    pub fn from_env() -> Result<DeveloperUser, CredentialError> {
        DeveloperUser::from_env_or_file(Path::new(".env"))
    }

    /// As [`DeveloperUser::from_env`], with the `.env` file at `env_file`.
    pub fn from_env_or_file(env_file: &Path) -> Result<DeveloperUser, CredentialError> {
        let environment = |name: &str| std::env::var(name).ok().filter(|value| !value.trim().is_empty());
        DeveloperUser::resolve(
            environment(ENVIRONMENT_VARIABLE),
            environment(DEVELOPER_TOKEN_VARIABLE),
            env_file,
        )
    }

    fn resolve(
        environment_name: Option<String>,
        token_variable: Option<String>,
        env_file: &Path,
    ) -> Result<DeveloperUser, CredentialError> {
        let file_values = if env_file.exists() {
            let text =
                std::fs::read_to_string(env_file).map_err(|error| CredentialError::EnvFileUnreadable {
                    path: env_file.to_owned(),
                    reason: error.to_string(),
                })?;
            parse_env_file(&text)
        } else {
            Vec::new()
        };
        let from_file = |name: &str| {
            file_values
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let environment_name = environment_name.or_else(|| from_file(ENVIRONMENT_VARIABLE));
        if environment_name.is_some_and(|name| name.trim().eq_ignore_ascii_case("production")) {
            return Err(CredentialError::DeveloperSourceInProduction);
        }
        let token = token_variable
            .or_else(|| from_file(DEVELOPER_TOKEN_VARIABLE))
            .filter(|token| !token.trim().is_empty())
            .ok_or_else(|| CredentialError::NoDeveloperToken {
                env_file: env_file.to_owned(),
            })?;
        tracing::warn!(
            "using a DEVELOPER token ({DEVELOPER_TOKEN_VARIABLE}): for local development only, never in production"
        );
        Ok(DeveloperUser {
            token: Token::new(token.trim()),
        })
    }
}

impl TokenSource for DeveloperUser {
    fn token(&self) -> TokenFuture<'_> {
        let token = self.token.clone();
        Box::pin(async move { Ok(token) })
    }
}

/// `KEY=VALUE` lines; `#` comments, `export ` prefixes and surrounding quotes are accepted.
fn parse_env_file(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| {
            let line = line.strip_prefix("export ").unwrap_or(line);
            let (key, value) = line.split_once('=')?;
            let value = value.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|inner| inner.strip_suffix('"'))
                .or_else(|| {
                    value
                        .strip_prefix('\'')
                        .and_then(|inner| inner.strip_suffix('\''))
                })
                .unwrap_or(value);
            Some((key.trim().to_owned(), unquoted.to_owned()))
        })
        .collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JWT-shaped token (unsigned: the client never verifies) expiring at `exp`.
    fn jwt(subject: &str, exp: u64) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::json!({"sub": subject, "exp": exp}).to_string());
        format!("eyJhbGciOiJSUzI1NiJ9.{payload}.c2ln")
    }

    fn quick_retry() -> FileRetry {
        FileRetry {
            attempts: 3,
            first_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
        }
    }

    #[tokio::test]
    async fn a_rotated_token_file_is_used_at_once() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("token");
        std::fs::write(&path, jwt("first", unix_now() + 600)).expect("write");
        let source = LaunchingUser::with_retry(&path, quick_retry());
        assert_eq!(
            source.token().await.expect("token").expose(),
            jwt("first", unix_now() + 600)
        );

        // The platform rotates the secret: same path, new content.
        let rotated = jwt("second-and-longer", unix_now() + 900);
        std::fs::write(&path, &rotated).expect("write");
        assert_eq!(source.token().await.expect("token").expose(), rotated);
    }

    #[tokio::test]
    async fn a_same_length_rotation_with_the_same_modification_time_is_seen() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("token");
        let first = jwt("aaaa", unix_now() + 600);
        let second = jwt("bbbb", unix_now() + 600);
        assert_eq!(first.len(), second.len());
        std::fs::write(&path, &first).expect("write");
        let source = LaunchingUser::with_retry(&path, quick_retry());
        assert_eq!(source.token().await.expect("token").expose(), first);

        // Rewrite in place and put the old modification time back: only the change time moves.
        let modified = std::fs::metadata(&path)
            .expect("metadata")
            .modified()
            .expect("mtime");
        std::fs::write(&path, &second).expect("rewrite");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open")
            .set_modified(modified)
            .expect("set mtime");
        assert_eq!(source.token().await.expect("token").expose(), second);
    }

    #[tokio::test]
    async fn a_missing_file_is_retried_then_reported_with_its_path() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("absent");
        let source = LaunchingUser::with_retry(&path, quick_retry());
        match source.token().await {
            Err(CredentialError::TokenFileUnreadable {
                path: reported,
                attempts: 3,
                ..
            }) => assert_eq!(reported, path),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test]
    async fn a_file_that_appears_during_the_retries_is_used() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("late");
        let retry = FileRetry {
            attempts: 20,
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(50),
        };
        let source = LaunchingUser::with_retry(&path, retry);
        let writer_path = path.clone();
        let token = jwt("late", unix_now() + 600);
        let written = token.clone();
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(60)).await;
            std::fs::write(writer_path, written).expect("write");
        });
        assert_eq!(source.token().await.expect("token").expose(), token);
        writer.await.expect("writer");
    }

    #[tokio::test]
    async fn an_expired_token_file_is_reported_as_expired() {
        let directory = tempfile::tempdir().expect("temp dir");
        let path = directory.path().join("token");
        std::fs::write(&path, jwt("old", 1_000)).expect("write");
        let source = LaunchingUser::with_retry(&path, quick_retry());
        assert_eq!(
            source.token().await,
            Err(CredentialError::TokenFileExpired {
                path,
                expired_at: 1_000
            })
        );
    }

    #[test]
    fn the_developer_source_refuses_production_and_never_falls_back() {
        let directory = tempfile::tempdir().expect("temp dir");
        let env_file = directory.path().join(".env");
        let refused = DeveloperUser::resolve(Some("production".into()), Some("t".into()), &env_file);
        assert_eq!(
            refused.map(|_| ()),
            Err(CredentialError::DeveloperSourceInProduction)
        );

        std::fs::write(&env_file, "OSAM_ENV=Production\nOSAM_DEV_TOKEN=t\n").expect("write");
        let refused = DeveloperUser::resolve(None, None, &env_file);
        assert_eq!(
            refused.map(|_| ()),
            Err(CredentialError::DeveloperSourceInProduction),
            "the .env file counts too"
        );

        std::fs::remove_file(&env_file).expect("remove");
        let missing = DeveloperUser::resolve(None, None, &env_file);
        assert!(matches!(missing, Err(CredentialError::NoDeveloperToken { .. })));
    }

    #[tokio::test]
    async fn the_developer_token_comes_from_the_environment_or_the_env_file() {
        let directory = tempfile::tempdir().expect("temp dir");
        let env_file = directory.path().join(".env");
        std::fs::write(&env_file, "# local\nexport OSAM_DEV_TOKEN=\"from-file\"\n").expect("write");
        let from_file = DeveloperUser::resolve(None, None, &env_file).expect("token");
        assert_eq!(from_file.token().await.expect("token").expose(), "from-file");
        let from_environment =
            DeveloperUser::resolve(None, Some("from-env".into()), &env_file).expect("token");
        assert_eq!(
            from_environment.token().await.expect("token").expose(),
            "from-env"
        );
    }

    #[test]
    fn tokens_never_show_in_debug_output() {
        let source = RunningUser::new("secret-token-value").expect("token");
        assert!(!format!("{source:?}").contains("secret-token-value"));
        assert_eq!(
            RunningUser::new("  ").map(|_| ()),
            Err(CredentialError::EmptyToken)
        );
    }
}
