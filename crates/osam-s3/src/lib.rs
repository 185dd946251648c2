//! Object-storage adapters: the bucket configuration read from a local file or an S3 object, each
//! re-read when it changes and keeping the last valid version when a new one is broken.

#![forbid(unsafe_code)]

pub mod bucket_file;
pub mod bucket_object;
pub mod client;
pub mod embedded;
mod last_good;

pub use bucket_file::FileBucketConfig;
pub use bucket_object::ObjectBucketConfig;
pub use client::{S3Settings, s3_client};
pub use embedded::EmbeddedProvider;
pub use last_good::ReloadOutcome;
