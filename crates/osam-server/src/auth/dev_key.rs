//! The development signing key: an RSA key generated once in the state directory, used by
//! `osam serve` to verify and by `osam dev-token` to sign. Never used outside the development
//! configuration, and never committed: each machine generates its own.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};

use crate::digest::sha256;

const KEY_FILE_NAME: &str = "dev-signing-key.pem";
const PEM_LABEL: &str = "PRIVATE KEY";

#[derive(Debug, thiserror::Error)]
pub enum DevKeyError {
    #[error("cannot use the state directory {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("the development key {path} is not a valid key: {message}; delete it to generate a new one")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot generate a development key: {0}")]
    Generate(String),
    #[error("cannot sign the token: {0}")]
    Sign(String),
}

/// The development key pair. Its Debug output shows only the key id.
pub struct DevelopmentKey {
    kid: String,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl std::fmt::Debug for DevelopmentKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DevelopmentKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DevelopmentKey {
    /// Loads the key from `state_dir`, generating it first when there is none. Two processes
    /// starting at once agree on one key: the file is published with a link that fails if it exists.
    pub fn load_or_create(state_dir: &Path) -> Result<DevelopmentKey, DevKeyError> {
        let path = state_dir.join(KEY_FILE_NAME);
        let io_error = |source| DevKeyError::Io {
            path: path.clone(),
            source,
        };
        if !path.exists() {
            fs::create_dir_all(state_dir).map_err(io_error)?;
            let pem = generate_pem()?;
            publish_new_file(&path, pem.as_bytes()).map_err(io_error)?;
        }
        let pem = fs::read(&path).map_err(io_error)?;
        DevelopmentKey::from_pem(&path, &pem)
    }

    fn from_pem(path: &Path, pem: &[u8]) -> Result<DevelopmentKey, DevKeyError> {
        let invalid = |message: String| DevKeyError::Invalid {
            path: path.to_owned(),
            message,
        };
        let der = decode_pem(pem).ok_or_else(|| invalid("not a PEM private key".to_owned()))?;
        let key_pair = KeyPair::from_pkcs8(&der).map_err(|error| invalid(error.to_string()))?;
        let public_der = key_pair.public_key().as_ref().to_vec();
        let kid = format!("osam-dev-{}", hex(&sha256(&public_der)[..8]));
        let encoding = EncodingKey::from_rsa_pem(pem).map_err(|error| invalid(error.to_string()))?;
        Ok(DevelopmentKey {
            kid,
            encoding,
            decoding: DecodingKey::from_rsa_der(&public_der),
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn decoding_key(&self) -> &DecodingKey {
        &self.decoding
    }

    /// Signs `claims` as an RS256 JWT carrying this key's id.
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String, DevKeyError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|error| DevKeyError::Sign(error.to_string()))
    }
}

fn generate_pem() -> Result<String, DevKeyError> {
    let key_pair =
        KeyPair::generate(KeySize::Rsa2048).map_err(|error| DevKeyError::Generate(error.to_string()))?;
    let der = key_pair
        .as_der()
        .map_err(|error| DevKeyError::Generate(error.to_string()))?;
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
        .collect();
    Ok(format!(
        "-----BEGIN {PEM_LABEL}-----\n{}\n-----END {PEM_LABEL}-----\n",
        lines.join("\n")
    ))
}

fn decode_pem(pem: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(pem).ok()?;
    let begin = format!("-----BEGIN {PEM_LABEL}-----");
    let end = format!("-----END {PEM_LABEL}-----");
    let body = text.split_once(&begin)?.1.split_once(&end)?.0;
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact).ok()
}

/// Writes a temporary file readable only by its owner, then links it into place; if another
/// process published first, its key wins and ours is discarded.
fn publish_new_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let directory = path.parent().unwrap_or(Path::new("."));
    let temporary = directory.join(format!(".{KEY_FILE_NAME}.{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    let published = fs::hard_link(&temporary, path);
    let _ = fs::remove_file(&temporary);
    match published {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_generated_once_and_reloaded() {
        let state = tempfile::tempdir().expect("temp dir");
        let first = DevelopmentKey::load_or_create(state.path()).expect("generated");
        let second = DevelopmentKey::load_or_create(state.path()).expect("reloaded");
        assert_eq!(first.kid(), second.kid());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(state.path().join(KEY_FILE_NAME))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key file is private");
        }
    }

    #[test]
    fn a_corrupt_key_file_is_reported_with_its_path() {
        let state = tempfile::tempdir().expect("temp dir");
        fs::write(state.path().join(KEY_FILE_NAME), "garbage").expect("write");
        let error = DevelopmentKey::load_or_create(state.path())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(KEY_FILE_NAME) && error.contains("delete it"),
            "{error}"
        );
    }
}
