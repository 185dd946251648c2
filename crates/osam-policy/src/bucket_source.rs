//! The bucket configuration port: where the current bucket rules come from (a local file, an S3
//! object). Adapters keep the last valid version when a new one is broken, so readers always get
//! either a complete configuration or none.

use std::sync::Arc;

use crate::bucket_config::BucketConfig;

/// A source of the bucket configuration, re-read by its adapter when it changes.
pub trait BucketConfigSource: Send + Sync {
    /// The last valid configuration, or `None` when none could be loaded yet.
    fn current(&self) -> Option<Arc<BucketConfig>>;

    /// Where the rules are read from, for operators: a file path or an `s3://bucket/key` URL.
    fn origin(&self) -> String;
}
