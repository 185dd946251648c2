//! The bucket configuration from an S3 object, polled at an interval: a HEAD compares the ETag,
//! and the object is downloaded only when it changed.

use std::sync::Arc;
use std::time::Duration;

use osam_policy::bucket_config::BucketConfig;
use osam_policy::bucket_source::BucketConfigSource;

use crate::last_good::{LastGood, ReloadOutcome, spawn_poller};

pub struct ObjectBucketConfig {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    last_good: LastGood<String>,
}

impl ObjectBucketConfig {
    /// The object `s3://bucket/key`, read now; an unreachable or broken object is logged and
    /// served as "no configuration yet" until a valid version appears.
    pub async fn open(client: aws_sdk_s3::Client, bucket: &str, key: &str) -> ObjectBucketConfig {
        let source = ObjectBucketConfig {
            client,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            last_good: LastGood::new(format!("s3://{bucket}/{key}")),
        };
        source.reload_if_changed().await;
        source
    }

    /// Downloads the object again when its ETag changed.
    pub async fn reload_if_changed(&self) -> ReloadOutcome {
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await;
        let etag = match head {
            Ok(head) => head.e_tag().unwrap_or_default().to_owned(),
            Err(error) => return self.last_good.complain(describe(&error)),
        };
        if !etag.is_empty() && self.last_good.version().as_deref() == Some(etag.as_str()) {
            return ReloadOutcome::Unchanged;
        }
        let object = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await
        {
            Ok(object) => object,
            Err(error) => return self.last_good.complain(describe(&error)),
        };
        // The version is the ETag of what was downloaded, which may be newer than the HEAD's.
        let version = object.e_tag().unwrap_or(&etag).to_owned();
        let bytes = match object.body.collect().await {
            Ok(bytes) => bytes.into_bytes(),
            Err(error) => return self.last_good.complain(format!("reading the object: {error}")),
        };
        match std::str::from_utf8(&bytes) {
            Ok(text) => self.last_good.offer(version, text),
            Err(_) => self.last_good.complain("the object is not UTF-8 text".to_owned()),
        }
    }

    /// Polls the object every `interval` while the source is alive.
    pub fn spawn_poller(self: &Arc<Self>, interval: Duration) {
        spawn_poller(self, interval, |source| async move {
            source.reload_if_changed().await;
        });
    }
}

/// An SDK error with its service code when there is one (`NoSuchKey`, `AccessDenied`, ...).
fn describe<E: std::error::Error + 'static>(error: &aws_sdk_s3::error::SdkError<E>) -> String {
    use aws_sdk_s3::error::DisplayErrorContext;
    format!("{}", DisplayErrorContext(error))
}

impl BucketConfigSource for ObjectBucketConfig {
    fn current(&self) -> Option<Arc<BucketConfig>> {
        self.last_good.current()
    }

    fn origin(&self) -> String {
        self.last_good.origin().to_owned()
    }
}
