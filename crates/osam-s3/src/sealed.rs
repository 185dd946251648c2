//! Sealed secrets: IAM shows a secret access key only once, at creation, so the IAM provider keeps
//! each one encrypted (AES-256-GCM under a master key from the configuration) in an S3 object that
//! every replica can read. The sealed bytes are bound to their account and access key: a blob
//! copied to another account, or edited, does not open.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use osam_policy::accounts::{AccountCredentials, ProviderError, Secret};
use serde::{Deserialize, Serialize};

/// The length of an AES-256 key.
pub const SEALING_KEY_BYTES: usize = 32;

/// The GCM authentication tag appended to every sealed value.
const TAG_BYTES: usize = 16;

/// Names the stored record's layout and is part of the associated data, so a record of another
/// layout or purpose never opens as this one.
const RECORD_FORMAT: &str = "osam-sealed-secret-v1";

/// The master key sealing secrets. Neither Debug nor any error ever shows it.
pub struct SealingKey {
    key: RandomizedNonceKey,
}

/// Why the master key text is not a usable key. The messages never repeat the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealingKeyError {
    #[error("the sealing key is empty; generate one with `openssl rand -base64 32`")]
    Empty,
    #[error("the sealing key is not standard base64 text; generate one with `openssl rand -base64 32`")]
    NotBase64,
    #[error(
        "the sealing key decodes to {0} bytes; an AES-256 key is {SEALING_KEY_BYTES} bytes (`openssl rand -base64 32`)"
    )]
    WrongLength(usize),
}

/// Why sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the operating system gave no randomness for a nonce")]
    NoRandomness,
    #[error("the sealed value is {0} bytes, too short to hold a nonce and a tag")]
    Truncated(usize),
    /// GCM cannot tell these apart, and neither can we.
    #[error("the sealed value does not open: another master key, another account, or altered bytes")]
    DoesNotOpen,
}

impl SealingKey {
    /// Parses the master key: 32 bytes in standard base64; surrounding whitespace (a trailing
    /// newline in a key file) is ignored.
    pub fn parse(base64_text: &str) -> Result<SealingKey, SealingKeyError> {
        let text = base64_text.trim();
        if text.is_empty() {
            return Err(SealingKeyError::Empty);
        }
        // The decoder's own error names the offending byte, which is part of the key: dropped.
        let bytes = BASE64.decode(text).map_err(|_| SealingKeyError::NotBase64)?;
        if bytes.len() != SEALING_KEY_BYTES {
            return Err(SealingKeyError::WrongLength(bytes.len()));
        }
        let key = RandomizedNonceKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| SealingKeyError::WrongLength(bytes.len()))?;
        Ok(SealingKey { key })
    }

    /// Encrypts `secret`, authenticating `associated_data` with it: the result is a fresh random
    /// 96-bit nonce followed by the ciphertext and its tag.
    pub fn seal(&self, secret: &Secret, associated_data: &[u8]) -> Result<Vec<u8>, SealError> {
        let mut ciphertext = secret.expose().as_bytes().to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(associated_data), &mut ciphertext)
            .map_err(|_| SealError::NoRandomness)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        sealed.extend_from_slice(nonce.as_ref());
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypts what [`SealingKey::seal`] produced with the same `associated_data`.
    pub fn open(&self, sealed: &[u8], associated_data: &[u8]) -> Result<Secret, SealError> {
        if sealed.len() < NONCE_LEN + TAG_BYTES {
            return Err(SealError::Truncated(sealed.len()));
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::DoesNotOpen)?;
        let mut in_out = ciphertext.to_vec();
        let plaintext = self
            .key
            .open_in_place(nonce, Aad::from(associated_data), &mut in_out)
            .map_err(|_| SealError::DoesNotOpen)?;
        // Only osam seals with this key, and it seals UTF-8; anything else was not sealed by us.
        let text = std::str::from_utf8(plaintext).map_err(|_| SealError::DoesNotOpen)?;
        Ok(Secret::new(text))
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SealingKey(AES-256-GCM, <redacted>)")
    }
}

/// The stored object: the access key id in the clear (it is not a secret, and the reader needs
/// it to rebuild the associated data) and the sealed secret key.
#[derive(Serialize, Deserialize)]
struct SealedRecord {
    format: String,
    access_key_id: String,
    /// Base64 of nonce, ciphertext and tag.
    sealed: String,
}

/// Binds a sealed secret to its account and access key.
fn associated_data(account_id: &str, access_key_id: &str) -> Vec<u8> {
    format!("{RECORD_FORMAT}\n{account_id}\n{access_key_id}").into_bytes()
}

/// The object bytes holding `credentials` of `account_id`.
fn seal_record(
    key: &SealingKey,
    account_id: &str,
    credentials: &AccountCredentials,
) -> Result<Vec<u8>, String> {
    let sealed = key
        .seal(
            &credentials.secret_access_key,
            &associated_data(account_id, &credentials.access_key_id),
        )
        .map_err(|error| error.to_string())?;
    let record = SealedRecord {
        format: RECORD_FORMAT.to_owned(),
        access_key_id: credentials.access_key_id.clone(),
        sealed: BASE64.encode(sealed),
    };
    serde_json::to_vec(&record).map_err(|error| error.to_string())
}

/// The credentials in the object bytes of `account_id`, or why they cannot be read.
fn open_record(key: &SealingKey, account_id: &str, bytes: &[u8]) -> Result<AccountCredentials, String> {
    let record: SealedRecord = serde_json::from_slice(bytes)
        .map_err(|error| format!("the object is not a sealed secret record: {error}"))?;
    if record.format != RECORD_FORMAT {
        return Err(format!(
            "the record format is {:?}, not {RECORD_FORMAT:?}",
            record.format
        ));
    }
    let sealed = BASE64
        .decode(record.sealed.as_bytes())
        .map_err(|_| "the sealed value is not base64".to_owned())?;
    let secret = key
        .open(&sealed, &associated_data(account_id, &record.access_key_id))
        .map_err(|error| error.to_string())?;
    Ok(AccountCredentials {
        access_key_id: record.access_key_id,
        secret_access_key: secret,
    })
}

/// Sealed credentials kept as S3 objects `<prefix><account id>` in one bucket.
pub struct SecretStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    key: SealingKey,
}

impl SecretStore {
    /// The store in `bucket` under `prefix` (for example `osam/iam-secrets/`), sealing with `key`.
    /// The bucket must exist; it is not created here.
    pub fn new(
        client: aws_sdk_s3::Client,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
        key: SealingKey,
    ) -> SecretStore {
        SecretStore {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
            key,
        }
    }

    /// The object key holding `account_id`'s sealed credentials.
    pub fn object_key(&self, account_id: &str) -> String {
        format!("{}{account_id}", self.prefix)
    }

    /// Seals and stores `credentials`, replacing what `account_id` had.
    pub async fn put(&self, account_id: &str, credentials: &AccountCredentials) -> Result<(), ProviderError> {
        let bytes = seal_record(&self.key, account_id, credentials)
            .map_err(|why| ProviderError::Unavailable(format!("sealing a secret: {why}")))?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(self.object_key(account_id))
            .content_type("application/json")
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
            .send()
            .await
            .map_err(|error| self.unavailable("storing", account_id, &error))?;
        Ok(())
    }

    /// The stored credentials of `account_id`. A missing object, or one that does not open, is
    /// [`ProviderError::SecretLost`]; a store that cannot be reached (or a missing bucket, a
    /// refused request) is [`ProviderError::Unavailable`], since nothing is known to be lost.
    pub async fn get(&self, account_id: &str) -> Result<AccountCredentials, ProviderError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.object_key(account_id))
            .send()
            .await;
        let object = match object {
            Ok(object) => object,
            Err(error) if error.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                tracing::warn!(
                    account = account_id,
                    object = %self.object_key(account_id),
                    "no sealed secret is stored for the account"
                );
                return Err(ProviderError::SecretLost(account_id.to_owned()));
            }
            Err(error) => return Err(self.unavailable("reading", account_id, &error)),
        };
        let bytes = object.body.collect().await.map_err(|error| {
            ProviderError::Unavailable(format!("reading the sealed secret of {account_id:?}: {error}"))
        })?;
        open_record(&self.key, account_id, &bytes.into_bytes()).map_err(|why| {
            tracing::warn!(
                account = account_id,
                object = %self.object_key(account_id),
                why,
                "the sealed secret of the account does not open"
            );
            ProviderError::SecretLost(account_id.to_owned())
        })
    }

    /// Deletes `account_id`'s sealed credentials; deleting what is not there is not an error.
    pub async fn delete(&self, account_id: &str) -> Result<(), ProviderError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.object_key(account_id))
            .send()
            .await
            .map_err(|error| self.unavailable("deleting", account_id, &error))?;
        Ok(())
    }

    fn unavailable<E: std::error::Error + 'static>(
        &self,
        doing: &str,
        account_id: &str,
        error: &aws_sdk_s3::error::SdkError<E>,
    ) -> ProviderError {
        use aws_sdk_s3::error::DisplayErrorContext;
        ProviderError::Unavailable(format!(
            "{doing} the sealed secret of {account_id:?} in s3://{}/{}: {}",
            self.bucket,
            self.object_key(account_id),
            DisplayErrorContext(error)
        ))
    }
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SecretStore")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("key", &self.key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_text(byte: u8) -> String {
        BASE64.encode([byte; SEALING_KEY_BYTES])
    }

    fn key(byte: u8) -> SealingKey {
        SealingKey::parse(&key_text(byte)).expect("valid key")
    }

    fn credentials() -> AccountCredentials {
        AccountCredentials {
            access_key_id: "AKIAEXAMPLE".to_owned(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        }
    }

    #[test]
    fn a_sealed_secret_opens_with_the_same_key_and_account() {
        let key = key(7);
        let secret = Secret::new("wJalrXUtnFEMI/K7MDENG");
        let sealed = key.seal(&secret, b"account-a").expect("sealed");
        assert_eq!(sealed.len(), NONCE_LEN + secret.expose().len() + TAG_BYTES);
        assert!(
            !sealed
                .windows(secret.expose().len())
                .any(|window| window == secret.expose().as_bytes()),
            "the plaintext is not in the sealed bytes"
        );
        assert_eq!(key.open(&sealed, b"account-a"), Ok(secret.clone()));
        let again = key.seal(&secret, b"account-a").expect("sealed");
        assert_ne!(sealed, again, "every seal draws a fresh nonce");
    }

    #[test]
    fn a_sealed_secret_does_not_open_for_another_account_key_or_after_tampering() {
        let sealing_key = key(7);
        let sealed = sealing_key
            .seal(&Secret::new("s3cr3t"), b"account-a")
            .expect("sealed");
        assert_eq!(
            sealing_key.open(&sealed, b"account-b"),
            Err(SealError::DoesNotOpen)
        );
        assert_eq!(key(8).open(&sealed, b"account-a"), Err(SealError::DoesNotOpen));
        for position in [0, NONCE_LEN, sealed.len() - 1] {
            let mut tampered = sealed.clone();
            tampered[position] ^= 0x01;
            assert_eq!(
                sealing_key.open(&tampered, b"account-a"),
                Err(SealError::DoesNotOpen),
                "a flipped bit at {position}"
            );
        }
        assert_eq!(
            sealing_key.open(&sealed[..NONCE_LEN + TAG_BYTES - 1], b"account-a"),
            Err(SealError::Truncated(NONCE_LEN + TAG_BYTES - 1))
        );
    }

    #[test]
    fn bad_key_text_is_refused_without_being_echoed() {
        assert_eq!(SealingKey::parse("  \n").err(), Some(SealingKeyError::Empty));
        let not_base64 = "this-is-not-base64-but-a-secret!";
        let error = SealingKey::parse(not_base64).expect_err("refused");
        assert_eq!(error, SealingKeyError::NotBase64);
        assert!(!error.to_string().contains("secret"), "{error}");
        let short = BASE64.encode([1u8; 16]);
        let error = SealingKey::parse(&short).expect_err("refused");
        assert_eq!(error, SealingKeyError::WrongLength(16));
        assert!(!error.to_string().contains(&short), "{error}");
        assert!(SealingKey::parse(&format!("{}\n", key_text(3))).is_ok());
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let text = key_text(0x5a);
        let key = SealingKey::parse(&text).expect("valid");
        let debug = format!("{key:?}");
        assert!(!debug.contains(&text) && debug.contains("redacted"), "{debug}");
    }

    #[test]
    fn a_record_opens_only_for_its_account_and_access_key() {
        let key = key(9);
        let record = seal_record(&key, "osam-alice", &credentials()).expect("sealed");
        let text = String::from_utf8(record.clone()).expect("json");
        assert!(!text.contains("wJalr"), "{text}");
        assert_eq!(open_record(&key, "osam-alice", &record), Ok(credentials()));
        assert!(open_record(&key, "osam-bob", &record).is_err(), "moved");
        let relabelled = text.replace("AKIAEXAMPLE", "AKIAOTHER");
        assert!(
            open_record(&key, "osam-alice", relabelled.as_bytes()).is_err(),
            "another key id"
        );
        assert!(open_record(&key, "osam-alice", b"").is_err());
        assert!(open_record(&key, "osam-alice", b"{}").is_err());
    }
}
