//! Object-storage adapters: the bucket configuration read from a local file or an S3 object (each
//! re-read when it changes, keeping the last valid version when a new one is broken), and the
//! account providers: embedded (a crash-safe file) and IAM (with secrets sealed in S3).

#![forbid(unsafe_code)]

pub mod bucket_file;
pub mod bucket_object;
pub mod client;
pub mod embedded;
pub mod iam;
mod last_good;
pub mod sealed;

pub use bucket_file::FileBucketConfig;
pub use bucket_object::ObjectBucketConfig;
pub use client::{S3Settings, s3_client};
pub use embedded::EmbeddedProvider;
pub use iam::{IamProvider, IamSettings, IamSettingsError, iam_client, iam_user_name};
pub use last_good::ReloadOutcome;
pub use sealed::{SealError, SealingKey, SealingKeyError, SecretStore};
